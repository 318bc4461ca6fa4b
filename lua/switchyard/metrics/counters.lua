-- The edge's request metrics, counted per worker in plain Lua tables and added to the
-- shared dict sy_metrics by flush() (a 1 s timer per worker, and the worker that answers a
-- scrape, just before it renders; docs/metrics.md, "Edge").
--
-- Pure*: no ngx; the dict is injected (incr(key, delta, 0)). Never yields. What a request
-- costs here: a few table lookups and increments (request(), attempt()); strings are made
-- only in flush().
--
-- Labels are configuration ids (route id, upstream name, endpoint address of the
-- configuration, certificate id) and small enums (status class and code, reason), never a
-- path, a host a client sent or a client address: the number of series is bounded by the
-- configuration (sy_metrics is an LRU dict: when it is full, the series least recently
-- flushed go first).
--
-- Shared-dict keys: "<metric>\1<label value>\1<label value>...", the label names in SPEC
-- order (switchyard.metrics.render). Histograms: "<metric>\1<labels>\1<bucket index>"
-- (1..#BUCKETS + 1, not cumulative), "<metric>_sum\1<labels>", "<metric>_count\1<labels>".

local pairs = pairs
local tostring = tostring

local _M = {}

local SEP = "\1"
_M.SEP = SEP

-- Upper bounds (seconds) of the duration histograms' buckets; one more bucket, +Inf.
local BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
_M.BUCKETS = BUCKETS
local NB = #BUCKETS

-- The bucket index of a duration: the first bucket whose bound is >= d, else NB + 1.
-- At most 11 comparisons, no allocation.
local function bucket(d)
    for i = 1, NB do
        if d <= BUCKETS[i] then
            return i
        end
    end
    return NB + 1
end
_M.bucket = bucket

-- "2xx" and the code label: the code for 4xx and 5xx only ("" otherwise)
local CLASS = {}
for c = 1, 5 do
    CLASS[c] = c .. "xx"
end
function _M.class_and_code(status)
    local c = (status - status % 100) / 100
    local class = CLASS[c] or "other"
    if c == 4 or c == 5 then
        return class, tostring(status)
    end
    return class, ""
end

local function new_hist()
    local h = {sum = 0, n = 0}
    for i = 1, NB + 1 do
        h[i] = 0
    end
    return h
end

function _M.new()
    return setmetatable({
        -- route id -> upstream name ("" without) -> status -> count
        req = {},
        -- route id -> {bytes_in, bytes_out}
        bytes = {},
        -- route id -> histogram (request duration)
        dur = {},
        -- route id -> histogram (upstream response duration)
        updur = {},
        -- endpoint object -> count; ep_up: endpoint object -> upstream name
        attempts = {}, retries = {}, errors = {}, ep_up = {},
        -- "<name>\1<labels>" -> count: everything else (rejections, passive marks,
        -- TLS handshakes), where a string per event is no concern
        other = {},
    }, {__index = _M})
end

-- One request, in the log phase. route_id: "none" when no route answered; up_name: ""
-- when no upstream was tried; dur, up_dur: seconds (up_dur nil without upstream).
function _M.request(self, route_id, up_name, status, dur, up_dur, bytes_in, bytes_out)
    local byroute = self.req[route_id]
    if not byroute then
        byroute = {}
        self.req[route_id] = byroute
    end
    local bystatus = byroute[up_name]
    if not bystatus then
        bystatus = {}
        byroute[up_name] = bystatus
    end
    bystatus[status] = (bystatus[status] or 0) + 1
    local b = self.bytes[route_id]
    if not b then
        b = {0, 0}
        self.bytes[route_id] = b
    end
    b[1] = b[1] + bytes_in
    b[2] = b[2] + bytes_out
    local h = self.dur[route_id]
    if not h then
        h = new_hist()
        self.dur[route_id] = h
    end
    local i = bucket(dur)
    h[i] = h[i] + 1
    h.sum = h.sum + dur
    h.n = h.n + 1
    if up_dur then
        h = self.updur[route_id]
        if not h then
            h = new_hist()
            self.updur[route_id] = h
        end
        i = bucket(up_dur)
        h[i] = h[i] + 1
        h.sum = h.sum + up_dur
        h.n = h.n + 1
    end
end

local function count_ep(self, t, up_name, ep)
    local c = t[ep]
    if c then
        t[ep] = c + 1
    else
        t[ep] = 1
        self.ep_up[ep] = up_name
    end
end

-- An attempt at an endpoint (the balancer's pick or a retry's); ep: {address = ...}
function _M.attempt(self, up_name, ep)
    count_ep(self, self.attempts, up_name, ep)
end

-- A retry went to ep (counted as an attempt too)
function _M.retry(self, up_name, ep)
    count_ep(self, self.attempts, up_name, ep)
    count_ep(self, self.retries, up_name, ep)
end

-- An attempt at ep failed (connect error, timeout, invalid response; nginx's judgement)
function _M.upstream_error(self, up_name, ep)
    count_ep(self, self.errors, up_name, ep)
end

-- Any other counter: name (an "other" metric of switchyard.metrics.render) and its label
-- values in SPEC order.
function _M.count(self, name, a, b)
    local key = b and (name .. SEP .. a .. SEP .. b) or (name .. SEP .. a)
    local o = self.other
    o[key] = (o[key] or 0) + 1
end

local function add(dict, key, delta, failed)
    if delta ~= 0 then
        local ok = dict:incr(key, delta, 0)
        if not ok then
            failed[1] = failed[1] + 1
        end
    end
end

local function flush_hist(dict, name, labels, h, failed)
    for i = 1, NB + 1 do
        add(dict, name .. SEP .. labels .. SEP .. i, h[i], failed)
    end
    add(dict, name .. "_sum" .. SEP .. labels, h.sum, failed)
    add(dict, name .. "_count" .. SEP .. labels, h.n, failed)
end

local function flush_eps(self, dict, name, t, failed)
    local ep_up = self.ep_up
    for ep, c in pairs(t) do
        add(dict, name .. SEP .. ep_up[ep] .. SEP .. ep.address, c, failed)
    end
end

-- Adds what this worker counted since the last flush to dict and starts again from zero.
-- Returns the number of increments the dict refused (it was full; never more than that).
function _M.flush(self, dict)
    local failed = {0}
    for route_id, byroute in pairs(self.req) do
        for up_name, bystatus in pairs(byroute) do
            for status, c in pairs(bystatus) do
                local class, code = _M.class_and_code(status)
                add(dict, "requests" .. SEP .. route_id .. SEP .. up_name .. SEP .. class
                    .. SEP .. code, c, failed)
            end
        end
    end
    for route_id, b in pairs(self.bytes) do
        add(dict, "bytes_in" .. SEP .. route_id, b[1], failed)
        add(dict, "bytes_out" .. SEP .. route_id, b[2], failed)
    end
    for route_id, h in pairs(self.dur) do
        flush_hist(dict, "duration", route_id, h, failed)
    end
    for route_id, h in pairs(self.updur) do
        flush_hist(dict, "upstream_duration", route_id, h, failed)
    end
    flush_eps(self, dict, "attempts", self.attempts, failed)
    flush_eps(self, dict, "retries", self.retries, failed)
    flush_eps(self, dict, "upstream_errors", self.errors, failed)
    for key, c in pairs(self.other) do
        add(dict, key, c, failed)
    end
    self.req, self.bytes, self.dur, self.updur = {}, {}, {}, {}
    self.attempts, self.retries, self.errors, self.ep_up = {}, {}, {}, {}
    self.other = {}
    return failed[1]
end

return _M
