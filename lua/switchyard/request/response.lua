-- The response side, in the named locations (location / has none of these: each is a
-- fixed cost per request, see switchyard.request.locations):
--
--   header_filter()  the route's response_headers (ngx.ctx.sy_resp), its CORS headers
--                    (ngx.ctx.sy_cors, switchyard.route.exec) and the queued
--                    Set-Cookie values (ngx.ctx.sy_cookies: sticky, split_sticky); one
--                    ngx.ctx read and two field checks when there is none
--   log()            least_conn: the last attempt's count ends (sy_conns)
--   failed()         content handler of @sy_failed (error_page 502 504): nginx's own 502
--                    or 504 after the last attempt failed counts for passive health,
--                    ends a least_conn count, and answers with a short text body and the
--                    route's response headers
--
-- Never yields.

local vars = require "switchyard.request.vars"
local reply = require "switchyard.request.reply"
local route_exec = require "switchyard.route.exec"
local balancer_finish = require("switchyard.balancer.algorithm").finish
local metrics = require "switchyard.request.metrics"

local ngx = ngx
local ngx_var = ngx.var
local type = type
local tonumber = tonumber
local str_match = string.match

local respond = reply.send
local exec_response_headers = route_exec.response_headers
local exec_cors_headers = route_exec.cors_headers
local exec_gzip_filter = route_exec.gzip_filter

local C_RESP, C_COOKIES, C_CONN = vars.ctx.resp, vars.ctx.cookies, vars.ctx.conn
local C_CORS, C_CORS_ORIGIN, C_GZIP = vars.ctx.cors, vars.ctx.cors_origin, vars.ctx.gzip
local V_ROUTE, V_PICK = vars.var.route, vars.var.pick

local _M = {}

local router, upstreams, hctx, passive   -- this worker's (switchyard.worker), set by attach()

function _M.attach(w)
    router, upstreams, hctx, passive = w.router, w.upstreams, w.hctx, w.passive
end

-- header_filter_by_lua: the route's response_headers (ngx.ctx.sy_resp, set by access():
-- remove, then set), then the Set-Cookie values queued in ngx.ctx.sy_cookies (an array
-- of complete cookie strings).
function _M.header_filter()
    local ctx = ngx.ctx
    local resp = ctx[C_RESP]
    if resp then
        exec_response_headers(resp)
    end
    local cors = ctx[C_CORS]
    if cors then
        exec_cors_headers(cors, ctx[C_CORS_ORIGIN])
    end
    local gz = ctx[C_GZIP]
    if gz then
        exec_gzip_filter(gz)
    end
    local cookies = ctx[C_COOKIES]
    if cookies then
        local header = ngx.header
        local existing = header["Set-Cookie"]
        if existing then
            local all = type(existing) == "table" and existing or {existing}
            for i = 1, #cookies do
                all[#all + 1] = cookies[i]
            end
            header["Set-Cookie"] = all
        else
            header["Set-Cookie"] = #cookies == 1 and cookies[1] or cookies
        end
    end
end

-- log_by_lua of the named locations: least_conn's count of the last attempt ends
-- (sy_conns). Location / has no log phase (least_conn upstreams are served from @sy_full):
-- entering Lua once more per request cost about 4% of a plain request's CPU.
function _M.log()
    local ctx = ngx.ctx
    if ctx[C_CONN] then
        balancer_finish(hctx.env, ctx)
    end
    metrics.log()
end

-- The last endpoint in $upstream_addr ("a, b : c": retries, then internal redirects).
local function last_address(list)
    return list and str_match(list, "([^%s,]+)$")
end

-- content_by_lua of @sy_failed, the error_page for the 502 and 504 nginx itself answers
-- when the last attempt failed (connect error, timeout, invalid response): that attempt
-- counts for passive health, as nginx's max_fails counts it (balance() counts the earlier
-- ones when it retries; a 502/503/504 the endpoint sent itself counts only when it is
-- retried, as in nginx). ngx.ctx did not survive the redirect: the route, the upstream
-- and the endpoint come from $sy_route, $sy_pick and $upstream_addr. Answers the status
-- nginx chose (error_page keeps it) with a short text body, the route's response_headers
-- and, for least_conn, ends the attempt's count (no log phase runs for it).
function _M.failed()
    local var = ngx_var
    local status = tonumber(var.status) or 502
    local id = var[V_ROUTE]
    if not id or id == "" then
        -- not written (access log off, metrics on): the metrics' table has the route
        local matched = metrics.route()
        id = matched and matched.id
    end
    local route = id and router.by_id[id]
    local up
    if route then
        local name = var[V_PICK]
        if not name or name == "" then
            name = route.upstream
        end
        up = name and upstreams[name]
    end
    local addr = up and last_address(var.upstream_addr)
    if addr then
        local eps = up.endpoints
        for i = 1, #eps do
            local ep = eps[i]
            if ep.address == addr then
                passive:failed(up, ep)
                metrics.failed_attempt(up, ep)
                local b = up.balancing
                if b and b.balance == "least_conn" and ep.conn_key then
                    -- least_conn: the attempt ended (no log phase in this location)
                    balancer_finish(hctx.env, {[C_CONN] = ep.conn_key})
                end
                break
            end
        end
    end
    local plan = route and route.plan
    if plan and plan.resp then
        exec_response_headers(plan.resp)
    end
    -- a cors route's 502/504 carries its CORS headers too, or a browser shows the page a
    -- CORS error instead of the failure (issue 22 item 3)
    local cors = plan and plan.cors
    if cors then
        exec_cors_headers(cors, route_exec.cors_origin(cors, var))
    end
    return respond(status, id or "none", status == 504 and reply.TIMEOUT or reply.BAD_GATEWAY)
end

return _M
