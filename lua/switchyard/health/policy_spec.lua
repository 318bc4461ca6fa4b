-- busted spec for switchyard.health.policy: an upstream's health members, read as the
-- controller stores them.

local cjson = require "cjson"
local health_policy = require "switchyard.health.policy"
local upstream_mod = require "switchyard.balancer.upstream"

local function policy(fields)
    return assert(health_policy.decode(fields or {}))
end

describe("health.policy.decode", function()
    it("fills the controller's defaults", function()
        local p = policy()
        assert.same({check = false, max_fails = 3, fail_timeout = 10, retries = 2,
                     all_down_503 = false}, p)
        assert.equal(health_policy.DEFAULT, p)   -- shared by every default upstream
    end)

    it("reads what the controller stores", function()
        local p = policy(cjson.decode('{"health_check":{"type":"tcp","interval_ms":500,'
            .. '"timeout_ms":100,"rise":1,"fall":2},"passive":{"max_fails":0,'
            .. '"fail_timeout_ms":250},"retries":0,"on_all_down":"503"}'))
        assert.same({check = true, max_fails = 0, fail_timeout = 0.25, retries = 0,
                     all_down_503 = true}, p)
        -- 503 as a number (the controller accepts it) and null as "no check"
        p = policy(cjson.decode('{"on_all_down":503,"health_check":null,"passive":null}'))
        assert.is_true(p.all_down_503)
        assert.is_false(p.check)
    end)

    local bad = {
        {'{"retries":11}', "retries"}, {'{"retries":-1}', "retries"},
        {'{"retries":1.5}', "retries"}, {'{"retries":null}', "retries"},
        {'{"retries":"2"}', "retries"},
        {'{"passive":{"max_fails":101}}', "max_fails"},
        {'{"passive":{"fail_timeout_ms":99}}', "fail_timeout_ms"},
        {'{"passive":[1]}', "passive"}, {'{"health_check":[1]}', "health_check"},
        {'{"passive":3}', "passive"},
        {'{"on_all_down":"closed"}', "on_all_down"}, {'{"on_all_down":null}', "on_all_down"},
        {'{"health_check":true}', "health_check"},
        {'{"health_check":{"interval_ms":1}}', "interval_ms"},
        {'{"health_check":{"interval_ms":1000,"timeout_ms":1000}}', "timeout_ms"},
        {'{"health_check":{"type":"udp"}}', "type"},
        {'{"health_check":{"rise":0}}', "rise"},
        {'{"health_check":{"path":"healthz"}}', "path"},
    }
    for _, case in ipairs(bad) do
        it("rejects " .. case[1], function()
            local p, err = health_policy.decode(cjson.decode(case[1]))
            assert.is_nil(p)
            assert.truthy(err:find(case[2], 1, true), err)
        end)
    end

    it("makes upstream.decode skip a malformed upstream, and carries the policy", function()
        local up = assert(upstream_mod.decode('{"name":"u","endpoints":[],"retries":4}', "u"))
        assert.equal(4, up.policy.retries)
        local none, err = upstream_mod.decode('{"name":"u","endpoints":[],"retries":40}', "u")
        assert.is_nil(none)
        assert.truthy(err:find("retries", 1, true))
    end)
end)
