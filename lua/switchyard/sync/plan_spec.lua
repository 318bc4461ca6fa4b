-- busted spec for switchyard.sync.plan: the applier's reload-or-catch-up decision.

local plan = require "switchyard.sync.plan"

local NONE = {}   -- a field set to nil

-- an edge serving version 5 with digest "d5", Redis at the same version and digest
local function state(over)
    local s = {applied = 5, serving = true, verifying = false, version = 5,
               version_missing = false, redis_digest = "d5", local_digest = "d5",
               periodic = false}
    for k, v in pairs(over or {}) do
        if v == NONE then
            s[k] = nil
        else
            s[k] = v
        end
    end
    return s
end

describe("plan.decide", function()
    it("does nothing when up to date", function()
        assert.same({"nothing"}, {plan.decide(state())})
    end)

    it("catches up when Redis is ahead", function()
        assert.same({"catch_up"}, {plan.decide(state({version = 9}))})
    end)

    it("loads everything first", function()
        assert.same({"full", "initial load"}, {plan.decide(state({applied = NONE, version = 0}))})
        assert.same({"full", "initial load"}, {plan.decide(state({serving = false}))})
    end)

    it("keeps the configuration when Redis lost its data", function()
        assert.same({"keep"}, {plan.decide(state({version = 0, version_missing = true,
                                                    redis_digest = NONE}))})
        -- nothing applied yet, or an empty configuration applied: Redis's emptiness is real
        assert.equal("full", plan.decide(state({applied = NONE, version = 0,
                                                  version_missing = true})))
        assert.equal("nothing", plan.decide(state({applied = 0, version = 0,
                                                     version_missing = true,
                                                     redis_digest = NONE})))
    end)

    it("reloads when Redis went back (a reset)", function()
        local action, why = plan.decide(state({version = 3}))
        assert.equal("full", action)
        assert.equal("version in Redis (3) is behind the applied 5: Redis was reset", why)
    end)

    it("trusts a snapshot only when Redis has the same version and digest", function()
        assert.same({"verified", nil, true}, {plan.decide(state({verifying = true}))})
        local action, why, verify = plan.decide(state({verifying = true, redis_digest = "dx"}))
        assert.equal("full", action)
        assert.equal("checking the snapshot (version 5) against Redis (version 5)", why)
        assert.is_true(verify)
        action, why, verify = plan.decide(state({verifying = true, version = 7}))
        assert.equal("full", action)
        assert.equal("checking the snapshot (version 5) against Redis (version 7)", why)
        assert.is_true(verify)
    end)

    it("the periodic check reloads only when the digests differ", function()
        assert.same({"checked"}, {plan.decide(state({periodic = true}))})
        local action, why = plan.decide(state({periodic = true, redis_digest = "dx"}))
        assert.equal("full", action)
        assert.equal("periodic check: the digest in Redis (dx) differs from ours (d5) at version 5",
                     why)
        -- Redis without a digest cannot vouch for anything
        assert.equal("full", plan.decide(state({periodic = true, redis_digest = NONE})))
        -- a change waiting comes first: the catch-up, not the check
        assert.equal("catch_up", plan.decide(state({periodic = true, version = 6})))
    end)
end)
