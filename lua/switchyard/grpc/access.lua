-- gRPC upstreams on the request path (issue 22 item 5; docs/traffic-policies.md, "gRPC").
--
--   serve(up, id, var, pass, hctx)  called by switchyard.request.access's serve() for an
--       upstream with "protocol": "grpc"/"grpcs", after the route's options ran: a
--       failure the edge sees before proxying (no endpoints, all down) is answered as a
--       gRPC status (switchyard.grpc.status); otherwise the request goes on (ngx.exec,
--       options marked done) to the gRPC location of deploy/edge.nginx.conf: @sy_grpc
--       (h2c), @sy_grpcs (TLS) or @sy_grpcs_verified (TLS, verified), which set $sy_grpc
--       and run access_named() again; there the upstream goes to ngx.ctx for balance()
--       (the same balancer as HTTP: endpoints, health, weights, retries) and the SNI to
--       $sy_tls_name.
--   answer()  content_by_lua of @sy_grpc_status, where every gRPC status of the edge is
--       sent (switchyard.grpc.status.respond: the status as trailers). serve() goes there
--       with $sy_grpc_status and $sy_grpc_message set; otherwise it is the error_page 502
--       504 of the gRPC locations: the last attempt failed, it counts for passive health
--       as in @sy_failed, and the answer is UNAVAILABLE, or DEADLINE_EXCEEDED when it
--       timed out.
--
-- Never yields.

local vars = require "switchyard.request.vars"
local status = require "switchyard.grpc.status"
local health_mod = require "switchyard.health.rotation"
local metrics = require "switchyard.request.metrics"
local balancer_finish = require("switchyard.balancer.algorithm").finish

local ngx = ngx
local str_match = string.match

local all_down_hit = health_mod.all_down_hit

local C_UP, C_CONN = vars.ctx.up, vars.ctx.conn
local V_ROUTE, V_DONE, V_PICK = vars.var.route, vars.var.done, vars.var.pick
local V_TLS_NAME, V_GRPC = vars.var.tls_name, vars.var.grpc
local V_STATUS, V_MESSAGE = vars.var.grpc_status, vars.var.grpc_message

local GRPC, GRPCS, GRPCS_VERIFIED = "@sy_grpc", "@sy_grpcs", "@sy_grpcs_verified"
local STATUS = "@sy_grpc_status"

local _M = {}

local router, upstreams, hctx, passive   -- this worker's (switchyard.worker), set by attach()

function _M.attach(w)
    router, upstreams, hctx, passive = w.router, w.upstreams, w.hctx, w.passive
end

-- The gRPC location for the upstream.
local function location_for(up)
    local tls = up.tls
    if not tls then
        return GRPC
    end
    return tls.verify and GRPCS_VERIFIED or GRPCS
end
_M.location_for = location_for

-- Answers with gRPC status `code` (from the access phase): on to @sy_grpc_status.
local function send(code, text, id, var)
    var[V_STATUS] = code
    var[V_MESSAGE] = status.message(text)
    var[V_ROUTE] = id
    return ngx.exec(STATUS)
end
_M.send = send

function _M.serve(up, id, var)
    if up.n == 0 then
        return send(status.UNAVAILABLE, "no endpoints", id, var)
    end
    if up.all_down and all_down_hit(hctx, up) then
        return send(status.UNAVAILABLE, "all endpoints down", id, var)
    end
    local here = var[V_GRPC]
    local want = location_for(up)
    if here ~= want then
        -- on to the gRPC location (at most once more when the upstream changed between
        -- the passes); the route's options ran already
        var[V_ROUTE] = id
        var[V_DONE] = "1"
        return ngx.exec(want)
    end
    ngx.ctx[C_UP] = up
    local tls = up.tls
    if tls then
        var[V_TLS_NAME] = tls.name or var.host
    end
end

-- The last endpoint in $upstream_addr ("a, b : c": retries, then internal redirects).
local function last_address(list)
    return list and str_match(list, "([^%s,]+)$")
end

-- The last attempt's failure (error_page 502 504): passive health, and the status.
local function failed(var)
    -- 504: the last attempt timed out ($upstream_status of each attempt: 502 or 504)
    local timed_out = last_address(var.upstream_status) == "504"
    var[V_STATUS] = timed_out and status.DEADLINE_EXCEEDED or status.UNAVAILABLE
    var[V_MESSAGE] = timed_out and "upstream timed out" or "upstream unavailable"
    local id = var[V_ROUTE]
    local route = id and id ~= "" and router.by_id[id]
    local name = route and var[V_PICK]
    if route and (not name or name == "") then
        name = route.upstream
    end
    local up = name and upstreams[name]
    local addr = up and last_address(var.upstream_addr)
    if addr then
        local eps = up.endpoints
        for i = 1, #eps do
            local ep = eps[i]
            if ep.address == addr then
                passive:failed(up, ep)
                metrics.failed_attempt(up, ep)
                if ep.conn_key and up.balancing and up.balancing.balance == "least_conn" then
                    balancer_finish(hctx.env, {[C_CONN] = ep.conn_key})
                end
                break
            end
        end
    end
    return route and id or "none"
end

function _M.answer()
    local var = ngx.var
    local id
    local code = var[V_STATUS]
    if code and code ~= "" then
        id = var[V_ROUTE]
    else
        id = failed(var)
    end
    return status.respond(id)
end

return _M
