-- busted spec for endpoint health at the edge: switchyard.health.rotation (which endpoints
-- are in rotation, all-down policies, retry choice) and its wiring into switchyard.state
-- (log tokens rebuild only one balancer), over the fake dict and a fake clock.

local cjson = require "cjson"
local shared_dict = require "spec_support.shared_dict"
local health = require "switchyard.health.rotation"
local health_policy = require "switchyard.health.policy"
local store_mod = require "switchyard.shm.store"
local state_mod = require "switchyard.state"
local changelog = require "switchyard.shm.changelog"

-- a clock the tests move by hand
local clock = {t = 1000}
local function now() return clock.t end

-- the shared dict, on the fake clock
local function fake_dict()
    return shared_dict.new({now = now})
end

local function eps(...)
    local out = {}
    for i, spec in ipairs({...}) do
        local addr, w = spec:match("^([^*]+)%*?(%d*)$")
        out[i] = {address = addr, host = addr:match("^(.*):"), port = 80,
                  weight = tonumber(w) or 1}
    end
    return out
end

local function policy(fields)
    local p = assert(health_policy.decode(fields or {}))
    return p
end

local function up_of(name, endpoints, pol)
    return {name = name, endpoints = endpoints, n = #endpoints, policy = pol or policy()}
end

local function picks(up, n)
    local out = {}
    for i = 1, n do out[i] = up.balancer:pick().address end
    return table.concat(out, " ")
end

local CHECKED = {health_check = {type = "http", path = "/healthz", interval_ms = 1000}}

describe("health.build", function()
    local hdict, hctx
    before_each(function()
        clock.t = 1000
        hdict = fake_dict()
        hctx = health.new_context({dict = hdict, passive = {}, now = now})
    end)

    it("without a context balances over every endpoint (smooth WRR)", function()
        local up = health.build(nil, up_of("u", eps("a:1*5", "b:1", "c:1")))
        assert.equal("a:1 a:1 b:1 a:1 c:1 a:1 a:1", picks(up, 7))
        assert.equal(3, up.available)
        assert.equal(2, up.more_tries)
    end)

    it("leaves out what the prober marked down, while it is fresh", function()
        hdict:set("health:u", "b:1")
        hdict:set("prober:fresh", true)
        local up = health.build(hctx, up_of("u", eps("a:1*5", "b:1", "c:1"), policy(CHECKED)))
        -- smooth WRR over the rest: 5,1 gives a a a c a a
        assert.equal("a:1 a:1 a:1 c:1 a:1 a:1", picks(up, 6))
        assert.equal(2, up.available)
        assert.equal(1, up.down_active)
        assert.equal(1, up.more_tries)   -- min(retries 2, available - 1)
    end)

    it("ignores the verdicts of a stale prober, and of upstreams without a check", function()
        hdict:set("health:u", "b:1")
        hdict:set("prober:fresh", false)
        local up = health.build(hctx, up_of("u", eps("a:1", "b:1"), policy(CHECKED)))
        assert.equal(2, up.available)
        hdict:set("prober:fresh", true)
        up = health.build(hctx, up_of("u", eps("a:1", "b:1")))   -- no health_check
        assert.equal(2, up.available)
    end)

    it("never takes out an endpoint exempt from the check (ep.checked == false)", function()
        -- decoded as switchyard.balancer.upstream gives it: "health_check": false in the
        -- endpoint's document -> ep.checked == false (k8s-model.md)
        hdict:set("health:u", "a:1 b:1")
        hdict:set("prober:fresh", true)
        local endpoints = eps("a:1", "b:1", "c:1")
        endpoints[1].checked = false
        endpoints[2].checked = true
        endpoints[3].checked = true
        local up = health.build(hctx, up_of("u", endpoints, policy(CHECKED)))
        -- a:1's (stale) down verdict is ignored, b:1's counts
        assert.equal(2, up.available)
        assert.equal(1, up.down_active)
        assert.equal("a:1 c:1 a:1 c:1", picks(up, 4))
        -- everything checked is down: the exempt endpoint still serves, no all-down
        hdict:set("health:u", "a:1 b:1 c:1")
        assert.is_true(health.refresh(hctx, up))
        assert.is_nil(up.all_down)
        assert.equal("a:1 a:1", picks(up, 2))
        -- passive health still applies to it
        hctx.passive.u = {["a:1"] = 1005}
        health.build(hctx, up)
        assert.is_true(up.all_down)
    end)

    it("leaves out passive marks until they expire, unless max_fails is 0", function()
        hctx.passive.u = {["a:1"] = 1005}
        local up = health.build(hctx, up_of("u", eps("a:1", "b:1")))
        assert.equal("b:1 b:1", picks(up, 2))
        assert.equal(1, up.down_passive)
        assert.equal(0, up.more_tries)
        clock.t = 1005
        health.build(hctx, up)
        assert.equal(2, up.available)
        clock.t = 1000
        up = health.build(hctx, up_of("u", eps("a:1", "b:1"),
                                      policy({passive = {max_fails = 0}})))
        assert.equal(2, up.available)
    end)

    it("fails open when everything is down, and says so once per interval", function()
        local logged = {}
        hctx.log = function(level, msg) logged[#logged + 1] = level .. " " .. msg end
        hdict:set("health:u", "a:1 b:1")
        hdict:set("prober:fresh", true)
        local up = health.build(hctx, up_of("u", eps("a:1", "b:1"), policy(CHECKED)))
        assert.is_true(up.all_down)
        assert.is_nil(up.unavailable)
        assert.equal(2, up.available)
        assert.equal("a:1 b:1 a:1 b:1", picks(up, 4))
        assert.equal(1, #logged)
        assert.truthy(logged[1]:find("^err upstream:u: all 2 endpoints are down"))
        assert.is_falsy(health.all_down_hit(hctx, up))   -- proxied anyway
        assert.equal(1, #logged)                          -- rate-limited
        clock.t = clock.t + health.ALL_DOWN_LOG_S
        health.all_down_hit(hctx, up)
        assert.equal(2, #logged)
    end)

    it("answers 503 when everything is down and on_all_down is 503", function()
        hdict:set("health:u", "a:1")
        hdict:set("prober:fresh", true)
        local pol = policy({health_check = CHECKED.health_check, on_all_down = "503"})
        local up = health.build(hctx, up_of("u", eps("a:1"), pol))
        assert.is_true(up.unavailable)
        assert.is_true(health.all_down_hit(hctx, up))
        assert.equal(0, up.available)
        assert.is_nil(up.balancer:pick())
        -- one back: served again
        hdict:set("health:u", "")
        assert.is_true(health.refresh(hctx, up))
        assert.is_nil(up.unavailable)
        assert.equal("a:1", up.balancer:pick().address)
    end)

    it("refresh rebuilds only when the inputs moved", function()
        local up = health.build(hctx, up_of("u", eps("a:1", "b:1"), policy(CHECKED)))
        local b = up.balancer
        assert.is_false(health.refresh(hctx, up))
        assert.equal(b, up.balancer)
        hdict:set("health:u", "a:1")
        assert.is_true(health.refresh(hctx, up))
        assert.equal(2, up.available)              -- not fresh: the verdict is ignored
        hdict:set("prober:fresh", true)
        assert.is_true(health.refresh(hctx, up))
        assert.equal(1, up.available)
    end)
end)

describe("health.retry_pick", function()
    it("never repeats an endpoint while another is untried", function()
        local up = health.build(nil, up_of("u", eps("a:1", "b:1", "c:1")))
        for _ = 1, 20 do
            local first = up.balancer:pick()
            local tried = {[first] = true}
            local second = health.retry_pick(up, tried)
            tried[second] = true
            local third = health.retry_pick(up, tried)
            assert.are_not.equal(first, second)
            assert.are_not.equal(first, third)
            assert.are_not.equal(second, third)
        end
    end)

    it("falls back to an untried endpoint out of rotation, then to a repeat", function()
        local endpoints = eps("a:1", "b:1")
        local up = health.build(nil, up_of("u", endpoints))
        up.balancer = require("switchyard.balancer.wrr").new({endpoints[1]})   -- b went out meanwhile
        assert.equal(endpoints[2], health.retry_pick(up, {[endpoints[1]] = true}))
        local all = {[endpoints[1]] = true, [endpoints[2]] = true}
        assert.equal(endpoints[1], health.retry_pick(up, all))
    end)
end)

describe("state follows health tokens", function()
    local cfg, meta, hdict, store, state, hctx

    local function upstream_doc(name, addrs, extra)
        local list = {}
        for i, a in ipairs(addrs) do list[i] = {address = a, weight = 1} end
        local t = {version = 1, name = name, endpoints = list}
        for k, v in pairs(extra or {}) do t[k] = v end
        return cjson.encode(t)
    end

    -- what the health follower does: write sy_health, then log:<serial> + serial
    local function announce(...)
        changelog.append(meta, "sy_meta", table.concat({...}, " "), 600, function() end)
    end

    before_each(function()
        clock.t = 1000
        cfg, meta, hdict = fake_dict(), fake_dict(), fake_dict()
        store = store_mod.new(cfg, meta)
        hctx = health.new_context({dict = hdict, passive = {}, now = now})
        state = state_mod.new({cfg = cfg, meta = meta, health = hctx,
                               find = function() return false end,
                               check = function() return true end})
        store:commit({
            ["upstream:u"] = upstream_doc("u", {"10.0.0.1:80", "10.0.0.2:80"},
                                          {health_check = {interval_ms = 1000}}),
            ["upstream:v"] = upstream_doc("v", {"10.0.0.3:80", "10.0.0.4:80"},
                                          {health_check = {interval_ms = 1000}}),
        }, 1)
        hdict:set("prober:fresh", true)
        state:refresh(meta:get("serial"))
    end)

    it("rebuilds only the upstream a health:<name> token names", function()
        local u, v = state.upstreams.u, state.upstreams.v
        local vb = v.balancer
        hdict:set("health:u", "10.0.0.1:80")
        announce("health:u")
        state:refresh(meta:get("serial"))
        assert.equal(u, state.upstreams.u)         -- same object (ngx.ctx may hold it)
        assert.equal(1, u.available)
        assert.equal("10.0.0.2:80", u.balancer:pick().address)
        assert.equal(vb, v.balancer)                -- untouched
        assert.equal(1, state.full_rebuilds)
    end)

    it("prober:fresh rebuilds every upstream with a check", function()
        hdict:set("health:u", "10.0.0.1:80")
        hdict:set("health:v", "10.0.0.3:80")
        hdict:set("prober:fresh", false)
        announce("health:u", "health:v", "prober:fresh")
        state:refresh(meta:get("serial"))
        assert.equal(2, state.upstreams.u.available)
        assert.equal(2, state.upstreams.v.available)
        hdict:set("prober:fresh", true)
        announce("prober:fresh")
        state:refresh(meta:get("serial"))
        assert.equal(1, state.upstreams.u.available)
        assert.equal(1, state.upstreams.v.available)
    end)

    it("a full rebuild picks up health changes of unchanged upstreams", function()
        hdict:set("health:v", "10.0.0.4:80")
        announce("health:v")
        meta:delete("log:" .. meta:get("serial"))   -- the entry is gone: full rebuild
        state:refresh(meta:get("serial"))
        assert.equal(2, state.full_rebuilds)
        assert.equal(1, state.upstreams.v.available)
    end)

    it("a changed document keeps the verdicts", function()
        hdict:set("health:u", "10.0.0.1:80")
        announce("health:u")
        store:commit({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80", "10.0.0.2:80",
                                                          "10.0.0.5:80"},
                                                    {health_check = {interval_ms = 1000}})}, 2)
        state:refresh(meta:get("serial"))
        assert.equal(3, state.upstreams.u.n)
        assert.equal(2, state.upstreams.u.available)
    end)
end)
