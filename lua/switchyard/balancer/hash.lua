-- The `hash` and `ip_hash` balancers: consistent hashing (switchyard.balancer.chash) of one
-- request variable, chosen when the document is decoded (var_of): header:NAME ->
-- $http_<name> (lowercase, "-" -> "_", the first such header), cookie:NAME ->
-- $cookie_<NAME>, uri -> $request_uri (path and query as the client sent them), ip (and
-- ip_hash) -> $remote_addr. Missing: the empty string. The first pick keeps its ring index
-- in ctx.sy_ring_i; a retry walks the ring clockwise to the next untried endpoint (where
-- the key goes once the failed endpoint is out of rotation).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The request variables (ngx.var) and the hash
-- (ngx.crc32_long) are injected through env (switchyard.balancer.algorithm). A pick is one
-- variable read, one crc32 and a binary search; no allocation.

local chash = require "switchyard.balancer.chash"
local check = require "switchyard.util.check"
local vars = require "switchyard.request.vars"

local type = type
local setmetatable = setmetatable
local str_sub = string.sub

local mix = chash.mix
local is_token = check.is_token
local C_RING_I = vars.ctx.ring_i

local _M = {}

-- "header:NAME" | "cookie:NAME" | "uri" | "ip" -> the nginx variable to read, or nil, err
function _M.var_of(hash_on)
    if type(hash_on) ~= "string" then
        return nil, "field \"hash_on\" must be a string"
    end
    if hash_on == "uri" then
        return "request_uri"
    elseif hash_on == "ip" then
        return "remote_addr"
    end
    local prefix = str_sub(hash_on, 1, 7)
    local name = str_sub(hash_on, 8)
    if prefix == "header:" then
        if not is_token(name) then
            return nil, "field \"hash_on\": \"header:NAME\" needs a header name (a token)"
        end
        return check.header_var(name)
    elseif prefix == "cookie:" then
        if not is_token(name) then
            return nil, "field \"hash_on\": \"cookie:NAME\" needs a cookie name (a token)"
        end
        return "cookie_" .. name
    end
    return nil, "field \"hash_on\" must be \"header:NAME\", \"cookie:NAME\", \"uri\" or \"ip\""
end

local Hash = {}
local hash_mt = {__index = Hash}

function Hash.count(self)
    return self.n
end

-- The owner of the request's key on the ring, and its ring index (for walk).
local function key_owner(self)
    return self.ring:lookup(mix(self.hash(self.var[self.var_name] or "")))
end

function Hash.pick(self, ctx)
    local n = self.n
    if n <= 1 then
        return self.peers[1]
    end
    local p, i = key_owner(self)
    if ctx then
        ctx[C_RING_I] = i
    end
    return p
end

-- Walks on from the first pick's ring index; a request whose first pick kept none (the
-- balancer had no ctx then: a plain route, switchyard.request.balance) walks on from its
-- key's own index.
function Hash.retry(self, ctx, tried)
    local start = ctx and ctx[C_RING_I]
    if not start then
        if self.n <= 1 then
            start = 0
        else
            local _
            _, start = key_owner(self)
            start = start or 0
        end
    end
    local p, i = self.ring:walk(start, tried)
    if p and ctx then
        ctx[C_RING_I] = i
    end
    return p
end

-- The balancer of `up` over `peers` (the endpoints in rotation); settings.var: the variable
-- (var_of); env: var, crc32. The ring's points are computed once per document (up.lb_cache).
function _M.new(up, peers, settings, env)
    local cache = up.lb_cache
    if not cache or cache.kind ~= "hash" then
        local eps = up.endpoints or peers
        local order = {}
        for i = 1, #eps do
            order[eps[i]] = i
        end
        cache = {kind = "hash", points = chash.points(eps, env.crc32), order = order}
        up.lb_cache = cache
    end
    return setmetatable({
        ring = chash.new(peers, cache.points, cache.order),
        peers = peers,
        n = #peers,
        var = env.var,
        var_name = settings.var,
        hash = env.crc32,
    }, hash_mt)
end

return _M
