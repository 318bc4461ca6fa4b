-- What one round of the applier does (pure): reload everything, catch up from the stream,
-- hold, or nothing, from what the edge holds and what Redis says. The I/O is
-- switchyard.sync.applier's. Works on Lua 5.2 and LuaJIT.
--
-- s: {
--   applied          the version sy_config reflects (nil: nothing applied yet)
--   epoch            the history that version belongs to (sy_meta "epoch"; nil: none known,
--                    e.g. an edge or a snapshot from before epochs)
--   serving          the workers have a configuration (sy_meta has a serial)
--   verifying        it was loaded from the snapshot on disk and not yet checked against
--                    Redis (sy_meta sync:verify)
--   version          Redis's version (switchyard.sync.reply.parse_version: missing = 0)
--   version_missing  Redis has no version key at all
--   redis_epoch      Redis's epoch (nil: none; redis/README.md, "When Redis lost its data")
--   adopt            Redis's adopt key: the epoch an operator re-seeded (nil: none)
--   redis_digest     Redis's digest at that version (13 hex digits; nil: none)
--   local_digest     the digest of sy_config (nil: none)
--   recorded_digest  what Redis's digest must be if it holds what sy_apply recorded for
--                    the documents we hold: local_digest corrected for the documents we
--                    loaded although someone changed them behind sy_apply's back
--                    (switchyard.sync.out_of_band; nil: the same as local_digest)
--   periodic         the every-full_resync_s check is due
--   reloaded_for     "<version>:<digest>" of Redis when the last full reload ran (nil: none)
-- }
-- Returns action, why, verify:
--   "keep"      Redis lost its data (restart without persistence, FLUSHALL) while the edge
--               holds a configuration: wiping every route on every edge would turn that
--               into an outage, so the edge keeps what it has
--   "hold"      Redis holds another history than the one the edge applied: another epoch
--               that no operator re-seeded (a write into a flushed Redis, a backup of
--               another installation), or a version behind the applied one in the same
--               epoch (an older backup, a truncated AOF, a lagging replica promoted). The
--               edge keeps what it has and reports why (the conflict) until an operator
--               restores the data or re-seeds (POST /api/v1/reseed)
--   "full"      a full reload; why says why (logged)
--   "catch_up"  read the stream after `applied`
--   "verified"  the snapshot loaded at start is what Redis has: nothing to read
--   "checked"   the periodic check: the same version and digest mean the same documents
--               (redis/README.md, "The digest"), which a full reload would only read
--               again (100k routes: ~0.7 s of worker 0's CPU)
--   "nothing"   up to date
-- verify: this round checks the snapshot; when it succeeds, sync:verify goes.

local tostring = tostring

local _M = {}

local function history(epoch)
    return epoch and ("epoch " .. epoch) or "no epoch"
end

function _M.decide(s)
    local applied, version = s.applied, s.version
    if applied ~= nil and applied > 0 and s.version_missing then
        return "keep"
    end
    if applied == nil or not s.serving then
        return "full", "initial load"
    end
    local ours, theirs = s.epoch, s.redis_epoch
    if ours ~= nil and theirs ~= ours then
        if theirs ~= nil and s.adopt == theirs then
            return "full", "Redis was re-seeded: epoch " .. theirs .. " (version " .. version
                .. ") replaces " .. ours .. " (version " .. applied .. ")", s.verifying
        end
        return "hold", "Redis holds " .. history(theirs) .. " at version " .. version
            .. ", this edge applied version " .. applied .. " of " .. history(ours)
    end
    -- the same history, or an edge that knows none yet (it takes Redis's going forward)
    if version < applied then
        return "hold", "Redis is at version " .. version .. " of " .. history(theirs)
            .. ", behind the version " .. applied .. " this edge applied"
    end
    if s.verifying then
        -- loaded from the snapshot on disk: trust it only if Redis says the same
        if version == applied and s.redis_digest == (s.recorded_digest or s.local_digest) then
            return "verified", nil, true
        end
        return "full", "checking the snapshot (version " .. applied
            .. ") against Redis (version " .. version .. ")", true
    end
    if version > applied then
        return "catch_up"
    end
    local expected = s.recorded_digest or s.local_digest
    if s.redis_digest ~= nil and expected ~= nil and s.redis_digest ~= expected
            and s.reloaded_for ~= version .. ":" .. s.redis_digest then
        -- the same version, other documents: a failover lost a change this edge had
        -- applied, and the new master wrote another one at that version. Once per
        -- version and digest (a document the shm refused must not reload every second).
        return "full", "Redis's digest (" .. s.redis_digest .. ") differs from ours ("
            .. expected .. ") at version " .. version .. " (a change lost in a failover?)"
    end
    if s.periodic then
        -- a different digest (a missed change, a write the shm refused) reloads
        if s.redis_digest ~= nil and s.redis_digest == expected then
            return "checked"
        end
        return "full", "periodic check: the digest in Redis (" .. tostring(s.redis_digest)
            .. ") differs from ours (" .. tostring(expected) .. ") at version " .. version
    end
    return "nothing"
end

return _M
