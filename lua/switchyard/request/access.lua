-- The access phase: which route serves the request, its options, its upstream, and which
-- location proxies it (switchyard.request.locations). Never yields, never calls Redis.
--
--   access()        location /: one shm read (sy_meta "serial"; when it moved the worker
--                   applies the logged changes first, switchyard.worker), then host + path
--                   (switchyard.route.router). No route: 404. A route that needs
--                   @sy_full (route.full) or a request without a Host header goes on at
--                   once (ngx.exec); any other is served here (FIRST pass).
--   access_named()  @sy_full and @sy_https_verified: the route again, by $sy_route; its
--                   options run here (NAMED pass), unless they ran in location / before
--                   the hop ($sy_done: AGAIN pass).
--
-- serve(route, var, pass) does the rest, in the order of docs/traffic-policies.md:
-- require_sni_match (421 over TLS when the SNI name is not the host), the guard
-- (deny/allow 403, rate_limit 429), cors (preflights answered: 204, or 403), https_redirect
-- (308) and HSTS ($sy_hsts), the other
-- options (redirect, max_body_bytes 413, canary, split, rewrite, request headers,
-- timeouts; switchyard.route.exec), the upstream (503 without endpoints, or all down with
-- on_all_down "503"), then: served here, or on to the named location the upstream needs
-- (HTTPS, sticky, least_conn), or for HTTPS the pool and SNI variables. A route without
-- options costs three nil checks; a plain route's request creates no ngx.ctx (the
-- balancer finds its upstream by $sy_route).
--
-- What the request carries to later phases: switchyard.request.vars.

local worker = require "switchyard.worker"
local vars = require "switchyard.request.vars"
local locations = require "switchyard.request.locations"
local reply = require "switchyard.request.reply"
local route_exec = require "switchyard.route.exec"
local hostcheck = require "switchyard.route.hostcheck"
local health_mod = require "switchyard.health.rotation"
local tls_fields = require "switchyard.tls.fields"
local tls_pools_mod = require "switchyard.tls.pools"
local metrics = require "switchyard.request.metrics"
local grpc_access = require "switchyard.grpc.access"   -- gRPC upstreams (issue 22 item 5)

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_exec = ngx.exec
local req_http_version = ngx.req.http_version
local str_lower = string.lower
local WARN = ngx.WARN

local current = worker.current
local respond = reply.send
local exec_guard = route_exec.guard
local exec_apply = route_exec.apply
local exec_cors = route_exec.cors
local all_down_hit = health_mod.all_down_hit
local named_for = locations.named_for
local metrics_routed, metrics_rejected = metrics.routed, metrics.rejected
local host_too_long, host_agrees, is_host_name = hostcheck.too_long, hostcheck.agrees,
    hostcheck.is_name
local FULL, VERIFIED = locations.FULL, locations.VERIFIED

local C_UP, C_RESP, C_GZIP = vars.ctx.up, vars.ctx.resp, vars.ctx.gzip
local V_ROUTE, V_DONE, V_HSTS = vars.var.route, vars.var.done, vars.var.hsts
local V_SCHEME, V_POOL, V_TLS_NAME = vars.var.scheme, vars.var.pool, vars.var.tls_name
local V_TLS_VERIFIED = vars.var.tls_verified

local _M = {}

-- Which pass of the request serve() runs (access runs again after ngx.exec):
local FIRST = 1   -- location /: the options run here; may go on to a named location
local NAMED = 2   -- a named location entered at once (route.full, no Host): options run here
local AGAIN = 3   -- a named location after the options ran in location / ($sy_done)
_M.FIRST, _M.NAMED, _M.AGAIN = FIRST, NAMED, AGAIN

local router, upstreams, hctx   -- this worker's (switchyard.worker), set by attach()
local route_var_always = true   -- set $sy_route for every routed request (attach())
local https_suffix = ""         -- ":<port>" of https_redirect Locations ("" for 443)
local warned = {}               -- route id -> time of the last "missing upstream" log
local tls_pools                 -- up -> upstream{} block for HTTPS upstreams (plan_pools)
local tls_pools_serial          -- the serial tls_pools was planned at

-- After switchyard.worker.setup(): the objects every request reads.
function _M.attach(w)
    router, upstreams, hctx = w.router, w.upstreams, w.hctx
    local https_port = w.config.https_port
    https_suffix = https_port == 443 and "" or ":" .. https_port
    -- $sy_route is written for every routed request only when the access log reads it or
    -- the metrics are off; otherwise only before ngx.exec (the named locations read it), and
    -- the balancer and @sy_failed take the route from the metrics' table (~300
    -- instructions less per request)
    route_var_always = w.config.access_log ~= false or not metrics.enabled()
end

