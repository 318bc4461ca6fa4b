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

    it("holds when Redis went back in its history (an older backup, a lost AOF tail)", function()
        local action, why = plan.decide(state({version = 3}))
        assert.equal("hold", action)
        assert.equal("Redis is at version 3 of no epoch, behind the version 5 this edge applied",
                     why)
        action, why = plan.decide(state({version = 3, epoch = "e1", redis_epoch = "e1"}))
        assert.equal("hold", action)
        assert.equal("Redis is at version 3 of epoch e1, behind the version 5 this edge applied",
                     why)
        -- a snapshot being checked is held too, not replaced by the older state
        assert.equal("hold", plan.decide(state({version = 3, verifying = true})))
    end)

    it("holds when Redis holds another history nobody re-seeded", function()
        -- a write into a flushed Redis started epoch e2 at version 1
        local action, why = plan.decide(state({epoch = "e1", redis_epoch = "e2", version = 1}))
        assert.equal("hold", action)
        assert.equal("Redis holds epoch e2 at version 1, this edge applied version 5 of epoch e1",
                     why)
        -- also when it is ahead, and when Redis has versions but no epoch at all
        assert.equal("hold", plan.decide(state({epoch = "e1", redis_epoch = "e2", version = 9})))
        action, why = plan.decide(state({epoch = "e1", version = 9}))
        assert.equal("hold", action)
        assert.equal("Redis holds no epoch at version 9, this edge applied version 5 of epoch e1",
                     why)
        -- an adopt key naming another epoch does not help
        assert.equal("hold", plan.decide(state({epoch = "e1", redis_epoch = "e2",
                                                  adopt = "e3"})))
    end)

    it("follows a re-seeded epoch whatever its version", function()
        local action, why, verify = plan.decide(state({epoch = "e1", redis_epoch = "e2",
                                                        adopt = "e2", version = 2}))
        assert.equal("full", action)
        assert.equal("Redis was re-seeded: epoch e2 (version 2) replaces e1 (version 5)", why)
        assert.is_false(verify)
        -- a snapshot from the old epoch is checked (and replaced) the same way
        action, why, verify = plan.decide(state({epoch = "e1", redis_epoch = "e2", adopt = "e2",
                                                 verifying = true}))
        assert.equal("full", action)
        assert.equal("Redis was re-seeded: epoch e2 (version 5) replaces e1 (version 5)", why)
        assert.is_true(verify)
    end)

    it("an edge that knows no epoch takes Redis's going forward", function()
        assert.equal("catch_up", plan.decide(state({redis_epoch = "e1", version = 7})))
        assert.equal("nothing", plan.decide(state({redis_epoch = "e1"})))
        assert.equal("hold", plan.decide(state({redis_epoch = "e1", version = 4})))
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
        -- (a mismatch already reloaded for once: only the periodic check reloads again)
        local action, why = plan.decide(state({periodic = true, redis_digest = "dx",
                                               reloaded_for = "5:dx"}))
        assert.equal("full", action)
        assert.equal("periodic check: the digest in Redis (dx) differs from ours (d5) at version 5",
                     why)
        -- Redis without a digest cannot vouch for anything
        assert.equal("full", plan.decide(state({periodic = true, redis_digest = NONE})))
        -- a change waiting comes first: the catch-up, not the check
        assert.equal("catch_up", plan.decide(state({periodic = true, version = 6})))
    end)

    it("compares Redis's digest with what sy_apply recorded when documents were edited by hand",
       function()
        -- the edge holds a hand-edited document: its own digest differs from Redis's, but
        -- corrected for that document it is Redis's: no reload every full_resync_s
        local s = {periodic = true, local_digest = "dh", recorded_digest = "d5"}
        assert.same({"checked"}, {plan.decide(state(s))})
        s.recorded_digest = "dx"
        assert.equal("full", plan.decide(state(s)))
        -- the same for a snapshot that holds such a document
        assert.same({"verified", nil, true},
                    {plan.decide(state({verifying = true, local_digest = "dh",
                                        recorded_digest = "d5"}))})
    end)

    it("reloads once when Redis holds other documents at the same version (a failover)",
       function()
        -- the old master published version 5 to this edge and died before a replica had
        -- it; the new master wrote another version 5
        local action, why = plan.decide(state({redis_digest = "dn"}))
        assert.equal("full", action)
        assert.equal("Redis's digest (dn) differs from ours (d5) at version 5"
                     .. " (a change lost in a failover?)", why)
        -- after that reload, a digest that still differs (a document the shm refused)
        -- does not reload every second
        assert.same({"nothing"}, {plan.decide(state({redis_digest = "dn",
                                                     reloaded_for = "5:dn"}))})
        -- a new version or digest is a new mismatch
        assert.equal("full", plan.decide(state({redis_digest = "dm", reloaded_for = "5:dn"})))
        -- no digest in Redis (an old Function library): nothing to compare
        assert.same({"nothing"}, {plan.decide(state({redis_digest = NONE}))})
    end)
end)
