-- busted spec for spec_support.shared_dict: the one fake ngx.shared.DICT every spec uses
-- behaves as nginx's does where the edge depends on it.

local shared_dict = require "spec_support.shared_dict"

local clock = {t = 100}
local function now() return clock.t end

-- room for exactly n entries like ("k1", "v1")
local function dict_for(n)
    return shared_dict.new({capacity = n * shared_dict.entry_size("k1", "v1"), now = now})
end

describe("spec_support.shared_dict", function()
    before_each(function()
        clock.t = 100
    end)

    it("stores strings, numbers and booleans; nil deletes", function()
        local d = shared_dict.new()
        assert.same({true, nil, false}, {d:set("s", "x")})
        d:set("n", 1.5)
        d:set("b", false)
        assert.equal("x", d:get("s"))
        assert.equal(1.5, d:get("n"))
        assert.equal(false, d:get("b"))
        d:set("s", nil)
        assert.is_nil(d:get("s"))
        assert.has_error(function() d:set("t", {}) end)
    end)

    it("evicts the least recently used entry to make room, and says so", function()
        local d = dict_for(2)
        d:set("k1", "v1")
        d:set("k2", "v2")
        d:get("k1")                               -- k2 is now the least recently used
        local ok, err, forcible = d:set("k3", "v3")
        assert.is_true(ok)
        assert.is_nil(err)
        assert.is_true(forcible)
        assert.equal("v1", d:get("k1"))
        assert.is_nil(d:get("k2"))
        assert.equal("v3", d:get("k3"))
    end)

    it("drops expired entries before it evicts a live one", function()
        local d = dict_for(2)
        d:set("k1", "v1", 5)
        d:set("k2", "v2")
        clock.t = 105
        local ok, _, forcible = d:set("k3", "v3")
        assert.is_true(ok)
        assert.is_false(forcible)
        assert.equal("v2", d:get("k2"))
    end)

    it("safe_set and safe_add fail when full instead of evicting", function()
        local d = dict_for(2)
        d:set("k1", "v1")
        d:set("k2", "v2")
        assert.same({false, "no memory"}, {d:safe_set("k3", "v3")})
        assert.same({false, "no memory"}, {d:safe_add("k4", "v4")})
        assert.equal("v1", d:get("k1"))
        assert.equal("v2", d:get("k2"))
        -- the same size: replaced in place, no room needed
        assert.is_true(d:safe_set("k1", "w1"))
        -- a bigger value frees the old one first, as nginx does: then it may not fit
        assert.same({false, "no memory"}, {d:safe_set("k1", "a much longer value")})
        assert.is_nil(d:get("k1"))
    end)

    it("add refuses a live key and accepts an expired one", function()
        local d = shared_dict.new({now = now})
        assert.is_true(d:add("k", 1, 10))
        assert.same({false, "exists", false}, {d:add("k", 2)})
        assert.same({false, "exists"}, {d:safe_add("k", 2)})
        clock.t = 110
        assert.is_true(d:add("k", 3))
        assert.equal(3, d:get("k"))
        assert.same({false, "not found", false}, {d:replace("other", 1)})
    end)

    it("incr needs init to create, and sets init_ttl only then", function()
        local d = shared_dict.new({now = now})
        assert.same({nil, "not found"}, {d:incr("c", 1)})
        assert.equal(5, d:incr("c", 2, 3, 10))
        assert.equal(10, d:ttl("c"))
        clock.t = 105
        assert.equal(6, d:incr("c", 1, 0, 100))   -- existing: init and init_ttl ignored
        assert.equal(5, d:ttl("c"))
        clock.t = 110
        assert.is_nil(d:get("c"))
        assert.equal(1, d:incr("c", 1, 0))
        assert.equal(0, d:ttl("c"))
        d:set("s", "x")
        assert.same({nil, "not a number"}, {d:incr("s", 1)})
    end)

    it("ttl, expire, flush_all and flush_expired follow the clock", function()
        local d = shared_dict.new({now = now})
        d:set("a", "x", 10)
        d:set("b", "y")
        assert.same({nil, "not found"}, {d:ttl("nope")})
        assert.is_true(d:expire("b", 3))
        assert.equal(3, d:ttl("b"))
        assert.same({nil, "not found"}, {d:expire("nope", 1)})
        clock.t = 103
        assert.is_nil(d:get("b"))
        assert.equal(7, d:ttl("a"))
        d:set("c", "z")
        d:flush_all()
        assert.same({}, d:get_keys(0))
        assert.equal(2, d:flush_expired())
    end)

    it("lists live keys, most recently used first, 1024 at most by default", function()
        local d = shared_dict.new({now = now})
        for i = 1, 1100 do
            d:set("k" .. i, i)
        end
        assert.equal(1024, #d:get_keys())
        assert.equal(1100, #d:get_keys(0))
        assert.same({"k1100", "k1099"}, d:get_keys(2))
        d:get("k1")
        assert.equal("k1", d:get_keys(1)[1])
    end)

    it("accounts capacity and free space per entry", function()
        local d = dict_for(3)
        assert.equal(3 * shared_dict.entry_size("k1", "v1"), d:capacity())
        assert.equal(d:capacity(), d:free_space())
        d:set("k1", "v1")
        assert.equal(d:capacity() - shared_dict.entry_size("k1", "v1"), d:free_space())
        d:delete("k1")
        assert.equal(d:capacity(), d:free_space())
    end)

    it("records the order of writes and deletes", function()
        local d = shared_dict.new()
        d:set("a", 1)
        d:safe_set("b", 2)
        d:incr("a", 1)
        d:delete("a")
        d:delete("missing")
        assert.same({"a", "b", "a", "-a"}, d.writes)
    end)
end)
