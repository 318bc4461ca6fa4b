-- The balancer phase (balancer_by_lua of the three upstream{} blocks): the endpoint of
-- each attempt. Table lookups only; never yields (a retry adds one shared-dict incr).
--
-- First attempt: the upstream's balancer (switchyard.balancer.algorithm) picks among the
-- endpoints in rotation, and set_more_tries (up.more_tries = min(retries, in rotation - 1))
-- lets nginx retry on error, timeout, 502/503/504 (proxy_next_upstream; nginx itself never
-- retries a POST, PATCH or LOCK it has already sent). Each retry: the failed attempt counts
-- for passive health (switchyard.health.passive), and the next endpoint is one this
-- request has not tried (those in $upstream_addr; switchyard.health.rotation.retry_pick).
-- The route's timeouts (ngx.ctx.sy_timeouts) on every attempt.
--
-- A plain route (no options, an upstream location / serves) passes nothing in ngx.ctx:
-- its upstream is found again by the route's id, which the access log needs anyway: that
-- read and two table lookups cost ~900 instructions per request less than creating the
-- request's ngx.ctx table in access() and reading it here (callgrind,
-- bench/instructions.py). The id comes from the request metrics' per-worker table when
-- they are on (switchyard.request.metrics.route: no variable read), else from $sy_route.
-- Only a retry (rare) makes one. Routes with options and the
-- upstreams @sy_full serves get theirs from ngx.ctx.sy_up (a canary or split choice,
-- timeouts, sticky or least_conn state).

local vars = require "switchyard.request.vars"
local health_mod = require "switchyard.health.rotation"
local ngx_balancer = require "ngx.balancer"
local metrics = require "switchyard.request.metrics"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local WARN = ngx.WARN
local tostring = tostring
local str_gmatch = string.gmatch

local set_current_peer = ngx_balancer.set_current_peer
local set_more_tries = ngx_balancer.set_more_tries
local get_last_failure = ngx_balancer.get_last_failure
local set_timeouts = ngx_balancer.set_timeouts
local retry_pick = health_mod.retry_pick
local metrics_picked, metrics_retried, metrics_route = metrics.picked, metrics.retried,
    metrics.route

local C_UP, C_TIMEOUTS = vars.ctx.up, vars.ctx.timeouts
local V_ROUTE, V_UPSTREAM = vars.var.route, vars.var.upstream

-- proxy_connect/send/read_timeout of edge.nginx.conf: what a route without them gets
local DEFAULT_CONNECT_S, DEFAULT_SEND_S, DEFAULT_READ_S = 5, 60, 60

local _M = {}

local router, upstreams, passive   -- this worker's (switchyard.worker), set by attach()
local log_upstream = false         -- the JSON access log wants $sy_upstream

function _M.attach(w)
    router, upstreams, passive = w.router, w.upstreams, w.passive
    log_upstream = w.config.access_log_format == "json"
end

-- The endpoints a retry must not pick again, from $upstream_addr ("a, b : " while the
-- balancer runs for the next attempt): every address in it that is one of up's endpoints,
-- and the last of them (the attempt that just failed). O(attempts x endpoints), on retries
-- only.
local function tried_so_far(up, list)
    local tried, last = {}, nil
    if list then
        local eps = up.endpoints
        for addr in str_gmatch(list, "[^%s,]+") do
            for i = 1, #eps do
                local ep = eps[i]
                if ep.address == addr then
                    tried[ep] = true
                    last = ep
                    break
                end
            end
        end
    end
    return tried, last
end

-- The route's upstream if location / can serve it (not HTTPS, sticky or least_conn).
local function plain_upstream(route)
    local up = upstreams[route.upstream]
    if up and not up.full then
        return up
    end
    return nil
end

function _M.balance()
    local var = ngx_var
    -- the route's id: from the metrics' table when they are on (no variable read), else
    -- from $sy_route
    local matched = metrics_route()
    local id
    if matched then
        id = matched.id
    else
        id = var[V_ROUTE]
    end
    -- recent: also a route removed or replaced while nginx read this request's body
    local route = id and router:recent(id)
    local up, ctx
    if route and not route.plan then
        up = plain_upstream(route)
    end
    if not up then
        ctx = ngx.ctx
        -- no sy_up: routed as a plain route, given options since (while the body was
        -- read): its upstream now
        up = ctx[C_UP] or (route and plain_upstream(route))
        if not up then
            -- its upstream was removed (or made HTTPS, sticky or least_conn) while the
            -- request was on its way: the request fails (500)
            ngx_log(WARN, "[switchyard] route:", tostring(id),
                    ": its upstream is gone since the request was routed")
            return ngx_exit(ngx.ERROR)
        end
    end
    local peer
    local failure = get_last_failure()
    if failure == nil then
        -- the upstream's algorithm (switchyard.balancer.algorithm); state it keeps goes in ctx
        peer = up.balancer:pick(ctx)
        if not peer then
            ngx_log(ERR, "[switchyard] upstream:", up.name, ": no endpoint in rotation")
            return ngx_exit(ngx.ERROR)
        end
        metrics_picked(up, peer)
        if log_upstream then
            var[V_UPSTREAM] = up.name
        end
        local more = up.more_tries
        if more > 0 then
            local ok, err = set_more_tries(more)
            if not ok then
                ngx_log(ERR, "[switchyard] set_more_tries(", more, ") failed: ", err)
            end
        end
    else
        local tried, last = tried_so_far(up, var.upstream_addr)
        if failure == "failed" and last then
            passive:failed(up, last)
        end
        peer = retry_pick(up, tried, ctx or ngx.ctx)
        if peer then
            metrics_retried(up, peer, failure == "failed" and last or nil)
        end
    end
    local ok, err = set_current_peer(peer.host, peer.port)
    if not ok then
        ngx_log(ERR, "[switchyard] set_current_peer(", peer.address, ") failed: ", err)
        return ngx_exit(ngx.ERROR)
    end
    -- the route's timeouts (seconds; access() sets them), on every attempt; the edge's
    -- defaults (proxy_*_timeout in edge.nginx.conf) for those it does not set
    local t = ctx and ctx[C_TIMEOUTS]
    if t then
        ok, err = set_timeouts(t.connect or DEFAULT_CONNECT_S, t.send or DEFAULT_SEND_S,
                               t.read or DEFAULT_READ_S)
        if not ok then
            ngx_log(ERR, "[switchyard] set_timeouts failed: ", err)
        end
    end
end

return _M
