-- GET /metrics on the metrics listener (switchyard edge --metrics-listen): the Prometheus
-- text format of the edge (docs/metrics.md, "Edge").
--
--   flush_tick()  ngx.timer.every(1) in every worker: this worker's request counters into
--                 sy_metrics (switchyard.metrics.counters)
--   serve()       content handler: flushes the answering worker first, then renders what
--                 every worker flushed (at most 1 s old for the others) with the values
--                 read now: connections, the configuration version and its age, the
--                 syncer's counters (sy_meta), the shared dicts' sizes, the endpoints in
--                 rotation (this worker's view)
--
-- Never yields.

local worker = require "switchyard.worker"
local changelog = require "switchyard.shm.changelog"
local request_metrics = require "switchyard.request.metrics"
local render = require "switchyard.metrics.render"
local sync_keys = require "switchyard.sync.keys"

local ngx = ngx
local pairs = pairs
local tonumber = tonumber

local _M = {}

-- the dicts whose capacity and free space are reported (edge.nginx.conf)
_M.DICTS = {"sy_config", "sy_meta", "sy_health", "sy_passive", "sy_conns", "sy_ratelimit",
            "sy_metrics"}

-- at most this many series from sy_metrics in one scrape (get_keys locks the dict)
_M.MAX_KEYS = 100000

local function flush()
    local dict = ngx.shared.sy_metrics
    if not dict then
        return
    end
    local dropped = request_metrics.counts:flush(dict)
    if dropped > 0 then
        ngx.shared.sy_meta:incr("metrics:dropped", dropped, 0)
    end
end
_M.flush = flush

function _M.flush_tick(premature)
    if not premature then
        flush()
    end
end

local function one(v)
    return {{value = v}}
end

-- the values read at scrape time, as render.LIVE wants them
local function live_values()
    local meta = ngx.shared.sy_meta
    local var = ngx.var
    local live = {}
    live.connections = {
        {labels = {"active"}, value = tonumber(var.connections_active) or 0},
        {labels = {"reading"}, value = tonumber(var.connections_reading) or 0},
        {labels = {"writing"}, value = tonumber(var.connections_writing) or 0},
        {labels = {"waiting"}, value = tonumber(var.connections_waiting) or 0},
    }
    live.group = {{labels = {sync_keys.group}, value = 1}}
    local version = meta:get("version")
    if version then
        live.config_version = one(version)
    end
    live.config_serial = one(meta:get("serial") or 0)
    local oob = meta:get("sync:out_of_band") or 0
    live.config_out_of_band = one(oob)
    local agrees = meta:get("metrics:digest_agrees")
    if agrees then
        live.digest_agrees = one(agrees)
    end
    local in_sync = not meta:get("sync:conflict") and oob == 0 and not meta:get("sync:verify")
        and version ~= nil
    live.config_in_sync = one(in_sync and 1 or 0)
    local applied_at = meta:get("metrics:applied_at")
    if applied_at then
        ngx.update_time()
        live.config_last_change_age = one(ngx.now() - applied_at / 1000)
    end
    local lag = meta:get("metrics:lag_ms")
    if lag then
        live.config_propagation_lag = one(lag / 1000)
    end
    live.syncer_reconnects = one(meta:get("metrics:reconnects") or 0)
    live.syncer_catch_ups = one(meta:get("metrics:catch_ups") or 0)
    live.syncer_full_reloads = one(meta:get("sync:full_reloads") or 0)
    live.snapshot_writes = one(meta:get("metrics:snapshot_writes") or 0)
    live.snapshot_errors = one(meta:get("snapshot:errors") or 0)
    live.metrics_dropped = one(meta:get("metrics:dropped") or 0)
    local cap, free = {}, {}
    for _, name in ipairs(_M.DICTS) do
        local d = ngx.shared[name]
        if d then
            cap[#cap + 1] = {labels = {name}, value = d:capacity()}
            free[#free + 1] = {labels = {name}, value = d:free_space()}
        end
    end
    live.dict_capacity, live.dict_free = cap, free
    local eps = {}
    local names = {}
    for name in pairs(worker.upstreams) do
        names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
        local up = worker.upstreams[name]
        local n = up.n or #(up.endpoints or {})
        local avail = up.all_down and 0 or (up.available or n)
        eps[#eps + 1] = {labels = {name, "in_rotation"}, value = avail}
        eps[#eps + 1] = {labels = {name, "out"}, value = n - avail}
    end
    live.endpoints = eps
    return live
end

function _M.serve()
    if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then
        ngx.status = 405
        ngx.header["Allow"] = "GET, HEAD"
        ngx.say("method not allowed")
        return
    end
    worker.refresh(changelog.serial(ngx.shared.sy_meta))
    flush()
    local dict = ngx.shared.sy_metrics
    local entries = {}
    if dict then
        local keys = dict:get_keys(_M.MAX_KEYS)
        for i = 1, #keys do
            local v = dict:get(keys[i])
            if v then
                entries[keys[i]] = v
            end
        end
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    ngx.print(render.render(entries, live_values()))
end

return _M
