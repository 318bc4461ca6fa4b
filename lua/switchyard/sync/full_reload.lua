-- The full reload: every document Redis has, committed as the difference to sy_config
-- (deleting what Redis no longer has).
--
-- Reads the version and the epoch FIRST, then SMEMBERS of the indexes (upstreams, routes,
-- certificates, streams), then MGETs the documents (switchyard.sync.documents); changes made
-- meanwhile are replayed from the stream on top by the next catch-up. The digest of what
-- Redis has is computed in slices while the edge serves a configuration. The edge's first
-- load (nothing served yet) runs with the Lua collector stopped (switchyard.util.bulk;
-- the workers' first build, right after, collects).
--
-- Yields; worker 0's syncer timer only. ctx: switchyard.sync.context.

local keys = require "switchyard.sync.keys"
local store_mod = require "switchyard.shm.store"
local out_of_band = require "switchyard.sync.out_of_band"
local bulk = require "switchyard.util.bulk"
local context = require "switchyard.sync.context"
local documents = require "switchyard.sync.documents"
local lock = require "switchyard.sync.lock"
local redis_reply = require "switchyard.sync.reply"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_log = ngx.log
local NOTICE = ngx.NOTICE
local WARN = ngx.WARN
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local math_floor = math.floor
local tostring = tostring
local type = type
local pairs = pairs
local ipairs = ipairs

local first_error = redis_reply.first_error
local parse_version = redis_reply.parse_version

local _M = {}

local function reload(ctx, cmd, why, epoch)
    local meta, store = ctx.meta, ctx.store
    ngx_log(NOTICE, "[switchyard] full reload from Redis: ", why)
    ngx_update_time()
    local started = ngx_now()
    local replies, err = cmd:pipeline({
        {"MGET", keys.version, keys.epoch},   -- first: later changes are replayed on top
        {"SMEMBERS", keys.upstreams},
        {"SMEMBERS", keys.routes},
        {"SMEMBERS", keys.certificates},
        {"EXISTS", keys.hashes},
        {"SMEMBERS", keys.streams},
    })
    if not replies then
        return nil, "full reload: " .. tostring(err)
    end
    local rerr = first_error(replies, 6)
    if rerr then
        return nil, "full reload: " .. rerr
    end
    local head = replies[1]
    local version = type(head) == "table" and parse_version(head[1])
    if not version then
        return nil, "full reload: version key is not an integer"
    end
    local redis_epoch = type(head[2]) == "string" and head[2] or nil
    if redis_epoch ~= epoch then
        -- re-seeded or flushed since the round decided: the next round decides again
        return nil, "full reload: the epoch changed meanwhile (" .. tostring(epoch) .. " -> "
            .. tostring(redis_epoch) .. ")"
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
    -- streams: held (for the digest), not served (`switchyard stream` serves them)
    for _, id in ipairs(replies[6]) do
        shm_keys[#shm_keys + 1] = store_mod.key("stream", id)
    end
    -- the documents and the hashes sy_apply recorded for them (none: Redis was written by
    -- a library from before them, and nothing can be out of band)
    local recorded = replies[5] == 1 and {} or nil
    local docs
    docs, err = documents.fetch(cmd, shm_keys, nil, recorded)
    if not docs then
        return nil, "full reload: " .. err
    end
    ngx_update_time()
    local fetched = ngx_now()   -- the phases go into the log line (bench/coldstart.py reads them)
    local present = {}
    for key, raw in pairs(docs) do
        if raw then
            present[key] = raw
        end
    end
    -- the digest of what Redis has, and which documents were changed behind sy_apply's
    -- back, in slices (100k documents take ~0.3 s of CPU) while this worker serves a
    -- configuration; at a cold start nothing is served yet, and the pauses (100 x at least
    -- 1 ms) would only delay the first one
    local serving = meta:get("serial") ~= nil
    local docs_digest, oob = out_of_band.scan(present, recorded, store.hash,
                                              serving and context.yield_slice or nil)
    if not lock.hold(ctx) then
        return nil, "lost the syncer lock"
    end
    ngx_update_time()
    local scanned = ngx_now()
    local changed, failed = store:full(present, version, docs_digest)
    ngx_update_time()
    local written = ngx_now()
    out_of_band.save(meta, oob, cjson.encode)
    if oob.n > 0 then
        ngx_log(WARN, "[switchyard] ", oob.n, " document(s) in Redis differ from what sy_apply",
                " wrote (changed by hand): ", out_of_band.named(oob), oob.n > out_of_band.MAX_NAMED
                and " ..." or "", "; serving them as Redis holds them (write them through the",
                " API, or adopt them with FCALL sy_digest)")
    end
    -- the history this version belongs to, written with it (nothing yields in between)
    if redis_epoch then
        meta:set("epoch", redis_epoch)
    else
        meta:delete("epoch")
    end
    ctx.journal.ok = false   -- the journal holds changes, not this: the next write is whole
    meta:incr("sync:full_reloads", 1, 0)
    context.set_status(ctx, "last_full_reload", context.now_ms())
    ctx.meta:set("metrics:applied_at", context.now_ms())
    ngx_update_time()
    ngx_log(NOTICE, "[switchyard] full reload done: version ", version, ", ", #shm_keys,
            " objects, ", changed, " changed in ", math_floor((ngx_now() - started) * 1000),
            " ms (fetch ", math_floor((fetched - started) * 1000), " ms, digest ",
            math_floor((scanned - fetched) * 1000), " ms, dict writes ",
            math_floor((written - scanned) * 1000), " ms)",
            failed > 0 and ", FAILED WRITES: " or "", failed > 0 and failed or "")
    return true
end

-- A full reload, `why` said in the log; epoch: Redis's epoch as the caller saw it (nil:
-- none), which the reload must find again. Returns true, or nil, err.
function _M.run(ctx, cmd, why, epoch)
    if ctx.meta:get("serial") == nil then
        return bulk.run(true, reload, ctx, cmd, why, epoch)
    end
    return reload(ctx, cmd, why, epoch)
end

return _M