-- Serves `route` (matched in location / or found again by id in a named location) in the
-- given pass (FIRST, NAMED or AGAIN). AGAIN: the guard, body check, rewrite and request
-- headers already ran ($uri may have been rewritten since), and the canary or split
-- choice comes from $sy_pick.
local function serve(route, var, pass)
    local id = route.id
    if route.require_sni_match and pass ~= AGAIN and var.https == "on" then
        -- routing is by Host whatever the TLS SNI name (domain fronting, as with nginx);
        -- this route wants both to name it: 421, so a browser that coalesced connections
        -- retries on a connection of its own
        local sni = var.ssl_server_name
        if not sni or str_lower(sni) ~= var.host then
            return respond(421, id, reply.MISDIRECTED)
        end
    end
    -- route options (switchyard.route.exec), in the order of docs/traffic-policies.md;
    -- a route without any costs the two `plan` checks
    local plan = route.plan
    if plan then
        local resp = plan.resp
        if resp then
            ngx.ctx[C_RESP] = resp   -- response_headers, also on the edge's own answers
        end
        local gz = plan.gzip
        if gz then
            ngx.ctx[C_GZIP] = gz     -- what @sy_gzip's header filter lets nginx compress
        end
        if plan.guard and pass ~= AGAIN then
            local status, body = exec_guard(plan, var)
            if status then
                metrics_rejected(route, status)
                return respond(status, id, body)
            end
        end
        -- cors routes are served from @sy_full (route.full): never an AGAIN pass
        local cors = plan.cors
        if cors then
            local status, body = exec_cors(cors, var, ngx.ctx)
            if status == 204 then
                return reply.send_empty(204, id)
            elseif status then
                return respond(status, id, body)
            end
        end
    end
    if route.https_redirect and var.https ~= "on" then
        local header = ngx.header
        header["Location"] = tls_fields.redirect_location(var.host, https_suffix, var.request_uri)
        return respond(308, id, reply.REDIRECT)
    end
    if route.hsts then
        -- the route owns the header: its value over HTTPS, none ("-") over plain HTTP;
        -- nginx adds it ($sy_hsts_header in edge.nginx.conf), no Lua header filter
        var[V_HSTS] = var.https == "on" and route.hsts or "-"
    end
    local name = route.upstream
    if plan then
        local pick, status, body = exec_apply(plan, var, ngx.ctx, pass == AGAIN)
        if status then
            return respond(status, id, body)
        end
        name = pick or name
    end
    local up = upstreams[name]
    -- gRPC upstreams ("protocol": "grpc"/"grpcs"; issue 22 item 5): failures answered as
    -- gRPC statuses, proxied from the gRPC locations (switchyard.grpc.access)
    if up and up.grpc then
        return grpc_access.serve(up, id, var)
    end
    if not up or up.n == 0 then
        local now = ngx_now()
        local last = warned[id]
        if not last or now - last >= 10 then
            warned[id] = now
            ngx_log(WARN, "[switchyard] route:", id, ": upstream \"", name, "\" ",
                    up and "has no endpoints" or "does not exist", ", answering 503")
        end
        return respond(503, id, reply.NO_ENDPOINTS)
    end
    if up.all_down and all_down_hit(hctx, up) then
        -- every endpoint is down and on_all_down is "503" (fail_open: logged, then sent)
        return respond(503, id, reply.ALL_DOWN)
    end
    if not up.full then
        if plan then
            ngx.ctx[C_UP] = up   -- a canary or split choice, timeouts (balance())
        end
        return
    end
    ngx.ctx[C_UP] = up
    if pass == FIRST then
        -- HTTPS, sticky or least_conn: on to the location that can do it, options done
        var[V_ROUTE] = id
        var[V_DONE] = "1"
        return ngx_exec(named_for(up))
    end
    local tls = up.tls
    if tls then
        local serial = worker.state.serial
        if tls_pools_serial ~= serial then
            tls_pools = tls_pools_mod.plan_pools(upstreams)
            tls_pools_serial = serial
        end
        var[V_SCHEME] = "https"
        var[V_POOL] = tls_pools[up] or tls_pools_mod.POOL_FRESH
        var[V_TLS_NAME] = tls.name or var.host
        if tls.verify and var[V_TLS_VERIFIED] ~= "1" then
            -- nginx cannot turn proxy_ssl_verify on per request: the location does it
            var[V_DONE] = "1"
            return ngx_exec(VERIFIED)
        end
    end
end

-- access_by_lua of location /: routes by host and path. The host is checked first
-- (switchyard.route.hostcheck: at most 253 bytes; the request line's host, when it has
-- an absolute URI, equal to the Host header's; only host-name bytes when a wildcard
-- matched it): 400 otherwise. A route that needs @sy_full (route.full: response-side
-- options, hsts, a Host override) or a request without a Host header (sent upstream as
-- $host there) goes on before anything else runs.
function _M.access()
    if not current() then
        return respond(503, "none", reply.NOT_READY)
    end
    local var = ngx_var
    local host = var.host
    if host_too_long(host) then
        return respond(400, "none", reply.HOST_TOO_LONG)
    end
    local http_host = var.http_host
    if not host_agrees(host, http_host) then
        return respond(400, "none", reply.HOST_MISMATCH)
    end
    -- $uri is read only when the host's routes need the path (not for a host whose only
    -- route is "/": a variable read, ~500 instructions, saved)
    local route, wild = router:match_var(host, var)
    if not route then
        return respond(404, "none", reply.NO_ROUTE)
    end
    if wild and not is_host_name(host) then
        return respond(400, "none", reply.HOST_INVALID)
    end
    metrics_routed(route)
    -- HTTP/1.1 always has a Host header (nginx answers 400 without one); an HTTP/1.0 or
    -- HTTP/2 request may not, and @sy_full sends $host for it (the version is asked only
    -- without one: ngx.req.http_version is a classic C function, no FFI: ~180
    -- instructions, bench/instructions.py)
    if route.full or (not http_host and req_http_version() ~= 1.1) then
        var[V_ROUTE] = route.id
        return ngx_exec(route.location or FULL)
    end
    if route_var_always then
        var[V_ROUTE] = route.id
    end
    return serve(route, var, FIRST)
end

-- access_by_lua of @sy_full and @sy_https_verified (after ngx.exec from access() or from
-- an earlier named pass): the route the first pass matched, by $sy_route.
function _M.access_named()
    if not current() then
        return respond(503, "none", reply.NOT_READY)
    end
    local var = ngx_var
    local route = router.by_id[var[V_ROUTE]]
    if not route then
        -- removed between the passes (a change applied in between)
        return respond(404, "none", reply.NO_ROUTE)
    end
    return serve(route, var, var[V_DONE] == "1" and AGAIN or NAMED)
end

return _M
