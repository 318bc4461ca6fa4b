-- Connection pools for HTTPS upstreams: which upstream{} block of edge.nginx.conf
-- ($sy_pool) a request to an HTTPS upstream is proxied through.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields.

local pairs = pairs

local _M = {}

-- Connection pools for HTTPS upstreams. nginx keeps idle upstream connections per
-- upstream{} block and endpoint address, whatever SNI or verification they were opened
-- with. So a pooled TLS connection may only be reused for requests that want the same
-- name: the pool is chosen per request ($sy_pool, an upstream{} block name):
--   POOL_MAIN      http, and https with a fixed tls_server_name, unverified (keepalive)
--   POOL_VERIFIED  https with a fixed tls_server_name and tls_verify (keepalive, apart
--                  from unverified connections)
--   POOL_FRESH     no keepalive: https whose SNI is the request's host (no
--                  tls_server_name), and https upstreams sharing an endpoint address with
--                  another upstream of the same kind that uses another name
-- plan_pools(upstreams) decides for every upstream with tls (name -> up, as switchyard.
-- state keeps them; up.tls = {name, verify}, up.endpoints[i].address); returns a table
-- up -> pool. O(endpoints of HTTPS upstreams); callers redo it when the configuration
-- changed (keyed by the worker's serial).
_M.POOL_MAIN = "switchyard_upstream"
_M.POOL_VERIFIED = "switchyard_upstream_verified"
_M.POOL_FRESH = "switchyard_upstream_fresh"

function _M.plan_pools(upstreams)
    local seen, conflict = {}, {}
    for _, up in pairs(upstreams) do
        local t = up.tls
        if t and t.name then
            local family = t.verify and "v|" or "m|"
            local eps = up.endpoints or {}
            for i = 1, #eps do
                local k = family .. eps[i].address
                local prev = seen[k]
                if prev == nil then
                    seen[k] = t.name
                elseif prev ~= t.name then
                    conflict[k] = true
                end
            end
        end
    end
    local pools = {}
    for _, up in pairs(upstreams) do
        local t = up.tls
        if t then
            local pool = _M.POOL_FRESH
            if t.name then
                pool = t.verify and _M.POOL_VERIFIED or _M.POOL_MAIN
                local family = t.verify and "v|" or "m|"
                local eps = up.endpoints or {}
                for i = 1, #eps do
                    if conflict[family .. eps[i].address] then
                        pool = _M.POOL_FRESH
                        break
                    end
                end
            end
            pools[up] = pool
        end
    end
    return pools
end

return _M
