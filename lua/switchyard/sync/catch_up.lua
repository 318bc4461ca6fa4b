-- The catch-up: the changes after the applied version, read from the stream
-- (switchyard.sync.stream decides whether its pages are usable), their documents fetched
-- (those the events' hints brought already are not fetched again), committed to the shm
-- and appended to the snapshot's journal. A stream that cannot be used brings a full
-- reload (switchyard.sync.full_reload) instead.
--
-- Yields; worker 0's syncer timer only. ctx: switchyard.sync.context.

local stream = require "switchyard.sync.stream"
local documents = require "switchyard.sync.documents"
local full_reload = require "switchyard.sync.full_reload"
local snapshot_writer = require "switchyard.sync.snapshot_writer"
local lock = require "switchyard.sync.lock"
local out_of_band = require "switchyard.sync.out_of_band"
local cjson = require "cjson.safe"
local checked_array = require("switchyard.sync.reply").checked_array
local context = require "switchyard.sync.context"

local ngx = ngx
local ngx_log = ngx.log
local type = type
local tonumber = tonumber
local ERR = ngx.ERR
local INFO = ngx.INFO
local unpack = table.unpack or unpack   -- luacheck: compat

local _M = {}

-- the "ts" field (ms) of a stream entry {id, {field, value, ...}}, or nil
local function change_ts(entry)
    local fields = type(entry) == "table" and entry[2]
    if type(fields) ~= "table" then
        return nil
    end
    for i = 1, #fields - 1, 2 do
        if fields[i] == "ts" then
            return tonumber(fields[i + 1])
        end
    end
    return nil
end

-- Catch up from the stream after `applied`. page1: the reply to the first XRANGE when the
-- caller pipelined it with its version check (one round trip less per change);
-- prefetched: documents fetched in that round trip too (the hinted objects), key -> raw or
-- false; epoch: Redis's epoch as the caller saw it (a full reload must find it again).
-- Returns true, or nil, err; a situation that needs a full reload does it.
function _M.run(ctx, cmd, applied, page1, prefetched, epoch)
    local walk = stream.new_walk(applied)
    local from = stream.first_id(applied)
    local done = false
    local last_entry   -- the last change's stream entry: its "ts" is when it was written
    for _ = 1, stream.MAX_PAGES do
        local reply = page1
        page1 = nil
        if reply == nil then
            reply = cmd:call(unpack(stream.xrange(from)))
        end
        local entries, err = checked_array("XRANGE", reply)
        if not entries then
            return nil, err
        end
        if #entries > 0 and type(entries[#entries]) == "table" then
            last_entry = entries[#entries]
        end
        local why = stream.page(walk, entries)
        if why then
            return full_reload.run(ctx, cmd, why, epoch)
        end
        from = stream.next_from(entries)
        if not from then
            done = true
            break
        end
    end
    local why = stream.finish(walk, done)
    if why then
        return full_reload.run(ctx, cmd, why, epoch)
    end
    local meta, order, last_version = ctx.meta, walk.order, walk.last_version
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
        docs, err = documents.fetch(cmd, missing, docs)
        if not docs then
            return nil, err
        end
    end
    if not lock.hold(ctx) then
        return nil, "lost the syncer lock"
    end
    local changed, failed = ctx.store:commit(docs, last_version)
    -- documents sy_apply wrote again are no longer out of band
    if (meta:get("sync:out_of_band") or 0) > 0 then
        local oob = out_of_band.load(meta, cjson.decode)
        if out_of_band.forget(oob, docs) then
            out_of_band.save(meta, oob, cjson.encode)
        end
    end
    ngx_log(INFO, "[switchyard] applied versions ", applied + 1, "-", last_version, ": ",
            #order, " objects, ", changed, " changed")
    if failed > 0 then
        ngx_log(ERR, "[switchyard] ", failed, " objects could not be stored")
        ctx.journal.ok = false   -- sy_config is not what the changes say
    end
    snapshot_writer.append(ctx, docs, last_version)
    -- metrics (docs/metrics.md): catch-ups, when the last change was applied, and its
    -- propagation lag (apply time minus the "ts" the Function wrote with the change)
    local now = context.now_ms()
    meta:incr("metrics:catch_ups", 1, 0)
    meta:set("metrics:applied_at", now)
    local ts = change_ts(last_entry)
    if ts then
        meta:set("metrics:lag_ms", now - ts)
    end
    return true
end

return _M
