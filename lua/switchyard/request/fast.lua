-- The fast path (balancer_by_lua of switchyard_fast, the upstream block of location /):
-- a request without a body is routed here, in the balancer, instead of in an access
-- phase. A plain route's request then enters Lua once before its response instead of
-- twice (an access phase costs more to enter than the balancer: it runs in a coroutine
-- of its own; bench/instructions.py, docs/benchmarks.md).
--
-- First attempt: the same checks and lookups as switchyard.request.access's access()
-- (the serial, the host checks of switchyard.route.hostcheck, host + path), then, when
-- switchyard.request.locations.fast(route, up) says the fast path can serve it, the
-- endpoint (switchyard.request.balance.first). Anything else is declined: ngx.exit(ERROR)
-- makes nginx answer 500 before any connection, and `error_page 500 = @sy_route` of
-- location / hands the request to the full access phase, which serves it exactly as
-- before (its 404, 400, 503, the route's options, the named locations). Declining costs
-- the upstream request nginx built for nothing and this balancer run (docs/benchmarks.md).
--
-- Retries: as any plain route's (switchyard.request.balance.balance: the route from the
-- metrics' table or $sy_route, which are set here as access() sets them).
--
-- Never yields, never calls Redis.

local worker = require "switchyard.worker"
local vars = require "switchyard.request.vars"
local locations = require "switchyard.request.locations"
local hostcheck = require "switchyard.route.hostcheck"
local balance = require "switchyard.request.balance"
local metrics = require "switchyard.request.metrics"
local ngx_balancer = require "ngx.balancer"

local ngx = ngx
local ngx_var = ngx.var
local ngx_exit = ngx.exit
local ERROR = ngx.ERROR

local current = worker.current
local get_last_failure = ngx_balancer.get_last_failure
local fast_ok = locations.fast
local host_too_long, host_agrees, is_host_name = hostcheck.too_long, hostcheck.agrees,
    hostcheck.is_name
local metrics_routed = metrics.routed
local first, again = balance.first, balance.balance

local V_ROUTE = vars.var.route

local _M = {}

local router, upstreams         -- this worker's (switchyard.worker), set by attach()
local route_var_always = true   -- as switchyard.request.access's (attach())

function _M.attach(w)
    router, upstreams = w.router, w.upstreams
    route_var_always = w.config.access_log ~= false or not metrics.enabled()
end

-- The request goes to @sy_route (location /'s error_page 500), untouched.
local function decline()
    return ngx_exit(ERROR)
end

function _M.fast()
    if get_last_failure() ~= nil then
        return again()   -- a retry: the route is known (metrics' table or $sy_route)
    end
    if not current() then
        return decline()
    end
    local var = ngx_var
    -- HTTP/1.1 always has a Host header; a request without one is sent upstream with
    -- $host from @sy_full
    local http_host = var.http_host
    if not http_host then
        return decline()
    end
    local host = var.host
    if host_too_long(host) or not host_agrees(host, http_host) then
        return decline()
    end
    local route, wild = router:match(host, var.uri)
    if not route or (wild and not is_host_name(host)) then
        return decline()
    end
    local up = upstreams[route.upstream]
    if not fast_ok(route, up) then
        return decline()
    end
    metrics_routed(route)
    if route_var_always then
        var[V_ROUTE] = route.id
    end
    return first(up)
end

return _M
