-- busted spec for switchyard.health.passive (failure accounting shared by an edge's
-- workers through sy_passive), over the fake dict and a fake clock.

local shared_dict = require "spec_support.shared_dict"
local health_policy = require "switchyard.health.policy"
local passive_mod = require "switchyard.health.passive"
local health = require "switchyard.health.rotation"

-- a clock the tests move by hand
local clock = {t = 1000}
local function now() return clock.t end

-- the shared dict, on the fake clock
local function fake_dict()
    return shared_dict.new({now = now})
end

describe("passive", function()
    local dict, changed, logs, p1, p2
    local up = {name = "u", policy = health_policy.decode({passive = {max_fails = 2,
                                                                        fail_timeout_ms = 5000}})}
    local a = {address = "10.0.0.1:80"}

    local function new()
        return passive_mod.new({dict = dict, now = now,
                                log = function(_, msg) logs[#logs + 1] = msg end,
                                on_change = function(name) changed[#changed + 1] = name end})
    end

    before_each(function()
        clock.t = 1000
        dict, changed, logs = fake_dict(), {}, {}
        p1, p2 = new(), new()   -- two workers of one edge
        p1:tick()
        p2:tick()
    end)

    it("takes an endpoint out after max_fails failures, on every worker", function()
        p1:failed(up, a)
        assert.same({}, p1.down)
        p2:failed(up, a)                         -- counted in the shared dict
        assert.equal(1005, p2.down.u["10.0.0.1:80"])
        assert.same({"u"}, changed)              -- the marking worker rebuilds at once
        assert.truthy(logs[1]:find("failed 2 times within 5000 ms: out of rotation", 1, true))
        assert.equal(1, p1:tick())               -- the other within a tick
        assert.equal(1005, p1.down.u["10.0.0.1:80"])
        assert.same({"u", "u"}, changed)
        -- expiry puts it back everywhere
        clock.t = 1005
        assert.equal(1, p1:tick())
        assert.equal(1, p2:tick())
        assert.same({}, p1.down)
        assert.same({}, p2.down)
    end)

    it("counts failures within fail_timeout of the first one", function()
        p1:failed(up, a)
        clock.t = 1005.1                         -- the counter expired
        p1:failed(up, a)
        assert.same({}, p1.down)
        p1:failed(up, a)
        assert.truthy(p1.down.u)
    end)

    it("does nothing when max_fails is 0", function()
        local off = {name = "o", policy = health_policy.decode({passive = {max_fails = 0}})}
        for _ = 1, 10 do p1:failed(off, a) end
        assert.same({}, p1.down)
        assert.same({}, dict:get_keys(0))
    end)

    it("scans the out: keys when a log entry is missing", function()
        p1:failed(up, a)
        p1:failed(up, a)
        dict:delete("log:1")
        local p3 = new()
        p3.serial = 0
        assert.equal(1, p3:tick())
        assert.equal(1005, p3.down.u["10.0.0.1:80"])
        assert.equal(1, p3.scans)
    end)

    it("rebuilds the worker's balancer through health.build", function()
        local hctx = health.new_context({passive = p1.down, now = now})
        local endpoints = {a, {address = "10.0.0.2:80", weight = 1}}
        local built = health.build(hctx, {name = "u", endpoints = endpoints, n = #endpoints,
                                          policy = up.policy})
        p1.on_change = function() health.build(hctx, built) end
        p1:failed(up, a)
        p1:failed(up, a)
        assert.equal(1, built.available)
        assert.equal("10.0.0.2:80", built.balancer:pick().address)
        clock.t = 1006
        p1:tick()
        assert.equal(2, built.available)
    end)
end)
