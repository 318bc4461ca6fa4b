-- busted spec for switchyard.shm.store (the syncer's writes), over the fake shared dict.

local store_mod = require "switchyard.shm.store"
local shared_dict = require "spec_support.shared_dict"

-- the shared dict; capacity: room for that many one-letter documents ("route:a" = "A")
local function fake_dict(capacity)
    return shared_dict.new({capacity = capacity
        and capacity * shared_dict.entry_size("route:a", "A")})
end

describe("store", function()
    local cfg, meta, logs, st
    local function collect(level, msg) logs[#logs + 1] = level .. " " .. msg end
    before_each(function()
        cfg, meta, logs = fake_dict(), fake_dict(), {}
        st = store_mod.new(cfg, meta, collect)
    end)

    it("writes docs in dependency order, then the log, version and serial", function()
        cfg:safe_set("route:old", "x")
        cfg:safe_set("upstream:gone", "y")
        cfg.writes = {}
        meta.writes = {}
        local n = st:commit({["route:old"] = false, ["upstream:gone"] = false,
                             ["route:new"] = "r", ["upstream:u"] = "u"}, 7)
        assert.equal(4, n)
        assert.same({"upstream:u", "route:new", "-route:old", "-upstream:gone"}, cfg.writes)
        assert.same({"log:1", "version", "serial"}, meta.writes)
        assert.equal("upstream:u route:new route:old upstream:gone", meta:get("log:1"))
        assert.equal(7, meta:get("version"))
        assert.equal(1, meta:get("serial"))
    end)

    it("is idempotent: the same change twice does not move the serial", function()
        st:commit({["route:a"] = "A"}, 3)
        assert.equal(1, meta:get("serial"))
        local n = st:commit({["route:a"] = "A", ["route:zzz"] = false}, 3)
        assert.equal(0, n)
        assert.equal(1, meta:get("serial"))
        st:commit({["route:a"] = "A2"}, 4)
        assert.equal(2, meta:get("serial"))
        assert.equal(4, meta:get("version"))
    end)

    it("marks the first load even when Redis is empty", function()
        st:full({}, 0)
        assert.equal(1, meta:get("serial"))
        assert.equal(0, meta:get("version"))
    end)

    it("full load deletes what Redis no longer has, and logs only differences", function()
        st:full({["route:a"] = "A", ["route:b"] = "B", ["upstream:u"] = "U"}, 5)
        st:full({["route:a"] = "A", ["upstream:u"] = "U2"}, 9)
        assert.is_nil(cfg:get("route:b"))
        assert.equal("U2", cfg:get("upstream:u"))
        assert.equal("upstream:u route:b", meta:get("log:2"))
        assert.equal(9, meta:get("version"))
    end)

    it("logs * for big changes and for keys with spaces", function()
        local many = {}
        for i = 1, store_mod.LOG_MAX_KEYS + 1 do many["route:r" .. i] = "x" end
        st:commit(many, 2)
        assert.equal("*", meta:get("log:1"))
        st:commit({["route:a b"] = "x"}, 3)
        assert.equal("*", meta:get("log:2"))
    end)

    it("fails loudly instead of evicting when sy_config is full", function()
        cfg = fake_dict(2)
        st = store_mod.new(cfg, meta, collect)
        st:commit({["route:a"] = "A", ["route:b"] = "B", ["route:c"] = "C"}, 1)
        assert.equal("A", cfg:get("route:a"))
        assert.equal("B", cfg:get("route:b"))
        assert.is_nil(cfg:get("route:c"))
        assert.equal(1, meta:get("sync:shm_errors"))
        assert.truthy(logs[1]:find("^err sy_config: cannot store route:c"))
    end)
end)
