-- busted spec for switchyard.route.router (run from the repo root: busted)

local router_mod = require "switchyard.route.router"

local find = require("spec_support.regex").find

local function route(id, host, path, match, priority, upstream)
    return {id = id, host = host, path = path, match = match or "prefix",
            priority = priority or 0, upstream = upstream or "u"}
end

-- every lookup asks both match and match_var (the edge's; reads var.uri only when the
-- host's routes need the path): they must agree
local function id_of(r, host, uri)
    local m, wild = r:match(host, uri)
    local mv, wild_v = r:match_var(host, {uri = uri})
    assert.equal(m, mv)
    assert.equal(wild, wild_v)
    return m and m.id
end

-- a var table that counts how often uri is read
local function counting_var(uri)
    local reads = 0
    return setmetatable({}, {__index = function(_, k)
        assert.equal("uri", k)
        reads = reads + 1
        return uri
    end}), function() return reads end
end

describe("router", function()
    local r
    before_each(function()
        r = router_mod.new(find)
    end)

    it("returns nil on an empty table", function()
        assert.is_nil(r:match("a.test", "/"))
        assert.is_nil(r:match("", "/"))
    end)

    it("prefers exact over prefix over regex", function()
        r:put(route("re", "h", "^/api", "regex"))
        r:put(route("pre", "h", "/api", "prefix"))
        r:put(route("ex", "h", "/api", "exact"))
        assert.equal("ex", id_of(r, "h", "/api"))
        assert.equal("pre", id_of(r, "h", "/api/x"))
        r:remove("pre")
        assert.equal("re", id_of(r, "h", "/api/x"))
        assert.equal("ex", id_of(r, "h", "/api"))
    end)

    it("exact does not match longer paths", function()
        r:put(route("ex", "h", "/a", "exact"))
        assert.is_nil(id_of(r, "h", "/a/"))
        assert.is_nil(id_of(r, "h", "/ab"))
    end)

    it("takes the longest prefix on any character boundary", function()
        r:put(route("root", "h", "/"))
        r:put(route("api", "h", "/api"))
        r:put(route("apiv1", "h", "/api/v1"))
        assert.equal("apiv1", id_of(r, "h", "/api/v1/users"))
        assert.equal("apiv1", id_of(r, "h", "/api/v1"))
        assert.equal("api", id_of(r, "h", "/api/v2"))
        assert.equal("api", id_of(r, "h", "/apix"))   -- like nginx: no segment boundary
        assert.equal("api", id_of(r, "h", "/api"))
        assert.equal("root", id_of(r, "h", "/ap"))
        assert.equal("root", id_of(r, "h", "/"))
    end)

    it("keeps prefix lengths right when routes share a length", function()
        r:put(route("a", "h", "/aa"))
        r:put(route("b", "h", "/bb"))
        r:remove("a")
        assert.equal("b", id_of(r, "h", "/bbx"))
        assert.is_nil(id_of(r, "h", "/aax"))
        r:remove("b")
        assert.is_nil(id_of(r, "h", "/bbx"))
    end)

    it("tries regexes by priority, then id", function()
        r:put(route("b", "h", "^/x", "regex", 0))
        r:put(route("a", "h", "/x", "regex", 0))
        r:put(route("c", "h", "x", "regex", 5))
        assert.equal("c", id_of(r, "h", "/x"))
        r:remove("c")
        assert.equal("a", id_of(r, "h", "/x"))    -- tie: id ascending
        assert.equal("a", id_of(r, "h", "/y/x"))  -- unanchored
        assert.is_nil(id_of(r, "h", "/y"))
    end)

    it("is case-sensitive on paths", function()
        r:put(route("p", "h", "/API"))
        assert.is_nil(id_of(r, "h", "/api"))
        assert.equal("p", id_of(r, "h", "/API/x"))
    end)

    it("breaks ties on the same host/path/match by priority then id", function()
        r:put(route("b", "h", "/p", "prefix", 1))
        r:put(route("a", "h", "/p", "prefix", 1))
        r:put(route("z", "h", "/p", "prefix", 0))
        assert.equal("a", id_of(r, "h", "/p"))
        r:put(route("z", "h", "/p", "prefix", 2))   -- replace with a higher priority
        assert.equal("z", id_of(r, "h", "/p"))
        r:remove("z")
        r:remove("a")
        assert.equal("b", id_of(r, "h", "/p"))
        r:put(route("e2", "h", "/q", "exact", -1))
        r:put(route("e1", "h", "/q", "exact", -1))
        assert.equal("e1", id_of(r, "h", "/q"))
    end)

    it("prefers the exact host, then the most specific wildcard", function()
        r:put(route("wx", "*.apps.x", "/"))
        r:put(route("weu", "*.eu.apps.x", "/"))
        r:put(route("exact", "a.eu.apps.x", "/"))
        assert.equal("exact", id_of(r, "a.eu.apps.x", "/"))
        assert.equal("weu", id_of(r, "b.eu.apps.x", "/"))
        assert.equal("weu", id_of(r, "c.b.eu.apps.x", "/"))  -- multi-label, like nginx
        assert.equal("wx", id_of(r, "b.us.apps.x", "/"))
        assert.equal("wx", id_of(r, "b.apps.x", "/"))
    end)

    it("never matches the bare parent with a wildcard", function()
        r:put(route("w", "*.apps.x", "/"))
        assert.is_nil(id_of(r, "apps.x", "/"))
        assert.is_nil(id_of(r, ".apps.x", "/"))
        assert.is_nil(id_of(r, "x", "/"))
        assert.is_nil(id_of(r, "appsapps.x", "/"))
        assert.equal("w", id_of(r, "a.apps.x", "/"))
    end)

    it("does not fall through to a less specific host", function()
        r:put(route("wide", "*.apps.x", "/"))
        r:put(route("narrow", "*.eu.apps.x", "/only"))
        r:put(route("exact", "e.apps.x", "/only"))
        assert.is_nil(id_of(r, "a.eu.apps.x", "/other"))
        assert.equal("narrow", id_of(r, "a.eu.apps.x", "/only/x"))
        assert.is_nil(id_of(r, "e.apps.x", "/other"))
        -- once the narrower host has no routes left, the wider one takes over
        r:remove("narrow")
        assert.equal("wide", id_of(r, "a.eu.apps.x", "/other"))
        r:remove("exact")
        assert.equal("wide", id_of(r, "e.apps.x", "/other"))
    end)

    it("moves a route that changes host or match kind", function()
        r:put(route("r", "a", "/p"))
        r:put(route("r", "b", "/p", "exact"))
        assert.is_nil(id_of(r, "a", "/p"))
        assert.is_nil(id_of(r, "b", "/p/x"))
        assert.equal("r", id_of(r, "b", "/p"))
        assert.equal(1, r.n)
        r:remove("r")
        assert.equal(0, r.n)
        assert.is_nil(next(r.exact_hosts))
        r:remove("r")   -- idempotent
        assert.equal(0, r.n)
    end)

    it("counts wildcard hosts so plain lookups skip the suffix walk", function()
        r:put(route("w", "*.a", "/"))
        assert.equal(1, r.n_wild)
        r:remove("w")
        assert.equal(0, r.n_wild)
    end)

    it("indexes wildcards by depth, kept right by put and remove", function()
        r:put(route("w2a", "*.a.x", "/"))
        r:put(route("w2b", "*.b.x", "/"))
        r:put(route("w4", "*.d.c.b.x", "/"))
        r:put(route("w4b", "*.d.c.b.x", "/other"))   -- same entry: counted once
        assert.same({4, 2}, r.wild_depths)
        assert.equal(3, r.n_wild)
        assert.equal("w4", id_of(r, "q.d.c.b.x", "/"))
        assert.equal("w2b", id_of(r, "q.c.b.x", "/"))
        assert.equal("w4", id_of(r, string.rep("l.", 500) .. "d.c.b.x", "/"))
        r:remove("w4")
        assert.same({4, 2}, r.wild_depths)           -- w4b keeps the entry
        r:remove("w4b")
        assert.same({2}, r.wild_depths)
        assert.equal("w2b", id_of(r, "q.d.c.b.x", "/"))
        r:remove("w2a")
        assert.same({2}, r.wild_depths)
        r:remove("w2b")
        assert.same({}, r.wild_depths)
        assert.equal(0, r.n_wild)
        assert.is_nil(id_of(r, "q.b.x", "/"))
    end)

    it("says whether the host matched a wildcard", function()
        r:put(route("w", "*.x", "/"))
        r:put(route("e", "e.x", "/"))
        local m, wild = r:match("a.x", "/")
        assert.equal("w", m.id)
        assert.is_true(wild)
        m, wild = r:match("e.x", "/")
        assert.equal("e", m.id)
        assert.is_false(wild)
    end)

    it("finds a removed or replaced route by id for a while, not for matching", function()
        local old = route("a", "h", "/x", "prefix", 0, "u1")
        r:put(old)
        r:remove("a")
        assert.is_nil(r:match("h", "/x"))
        assert.is_nil(r:get("a"))
        assert.equal(old, r:recent("a"))
        local new = route("a", "h", "/y", "prefix", 0, "u2")
        r:put(new)
        assert.equal(new, r:recent("a"))      -- the current one first
        r:put(route("a", "h", "/z"))         -- replaced again: the one before is retired
        r:remove("a")
        assert.equal("/z", r:recent("a").path)
        assert.is_nil(r:recent("never"))
    end)

    it("keeps at most two generations of retired routes", function()
        local max = router_mod.RETIRED_MAX
        r:put(route("first", "h", "/first"))
        r:remove("first")
        for i = 1, max - 1 do
            r:put(route("r" .. i, "h", "/" .. i))
            r:remove("r" .. i)
        end
        assert.is_not_nil(r:recent("first"))   -- still in the first generation
        for i = max, 2 * max do
            r:put(route("r" .. i, "h", "/" .. i))
            r:remove("r" .. i)
        end
        assert.is_nil(r:recent("first"))       -- two generations later: gone
        assert.is_not_nil(r:recent("r" .. 2 * max))
        local kept = 0
        for _ in pairs(r.retired) do kept = kept + 1 end
        for _ in pairs(r.retired_old) do kept = kept + 1 end
        assert.is_true(kept <= 2 * max, "kept " .. kept)
    end)
end)

-- The Kubernetes additions (segment_prefix, one-label wildcards): decoded route tables as
-- switchyard.route.decode gives them (route.match == "segment_prefix" with the path
-- stored without a trailing "/", except "/" itself; route.wildcard == "one_label").
describe("router: segment_prefix and one-label wildcards", function()
    local r
    before_each(function()
        r = router_mod.new(find)
    end)

    local function seg(id, host, path, priority)
        return route(id, host, path, "segment_prefix", priority)
    end

    local function one(id, host, path)
        local t = route(id, host, path or "/")
        t.wildcard = "one_label"
        return t
    end

    -- Kubernetes Ingress path matching (networking.k8s.io/v1 "Examples" table): pathType
    -- Exact is "exact", Prefix is "segment_prefix" (its path given with or without a
    -- trailing "/", stored without)
    local cases = {
        {"Prefix /", {seg("p", "h", "/")}, {["/"] = "p", ["/foo"] = "p", ["/foo/bar"] = "p"}},
        {"Exact /foo", {route("e", "h", "/foo", "exact")},
         {["/foo"] = "e", ["/bar"] = false, ["/foo/"] = false}},
        {"Exact /foo/", {route("e", "h", "/foo/", "exact")},
         {["/foo"] = false, ["/foo/"] = "e"}},
        {"Prefix /foo", {seg("p", "h", "/foo")},
         {["/foo"] = "p", ["/foo/"] = "p", ["/foo/bar"] = "p", ["/foobar"] = false,
          ["/fo"] = false, ["/"] = false}},
        {"Prefix /foo/ (stored /foo)", {seg("p", "h", "/foo")},
         {["/foo"] = "p", ["/foo/"] = "p"}},
        {"Prefix /aaa/bb does not match /aaa/bbb", {seg("p", "h", "/aaa/bb")},
         {["/aaa/bbb"] = false, ["/aaa/bb"] = "p", ["/aaa/bb/c"] = "p"}},
        {"Prefix /aaa/bbb matches /aaa/bbb/ and /aaa/bbb/ccc, not /aaa/bbbxyz",
         {seg("p", "h", "/aaa/bbb")},
         {["/aaa/bbb/"] = "p", ["/aaa/bbb/ccc"] = "p", ["/aaa/bbbxyz"] = false}},
        {"Prefix / and /aaa: the longest", {seg("root", "h", "/"), seg("a", "h", "/aaa")},
         {["/aaa/ccc"] = "a", ["/aaa"] = "a", ["/ccc"] = "root", ["/aaax"] = "root"}},
        {"Prefix /, /aaa, /aaa/bbb: the longest",
         {seg("root", "h", "/"), seg("a", "h", "/aaa"), seg("ab", "h", "/aaa/bbb")},
         {["/aaa/bbb"] = "ab", ["/aaa/bbbxyz"] = "a", ["/aaa/ccc"] = "a", ["/ccc"] = "root"}},
        {"Exact /foo and Prefix /foo: exact first",
         {route("e", "h", "/foo", "exact"), seg("p", "h", "/foo")},
         {["/foo"] = "e", ["/foo/"] = "p", ["/foo/x"] = "p"}},
        {"Prefix /aaa and Exact /aaa/ccc", {seg("p", "h", "/aaa"), route("e", "h", "/aaa/ccc", "exact")},
         {["/aaa/ccc"] = "e", ["/aaa/ccc/"] = "p"}},
    }
    for _, case in ipairs(cases) do
        it("Kubernetes Ingress paths: " .. case[1], function()
            for _, rt in ipairs(case[2]) do
                r:put(rt)
            end
            for uri, want in pairs(case[3]) do
                local got = id_of(r, "h", uri)
                assert.equal(want or nil, got, case[1] .. ": " .. uri)
            end
        end)
    end

    it("prefix and segment_prefix compete on length; a tie goes to priority, then id", function()
        r:put(route("pre", "h", "/foo"))          -- prefix: any character boundary
        r:put(seg("seg", "h", "/foo/bar"))
        assert.equal("seg", id_of(r, "h", "/foo/bar/x"))   -- longer
        assert.equal("pre", id_of(r, "h", "/foo/barx"))    -- seg does not count there
        assert.equal("pre", id_of(r, "h", "/foox"))
        -- same path, both kinds: the tie-break decides, as between two prefixes
        r:put(seg("a-seg", "h", "/foo"))
        assert.equal("a-seg", id_of(r, "h", "/foo/x"))     -- priority 0 both: id "a-seg" < "pre"
        assert.equal("pre", id_of(r, "h", "/foox"))        -- only the prefix matches there
        r:put(route("pre", "h", "/foo", "prefix", 5))
        assert.equal("pre", id_of(r, "h", "/foo/x"))       -- priority wins
        r:put(seg("a-seg", "h", "/foo", 9))
        assert.equal("a-seg", id_of(r, "h", "/foo"))
        -- a regex comes after both
        r:put(route("re", "h", "bar", "regex", 100))
        assert.equal("a-seg", id_of(r, "h", "/foo/x"))
        assert.equal("pre", id_of(r, "h", "/foobar"))
        assert.equal("re", id_of(r, "h", "/xbar"))
    end)

    it("keeps the length index right across both kinds", function()
        r:put(route("pre", "h", "/abc"))
        r:put(seg("seg", "h", "/abc"))
        r:put(seg("seg2", "h", "/xyz"))
        assert.same({4}, r.exact_hosts.h.lens)
        assert.equal(3, r.exact_hosts.h.len_count[4])
        r:remove("pre")
        assert.equal("seg", id_of(r, "h", "/abc/d"))
        assert.is_nil(id_of(r, "h", "/abcd"))
        r:remove("seg")
        r:remove("seg2")
        assert.is_nil(next(r.exact_hosts))
        -- a route that changes kind moves
        r:put(route("m", "h", "/m"))
        r:put(seg("m", "h", "/m"))
        assert.is_nil(id_of(r, "h", "/mx"))
        assert.equal("m", id_of(r, "h", "/m/x"))
        assert.equal(0, r.exact_hosts.h.prefix["/m"] and #r.exact_hosts.h.prefix["/m"] or 0)
    end)

    it("one-label wildcard: exactly one label more (Kubernetes Ingress hosts)", function()
        r:put(one("w", "*.foo.com"))
        assert.equal("w", id_of(r, "bar.foo.com", "/"))
        assert.is_nil(id_of(r, "baz.bar.foo.com", "/"))
        assert.is_nil(id_of(r, "foo.com", "/"))
        assert.is_nil(id_of(r, ".foo.com", "/"))
        assert.is_nil(id_of(r, "xfoo.com", "/"))
        local m, wild = r:match("bar.foo.com", "/")
        assert.equal("w", m.id)
        assert.is_true(wild)
    end)

    it("host precedence: exact, one-label, any-depth of the same suffix, shorter suffixes", function()
        r:put(route("any-com", "*.com", "/"))
        r:put(route("any-foo", "*.foo.com", "/"))
        r:put(one("one-foo", "*.foo.com"))
        r:put(route("exact", "x.foo.com", "/"))
        r:put(one("one-b", "*.b.foo.com"))
        r:put(route("any-b", "*.b.foo.com", "/"))
        -- x.foo.com: exact; one-label *.foo.com; any-depth *.foo.com; any-depth *.com
        assert.equal("exact", id_of(r, "x.foo.com", "/"))
        r:remove("exact")
        assert.equal("one-foo", id_of(r, "x.foo.com", "/"))
        r:remove("one-foo")
        assert.equal("any-foo", id_of(r, "x.foo.com", "/"))
        r:remove("any-foo")
        assert.equal("any-com", id_of(r, "x.foo.com", "/"))
        -- a.b.foo.com: one-label *.b.foo.com; any-depth *.b.foo.com; (not one-label
        -- *.foo.com: two labels more) any-depth *.foo.com; any-depth *.com
        r:put(one("one-foo", "*.foo.com"))
        r:put(route("any-foo", "*.foo.com", "/"))
        assert.equal("one-b", id_of(r, "a.b.foo.com", "/"))
        r:remove("one-b")
        assert.equal("any-b", id_of(r, "a.b.foo.com", "/"))
        r:remove("any-b")
        assert.equal("any-foo", id_of(r, "a.b.foo.com", "/"))
        r:remove("any-foo")
        assert.equal("any-com", id_of(r, "a.b.foo.com", "/"))   -- one-foo skipped
        assert.equal("one-foo", id_of(r, "b.foo.com", "/"))
    end)

    it("no fall-through from a one-label entry that has routes", function()
        r:put(one("one", "*.foo.com", "/only"))
        r:put(route("any", "*.foo.com", "/"))
        assert.is_nil(id_of(r, "x.foo.com", "/other"))
        assert.equal("one", id_of(r, "x.foo.com", "/only"))
        assert.equal("any", id_of(r, "a.x.foo.com", "/other"))
    end)

    it("one-label and any-depth entries of one suffix are separate; the index follows", function()
        r:put(one("o", "*.foo.com"))
        r:put(route("a", "*.foo.com", "/"))
        assert.equal(2, r.n_wild)
        assert.equal(3, r.scan)
        -- a route switching from one-label to any-depth moves between the entries
        r:put(route("o", "*.foo.com", "/o"))
        assert.is_nil(next(r.one_hosts))
        assert.equal(1, r.n_wild)
        assert.equal(2, r.scan)
        assert.equal("o", id_of(r, "x.foo.com", "/o"))
        r:remove("o")
        r:remove("a")
        assert.equal(0, r.n_wild)
        assert.equal(0, r.scan)
        assert.is_nil(id_of(r, "x.foo.com", "/"))
    end)

    it("a one-label lookup of a hostile Host costs what a short one does", function()
        r:put(one("o", "*.m4.test"))
        r:put(route("deep", "*.a.b.c.d.m4.test", "/"))
        local function kb(host)
            collectgarbage("collect")
            collectgarbage("stop")
            local before = collectgarbage("count")
            for _ = 1, 20 do r:match(host, "/") end
            local grown = collectgarbage("count") - before
            collectgarbage("restart")
            return grown
        end
        local short = kb(string.rep("x.", 10) .. "m4.test")
        local long = kb(string.rep("x.", 4000) .. "m4.test")
        assert.is_true(long < 4 * short + 16, string.format("%.1f KB vs %.1f KB", short, long))
        assert.equal("o", id_of(r, "x.m4.test", "/"))
    end)

    it("match_var reads the path only when the host's routes need it", function()
        r:put(route("root", "h", "/"))
        r:put(route("wroot", "*.w.test", "/", "segment_prefix"))
        local var, reads = counting_var("/any/path")
        assert.equal("root", r:match_var("h", var).id)
        local m, wild = r:match_var("a.w.test", var)
        assert.equal("wroot", m.id)
        assert.is_true(wild)
        assert.is_nil(r:match_var("other", var))
        assert.equal(0, reads())
        -- prefix and segment_prefix "/" on one host: the tie rule decides, path unread
        r:put(route("seg", "h", "/", "segment_prefix", 5))
        assert.equal("seg", r:match_var("h", var).id)
        r:put(route("seg", "h", "/", "segment_prefix", -5))
        assert.equal("root", r:match_var("h", var).id)
        assert.equal(0, reads())
        -- any other path, exact or regex route on the host: the path is read
        for _, extra in ipairs({route("x", "h", "/api"), route("x", "h", "/", "exact"),
                                route("x", "h", "^/z", "regex")}) do
            r:put(extra)
            local before = reads()
            assert.equal("root", r:match_var("h", var).id)
            assert.equal(before + 1, reads())
            r:remove("x")
            assert.equal("root", r:match_var("h", var).id)
            assert.equal(before + 1, reads())
        end
        -- the last "/" route goes: the host has none left
        r:remove("seg")
        r:remove("root")
        assert.is_nil(r:match_var("h", var))
        assert.is_nil(r.exact_hosts.h)
    end)

    it("match and match_var agree on random tables and paths", function()
        math.randomseed(18)
        local paths = {"/", "/a", "/a/", "/a/b", "/ab", "/b", "/a/b/c"}
        local kinds = {"prefix", "segment_prefix", "exact", "regex"}
        for _ = 1, 200 do
            local i = math.random(1, 12)
            local kind = kinds[math.random(1, #kinds)]
            local p = paths[math.random(1, #paths)]
            if kind == "regex" then
                p = "^" .. p .. "$"
            end
            if math.random() < 0.3 then
                r:remove("r" .. i)
            else
                r:put(route("r" .. i, math.random() < 0.5 and "h" or "*.h", p, kind,
                            math.random(-1, 1)))
            end
            for _, host in ipairs({"h", "x.h"}) do
                for _, uri in ipairs(paths) do
                    id_of(r, host, uri)
                end
            end
        end
    end)
end)
