-- The syncer: copies the configuration from Redis into the shared dicts (layout:
-- switchyard.shm.store) and registers the edge in Redis. One per edge: started by worker 0's
-- init_worker (nginx respawns a crashed worker 0 with the same id; Debian's lua module has
-- no privileged agent: its nginx core lacks the patch). A lock in sy_meta ("syncer", pid,
-- short TTL) keeps the old worker 0 of a HUP reload and the new one from writing at the
-- same time; a lock held by a dead process (kill -9) is taken over at once.
--
-- Runs in an ngx.timer (yields; never on the request path). One timer at a time: the
-- handler loops until the worker exits and re-arms itself only after returning, so runs
-- never overlap; every iteration runs under pcall; loops wake at least every second to
-- check ngx.worker.exiting().
--
-- Three connections, three light threads (the third, endpoint health, is
-- switchyard.sync.health_follower: its own connection, fed by the subscriber):
--   subscriber  SUBSCRIBE switchyard:{cfg}:events switchyard:{cfg}:health_events (one
--               command). An events message (just the new version) posts the semaphore;
--               so does every (re)subscribe, to catch up on what was missed. health_events
--               messages and every (re)subscribe go to switchyard.sync.health_follower.
--               PINGs when idle and reconnects when Redis goes silent.
--   applier     owns the command connection. Waits on the semaphore for at most 1 s (the
--               safety net: a cheap MGET version digest every second), then:
--                 no state yet / version in Redis < applied (Redis reset) ⇒ full reload
--                 state loaded from the disk snapshot, not yet checked against Redis ⇒
--                   nothing when Redis has the same version and digest, else full reload
--                 version key missing while we hold a configuration (Redis lost its data
--                   or was flushed) ⇒ keep serving what we have, say so, and wait for the
--                   next write (which sets a lower version ⇒ full reload)
--                 version in Redis > applied ⇒ catch up from the stream:
--                   XRANGE changes <applied+1>-0 + COUNT 1000 (then "(" last id, looping);
--                   first entry not <applied+1>-0 (trimmed, or the version was bumped by
--                   hand) or a gap between entries ⇒ full reload; op "resync" ⇒ full
--                   reload; else MGET the touched documents (a missing one is a delete)
--                   and commit them.
--               A full reload reads the version FIRST, then SMEMBERS of the indexes
--               (upstreams, routes, certificates), then
--               MGETs the documents in chunks of 500, and commits the difference to the
--               shm (deleting what Redis no longer has); changes made meanwhile are
--               replayed from the stream on top. Also when, every full_resync_s (default
--               300 s), Redis's digest at our version is not ours.
--               Then the heartbeat, every second and right after a new version (at
--               most every BEAT_GAP_S: a burst of changes is reported together):
--               HSET edge:<id> ... + EXPIRE + ZADD edges, pipelined in one round trip; the
--               hash carries applied_version and digest, read together (nothing else
--               writes them, and nothing yields between the commit and the read).
--               Each catch-up commit is appended to the snapshot's journal (one line, see
--               switchyard.sync.snapshot), so the disk follows every change for the price of
--               one small write. The whole snapshot is written (and the journal emptied)
--               when the journal cannot continue the file on disk (after a start, a full
--               reload, a failed write) or has grown past the snapshot's size (at least
--               JOURNAL_MIN_BYTES): at most every snapshot interval, which grows to 10x the
--               time a write took, so a big configuration never spends more than ~10% of
--               worker 0 on it.
-- Both reconnect with exponential backoff and jitter, 100 ms doubling up to 1 s: a refused
-- connect costs Redis nothing, and an edge must notice a returning Redis within ~1 s. The
-- applier's backoff also ends when the subscriber (re)subscribes. A frozen Redis (SIGSTOP:
-- the TCP connection stays up but nothing answers) is bounded by the socket timeouts:
-- connect 1 s, send 2 s, read 5 s (applier) / 1 s slices with PING and a 25 s silence
-- limit (subscriber). None of this touches the request path: workers keep serving the
-- last applied configuration however long Redis is gone.

