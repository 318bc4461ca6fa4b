-- The edge's own answers (lua/README.md): a short text body, the header
-- X-Switchyard-Route naming the route (or "none"), and the end of the request.
--   404 "no route"                  no route for host and path
--   503 "no endpoints"              the upstream has none, or does not exist
--   503 "all endpoints down"        on_all_down "503" and nothing in rotation
--   503 "configuration not loaded"  nothing loaded yet (Redis never reached, no snapshot)
--   308 "redirecting to https"      https_redirect over plain HTTP
--   400 "host name too long"        a Host of more than 253 bytes (switchyard.route.hostcheck)
--   400 "host does not match the request target"   an absolute URI whose host is not the
--                                   Host header's
--   400 "invalid host name"         a Host with bytes no host name has, matched by a wildcard
--   421 "misdirected request"       a route with require_sni_match reached over TLS with
--                                   another SNI name
--   502 "bad gateway", 504 "gateway timeout"   the last attempt failed (failed())
-- Route options answer with their own bodies (switchyard.route.exec).
-- Every error answer (400-599) is replaced by the route's error page for its status, else
-- the edge's (--error-pages): an inline body with its content type, or a 302 redirect.
--
-- Request phases (access, content); never yields.

local ngx = ngx
local ngx_print = ngx.print
local ngx_exit = ngx.exit
local HTTP_OK = ngx.HTTP_OK

local _M = {}

_M.NO_ROUTE = "no route\n"
_M.NO_ENDPOINTS = "no endpoints\n"
_M.NOT_READY = "configuration not loaded\n"
_M.REDIRECT = "redirecting to https\n"
_M.ALL_DOWN = "all endpoints down\n"
_M.BAD_GATEWAY = "bad gateway\n"
_M.TIMEOUT = "gateway timeout\n"
_M.HOST_TOO_LONG = "host name too long\n"
_M.HOST_MISMATCH = "host does not match the request target\n"
_M.HOST_INVALID = "invalid host name\n"
_M.MISDIRECTED = "misdirected request\n"

local ROUTE_HEADER = "X-Switchyard-Route"
local PAGE_REDIRECT = "redirecting\n"

local router     -- this worker's (switchyard.worker), set by attach()
local defaults   -- the edge's error pages (switchyard edge --error-pages), or nil

function _M.attach(w, edge_pages)
    router = w.router
    defaults = edge_pages
end

-- The error page for an answer of the edge with this status: the route's error_pages
-- (route.plan.pages, switchyard.route.policy), else the edge's; nil for none. Only error
-- answers look (one by_id lookup).
local function page_for(status, route_id)
    local r = route_id ~= "none" and router and router.by_id[route_id]
    local plan = r and r.plan
    local pages = plan and plan.pages
    return pages and pages[status] or defaults and defaults[status] or nil
end
_M.page_for = page_for

function _M.send(status, route_id, body)
    local header = ngx.header
    local ctype = "text/plain"
    if status >= 400 then
        local page = page_for(status, route_id)
        if page then
            if page.location then
                status = 302
                header["Location"] = page.location
                body = PAGE_REDIRECT
            else
                body, ctype = page.body, page.ctype
            end
        end
    end
    ngx.status = status
    header[ROUTE_HEADER] = route_id
    header["Content-Type"] = ctype
    header["Content-Length"] = #body
    ngx_print(body)
    return ngx_exit(HTTP_OK)
end

-- An answer without a body (a CORS preflight's 204), with the headers set before.
function _M.send_empty(status, route_id)
    ngx.status = status
    ngx.header[ROUTE_HEADER] = route_id
    ngx.send_headers()
    return ngx_exit(HTTP_OK)
end

return _M
