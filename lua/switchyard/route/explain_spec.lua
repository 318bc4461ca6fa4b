-- busted spec: router:explain (GET /_switchyard/explain) chooses what router:match chooses,
-- on random route tables, and says why the others lost.

local router_mod = require "switchyard.route.router"
local find = require("spec_support.regex").find

local function route(id, host, path, match, priority, wildcard)
    return {id = id, host = host, path = path, match = match or "prefix",
            priority = priority or 0, upstream = "u", wildcard = wildcard}
end

local function reason_of(ex, id)
    for _, c in ipairs(ex.candidates) do
        if c.route.id == id then
            return c.reason
        end
    end
    return nil
end

describe("router:explain", function()
    it("tells the host entry and why each candidate lost", function()
        local r = router_mod.new(find)
        r:put(route("ex", "a.test", "/api", "exact"))
        r:put(route("pre", "a.test", "/api", "prefix"))
        r:put(route("pre2", "a.test", "/api", "prefix", 5))
        r:put(route("short", "a.test", "/", "prefix"))
        r:put(route("seg", "a.test", "/ap", "segment_prefix"))
        r:put(route("re", "a.test", "^/api/x", "regex"))
        r:put(route("wild", "*.test", "/", "prefix"))
        local ex = r:explain("a.test", "/api/x")
        assert.equal("pre2", ex.route.id)
        assert.equal("exact", ex.host.kind)
        assert.equal("a.test", ex.host.entry)
        assert.equal("chosen", reason_of(ex, "pre2"))
        assert.equal("exact path differs", reason_of(ex, "ex"))
        assert.equal("same path: lower priority or later id", reason_of(ex, "pre"))
        assert.equal("a longer prefix matched", reason_of(ex, "short"))
        assert.equal("not on a segment boundary", reason_of(ex, "seg"))
        assert.equal("an earlier candidate was chosen", reason_of(ex, "re"))
        assert.equal("host: a more specific host entry has routes", reason_of(ex, "wild"))
        -- the order considered: the exact route first, the regex after the prefixes
        assert.equal("ex", ex.candidates[1].route.id)
        assert.equal("re", ex.candidates[6].route.id)
    end)

    it("reports wildcard and catch-all hosts and what it tried", function()
        local r = router_mod.new(find)
        r:put(route("one", "*.b.test", "/", "prefix", 0, "one_label"))
        r:put(route("any", "*.test", "/", "prefix"))
        r:put(route("all", "*", "/", "prefix"))
        local ex = r:explain("x.b.test", "/")
        assert.equal("one", ex.route.id)
        assert.equal("one_label", ex.host.kind)
        assert.equal("*.b.test", ex.host.entry)
        assert.is_false(ex.host.tried[1].found)
        ex = r:explain("y.x.b.test", "/")
        assert.equal("any", ex.route.id)
        assert.equal("wildcard", ex.host.kind)
        ex = r:explain("other.org", "/")
        assert.equal("all", ex.route.id)
        assert.equal("catch_all", ex.host.kind)
        local empty = router_mod.new(find)
        ex = empty:explain("a.test", "/")
        assert.is_nil(ex.route)
        assert.is_nil(ex.host.entry)
        assert.equal("regex did not match", (function()
            local rr = router_mod.new(find)
            rr:put(route("re", "h", "^/z", "regex"))
            return reason_of(rr:explain("h", "/a"), "re")
        end)())
    end)

    it("chooses what match chooses on random tables", function()
        math.randomseed(18)
        local hosts = {"a.test", "b.a.test", "*.a.test", "*.test", "*.b.a.test", "*",
                       "c.test"}
        local paths = {"/", "/a", "/a/b", "/ab", "/a/", "/b", "/a/b/c"}
        local regexes = {"^/a", "b$", "^/a/b", "c", "^/$"}
        local kinds = {"exact", "prefix", "segment_prefix", "regex"}
        local rhosts = {"a.test", "x.a.test", "y.x.a.test", "b.a.test", "z.b.a.test",
                        "c.test", "other.org", "test"}
        for round = 1, 60 do
            local r = router_mod.new(find)
            for i = 1, math.random(1, 25) do
                local kind = kinds[math.random(#kinds)]
                local host = hosts[math.random(#hosts)]
                local path = kind == "regex" and regexes[math.random(#regexes)]
                    or paths[math.random(#paths)]
                if kind == "segment_prefix" and path ~= "/" then
                    path = path:gsub("/$", "")
                end
                local wildcard = host:sub(1, 2) == "*." and math.random(2) == 1 and "one_label"
                    or nil
                r:put(route(("r%02d"):format(i), host, path, kind, math.random(0, 2), wildcard))
            end
            for _ = 1, 30 do
                local host = rhosts[math.random(#rhosts)]
                local uri = paths[math.random(#paths)] .. (math.random(3) == 1 and "x" or "")
                local m = r:match(host, uri)
                local ex = r:explain(host, uri)
                assert.equal(m and m.id, ex.route and ex.route.id,
                             ("round %d: %s%s"):format(round, host, uri))
                local n_chosen = 0
                for _, c in ipairs(ex.candidates) do
                    if c.chosen then
                        n_chosen = n_chosen + 1
                        assert.equal(m, c.route)
                    else
                        assert.is_string(c.reason)
                    end
                end
                assert.equal(m and 1 or 0, n_chosen)
            end
        end
    end)
end)
