-- Keeping the snapshot on disk (switchyard.sync.snapshot: the file and its journal) in step
-- with sy_config, for the syncer's applier.
--
-- Each catch-up commit is appended to the journal (one line: append), so the disk follows
-- every change for the price of one small write. The whole snapshot is written (and the
-- journal emptied) when the journal cannot continue the file on disk (after a start, a
-- full reload, a failed write) or has grown past the snapshot's size (at least
-- JOURNAL_MIN_BYTES): at most every snapshot interval, which grows to 10x the time a write
-- took, so a big configuration never spends more than ~10% of worker 0 on it (write).
-- Only the lock holder writes. Failures are counted (snapshot:errors) and said at most
-- once a minute.
--
-- Worker 0's syncer timer; write() yields between slices. ctx: switchyard.sync.context
-- (ctx.snap, ctx.journal).

local snapshot_mod = require "switchyard.sync.snapshot"
local digest_mod = require "switchyard.shm.digest"
local context = require "switchyard.sync.context"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local CRIT = ngx.CRIT
local INFO = ngx.INFO
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local math_floor = math.floor
local math_max = math.max

local _M = {}

local SNAPSHOT_COST_FACTOR = 10   -- at most one write per 10x the time the last one took
local ERROR_LOG_S = 60            -- a failing write is said at most this often

-- Once at start (L14 of issue 16): can this worker write where the snapshot goes? A
-- directory the workers cannot enter (a --prefix under a 0700 directory of root) loses
-- the boot-without-Redis guarantee silently otherwise. Logged at crit, status
-- snapshot.writable (switchyard edge checks the same before nginx starts).
function _M.probe(ctx)
    local conf, meta = ctx.conf, ctx.meta
    if not conf.snapshot_path then
        return
    end
    local ok, err = snapshot_mod.probe(conf.snapshot_path, ngx.worker.pid())
    meta:set("snapshot:writable", ok and true or false)
    if not ok then
        meta:set("snapshot:last_error", err)
        ngx_log(CRIT, "[switchyard] snapshot: the worker cannot write beside ", conf.snapshot_path,
                " (", err, "): this edge cannot start without Redis until its directory and every",
                " parent let the nginx workers in")
    end
end

-- Appends a catch-up commit (changes: shm key -> raw or false) to the snapshot's journal,
-- which then describes sy_config as of `version`; nothing when the journal cannot continue
-- the file on disk (write() rewrites it whole).
function _M.append(ctx, changes, version)
    local conf, meta, journal = ctx.conf, ctx.meta, ctx.journal
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
    meta:incr("metrics:snapshot_writes", 1, 0)
    meta:set("snapshot:version", version)
    meta:set("snapshot:digest", hex)
    meta:set("snapshot:journal_records", journal.records)
    meta:set("snapshot:journal_bytes", journal.bytes)
end

-- Writes the snapshot when the configuration differs from the one on disk, at most every
-- ctx.snap.interval seconds (see the header). force: now, without yielding (the worker is
-- shutting down).
function _M.write(ctx, force)
    local conf, meta, snap, journal = ctx.conf, ctx.meta, ctx.snap, ctx.journal
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
        version = version, digest = hex, epoch = meta:get("epoch"), edge_id = conf.edge_id,
        written_at = context.now_ms(),
    }, cjson.encode, ngx.worker.pid(), not force and context.yield_slice or nil)
    ngx_update_time()
    local took = ngx_now() - started
    snap.interval = math_max(context.SNAPSHOT_MIN_S, SNAPSHOT_COST_FACTOR * took)
    if not count then
        local err = err_or_size
        -- retried at the next interval; said at most once a minute (a read-only disk
        -- must not flood the log)
        meta:incr("snapshot:errors", 1, 0)
        meta:set("snapshot:last_error", err)
        snap.interval = math_max(snap.interval, 10)
        if started - (snap.logged_at or 0) >= ERROR_LOG_S then
            snap.logged_at = started
            ngx_log(ERR, "[switchyard] snapshot: ", err, " (the edge cannot start without",
                    " Redis until this works)")
        end
        return
    end
    -- the file is sy_config as of now and write() removed the journal: appends continue it
    local size = err_or_size
    journal.ok, journal.bytes, journal.records = true, 0, 0
    journal.limit = math_max(context.JOURNAL_MIN_BYTES, size)
    meta:set("snapshot:version", version)
    meta:set("snapshot:digest", hex)
    meta:set("snapshot:written_at", context.now_ms())
    meta:set("snapshot:write_ms", math_floor(took * 1000))
    meta:set("snapshot:bytes", size)
    meta:set("snapshot:journal_records", 0)
    meta:set("snapshot:journal_bytes", 0)
    meta:incr("metrics:snapshot_writes", 1, 0)
    ngx_log(INFO, "[switchyard] snapshot written: version ", version, ", ", count,
            " objects in ", math_floor(took * 1000), " ms")
end

return _M
