-- The applier: the syncer's thread that owns the command connection and brings sy_config
-- to Redis's configuration.
--
-- It waits on ctx.sema for at most 1 s (the safety net: a cheap MGET version digest every
-- second), then runs one round: the version check, with the first stream page and the
-- documents the events named riding along in the same round trip (a change usually costs
-- one round trip), then what switchyard.sync.plan decides (catch-up, full reload, keep,
-- nothing), then the heartbeat (switchyard.sync.heartbeat) and the snapshot on disk
-- (switchyard.sync.snapshot_writer). Every full_resync_s (default 300 s) it compares
-- Redis's digest with its own and reloads only when they differ.
--
-- Reconnects with backoff (100 ms doubling to 1 s, with jitter); the backoff also ends when
-- the subscriber (re)subscribes. A frozen Redis is bounded by the socket timeouts (connect
-- 1 s, send 2 s, read 5 s). Every iteration runs under pcall; the loop wakes at least every
-- second and stops on ngx.worker.exiting(), leaving the newest configuration on disk.
--
-- Yields; worker 0's syncer timer only. ctx: switchyard.sync.context.

local keys = require "switchyard.sync.keys"
local context = require "switchyard.sync.context"
local lock = require "switchyard.sync.lock"
local plan = require "switchyard.sync.plan"
local stream = require "switchyard.sync.stream"
local documents = require "switchyard.sync.documents"
local catch_up = require "switchyard.sync.catch_up"
local full_reload = require "switchyard.sync.full_reload"
local heartbeat = require "switchyard.sync.heartbeat"
local snapshot_writer = require "switchyard.sync.snapshot_writer"
local redis_reply = require "switchyard.sync.reply"
local resp = require "switchyard.sync.resp"
local backoff = require("switchyard.util.backoff").delay

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_update_time = ngx.update_time
local worker_exiting = ngx.worker.exiting
local math_min = math.min
local math_max = math.max
local tostring = tostring
local type = type
local pcall = pcall

local checked_array = redis_reply.checked_array
local parse_version = redis_reply.parse_version
local set_status = context.set_status
local now_ms = context.now_ms

local _M = {}

local EMPTY_LOG_S = 60            -- "Redis has no configuration" at most this often
local CONFLICT_LOG_S = 60         -- a configuration conflict at most this often

