-- The Prometheus text format (version 0.0.4) of the edge's metrics: the counters and
-- histograms the workers flushed to sy_metrics (switchyard.metrics.counters) and the
-- gauges the scrape reads at that moment (switchyard.metrics.serve).
--
-- Pure: no ngx. Output is sorted (metric, then series), so two scrapes of the same values
-- are the same text.

local pairs = pairs
local tostring = tostring
local tbl_concat = table.concat
local tbl_sort = table.sort
local str_gsub = string.gsub
local str_find = string.find
local str_sub = string.sub
local math_huge = math.huge

local counters = require "switchyard.metrics.counters"
local SEP = counters.SEP
local BUCKETS = counters.BUCKETS

local _M = {}

local P = "switchyard_edge_"

-- Everything flushed to sy_metrics: short name (its key prefix) -> metric. Label names in
-- key order. docs/metrics.md lists the same.
_M.SPEC = {
    requests = {name = P .. "requests_total", type = "counter",
                labels = {"route", "upstream", "class", "code"},
                help = "Requests answered, by route, upstream, status class and (4xx, 5xx) code."},
    bytes_in = {name = P .. "request_bytes_total", type = "counter", labels = {"route"},
                help = "Bytes received from clients (request line, headers and body)."},
    bytes_out = {name = P .. "response_bytes_total", type = "counter", labels = {"route"},
                 help = "Bytes sent to clients (status line, headers and body)."},
    duration = {name = P .. "request_duration_seconds", type = "histogram",
                labels = {"route"},
                help = "Time from the first byte read from the client to the log phase."},
    upstream_duration = {name = P .. "upstream_response_duration_seconds",
                         type = "histogram", labels = {"route"},
                         help = "Time spent on the upstream (every attempt of a request)."},
    attempts = {name = P .. "upstream_attempts_total", type = "counter",
                labels = {"upstream", "endpoint"},
                help = "Attempts at an endpoint (first picks and retries)."},
    retries = {name = P .. "upstream_retries_total", type = "counter",
               labels = {"upstream", "endpoint"},
               help = "Retries: attempts after a failed one, by the endpoint retried on."},
    upstream_errors = {name = P .. "upstream_errors_total", type = "counter",
                       labels = {"upstream", "endpoint"},
                       help = "Failed attempts (connect error, timeout, invalid response)."},
    rejections = {name = P .. "rejections_total", type = "counter",
                  labels = {"route", "reason"},
                  help = "Requests a route's guard refused (reason: allow_deny, rate_limit)."},
    passive_marks = {name = P .. "passive_marks_total", type = "counter",
                     labels = {"upstream", "endpoint"},
                     help = "Endpoints taken out of rotation by passive health checks."},
    tls_handshakes = {name = P .. "tls_handshakes_total", type = "counter",
                      labels = {"certificate"},
                      help = "Full TLS handshakes by the certificate served (none: refused)."},
}

-- Gauges and counters read at scrape time (switchyard.metrics.serve fills them).
_M.LIVE = {
    connections = {name = P .. "connections", type = "gauge", labels = {"state"},
                   help = "Client connections (nginx $connections_*): active, reading, "
                       .. "writing, waiting."},
    group = {name = P .. "group_info", type = "gauge", labels = {"group"},
             help = "1, labelled with the group the edge serves (switchyard edge --group)."},
    config_version = {name = P .. "config_version", type = "gauge", labels = {},
                      help = "The configuration version applied (Redis's version)."},
    config_serial = {name = P .. "config_serial", type = "gauge", labels = {},
                     help = "Local commits to the shared dicts since the edge started."},
    config_in_sync = {name = P .. "config_in_sync", type = "gauge", labels = {},
                      help = "1 when the edge follows Redis (no conflict, nothing loaded "
                          .. "behind sy_apply's back, not verifying a snapshot), else 0."},
    digest_agrees = {name = P .. "digest_agrees", type = "gauge", labels = {},
                     help = "1 when Redis's digest equals the edge's at the same version "
                         .. "(checked every sync round), 0 when it differs."},
    config_out_of_band = {name = P .. "config_out_of_band_documents", type = "gauge",
                          labels = {},
                          help = "Documents loaded although changed in Redis behind "
                              .. "sy_apply's back."},
    config_last_change_age = {name = P .. "config_last_change_age_seconds", type = "gauge",
                              labels = {},
                              help = "Seconds since the syncer last applied a change."},
    config_propagation_lag = {name = P .. "config_propagation_lag_seconds", type = "gauge",
                              labels = {},
                              help = "Apply time minus the change's own timestamp (its "
                                  .. "change-stream id), for the last change applied."},
    syncer_reconnects = {name = P .. "syncer_reconnects_total", type = "counter",
                         labels = {},
                         help = "Connections the syncer (re)opened to Redis."},
    syncer_catch_ups = {name = P .. "syncer_catch_ups_total", type = "counter", labels = {},
                        help = "Catch-ups from the change stream."},
    syncer_full_reloads = {name = P .. "syncer_full_reloads_total", type = "counter",
                           labels = {}, help = "Full reloads of the configuration."},
    snapshot_writes = {name = P .. "snapshot_writes_total", type = "counter", labels = {},
                       help = "Snapshot files and journal records written."},
    snapshot_errors = {name = P .. "snapshot_errors_total", type = "counter", labels = {},
                       help = "Snapshot writes that failed."},
    dict_capacity = {name = P .. "shared_dict_capacity_bytes", type = "gauge",
                     labels = {"dict"}, help = "Size of each shared dict."},
    dict_free = {name = P .. "shared_dict_free_bytes", type = "gauge", labels = {"dict"},
                 help = "Free pages of each shared dict (lua-resty-core free_space)."},
    endpoints = {name = P .. "upstream_endpoints", type = "gauge",
                 labels = {"upstream", "state"},
                 help = "Endpoints of each upstream: in_rotation, out (the answering "
                     .. "worker's view)."},
    metrics_dropped = {name = P .. "metrics_dropped_total", type = "counter", labels = {},
                       help = "Counter increments sy_metrics refused (full)."},
}

