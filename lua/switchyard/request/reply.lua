-- The edge's own answers (lua/README.md): a short text body, the header
-- X-Switchyard-Route naming the route (or "none"), and the end of the request.
--   404 "no route"                  no route for host and path
--   503 "no endpoints"              the upstream has none, or does not exist
--   503 "all endpoints down"        on_all_down "503" and nothing in rotation
--   503 "configuration not loaded"  nothing loaded yet (Redis never reached, no snapshot)
--   308 "redirecting to https"      https_redirect over plain HTTP
--   502 "bad gateway", 504 "gateway timeout"   the last attempt failed (failed())
-- Route options answer with their own bodies (switchyard.route.exec).
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

local ROUTE_HEADER = "X-Switchyard-Route"

function _M.send(status, route_id, body)
    ngx.status = status
    local header = ngx.header
    header[ROUTE_HEADER] = route_id
    header["Content-Type"] = "text/plain"
    header["Content-Length"] = #body
    ngx_print(body)
    return ngx_exit(HTTP_OK)
end

return _M
