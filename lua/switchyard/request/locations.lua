-- Which nginx location serves a request (deploy/edge.nginx.conf; lua/README.md,
-- "Locations"), decided here and nowhere else.
--
-- Every phase handler costs a fixed amount per request just to enter Lua, and nginx runs a
-- location's handlers whether the request needs them or not; so the edge has three
-- locations, and a request is served from the cheapest one that can do what it needs:
--   /                   plain routes to HTTP upstreams, with the options that run in the
--                       access phase; a static proxy_pass, no header filter, no log phase
--   @sy_full            what / cannot do: a route with response-side work or a Host
--                       override (route_full), an upstream that is HTTPS, sticky or
--                       least_conn (upstream_full), a request without a Host header
--   @sy_https_verified  as @sy_full, with proxy_ssl_verify on: upstreams with tls_verify
--   @sy_gzip            as @sy_full, with nginx's gzip filter on: routes with gzip
-- The route and upstream flags are computed once, when their documents are decoded
-- (route.full, up.full); access() reads them per request.
--
-- Pure: works on Lua 5.2 and LuaJIT; any phase.

local _M = {}

_M.FULL = "@sy_full"
_M.VERIFIED = "@sy_https_verified"
_M.GZIP = "@sy_gzip"

-- The named location a route.full route goes to when it is not @sy_full: @sy_gzip for a
-- route with gzip (its header filter picks what nginx's gzip filter compresses); nil
-- otherwise. Decoded into route.location.
function _M.route_location(plan)
    return plan and plan.gzip and _M.GZIP or nil
end

-- A route whose requests go to @sy_full at once: its HSTS header (hsts: the value, or
-- nil), response headers, cors or split_sticky cookies (a header filter), or a Host sent
-- upstream in place of the client's ($sy_host_set). plan: switchyard.route.policy's.
function _M.route_full(hsts, plan)
    if hsts ~= nil then
        return true
    end
    if not plan then
        return false
    end
    local split = plan.split
    local req = plan.req
    return (plan.resp or plan.cors or plan.gzip or (split and split.sticky) or (req and req.host))
        and true or false
end

-- An upstream @sy_full serves: HTTPS (a variable proxy_pass to its upstream{} block),
-- sticky (its Set-Cookie) or least_conn (a log phase ends each attempt's count).
-- tls: the upstream's TLS settings or nil; balancing: its balance settings or nil.
function _M.upstream_full(tls, balancing)
    return tls ~= nil or (balancing ~= nil and (balancing.balance == "sticky"
                                                 or balancing.balance == "least_conn"))
end

-- The named location an up.full upstream's request goes on to.
function _M.named_for(up)
    local tls = up.tls
    return tls and tls.verify and _M.VERIFIED or _M.FULL
end

return _M
