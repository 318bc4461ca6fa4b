-- The syncer's one context table: everything its pieces share, made once by
-- switchyard.sync.syncer.start() and handed to each of them (no piece keeps state of its
-- own at module level).
--
--   conf          redis_host, redis_port, redis_user, redis_password, redis_sentinels
--                 ({host, port} list or nil), redis_master, redis_sentinel_password,
--                 redis_read ({host, port} list or nil), redis_tls (nil, or
--                 {server_name, cert, key}: switchyard.startup), edge_id, listen, pid,
--                 full_resync_s, snapshot_path (nil: no snapshot)
--   meta          ngx.shared.sy_meta (the syncer's status keys are "sync:<name>")
--   store         switchyard.shm.store over sy_config and sy_meta, with the digest's hash
--   sema          the applier's wake-up: posted by the subscriber on every change event
--                 and (re)subscribe
--   hinted        switchyard.sync.hints: the objects the events named since the last
--                 catch-up, fetched with the next stream page
--   snap          snapshot writes: interval (s), last_at, logged_at (sync/snapshot_writer)
--   journal       the snapshot's journal: ok (appends may continue the file on disk),
--                 bytes, records, limit (bytes that bring a rewrite), file (open handle)
--   empty_logged  when "Redis has no configuration" was last logged
--   conflict_logged  when a configuration conflict (switchyard.sync.plan, "hold") was
--                 last logged
--   health        the health follower (switchyard.sync.health_follower)
--   running       a run of the syncer timer is in progress
--
-- Runs in worker 0's syncer timer; the helpers below never yield.

local redis = require "switchyard.sync.redis"
local digest_mod = require "switchyard.shm.digest"
local out_of_band = require "switchyard.sync.out_of_band"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_now = ngx.now
local math_floor = math.floor
local tostring = tostring

local _M = {}

_M.JOURNAL_MIN_BYTES = 4 * 1024 * 1024   -- journal size that always allows a rewrite
_M.SNAPSHOT_MIN_S = 1                    -- at most one snapshot write per this many s

-- conf: see above; store: the shm store; sema: an ngx.semaphore.
function _M.new(conf, meta, store, sema, hinted)
    return {
        conf = conf,
        meta = meta,
        store = store,
        sema = sema,
        hinted = hinted,
        snap = {interval = _M.SNAPSHOT_MIN_S, last_at = 0},
        journal = {ok = false, bytes = 0, records = 0, limit = _M.JOURNAL_MIN_BYTES},
        empty_logged = 0,
        conflict_logged = 0,
        health = nil,
        running = false,
    }
end

function _M.now_ms()
    return math_floor(ngx_now() * 1000)
end

-- A syncer status key (sync:<key> in sy_meta, shown by /_switchyard/status).
function _M.set_status(ctx, key, value)
    ctx.meta:set("sync:" .. key, value)
end

function _M.note_error(ctx, err)
    _M.set_status(ctx, "last_error", tostring(err))
    _M.set_status(ctx, "last_error_at", _M.now_ms())
end

-- A Redis client (one connection) with the syncer's timeouts. writes: it writes (the
-- edge's registration), so it goes to the master; else it reads from conf.redis_read
-- (--redis-read) when given, falling back to the master.
function _M.new_client(ctx, read_timeout, writes)
    local conf = ctx.conf
    return redis.new({
        host = conf.redis_host,
        port = conf.redis_port,
        username = conf.redis_user,
        password = conf.redis_password,
        sentinels = conf.redis_sentinels,
        master_name = conf.redis_master,
        sentinel_password = conf.redis_sentinel_password,
        read = not writes and conf.redis_read or nil,
        tls = conf.redis_tls,
        connect_timeout = 1000,
        send_timeout = 2000,
        read_timeout = read_timeout,
    })
end

-- The digest of sy_config as 13 hex digits (nil before the first commit).
function _M.local_digest(ctx)
    local d = ctx.meta:get("digest")
    return d and digest_mod.hex(d)
end

-- The digest Redis must have if it holds what sy_apply recorded for the documents in
-- sy_config (13 hex digits): the local one corrected for the documents loaded although
-- they were changed behind sy_apply's back (switchyard.sync.out_of_band); nil when there
-- are none (then it is the local digest) or too many to tell.
function _M.recorded_digest(ctx)
    local meta = ctx.meta
    local d = meta:get("digest")
    if d == nil or (meta:get("sync:out_of_band") or 0) == 0 then
        return nil
    end
    local r = out_of_band.recorded_digest(out_of_band.load(meta, cjson.decode), d)
    return r and digest_mod.hex(r)
end

-- Lets the worker serve requests between slices of a long computation (timer context).
-- Not ngx.sleep(0): that resumes before nginx looks at the network again.
function _M.yield_slice()
    ngx.sleep(0.001)
end

return _M
