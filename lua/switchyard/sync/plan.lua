-- What one round of the applier does (pure): reload everything, catch up from the stream,
-- or nothing, from what the edge holds and what Redis says. The I/O is
-- switchyard.sync.applier's. Works on Lua 5.2 and LuaJIT.
--
-- s: {
--   applied          the version sy_config reflects (nil: nothing applied yet)
--   serving          the workers have a configuration (sy_meta has a serial)
--   verifying        it was loaded from the snapshot on disk and not yet checked against
--                    Redis (sy_meta sync:verify)
--   version          Redis's version (switchyard.sync.reply.parse_version: missing = 0)
--   version_missing  Redis has no version key at all
--   redis_digest     Redis's digest at that version (13 hex digits; nil: none)
--   local_digest     the digest of sy_config (nil: none)
--   periodic         the every-full_resync_s check is due
-- }
-- Returns action, why, verify:
--   "keep"      Redis lost its data (restart without persistence, FLUSHALL) while the edge
--               holds a configuration: wiping every route on every edge would turn that
--               into an outage, so the edge keeps what it has; the next write sets a
--               version below ours and brings a full reload
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

function _M.decide(s)
    local applied, version = s.applied, s.version
    if applied ~= nil and applied > 0 and s.version_missing then
        return "keep"
    end
    if applied == nil or not s.serving then
        return "full", "initial load"
    end
    if s.verifying then
        -- loaded from the snapshot on disk: trust it only if Redis says the same
        if version == applied and s.redis_digest == s.local_digest then
            return "verified", nil, true
        end
        return "full", "checking the snapshot (version " .. applied
            .. ") against Redis (version " .. version .. ")", true
    end
    if version < applied then
        return "full", "version in Redis (" .. version .. ") is behind the applied "
            .. applied .. ": Redis was reset"
    end
    if version > applied then
        return "catch_up"
    end
    if s.periodic then
        -- a different digest (a missed change, a write the shm refused) reloads
        if s.redis_digest ~= nil and s.redis_digest == s.local_digest then
            return "checked"
        end
        return "full", "periodic check: the digest in Redis (" .. tostring(s.redis_digest)
            .. ") differs from ours (" .. tostring(s.local_digest) .. ") at version " .. version
    end
    return "nothing"
end

return _M