local redis = require "switchyard.sync.redis"
local keys = require "switchyard.sync.keys"
local store_mod = require "switchyard.shm.store"
local digest_mod = require "switchyard.shm.digest"
local snapshot_mod = require "switchyard.sync.snapshot"
local bulk = require "switchyard.util.bulk"
local healthsync = require "switchyard.sync.health_follower"
local hints_mod = require "switchyard.sync.hints"
local cjson = require "cjson.safe"
local semaphore = require "ngx.semaphore"
local ffi = require "ffi"

local pairs_to_table = require("switchyard.sync.resp").pairs_to_table
local redis_reply = require "switchyard.sync.reply"
local log_fn = require("switchyard.util.log").to_nginx
local backoff = require("switchyard.util.backoff").delay

local checked = redis_reply.checked
local checked_array = redis_reply.checked_array
local first_error = redis_reply.first_error
local parse_version = redis_reply.parse_version

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local INFO = ngx.INFO
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_update_time = ngx.update_time
local worker_exiting = ngx.worker.exiting
local timer_at = ngx.timer.at
local thread_spawn = ngx.thread.spawn
local thread_wait = ngx.thread.wait
local thread_kill = ngx.thread.kill
local math_floor = math.floor
local math_min = math.min
local math_max = math.max
local math_random = math.random
local tonumber = tonumber
local tostring = tostring
local type = type
local pcall = pcall
local pairs = pairs
local ipairs = ipairs
local unpack = table.unpack or unpack
local str_match = string.match

local null = redis.null
local is_error = redis.is_error

local _M = {}

local XRANGE_COUNT = 1000
local XRANGE_MAX_PAGES = 100      -- more than 100k entries behind: a full reload is cheaper
local MGET_CHUNK = 500
local MGET_PIPELINE = 10     -- MGET chunks per round trip (fetch_docs)
local LOCK_KEY = "syncer"
local LOCK_TTL = 3                -- s; refreshed at least every second by the holder
local HEARTBEAT_S = 1
local BEAT_GAP_S = 0.05           -- a new version is reported at once, but at most this often
local SUB_PING_S = 10             -- PING an idle subscription this often
local SUB_DEAD_S = 25             -- nothing at all for this long: reconnect
local SNAPSHOT_MIN_S = 1          -- at most one snapshot write per this many seconds...
local SNAPSHOT_COST_FACTOR = 10   -- ...or per 10x the time the last write took
local EMPTY_LOG_S = 60            -- "Redis has no configuration" at most this often
local DIGEST_KEY = keys.digest   -- kept by sy_apply (redis/README.md)
local KINDS = {route = true, upstream = true, certificate = true}   -- of the change stream
-- the objects the events since the last catch-up named (switchyard.sync.hints), fetched with
-- the stream page; at most one MGET chunk
local hinted = hints_mod.new(KINDS, MGET_CHUNK)

local conf        -- set by start()
local meta        -- ngx.shared.sy_meta
local store       -- switchyard.shm.store over sy_config / sy_meta
local sema        -- posted by the subscriber, waited on by the applier
local running = false
local snap = {interval = SNAPSHOT_MIN_S, last_at = 0}   -- snapshot debounce state
local JOURNAL_MIN_BYTES = 4 * 1024 * 1024   -- journal size that always allows a rewrite
-- ok: the snapshot on disk plus the journal are the configuration as of the last journaled
-- commit, so the next commit may be appended; limit: journal bytes that trigger a rewrite
local journal = {ok = false, bytes = 0, records = 0, limit = JOURNAL_MIN_BYTES}
local empty_logged = 0

local function now_ms()
    return math_floor(ngx_now() * 1000)
end

local function set_status(key, value)
    meta:set("sync:" .. key, value)
end

local function note_error(err)
    set_status("last_error", tostring(err))
    set_status("last_error_at", now_ms())
end

ffi.cdef [[ int kill(int pid, int sig); ]]
local ESRCH = 3

-- false only when the process is certainly gone (a crashed worker 0 holding the lock)
local function pid_alive(pid)
    if ffi.C.kill(pid, 0) == 0 then
        return true
    end
    return ffi.errno() ~= ESRCH
end

