-- The syncer: copies the configuration from Redis into the shared dicts (layout:
-- switchyard.shm.store) and registers the edge in Redis. One per edge: started by worker 0's
-- init_worker (nginx respawns a crashed worker 0 with the same id; Debian's lua module has
-- no privileged agent: its nginx core lacks the patch). The lock (switchyard.sync.lock)
-- keeps the old worker 0 of a HUP reload and the new one from writing at the same time.
--
-- Runs in an ngx.timer (yields; never on the request path). One timer at a time: the
-- handler runs until the worker exits and re-arms itself only after returning, so runs
-- never overlap. Three light threads, three connections, one context table
-- (switchyard.sync.context) they share:
--
--   subscriber       switchyard.sync.subscriber: the pub/sub connection; wakes the applier
--                    on every change event and (re)subscribe, feeds the health follower
--   applier          switchyard.sync.applier: the command connection; one round per wake-up
--                    or second: the version check, then what switchyard.sync.plan decides
--                    (switchyard.sync.catch_up with switchyard.sync.stream, or
--                    switchyard.sync.full_reload), the heartbeat (switchyard.sync.heartbeat)
--                    and the snapshot on disk (switchyard.sync.snapshot_writer)
--   health follower  switchyard.sync.health_follower: its own connection; the prober's
--                    verdicts into sy_health
--
-- All of them reconnect with backoff (switchyard.util.backoff) and run every iteration
-- under pcall; none of this touches the request path: workers keep serving the last
-- applied configuration however long Redis is gone.

local context = require "switchyard.sync.context"
local applier = require "switchyard.sync.applier"
local subscriber = require "switchyard.sync.subscriber"
local health_follower = require "switchyard.sync.health_follower"
local stream = require "switchyard.sync.stream"
local documents = require "switchyard.sync.documents"
local hints_mod = require "switchyard.sync.hints"
local store_mod = require "switchyard.shm.store"
local log_fn = require("switchyard.util.log").to_nginx
local semaphore = require "ngx.semaphore"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local INFO = ngx.INFO
local worker_exiting = ngx.worker.exiting
local timer_at = ngx.timer.at
local thread_spawn = ngx.thread.spawn
local thread_wait = ngx.thread.wait
local thread_kill = ngx.thread.kill
local pcall = pcall

local _M = {}

local ctx   -- the context, made by start() (once per worker)

local run

local function rearm(delay)
    if worker_exiting() then
        return
    end
    local ok, err = timer_at(delay, run)
    if not ok then
        ngx_log(ERR, "[switchyard] cannot start the syncer timer: ", err)
    end
end

run = function(premature)
    if premature or ctx.running then
        return
    end
    ctx.running = true
    local sub_thread, health_thread
    local ok, err = pcall(function()
        sub_thread = thread_spawn(subscriber.loop, ctx)
        health_thread = thread_spawn(ctx.health.loop, ctx.health)
        applier.loop(ctx)
        thread_wait(sub_thread)
        sub_thread = nil
        thread_wait(health_thread)
        health_thread = nil
    end)
    if not ok then
        ngx_log(ERR, "[switchyard] syncer stopped: ", err)
        if sub_thread then
            thread_kill(sub_thread)
        end
        if health_thread then
            thread_kill(health_thread)
        end
    end
    ctx.running = false
    rearm(1)
end

-- conf: redis_host, redis_port, redis_password, edge_id, listen, pid, full_resync_s,
-- snapshot_path (nil: no snapshot)
function _M.start(conf)
    local meta = ngx.shared.sy_meta
    -- the regex engine the edge runs, once: the heartbeat reports it to the controller
    meta:set("sync:regex", require("switchyard.sync.regex_engine").detect(ngx.re.find))
    local hash, hash_name = require("switchyard.shm.sha1hash").hasher(ngx.sha1_bin)
    ngx_log(INFO, "[switchyard] document digest hashed with ", hash_name)
    local store = store_mod.new(ngx.shared.sy_config, meta, log_fn, hash)
    -- the objects the events since the last catch-up named, fetched with the stream page;
    -- at most one MGET chunk
    local hinted = hints_mod.new(stream.KINDS, documents.MGET_CHUNK)
    ctx = context.new(conf, meta, store, semaphore.new(), hinted)
    ctx.health = health_follower.new(ctx)
    rearm(0)
end

return _M
