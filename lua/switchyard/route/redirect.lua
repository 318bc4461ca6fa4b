-- The Location of a route's `redirect` (docs/traffic-policies.md), per request:
--
--   location(r, request_uri)   r: the plan's redirect ({location, status, keep_path};
--                              switchyard.route.policy); request_uri: $request_uri.
--
-- With keep_path the request's path and query follow `to` (whose trailing "/" the policy
-- dropped: the request URI brings its own). For `to: "/"` that leaves the request URI
-- alone as the Location, and a request for "//evil.test/x" would answer
-- "Location: //evil.test/x", a reference to another host (an open redirect; browsers
-- read "\" as "/" there too, so "/\evil.test" is one as well): the leading run of "/" and
-- "\" becomes one "/". An absolute `to` fixes the host, and a longer path `to` keeps the
-- request's path after its own: both are appended to as they are.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields.

local str_byte = string.byte
local str_sub = string.sub

local _M = {}

local SLASH = 47       -- "/"
local BACKSLASH = 92   -- "\"

function _M.location(r, request_uri)
    local location = r.location
    if not r.keep_path then
        return location
    end
    if location ~= "" then
        return location .. request_uri
    end
    local b = str_byte(request_uri, 2)
    if b ~= SLASH and b ~= BACKSLASH then
        return request_uri
    end
    local i = 3
    b = str_byte(request_uri, i)
    while b == SLASH or b == BACKSLASH do
        i = i + 1
        b = str_byte(request_uri, i)
    end
    return "/" .. str_sub(request_uri, i)
end

return _M