-- a label value in the text format: backslash, double quote and newline escaped
local function esc(v)
    v = tostring(v)
    if str_find(v, "[\\\"\n]") then
        v = str_gsub(v, "[\\\"\n]", {["\\"] = "\\\\", ["\""] = "\\\"", ["\n"] = "\\n"})
    end
    return v
end
_M.escape = esc

local function num(v)
    if v == math_huge then
        return "+Inf"
    end
    if v ~= v then
        return "NaN"
    end
    if v == -math_huge then
        return "-Inf"
    end
    if v == math.floor(v) and v > -1e15 and v < 1e15 then
        return string.format("%d", v)
    end
    -- the shortest of %.15g and %.17g that reads back as v (0.005, not 0.00500...01)
    local short = string.format("%.15g", v)
    if tonumber(short) == v then
        return short
    end
    return string.format("%.17g", v)
end
_M.number = num

-- {"a", "b"}, {"x", ""} -> 'a="x"' (an empty value is left out, as Prometheus treats it)
local function label_text(names, values, extra)
    local parts = {}
    for i = 1, #names do
        local v = values[i]
        if v and v ~= "" then
            parts[#parts + 1] = names[i] .. "=\"" .. esc(v) .. "\""
        end
    end
    if extra then
        parts[#parts + 1] = extra
    end
    if #parts == 0 then
        return ""
    end
    return "{" .. tbl_concat(parts, ",") .. "}"
end

local function split(key)
    local out = {}
    local start = 1
    while true do
        local i = str_find(key, SEP, start, true)
        if not i then
            out[#out + 1] = str_sub(key, start)
            return out
        end
        out[#out + 1] = str_sub(key, start, i - 1)
        start = i + 1
    end
end
_M.split = split

local function header(out, m)
    out[#out + 1] = "# HELP " .. m.name .. " " .. m.help
    out[#out + 1] = "# TYPE " .. m.name .. " " .. m.type
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    tbl_sort(keys)
    return keys
end

-- The flushed series: entries is a map key -> value (sy_metrics). Returns lines.
local function render_flushed(out, entries)
    -- metric short name -> label key -> value (counters), or -> {buckets, sum, count}
    local by = {}
    for key, value in pairs(entries) do
        local parts = split(key)
        local short = parts[1]
        local base = short
        local part = "value"
        if str_sub(short, -4) == "_sum" then
            base, part = str_sub(short, 1, -5), "sum"
        elseif str_sub(short, -6) == "_count" then
            base, part = str_sub(short, 1, -7), "count"
        end
        local m = _M.SPEC[base]
        if m then
            local series = by[base]
            if not series then
                series = {}
                by[base] = series
            end
            local nl = #m.labels
            local labels = {}
            for i = 1, nl do
                labels[i] = parts[i + 1] or ""
            end
            local lkey = tbl_concat(labels, SEP)
            if m.type == "histogram" then
                local s = series[lkey]
                if not s then
                    s = {labels = labels, buckets = {}, sum = 0, count = 0}
                    series[lkey] = s
                end
                if part == "value" then
                    local i = tonumber(parts[nl + 2])
                    if i then
                        s.buckets[i] = (s.buckets[i] or 0) + value
                    end
                else
                    s[part] = value
                end
            else
                series[lkey] = {labels = labels, value = value}
            end
        end
    end
    for _, short in ipairs(sorted_keys(_M.SPEC)) do
        local m = _M.SPEC[short]
        local series = by[short]
        if series then
            header(out, m)
            for _, lkey in ipairs(sorted_keys(series)) do
                local s = series[lkey]
                if m.type == "histogram" then
                    local cum = 0
                    for i = 1, #BUCKETS + 1 do
                        cum = cum + (s.buckets[i] or 0)
                        local le = i <= #BUCKETS and num(BUCKETS[i]) or "+Inf"
                        out[#out + 1] = m.name .. "_bucket"
                            .. label_text(m.labels, s.labels, "le=\"" .. le .. "\"") .. " "
                            .. num(cum)
                    end
                    out[#out + 1] = m.name .. "_sum" .. label_text(m.labels, s.labels) .. " "
                        .. num(s.sum)
                    -- _count is the +Inf bucket by definition (flushed together)
                    out[#out + 1] = m.name .. "_count" .. label_text(m.labels, s.labels)
                        .. " " .. num(cum)
                else
                    out[#out + 1] = m.name .. label_text(m.labels, s.labels) .. " "
                        .. num(s.value)
                end
            end
        end
    end
end

-- live: short name (of LIVE) -> list of {labels = {values...}, value = n}; absent or
-- empty: the metric is left out.
local function render_live(out, live)
    for _, short in ipairs(sorted_keys(_M.LIVE)) do
        local m = _M.LIVE[short]
        local series = live[short]
        if series and #series > 0 then
            header(out, m)
            for _, s in ipairs(series) do
                out[#out + 1] = m.name .. label_text(m.labels, s.labels or {}) .. " "
                    .. num(s.value)
            end
        end
    end
end

-- The whole exposition: entries (flushed series, key -> value) and live values.
function _M.render(entries, live)
    local out = {}
    render_flushed(out, entries)
    render_live(out, live or {})
    out[#out + 1] = ""
    return tbl_concat(out, "\n")
end

return _M
