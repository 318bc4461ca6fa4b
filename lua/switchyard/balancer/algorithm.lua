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
--   ip_hash      switchyard.balancer.hash on $remote_addr, the whole address
--   hash         switchyard.balancer.hash: a consistent-hash ring over one request
--                variable chosen when the document is decoded (hash_on)
--   sticky       switchyard.balancer.sticky (cookie; ctx.sy_cookies, ctx.sy_sticky_i)
-- (the ctx keys: switchyard.request.vars)

local chash = require "switchyard.balancer.chash"
local wrr = require "switchyard.balancer.wrr"
local hash = require "switchyard.balancer.hash"
local least_conn = require "switchyard.balancer.least_conn"
local sticky = require "switchyard.balancer.sticky"
local check = require "switchyard.util.check"
local vars = require "switchyard.request.vars"

local type = type

local is_null = check.is_null
local C_CONN = vars.ctx.conn

local _M = {}

_M.KINDS = {round_robin = true, least_conn = true, ip_hash = true, hash = true, sticky = true}

local ROUND_ROBIN = {balance = "round_robin"}
_M.ROUND_ROBIN = ROUND_ROBIN

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
        local var, err = hash.var_of(hash_on)
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
        return hash.new(up, peers, settings, env)
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
    if ctx[C_CONN] then
        least_conn.release(env.conns, ctx)
    end
end

return _M
