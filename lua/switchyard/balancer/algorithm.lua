-- Balancing algorithms of an upstream (docs/traffic-policies.md, "Upstream fields"):
-- decoding of `balance`, `hash_on` and `sticky`, and the factory that builds the
-- balancer of an upstream over its endpoints in rotation (called by switchyard.health.rotation
-- whenever the upstream's document or health changes; never per request).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The edge injects env (switchyard.health.rotation
-- context field `env`): var (ngx.var), crc32 (ngx.crc32_long), conns (ngx.shared.sy_conns).
--
-- Every balancer has: n, pick(ctx) -> peer (nil when it has none), retry(ctx, tried) ->
-- a peer not in `tried` (peer -> true) or nil, count(). ctx is the request's ngx.ctx (a
-- plain table in specs); balancers keep what a retry needs there:
--   round_robin  switchyard.balancer.wrr (smooth WRR, per worker)
--   least_conn   switchyard.balancer.least_conn (sy_conns; ctx.sy_conn = the counted key)
--   ip_hash      hash on $remote_addr, the whole address
--   hash         switchyard.balancer.chash ring; the key is ONE variable read, chosen when the
--                document is decoded: header:NAME -> $http_<name> (lowercase, "-" -> "_",
--                the first such header), cookie:NAME -> $cookie_<NAME>, uri ->
--                $request_uri (path and query as the client sent them), ip ->
--                $remote_addr. Missing: the empty string. ctx.sy_ring_i = ring index; a
--                retry walks the ring clockwise to the next untried endpoint (where the
--                key goes once the failed endpoint is out of rotation)
--   sticky       switchyard.balancer.sticky (cookie; ctx.sy_cookies, ctx.sy_sticky_i)

local chash = require "switchyard.balancer.chash"
local wrr = require "switchyard.balancer.wrr"
local least_conn = require "switchyard.balancer.least_conn"
local mix = chash.mix
local sticky = require "switchyard.balancer.sticky"
local check = require "switchyard.util.check"

local type = type
local setmetatable = setmetatable
local str_sub = string.sub

local is_null = check.is_null
local is_token = check.is_token

local _M = {}

_M.KINDS = {round_robin = true, least_conn = true, ip_hash = true, hash = true, sticky = true}

local ROUND_ROBIN = {balance = "round_robin"}
_M.ROUND_ROBIN = ROUND_ROBIN

-- "header:NAME" | "cookie:NAME" | "uri" | "ip" -> the nginx variable to read, or nil, err
function _M.hash_var(hash_on)
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

-- The balancing members of a decoded upstream document. Returns settings, nil, warning
-- or nil, err (the document is invalid). An unknown `balance` name is a warning and
-- round_robin (its hash_on/sticky are ignored); a known one with bad or misplaced
-- parameters is an error. settings: {balance, var (hash, ip_hash), hash_on, sticky}.
function _M.decode(obj)
    local balance = obj.balance
    local hash_on, sticky_v = obj.hash_on, obj.sticky
    if is_null(hash_on) then
        hash_on = nil
    end
    if is_null(sticky_v) then
        sticky_v = nil
    end
    if balance == nil then
        balance = "round_robin"
    elseif type(balance) ~= "string" then
        return nil, "field \"balance\" must be a string"
    elseif not _M.KINDS[balance] then
        return ROUND_ROBIN, nil, "unknown balance \"" .. balance .. "\", using round_robin"
    end
    if balance == "hash" then
        if hash_on == nil then
            return nil, "field \"hash_on\" is required with balance \"hash\""
        end
    elseif hash_on ~= nil then
        return nil, "field \"hash_on\" is only allowed with balance \"hash\""
    end
    if sticky_v ~= nil and balance ~= "sticky" then
        return nil, "field \"sticky\" is only allowed with balance \"sticky\""
    end
    if balance == "round_robin" then
        return ROUND_ROBIN
    elseif balance == "least_conn" then
        return {balance = balance}
    elseif balance == "ip_hash" then
        return {balance = balance, var = "remote_addr"}
    elseif balance == "hash" then
        local var, err = _M.hash_var(hash_on)
        if not var then
            return nil, err
        end
        return {balance = balance, var = var, hash_on = hash_on}
    end
    local s, err = sticky.decode(sticky_v)
    if not s then
        return nil, err
    end
    return {balance = balance, sticky = s}
end

-- hash / ip_hash ------------------------------------------------------------------------

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
        ctx.sy_ring_i = i
    end
    return p
end

-- Walks on from the first pick's ring index; a request whose first pick kept none (the
-- balancer had no ctx then, switchyard.phases) walks on from its key's own index.
function Hash.retry(self, ctx, tried)
    local start = ctx and ctx.sy_ring_i
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
        ctx.sy_ring_i = i
    end
    return p
end

local function new_hash(up, peers, settings, env)
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

-- factory --------------------------------------------------------------------------------

local DEFAULT_ENV = {var = {}, crc32 = chash.crc32}

-- The balancer of `up` (its `balancing` settings from decode; nil: round_robin) over
-- `peers` (the endpoints in rotation). env: see above (nil: no request variables, the
-- Lua crc32, no sy_conns). least_conn without sy_conns falls back to round_robin.
function _M.new(up, peers, env)
    env = env or DEFAULT_ENV
    if not env.crc32 then
        env.crc32 = chash.crc32
    end
    local settings = up.balancing or ROUND_ROBIN
    local kind = settings.balance
    if kind == "hash" or kind == "ip_hash" then
        return new_hash(up, peers, settings, env)
    elseif kind == "least_conn" and env.conns then
        return least_conn.new(peers, up.name, env)
    elseif kind == "sticky" then
        local cache = up.lb_cache
        if not cache or cache.kind ~= "sticky" then
            sticky.prepare(up.endpoints or peers, settings.sticky, env.crc32)
            up.lb_cache = {kind = "sticky"}
        end
        return sticky.new(peers, settings.sticky, env)
    end
    return wrr.new(peers)
end

-- log phase: the end of the last attempt (least_conn's -1). Cheap for the others: one
-- ctx field read.
function _M.finish(env, ctx)
    if ctx.sy_conn then
        least_conn.release(env.conns, ctx)
    end
end

return _M
