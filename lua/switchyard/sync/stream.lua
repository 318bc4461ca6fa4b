-- Reading the change stream (switchyard:{cfg}:changes, redis/README.md): which pages to ask
-- for, and whether a page can be used. Pure: the replies are XRANGE pages as
-- switchyard.sync.resp decodes them; works on Lua 5.2 and LuaJIT. The I/O is
-- switchyard.sync.catch_up's.
--
-- The stream has one entry per changed object and version, with ids
-- <version>-0, <version>-1, ... for consecutive versions. A catch-up after `applied` is
-- usable only if the stream continues exactly there: its first entry is <applied+1>-0 and
-- no id is skipped after it. Anything else needs a full reload, and `why` says which:
-- an id that does not parse, a first entry elsewhere (the stream was trimmed, or the
-- version bumped by hand), a gap, a "resync" entry, an entry of an unknown kind, more
-- pages than MAX_PAGES, or no entry at all after `applied` (the version moved anyway).
--
--   local walk = stream.new_walk(applied)
--   for each page: why = stream.page(walk, entries)   -- nil: usable so far
--                  from = stream.next_from(entries)    -- nil: that was the last page
--   why = stream.finish(walk, done)                    -- done: the last page was seen
--   walk.order: the shm keys touched ("route:a"), each once, in stream order
--   walk.last_version: the newest version seen

local store_mod = require "switchyard.shm.store"
local keys = require "switchyard.sync.keys"
local pairs_to_table = require("switchyard.sync.resp").pairs_to_table

local type = type
local tonumber = tonumber
local str_match = string.match

local _M = {}

_M.COUNT = 1000          -- entries per XRANGE page
_M.MAX_PAGES = 100       -- more than 100k entries behind: a full reload is cheaper
-- objects it names; streams (docs/stream.md) are served by `switchyard stream`, not by the
-- edges, which hold their documents only for the digest
_M.KINDS = {route = true, upstream = true, certificate = true, stream = true}
local KINDS = _M.KINDS

-- The id of the first entry a catch-up after `applied` needs.
function _M.first_id(applied)
    return (applied + 1) .. "-0"
end

-- The XRANGE command of one page starting at `from` (an id, or "(" .. id: after it).
function _M.xrange(from)
    return {"XRANGE", keys.changes, from, "+", "COUNT", _M.COUNT}
end

function _M.new_walk(applied)
    return {
        applied = applied,
        first = true,          -- no entry seen yet
        prev_v = nil,
        prev_seq = nil,
        touched = {},
        order = {},
        last_version = applied,
    }
end

-- Checks one page and collects its keys into walk. Returns nil when it is usable, else
-- why a full reload is needed.
function _M.page(walk, entries)
    local applied = walk.applied
    local touched, order = walk.touched, walk.order
    for i = 1, #entries do
        local entry = entries[i]
        local id = type(entry) == "table" and entry[1]
        local v, seq = str_match(type(id) == "string" and id or "", "^(%d+)-(%d+)$")
        v = tonumber(v)
        if not v then
            return "unreadable stream entry"
        end
        seq = tonumber(seq)
        if walk.first then
            walk.first = false
            if v ~= applied + 1 or seq ~= 0 then
                return "the stream does not continue at version " .. (applied + 1)
                    .. " (trimmed, or bumped by hand)"
            end
        elseif not ((v == walk.prev_v and seq == walk.prev_seq + 1)
                    or (v == walk.prev_v + 1 and seq == 0)) then
            -- entries are <version>-0, -1, ... for consecutive versions
            return "gap in the stream before " .. id
        end
        walk.prev_v, walk.prev_seq = v, seq
        local f = pairs_to_table(entry[2])
        if f.op == "resync" then
            return "resync entry at version " .. v
        end
        if not KINDS[f.kind] or type(f.id) ~= "string" or f.id == "" then
            return "unknown stream entry " .. id
        end
        local key = store_mod.key(f.kind, f.id)
        if not touched[key] then
            touched[key] = true
            order[#order + 1] = key
        end
        if v > walk.last_version then
            walk.last_version = v
        end
    end
    return nil
end

-- Where the next page starts, or nil when this page was the last (a short one).
function _M.next_from(entries)
    if #entries < _M.COUNT then
        return nil
    end
    return "(" .. entries[#entries][1]
end

-- After the pages: nil when the catch-up can commit, else why a full reload is needed.
-- done: the last page was seen (not cut off after MAX_PAGES).
function _M.finish(walk, done)
    if not done then
        return "more than " .. _M.COUNT * _M.MAX_PAGES .. " changes behind"
    end
    if walk.first then
        -- the version moved but the stream has nothing after us
        return "the stream has nothing after version " .. walk.applied
            .. " (trimmed, or the version was bumped by hand)"
    end
    return nil
end

return _M
