-- busted spec for switchyard.sync.stream: which change-stream pages a catch-up can use.

local stream = require "switchyard.sync.stream"

-- an XRANGE entry as resp decodes it: {id, {field, value, ...}}
local function entry(id, kind, obj_id, op)
    return {id, {"op", op or "put", "kind", kind or "route", "id", obj_id or "a"}}
end

local function walk_pages(applied, pages)
    local walk = stream.new_walk(applied)
    for _, entries in ipairs(pages) do
        local why = stream.page(walk, entries)
        if why then
            return walk, why
        end
    end
    return walk, stream.finish(walk, true)
end

describe("stream", function()
    it("asks for the page after the applied version", function()
        assert.equal("8-0", stream.first_id(7))
        assert.same({"XRANGE", "switchyard:{cfg}:changes", "8-0", "+", "COUNT", stream.COUNT},
                    stream.xrange("8-0"))
    end)

    it("collects the touched keys once each, in stream order, and the last version", function()
        local walk, why = walk_pages(7, {{entry("8-0", "route", "a"),
                                          entry("8-1", "upstream", "u"),
                                          entry("9-0", "route", "a"),
                                          entry("10-0", "certificate", "c"),
                                          entry("11-0", "stream", "pg")}})
        assert.is_nil(why)
        -- a stream (docs/stream.md) is a kind like the others: no full reload for it
        assert.same({"route:a", "upstream:u", "certificate:c", "stream:pg"}, walk.order)
        assert.equal(11, walk.last_version)
    end)

    it("wants a full reload when the stream does not continue at applied + 1", function()
        local _, why = walk_pages(7, {{entry("9-0")}})
        assert.equal("the stream does not continue at version 8 (trimmed, or bumped by hand)", why)
        _, why = walk_pages(7, {{entry("8-1")}})
        assert.equal("the stream does not continue at version 8 (trimmed, or bumped by hand)", why)
    end)

    it("wants a full reload on a gap, an unreadable id, a resync or an unknown kind", function()
        local _, why = walk_pages(7, {{entry("8-0"), entry("8-2")}})
        assert.equal("gap in the stream before 8-2", why)
        _, why = walk_pages(7, {{entry("8-0"), entry("10-0")}})
        assert.equal("gap in the stream before 10-0", why)
        _, why = walk_pages(7, {{entry("8-0"), {"x-y", {}}}})
        assert.equal("unreadable stream entry", why)
        _, why = walk_pages(7, {{"garbage"}})
        assert.equal("unreadable stream entry", why)
        _, why = walk_pages(7, {{entry("8-0", "route", "a", "resync")}})
        assert.equal("resync entry at version 8", why)
        _, why = walk_pages(7, {{entry("8-0", "widget", "a")}})
        assert.equal("unknown stream entry 8-0", why)
        _, why = walk_pages(7, {{entry("8-0", "route", "")}})
        assert.equal("unknown stream entry 8-0", why)
    end)

    it("checks continuity across pages and pages on after a full one", function()
        local full = {}
        for i = 1, stream.COUNT do
            full[i] = entry((7 + i) .. "-0", "route", "r" .. i)
        end
        assert.equal("(" .. (7 + stream.COUNT) .. "-0", stream.next_from(full))
        assert.is_nil(stream.next_from({entry("8-0")}))
        local walk, why = walk_pages(7, {full, {entry((8 + stream.COUNT) .. "-0")}})
        assert.is_nil(why)
        assert.equal(8 + stream.COUNT, walk.last_version)
        local _, gap = walk_pages(7, {full, {entry((9 + stream.COUNT) .. "-0")}})
        assert.equal("gap in the stream before " .. (9 + stream.COUNT) .. "-0", gap)
    end)

    it("wants a full reload when the stream has nothing after us or too much", function()
        local walk = stream.new_walk(7)
        assert.is_nil(stream.page(walk, {}))
        assert.equal("the stream has nothing after version 7 (trimmed, or the version was"
                     .. " bumped by hand)", stream.finish(walk, true))
        walk = stream.new_walk(7)
        stream.page(walk, {entry("8-0")})
        assert.equal("more than " .. stream.COUNT * stream.MAX_PAGES .. " changes behind",
                     stream.finish(walk, false))
        assert.is_nil(stream.finish(walk, true))
    end)
end)
