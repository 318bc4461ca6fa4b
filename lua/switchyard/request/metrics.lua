-- Request metrics on the request path (docs/metrics.md, "Edge"): this worker's counters
-- (switchyard.metrics.counters), fed by
--
--   routed(route)      access(): the route that matched (kept for the log phase)
--   picked(up, ep)     balance(), first attempt: the upstream and endpoint
--   retried(up, ep, failed_ep)   balance(), a retry: the new endpoint, the failed one
--   failed_attempt(up, ep)       @sy_failed: the last attempt failed
--   rejected(route, status)      the route's guard answered 403/429, or its
--                                authentication 401/403/503 (reason "auth")
--   log()              log_by_lua of every location that proxies (location /, the named
--                      ones, @sy_failed): one request, with its status, durations, bytes
--
-- The route and the upstream reach the log phase in two per-worker tables keyed by the
-- request (the address of resty.core.base.get_request(): the same in every phase of a
-- request, cleared in the log phase), not in ngx.ctx (creating it costs ~900
-- instructions) nor in $sy_route (a variable read costs ~500); the upstream's time is
-- measured from the balancer's first pick, not read from $upstream_response_time. The 1 s
-- flush timer and the scrape add the counts to sy_metrics (switchyard.metrics.serve).
--
-- Never yields. With metrics off (switchyard edge --metrics-listen off) location / has no
-- log phase and the rest does nothing but one boolean check.

local counters = require "switchyard.metrics.counters"
local vars = require "switchyard.request.vars"
local base = require "resty.core.base"
local ffi = require "ffi"

local ngx = ngx
local ngx_var = ngx.var
local ngx_now = ngx.now
local req_start_time = ngx.req.start_time
local get_request = base.get_request
local ffi_cast = ffi.cast
local INTPTR = ffi.typeof("intptr_t")
local tonumber = tonumber
local C_AUTH_REFUSED = vars.ctx.auth_refused

local _M = {}

local counts = counters.new()   -- this worker's
_M.counts = counts
local enabled = false
local routes = {}   -- request -> route (access)
local ups = {}      -- request -> upstream object (balance)
local picked_at = {}   -- request -> ngx.now() of the first attempt (balance)

-- the request as a number: get_request() is a cdata pointer (a new object in each phase,
-- and cdata keys compare by object), its address is the same in every phase
local function req_key()
    return tonumber(ffi_cast(INTPTR, get_request()))
end

-- startup: metrics on or off for this edge
function _M.enable(on)
    enabled = on and true or false
end

function _M.enabled()
    return enabled
end

function _M.routed(route)
    if enabled then
        routes[req_key()] = route
    end
end

-- The route access() matched for this request, while the metrics are on (nil when off or
-- unrouted): the balancer reads it here instead of from $sy_route (~350 instructions
-- less per request). Only with the metrics on: their log phase clears the entry, without
-- one it would stay behind.
function _M.route()
    if enabled then
        return routes[req_key()]
    end
    return nil
end

function _M.picked(up, ep)
    if enabled then
        local r = req_key()
        ups[r] = up
        picked_at[r] = ngx_now()
        counts:attempt(up.name, ep)
    end
end

function _M.retried(up, ep, failed_ep)
    if enabled then
        if failed_ep then
            counts:upstream_error(up.name, failed_ep)
        end
        counts:retry(up.name, ep)
    end
end

function _M.failed_attempt(up, ep)
    if enabled then
        counts:upstream_error(up.name, ep)
    end
end

function _M.rejected(route, status)
    if enabled then
        counts:count("rejections", route.id, status == 429 and "rate_limit"
                     or status == 403 and not ngx.ctx[C_AUTH_REFUSED] and "allow_deny"
                     or "auth")
    end
end

function _M.count(name, a, b)
    if enabled then
        counts:count(name, a, b)
    end
end

-- log_by_lua: one request
function _M.log()
    if not enabled then
        return
    end
    local r = req_key()
    local route = routes[r]
    local id = "none"
    if route then
        routes[r] = nil
        id = route.id
    end
    local now = ngx_now()
    local up = ups[r]
    local up_name = ""
    local up_dur
    if up then
        -- from the first attempt's pick to now (not $upstream_response_time: formatting
        -- and reading it cost more than the rest of this phase)
        up_dur = now - (picked_at[r] or now)
        ups[r], picked_at[r] = nil, nil
        up_name = up.name
    end
    -- two variable reads (~600 each; one map of both cost more: nginx formats each number
    -- twice in a complex value, and Lua must split the string)
    local var = ngx_var
    counts:request(id, up_name, ngx.status, now - req_start_time(), up_dur,
                   tonumber(var.request_length) or 0, tonumber(var.bytes_sent) or 0)
end

return _M