-- The lock: true while this worker is (or becomes) the one syncer.
local function hold_lock()
    local pid = ngx.worker.pid()
    local owner = meta:get(LOCK_KEY)
    if owner ~= nil and owner ~= pid and not pid_alive(owner) then
        ngx_log(NOTICE, "[switchyard] syncer ", owner, " is gone, taking over")
        meta:delete(LOCK_KEY)
        owner = nil
    end
    if owner == nil then
        local ok = meta:add(LOCK_KEY, pid, LOCK_TTL)
        if ok then
            return true
        end
        owner = meta:get(LOCK_KEY)
    end
    if owner == pid then
        meta:set(LOCK_KEY, pid, LOCK_TTL)
        return true
    end
    return false
end

local function release_lock()
    if meta:get(LOCK_KEY) == ngx.worker.pid() then
        meta:delete(LOCK_KEY)
    end
end

local function new_client(read_timeout)
    return redis.new({
        host = conf.redis_host,
        port = conf.redis_port,
        password = conf.redis_password,
        connect_timeout = 1000,
        send_timeout = 2000,
        read_timeout = read_timeout,
    })
end

-- MGET of shm_keys[first..last] (as Redis keys).
local function mget_args(shm_keys, first, last)
    local args = {"MGET"}
    for j = first, last do
        local kind, id = store_mod.split_key(shm_keys[j])
        args[#args + 1] = keys.object(kind, id)
    end
    return args
end

-- Stores an MGET reply for shm_keys[first..] into out (false: the object is gone).
local function put_docs(out, shm_keys, first, reply)
    local res, err = checked_array("MGET", reply)
    if not res then
        return nil, err
    end
    for j = 1, #res do
        local raw = res[j]
        out[shm_keys[first + j - 1]] = type(raw) == "string" and raw or false
    end
    return out
end

-- MGET the given shm keys ({"route:a", ...}) into out (default: a new table); returns
-- shm key -> raw string or false. Chunks of MGET_CHUNK keys, MGET_PIPELINE chunks per round
-- trip: Redis answers the next chunks while this worker parses the first ones (a 100k-route
-- cold start: 200 chunks).
local function fetch_docs(cmd, shm_keys, out)
    out = out or {}
    local n = #shm_keys
    local i = 1
    while i <= n do
        local cmds, firsts = {}, {}
        while i <= n and #cmds < MGET_PIPELINE do
            local last = math_min(i + MGET_CHUNK - 1, n)
            cmds[#cmds + 1] = mget_args(shm_keys, i, last)
            firsts[#firsts + 1] = i
            i = last + 1
        end
        local replies, err = cmd:pipeline(cmds)
        if not replies then
            return nil, "MGET: " .. tostring(err)
        end
        for c = 1, #cmds do
            local ok
            ok, err = put_docs(out, shm_keys, firsts[c], replies[c])
            if not ok then
                return nil, err
            end
        end
    end
    return out
end

-- Lets the worker serve requests between slices of a long computation (timer context).
-- Not ngx.sleep(0): that resumes before nginx looks at the network again.
local function yield_slice()
    ngx_sleep(0.001)
end

local function full_reload_now(cmd, why)
    ngx_log(NOTICE, "[switchyard] full reload from Redis: ", why)
    ngx_update_time()
    local started = ngx_now()
    local replies, err = cmd:pipeline({
        {"GET", keys.version},            -- first: later changes are replayed on top
        {"SMEMBERS", keys.upstreams},
        {"SMEMBERS", keys.routes},
        {"SMEMBERS", keys.certificates},
    })
    if not replies then
        return nil, "full reload: " .. tostring(err)
    end
    local rerr = first_error(replies, 4)
    if rerr then
        return nil, "full reload: " .. rerr
    end
    local version = parse_version(replies[1])
    if not version then
        return nil, "full reload: version key is not an integer"
    end
    local shm_keys = {}
    for _, name in ipairs(replies[2]) do
        shm_keys[#shm_keys + 1] = store_mod.key("upstream", name)
    end
    for _, id in ipairs(replies[3]) do
        shm_keys[#shm_keys + 1] = store_mod.key("route", id)
    end
    for _, id in ipairs(replies[4]) do
        shm_keys[#shm_keys + 1] = store_mod.key("certificate", id)
    end
    local docs
    docs, err = fetch_docs(cmd, shm_keys)
    if not docs then
        return nil, "full reload: " .. err
    end
    local present = {}
    for key, raw in pairs(docs) do
        if raw then
            present[key] = raw
        end
    end
    -- the digest of what Redis has, in slices (100k documents take ~0.3 s of CPU) while
    -- this worker serves a configuration; at a cold start nothing is served yet, and the
    -- pauses (100 x at least 1 ms) would only delay the first one
    local serving = meta:get("serial") ~= nil
    local docs_digest = digest_mod.of(present, store.hash, serving and yield_slice or nil)
    if not hold_lock() then
        return nil, "lost the syncer lock"
    end
    local changed, failed = store:full(present, version, docs_digest)
    journal.ok = false   -- the journal holds changes, not this: the next write is whole
    meta:incr("sync:full_reloads", 1, 0)
    set_status("last_full_reload", now_ms())
    ngx_update_time()
    ngx_log(NOTICE, "[switchyard] full reload done: version ", version, ", ", #shm_keys,
            " objects, ", changed, " changed in ", math_floor((ngx_now() - started) * 1000),
            " ms", failed > 0 and ", FAILED WRITES: " or "", failed > 0 and failed or "")
    return true
end

-- A full reload; the edge's first one (nothing is served yet) with the collector stopped
-- (switchyard.util.bulk; the worker's first build, right after, collects).
local function full_reload(cmd, why)
    if meta:get("serial") == nil then
        return bulk.run(true, full_reload_now, cmd, why)
    end
    return full_reload_now(cmd, why)
end

-- Appends a catch-up commit (changes: shm key -> raw or false) to the snapshot's journal,
-- which then describes sy_config as of `version`; nothing when the journal cannot continue
-- the file on disk (maybe_write_snapshot rewrites it whole).
local function journal_commit(changes, version)
    if not conf.snapshot_path or not journal.ok then
        return
    end
    local d = meta:get("digest")
    if d == nil then
        journal.ok = false
        return
    end
    local hex = digest_mod.hex(d)
    local bytes, file_or_err = snapshot_mod.append(conf.snapshot_path, version, hex, changes,
                                                   cjson.encode, journal.file)
    if not bytes then
        local err = file_or_err
        journal.file = nil   -- append() closed it
        journal.ok = false
        meta:incr("snapshot:errors", 1, 0)
        meta:set("snapshot:last_error", err)
        ngx_log(ERR, "[switchyard] snapshot journal: ", err, " (the whole snapshot will be",
                " written instead)")
        return
    end
    journal.file = file_or_err
    journal.bytes = journal.bytes + bytes
    journal.records = journal.records + 1
    meta:set("snapshot:version", version)
    meta:set("snapshot:digest", hex)
    meta:set("snapshot:journal_records", journal.records)
    meta:set("snapshot:journal_bytes", journal.bytes)
end

local function xrange_from(from)
    return {"XRANGE", keys.changes, from, "+", "COUNT", XRANGE_COUNT}
end

-- Catch up from the stream after `applied`. page1: the reply to the first XRANGE when the
-- caller pipelined it with its version check (one round trip less per change);
-- prefetched: documents fetched in that round trip too (the hinted objects), key -> raw or
-- false. Returns true, or nil, err; a situation that needs a full reload does it.
local function catch_up(cmd, applied, page1, prefetched)
    local touched, order = {}, {}
    local last_version = applied
    local from = (applied + 1) .. "-0"
    local first = true
    local done = false
    local prev_v, prev_seq
    for _ = 1, XRANGE_MAX_PAGES do
        local reply = page1
        page1 = nil
        if reply == nil then
            reply = cmd:call(unpack(xrange_from(from)))
        end
        local entries, err = checked_array("XRANGE", reply)
        if not entries then
            return nil, err
        end
        for i = 1, #entries do
            local entry = entries[i]
            local id = type(entry) == "table" and entry[1]
            local v, seq = str_match(type(id) == "string" and id or "", "^(%d+)-(%d+)$")
            v = tonumber(v)
            if not v then
                return full_reload(cmd, "unreadable stream entry")
            end
            seq = tonumber(seq)
            if first then
                first = false
                if v ~= applied + 1 or seq ~= 0 then
                    return full_reload(cmd, "the stream does not continue at version "
                                       .. (applied + 1) .. " (trimmed, or bumped by hand)")
                end
            elseif not ((v == prev_v and seq == prev_seq + 1)
                        or (v == prev_v + 1 and seq == 0)) then
                -- entries are <version>-0, -1, ... for consecutive versions
                return full_reload(cmd, "gap in the stream before " .. id)
            end
            prev_v, prev_seq = v, seq
            local f = pairs_to_table(entry[2])
            if f.op == "resync" then
                return full_reload(cmd, "resync entry at version " .. v)
            end
            if not KINDS[f.kind] or type(f.id) ~= "string"
                or f.id == "" then
                return full_reload(cmd, "unknown stream entry " .. id)
            end
            local key = store_mod.key(f.kind, f.id)
            if not touched[key] then
                touched[key] = true
                order[#order + 1] = key
            end
            if v > last_version then
                last_version = v
            end
        end
        if #entries < XRANGE_COUNT then
            done = true
            break
        end
        from = "(" .. entries[#entries][1]
    end
    if not done then
        return full_reload(cmd, "more than " .. XRANGE_COUNT * XRANGE_MAX_PAGES
                           .. " changes behind")
    end
    if first then
        -- the version moved but the stream has nothing after us
        return full_reload(cmd, "the stream has nothing after version " .. applied
                           .. " (trimmed, or the version was bumped by hand)")
    end
    -- the documents the hints brought; the others (lost or big-batch events) fetched now
    local docs, missing = {}, order
    if prefetched then
        missing = {}
        for i = 1, #order do
            local key = order[i]
            local raw = prefetched[key]
            if raw == nil then
                missing[#missing + 1] = key
            else
                docs[key] = raw
            end
        end
        meta:incr(#missing == 0 and "sync:prefetch_hits" or "sync:prefetch_misses", 1, 0)
    end
    if #missing > 0 then
        local err
        docs, err = fetch_docs(cmd, missing, docs)
        if not docs then
            return nil, err
        end
    end
    if not hold_lock() then
        return nil, "lost the syncer lock"
    end
    local changed, failed = store:commit(docs, last_version)
    ngx_log(INFO, "[switchyard] applied versions ", applied + 1, "-", last_version, ": ",
            #order, " objects, ", changed, " changed")
    if failed > 0 then
        ngx_log(ERR, "[switchyard] ", failed, " objects could not be stored")
        journal.ok = false   -- sy_config is not what the changes say
    end
    journal_commit(docs, last_version)
    return true
end

local function local_digest()
    local d = meta:get("digest")
    return d and digest_mod.hex(d)
end

local function sync_once(cmd, force_full)
    local applied = meta:get("version")
    -- the first page of a catch-up rides along: a change costs one round trip less
    local cmds = {{"MGET", keys.version, DIGEST_KEY}}
    local hint_keys
    if applied ~= nil then
        cmds[2] = xrange_from((applied + 1) .. "-0")
        -- and the documents the events named: a change is usually one round trip
        hint_keys = hinted:take(applied)
        if hint_keys then
            cmds[3] = mget_args(hint_keys, 1, #hint_keys)
        end
    end
    local replies, perr = cmd:pipeline(cmds)
    if not replies then
        return nil, "MGET version digest: " .. tostring(perr)
    end
    local res, err = checked_array("MGET version digest", replies[1])
    if not res then
        return nil, err
    end
    local version = parse_version(res[1])
    if not version then
        return nil, "version key is not an integer: " .. tostring(res[1])
    end
    local redis_digest = type(res[2]) == "string" and res[2] or nil
    local ok
    if applied ~= nil and applied > 0 and res[1] == null then
        -- Redis lost its data (restart without persistence, FLUSHALL): wiping every route
        -- on every edge would turn that into an outage. Keep what we have; the next write
        -- sets a version below ours and brings a full reload.
        set_status("redis_empty", true)
        ngx_update_time()
        if ngx_now() - empty_logged >= EMPTY_LOG_S then
            empty_logged = ngx_now()
            ngx_log(ERR, "[switchyard] Redis has no configuration (", keys.version,
                    " is missing): keeping version ", applied, " until it is written again")
        end
        set_status("last_sync", now_ms())
        return true
    end
    set_status("redis_empty", false)
    if applied == nil or meta:get("serial") == nil then
        ok, err = full_reload(cmd, "initial load")
    elseif meta:get("sync:verify") then
        -- loaded from the snapshot on disk: trust it only if Redis says the same
        if version == applied and redis_digest == local_digest() then
            ngx_log(NOTICE, "[switchyard] the configuration loaded from the snapshot matches",
                    " Redis (version ", version, ", digest ", redis_digest, ")")
            ok = true
        else
            ok, err = full_reload(cmd, "checking the snapshot (version " .. applied
                                  .. ") against Redis (version " .. version .. ")")
        end
        if ok then
            meta:delete("sync:verify")
        end
    elseif version < applied then
        ok, err = full_reload(cmd, "version in Redis (" .. version .. ") is behind the applied "
                              .. applied .. ": Redis was reset")
    elseif version > applied then
        -- an unusable prefetch reply is no error: the documents are fetched again
        local prefetched = hint_keys and put_docs({}, hint_keys, 1, replies[3]) or nil
        ok, err = catch_up(cmd, applied, replies[2], prefetched)
    elseif force_full then
        -- the periodic check: the same version and the same digest mean the same documents
        -- (redis/README.md, "The digest"), which a full reload would only read again; with
        -- 100k routes that costs worker 0 ~0.7 s of CPU and stalls its requests for up to
        -- ~0.5 s. A different digest (a missed change, a write the shm refused) reloads.
        local ours = local_digest()
        if redis_digest ~= nil and redis_digest == ours then
            set_status("last_verified", now_ms())
            ok = true
        else
            ok, err = full_reload(cmd, "periodic check: the digest in Redis ("
                                  .. tostring(redis_digest) .. ") differs from ours ("
                                  .. tostring(ours) .. ") at version " .. version)
        end
    else
        ok = true
    end
    if ok then
        set_status("last_sync", now_ms())
    end
    return ok, err
end

local function heartbeat(cmd)
    local now = now_ms()
    local key = keys.edge(conf.edge_id)
    -- version and digest are read together: only this thread writes them, and it does not
    -- yield between a commit and this read
    local replies, err = cmd:pipeline({
        {"HSET", key, "id", conf.edge_id, "applied_version", meta:get("version") or 0,
         "digest", local_digest() or "", "last_seen", now, "started",
         meta:get("started") or now, "pid", conf.pid, "listen", conf.listen},
        {"EXPIRE", key, keys.edge_ttl_s},
        {"ZADD", keys.edges, now, conf.edge_id},
    })
    if not replies then
        return nil, "heartbeat: " .. tostring(err)
    end
    local rerr = first_error(replies, #replies)
    if rerr then
        return nil, "heartbeat: " .. rerr
    end
    return true
end

-- Writes the snapshot when the configuration differs from the one on disk, at most every
-- snap.interval seconds (see the header). Only the lock holder writes. force: now, without
-- yielding (the worker is shutting down).
local function maybe_write_snapshot(force)
    if not conf.snapshot_path then
        return
    end
    local version, d = meta:get("version"), meta:get("digest")
    if version == nil or d == nil then
        return
    end
    local hex = digest_mod.hex(d)
    local compact = journal.ok and journal.bytes > journal.limit
    if not compact and version == meta:get("snapshot:version")
        and hex == meta:get("snapshot:digest") then
        return
    end
    ngx_update_time()
    local started = ngx_now()
    if not force and started - snap.last_at < snap.interval then
        return
    end
    snap.last_at = started
    if journal.file then   -- write() removes the journal; the next append starts a new one
        journal.file:close()
        journal.file = nil
    end
    journal.ok = false
    -- yields between slices: requests on this worker go on; nothing writes sy_config
    -- meanwhile (this thread is the only writer), so the file is one consistent version
    local count, err_or_size = snapshot_mod.write(conf.snapshot_path, ngx.shared.sy_config, {
        version = version, digest = hex, edge_id = conf.edge_id, written_at = now_ms(),
    }, cjson.encode, ngx.worker.pid(), not force and yield_slice or nil)
    ngx_update_time()
    local took = ngx_now() - started
    snap.interval = math_max(SNAPSHOT_MIN_S, SNAPSHOT_COST_FACTOR * took)
    if not count then
        local err = err_or_size
        -- retried at the next interval; said at most once a minute (a read-only disk
        -- must not flood the log)
        meta:incr("snapshot:errors", 1, 0)
        meta:set("snapshot:last_error", err)
        snap.interval = math_max(snap.interval, 10)
        if started - (snap.logged_at or 0) >= EMPTY_LOG_S then
            snap.logged_at = started
            ngx_log(ERR, "[switchyard] snapshot: ", err, " (the edge cannot start without",
                    " Redis until this works)")
        end
        return
    end
    -- the file is sy_config as of now and write() removed the journal: appends continue it
    local size = err_or_size
    journal.ok, journal.bytes, journal.records = true, 0, 0
    journal.limit = math_max(JOURNAL_MIN_BYTES, size)
    meta:set("snapshot:version", version)
    meta:set("snapshot:digest", hex)
    meta:set("snapshot:written_at", now_ms())
    meta:set("snapshot:write_ms", math_floor(took * 1000))
    meta:set("snapshot:bytes", size)
    meta:set("snapshot:journal_records", 0)
    meta:set("snapshot:journal_bytes", 0)
    ngx_log(INFO, "[switchyard] snapshot written: version ", version, ", ", count,
            " objects in ", math_floor(took * 1000), " ms")
end

-- Applier thread: owns the command connection.
local function applier_loop()
    local cmd = new_client(5000)
    local attempt = 0
    local last_beat = 0
    local last_full = ngx_now()
    local beat_version
    local wake_now = true
    while not worker_exiting() do
        local ok, err = pcall(function()
            if not hold_lock() then
                -- another worker (the old worker 0 during a reload) is still syncing
                set_status("lock_wait", now_ms())
                ngx_sleep(0.5)
                wake_now = true
                return
            end
            if not cmd:connected() then
                local cok, cerr = cmd:connect()
                if not cok then
                    set_status("redis", "down")
                    note_error(cerr)
                    ngx_log(WARN, "[switchyard] Redis command connection: ", cerr)
                    -- a (re)subscribe posts the semaphore: Redis is back, try at once
                    sema:wait(backoff(attempt))
                    attempt = attempt + 1
                    return
                end
                attempt = 0
                set_status("redis", "up")
                ngx_log(NOTICE, "[switchyard] connected to Redis at ", conf.redis_host, ":",
                        conf.redis_port)
                wake_now = true
            end
            if not wake_now then
                -- a version applied but not reported yet (BEAT_GAP_S) shortens the wait
                local wait = 1
                if meta:get("version") ~= beat_version then
                    ngx_update_time()
                    wait = math_min(1, math_max(0.001, last_beat + BEAT_GAP_S - ngx_now()))
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
            local force_full = ngx_now() - last_full >= conf.full_resync_s
            local sok, serr = sync_once(cmd, force_full)
            if not sok then
                note_error(serr)
                ngx_log(ERR, "[switchyard] sync failed: ", serr)
                cmd:close()
                set_status("redis", "down")
                sema:wait(backoff(attempt))
                attempt = attempt + 1
                return
            end
            if force_full then
                last_full = ngx_now()
            end
            local v = meta:get("version")
            ngx_update_time()
            local since = ngx_now() - last_beat
            -- changes a few ms apart (a deploy script, churn) share a heartbeat
            if since >= HEARTBEAT_S or (v ~= beat_version and since >= BEAT_GAP_S) then
                local hok, herr = heartbeat(cmd)
                if hok then
                    last_beat = ngx_now()
                    beat_version = v
                else
                    note_error(herr)
                    ngx_log(WARN, "[switchyard] ", herr)
                    cmd:close()
                end
            end
            maybe_write_snapshot(false)
        end)
        if not ok then
            ngx_log(ERR, "[switchyard] applier error: ", err)
            cmd:close()
            ngx_sleep(backoff(attempt))
            attempt = attempt + 1
        end
    end
    cmd:close()
    -- shutting down: leave the newest configuration on disk for the next start
    if hold_lock() then
        pcall(maybe_write_snapshot, true)
    end
    release_lock()
end

-- Subscriber thread: owns the pub/sub connection.
local function subscriber_loop()
    local sub = new_client(1000)
    local attempt = 0
    local last_rx, last_ping = 0, 0
    while not worker_exiting() do
        local ok, err = pcall(function()
            if not sub:connected() then
                local cok, cerr = sub:connect()
                local res
                if cok then
                    -- one command, two channels: the prober's verdicts come on the same
                    -- connection (switchyard.sync.health_follower); Redis answers one confirmation
                    -- per channel, the second is read (and ignored) by the loop below
                    res, cerr = sub:call("SUBSCRIBE", keys.events, keys.health_events)
                    if res and (is_error(res) or type(res) ~= "table"
                                or res[1] ~= "subscribe") then
                        cerr = "unexpected SUBSCRIBE reply"
                        res = nil
                        sub:close()
                    end
                end
                if not cok or not res then
                    set_status("subscribed", false)
                    ngx_log(WARN, "[switchyard] Redis subscription: ", cerr)
                    ngx_sleep(backoff(attempt))
                    attempt = attempt + 1
                    return
                end
                attempt = 0
                set_status("subscribed", true)
                ngx_log(NOTICE, "[switchyard] subscribed to ", keys.events)
                last_rx, last_ping = ngx_now(), ngx_now()
                sema:post(1)   -- catch up on whatever happened while unsubscribed
                healthsync.on_subscribed()
                return
            end
            local msg, rerr = sub:read(true)
            ngx_update_time()
            local now = ngx_now()
            if msg then
                last_rx = now
                if type(msg) == "table" and msg[1] == "message" then
                    if msg[2] == keys.health_events then
                        healthsync.on_message(msg[3])
                    else
                        if not hinted:add(msg[3]) then
                            ngx_log(WARN, "[switchyard] ignoring a message on ", keys.events,
                                    " that does not start with a version")
                        end
                        sema:post(1)
                    end
                end
                return
            end
            if rerr ~= "timeout" then
                set_status("subscribed", false)
                ngx_log(WARN, "[switchyard] Redis subscription lost: ", rerr)
                sub:close()
                return
            end
            if now - last_rx > SUB_DEAD_S then
                set_status("subscribed", false)
                ngx_log(WARN, "[switchyard] Redis subscription silent for ", SUB_DEAD_S,
                        " s, reconnecting")
                sub:close()
            elseif now - last_ping >= SUB_PING_S then
                last_ping = now
                sub:send({{"PING"}})
            end
        end)
        if not ok then
            ngx_log(ERR, "[switchyard] subscriber error: ", err)
            sub:close()
            ngx_sleep(backoff(attempt))
            attempt = attempt + 1
        end
    end
    sub:close()
end

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
    if premature or running then
        return
    end
    running = true
    local sub_thread, health_thread
    local ok, err = pcall(function()
        sub_thread = thread_spawn(subscriber_loop)
        health_thread = thread_spawn(healthsync.loop)
        applier_loop()
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
    running = false
    rearm(1)
end

-- conf: redis_host, redis_port, redis_password, edge_id, listen, pid, full_resync_s,
-- snapshot_path (nil: no snapshot)
function _M.start(c)
    conf = c
    meta = ngx.shared.sy_meta
    local hash, hash_name = require("switchyard.shm.sha1hash").hasher(ngx.sha1_bin)
    ngx_log(INFO, "[switchyard] document digest hashed with ", hash_name)
    store = store_mod.new(ngx.shared.sy_config, meta, log_fn, hash)
    sema = semaphore.new()
    healthsync.start({
        new_client = new_client,
        -- the lock is taken and renewed by the applier; the health thread only checks it
        holds_lock = function() return meta:get(LOCK_KEY) == ngx.worker.pid() end,
    })
    rearm(0)
end

return _M
