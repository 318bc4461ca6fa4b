-- busted spec for issue 16 (hardening): the pure-Lua parts of the holes it lists.
-- Each case fails on the code the issue was filed against.

local router_mod = require "switchyard.route.router"
local cidr = require "switchyard.route.cidr"

local function find(subject, re)
    return subject:find(re) ~= nil
end

local function route(id, host, path)
    return {id = id, host = host, path = path, match = "prefix", priority = 0, upstream = "u"}
end

-- KB the Lua heap grew by while fn ran with the collector stopped: the memory a call
-- allocates, which does not depend on the machine's speed
local function allocated_kb(fn)
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    fn()
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    collectgarbage("collect")
    return grown
end

describe("router: a hostile Host against a wildcard route (issue 16, item 4)", function()
    local r
    before_each(function()
        r = router_mod.new(find)
        r:put(route("wild", "*.m4.test", "/"))
        r:put(route("deep", "*.a.b.c.d.m4.test", "/"))
        r:put(route("exact", "www.m4.test", "/"))
    end)

    it("does not build a suffix per label (16 KB, 8,000 labels)", function()
        local hostile = string.rep("a.", 8000) .. "m4.test"
        assert.is_true(#hostile > 16000)
        -- today: one string.sub per label, ~8 KB each on average, ~64 MB in all
        local kb = allocated_kb(function()
            for _ = 1, 3 do
                r:match(hostile, "/")
            end
        end)
        assert.is_true(kb < 256, string.format("3 lookups allocated %.0f KB", kb))
    end)

    it("costs the same for 10 labels and for 1,000 (bounded by the wildcards' depth)", function()
        local short = string.rep("x.", 10) .. "m4.test"
        local long = string.rep("x.", 1000) .. "m4.test"
        local a = allocated_kb(function() for _ = 1, 20 do r:match(short, "/") end end)
        local b = allocated_kb(function() for _ = 1, 20 do r:match(long, "/") end end)
        assert.is_true(b < 4 * a + 16,
                       string.format("10 labels: %.1f KB, 1,000 labels: %.1f KB", a, b))
    end)

    it("still finds the most specific wildcard", function()
        assert.equal("deep", r:match("x.y.a.b.c.d.m4.test", "/").id)
        assert.equal("wild", r:match("x.b.c.d.m4.test", "/").id)
        assert.equal("exact", r:match("www.m4.test", "/").id)
        assert.is_nil(r:match("m4.test", "/"))
    end)
end)

describe("cidr: IPv4-mapped ranges (issue 16, low)", function()
    -- a client on an IPv4 listener is 4 bytes, on a dual-stack one ::ffff:a.b.c.d; either
    -- way `::ffff:127.0.0.0/104` names 127.0.0.0/8: match it, or refuse the entry
    for _, entry in ipairs({"::ffff:127.0.0.0/104", "::ffff:7f00:0/104", "::ffff:0:0/96"}) do
        it(entry .. " matches 127.0.0.1 or is refused", function()
            local set, err = cidr.new_set({entry}, "deny")
            if not set then
                assert.matches("deny%[0%]", err)
                return
            end
            local v4 = assert(cidr.parse_ip("127.0.0.1"))
            local mapped = assert(cidr.parse_ip("::ffff:127.0.0.1"))
            assert.is_true(cidr.contains(set, v4), entry .. " does not match 127.0.0.1")
            assert.is_true(cidr.contains(set, mapped), entry .. " does not match ::ffff:127.0.0.1")
        end)
    end
end)