-- One round (see the header). Returns true, or nil, err (the connection is then closed).
local function sync_once(ctx, cmd, periodic)
    local meta = ctx.meta
    local applied = meta:get("version")
    -- the first page of a catch-up rides along: a change costs one round trip less
    local cmds = {{"MGET", keys.version, keys.digest, keys.epoch, keys.adopt}}
    local hint_keys
    if applied ~= nil then
        cmds[2] = stream.xrange(stream.first_id(applied))
        -- and the documents the events named: a change is usually one round trip
        hint_keys = ctx.hinted:take(applied)
        if hint_keys then
            cmds[3] = documents.mget_args(hint_keys, 1, #hint_keys)
        end
    end
    local replies, perr = cmd:pipeline(cmds)
    if not replies then
        return nil, "MGET version digest epoch adopt: " .. tostring(perr)
    end
    local res, err = checked_array("MGET version digest epoch adopt", replies[1])
    if not res then
        return nil, err
    end
    local version = parse_version(res[1])
    if not version then
        return nil, "version key is not an integer: " .. tostring(res[1])
    end
    local redis_digest = type(res[2]) == "string" and res[2] or nil
    local redis_epoch = type(res[3]) == "string" and res[3] or nil
    local epoch = meta:get("epoch")
    local verifying = meta:get("sync:verify") and true or false
    local action, why, verify = plan.decide({
        applied = applied,
        epoch = epoch,
        serving = meta:get("serial") ~= nil,
        verifying = verifying,
        version = version,
        version_missing = res[1] == resp.null,
        redis_epoch = redis_epoch,
        adopt = type(res[4]) == "string" and res[4] or nil,
        redis_digest = redis_digest,
        local_digest = context.local_digest(ctx),
        recorded_digest = context.recorded_digest(ctx),
        periodic = periodic,
        reloaded_for = ctx.reloaded_for,
    })
    if action == "hold" then
        -- another history than ours: keep serving, say why (status, heartbeat, log)
        set_status(ctx, "redis_empty", false)
        set_status(ctx, "conflict", why)
        ngx_update_time()
        if ngx_now() - ctx.conflict_logged >= CONFLICT_LOG_S then
            ctx.conflict_logged = ngx_now()
            ngx_log(ERR, "[switchyard] configuration conflict: ", why, "; keeping version ",
                    applied, " until an operator restores Redis's data or re-seeds it",
                    " (POST /api/v1/reseed)")
        end
        set_status(ctx, "last_sync", now_ms())
        return true
    end
    if meta:get("sync:conflict") then
        meta:delete("sync:conflict")
        ctx.conflict_logged = 0
        ngx_log(NOTICE, "[switchyard] configuration conflict resolved: Redis at version ",
                version, " of ", redis_epoch or "no epoch")
    end
    if action == "keep" then
        set_status(ctx, "redis_empty", true)
        ngx_update_time()
        if ngx_now() - ctx.empty_logged >= EMPTY_LOG_S then
            ctx.empty_logged = ngx_now()
            ngx_log(ERR, "[switchyard] Redis has no configuration (", keys.version,
                    " is missing): keeping version ", applied, " until it is written again")
        end
        set_status(ctx, "last_sync", now_ms())
        return true
    end
    set_status(ctx, "redis_empty", false)
    local ok = true
    if action == "full" then
        -- the reload must find the epoch this decision saw (else the next round decides)
        ok, err = full_reload.run(ctx, cmd, why, redis_epoch)
        ctx.reloaded_for = version .. ":" .. tostring(redis_digest)
    elseif action == "catch_up" then
        -- an unusable prefetch reply is no error: the documents are fetched again
        local prefetched = hint_keys and documents.put({}, hint_keys, 1, replies[3]) or nil
        ok, err = catch_up.run(ctx, cmd, applied, replies[2], prefetched, redis_epoch)
    elseif action == "verified" then
        ngx_log(NOTICE, "[switchyard] the configuration loaded from the snapshot matches",
                " Redis (version ", version, ", digest ", redis_digest, ")")
    elseif action == "checked" then
        set_status(ctx, "last_verified", now_ms())
    end
    if ok and verify then
        meta:delete("sync:verify")
    end
    if ok and action ~= "full" and epoch == nil and redis_epoch ~= nil then
        -- an edge that knew no epoch (a snapshot or a Redis from before epochs) now follows
        -- Redis's history: it is ours from here on
        meta:set("epoch", redis_epoch)
    end
    if ok then
        set_status(ctx, "last_sync", now_ms())
        -- metrics: does the digest Redis has agree with ours at the same version (the
        -- recorded one when documents were loaded behind sy_apply's back)? Unknown (kept)
        -- while the versions differ.
        if meta:get("version") == version and redis_digest then
            local agrees = redis_digest == (context.recorded_digest(ctx)
                                            or context.local_digest(ctx))
            meta:set("metrics:digest_agrees", agrees and 1 or 0)
        end
    end
    return ok, err
end

-- The applier thread (spawned by switchyard.sync.syncer).
function _M.loop(ctx)
    local meta, sema, conf = ctx.meta, ctx.sema, ctx.conf
    local cmd = context.new_client(ctx, 5000)
    -- the registration goes to the master; reads from a replica with --redis-read
    local reg = conf.redis_read and context.new_client(ctx, 2000, true) or cmd
    local attempt = 0
    local last_beat = 0
    local last_full = ngx_now()
    local beat_version
    local wake_now = true
    local connected_once = false
    snapshot_writer.probe(ctx)
    while not worker_exiting() do
        local ok, err = pcall(function()
            if not lock.hold(ctx) then
                -- another worker (the old worker 0 during a reload) is still syncing
                set_status(ctx, "lock_wait", now_ms())
                ngx_sleep(0.5)
                wake_now = true
                return
            end
            if not cmd:connected() then
                local cok, cerr = cmd:connect()
                if not cok then
                    set_status(ctx, "redis", "down")
                    context.note_error(ctx, cerr)
                    ngx_log(WARN, "[switchyard] Redis command connection: ", cerr)
                    -- a (re)subscribe posts the semaphore: Redis is back, try at once
                    sema:wait(backoff(attempt))
                    attempt = attempt + 1
                    return
                end
                attempt = 0
                if connected_once then
                    meta:incr("metrics:reconnects", 1, 0)
                end
                connected_once = true
                set_status(ctx, "redis", "up")
                ngx_log(NOTICE, "[switchyard] connected to Redis at ", cmd.endpoint)
                wake_now = true
            end
            if not wake_now then
                -- a version applied but not reported yet (BEAT_GAP_S) shortens the wait
                local wait = 1
                if meta:get("version") ~= beat_version then
                    ngx_update_time()
                    wait = math_min(1, math_max(0.001, last_beat + heartbeat.BEAT_GAP_S
                                                       - ngx_now()))
                end
                sema:wait(wait)
                -- a burst of messages collapses into one catch-up
                for _ = 1, 1000 do
                    if sema:count() <= 0 then
                        break
                    end
                    sema:wait(0)
                end
            end
            wake_now = false
            if worker_exiting() then
                return
            end
            ngx_update_time()
            local periodic = ngx_now() - last_full >= conf.full_resync_s
            local sok, serr = sync_once(ctx, cmd, periodic)
            if not sok then
                context.note_error(ctx, serr)
                ngx_log(ERR, "[switchyard] sync failed: ", serr)
                cmd:close()
                set_status(ctx, "redis", "down")
                sema:wait(backoff(attempt))
                attempt = attempt + 1
                return
            end
            if periodic then
                last_full = ngx_now()
            end
            local v = meta:get("version")
            ngx_update_time()
            local since = ngx_now() - last_beat
            -- changes a few ms apart (a deploy script, churn) share a heartbeat
            if since >= heartbeat.EVERY_S
                or (v ~= beat_version and since >= heartbeat.BEAT_GAP_S) then
                local hok, herr = true, nil
                if not reg:connected() then
                    hok, herr = reg:connect()
                end
                if hok then
                    hok, herr = heartbeat.beat(ctx, reg)
                end
                if hok then
                    last_beat = ngx_now()
                    beat_version = v
                else
                    context.note_error(ctx, herr)
                    ngx_log(WARN, "[switchyard] ", herr)
                    -- a READONLY reply too: the next connect asks the sentinels again
                    reg:close()
                end
            end
            snapshot_writer.write(ctx, false)
        end)
        if not ok then
            ngx_log(ERR, "[switchyard] applier error: ", err)
            cmd:close()
            ngx_sleep(backoff(attempt))
            attempt = attempt + 1
        end
    end
    cmd:close()
    reg:close()
    -- shutting down: leave the newest configuration on disk for the next start
    if lock.hold(ctx) then
        pcall(snapshot_writer.write, ctx, true)
    end
    lock.release(ctx)
end

return _M
