-- Cookie affinity (`"balance": "sticky"`): decoding of the upstream's `sticky` object,
-- the endpoint ids and the Set-Cookie strings, and the balancer itself.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The request's cookie is read through the
-- injected variable table (ngx.var: "cookie_<name>"), the hash (crc32) is injected.
--
-- The cookie value is the endpoint's id: 8 hex digits of crc32(address) (crc32 of
-- "<address>#<k>" for the k-th one that collides in the same upstream), the same on every
-- worker and edge. Ids and Set-Cookie strings are computed once per document (cached on
-- the endpoint tables, which live as long as the document); a health change only rebuilds
-- the id -> endpoint map over the endpoints in rotation.
--
-- pick: a cookie naming an endpoint in rotation -> that endpoint, nothing else to do;
-- otherwise (no cookie, unknown id, endpoint out of rotation or gone) smooth WRR over the
-- endpoints in rotation and the cookie for the chosen one is queued on ctx.sy_cookies
-- (switchyard.request.response's header_filter emits it). A retry picks an untried
-- endpoint round robin and replaces the queued cookie (or queues one) so the client
-- follows the endpoint that actually answered.

local wrr = require "switchyard.balancer.wrr"
local check = require "switchyard.util.check"
local vars = require "switchyard.request.vars"
local C_COOKIES = vars.ctx.cookies
local C_STICKY_I = vars.ctx.sticky_i

local type = type
local setmetatable = setmetatable
local str_format = string.format
local str_find = string.find
local str_sub = string.sub
local tbl_concat = table.concat

local is_null = check.is_null
local is_token = check.is_token   -- RFC 6265: a cookie name is a token

local _M = {}
local mt = {__index = _M}

_M.DEFAULT_COOKIE = "sy_sticky"
_M.DEFAULT_TTL_S = 3600
_M.MAX_TTL_S = 31536000
_M.MAX_COOKIE_LEN = 64

-- A host name for the Domain attribute: labels of letters, digits and hyphens (not at
-- either end), 1-63 characters each, at most 253 in all.
function _M.is_host_name(s)
    if type(s) ~= "string" or s == "" or #s > 253 then
        return false
    end
    for label in (s .. "."):gmatch("([^.]*)%.") do
        if label == "" or #label > 63 or str_find(label, "[^%w%-]")
            or str_sub(label, 1, 1) == "-" or str_sub(label, -1) == "-" then
            return false
        end
    end
    return true
end

local DEFAULTS = {
    cookie = _M.DEFAULT_COOKIE, ttl_s = _M.DEFAULT_TTL_S, path = "/", domain = nil,
    secure = false, httponly = true,
}

local function bool_field(obj, field, default)
    local v = obj[field]
    if v == nil then
        return default
    end
    if type(v) ~= "boolean" then
        return nil, "field \"sticky." .. field .. "\" must be a boolean"
    end
    return v
end

-- The `sticky` member (nil or null: every default). Returns the settings table, or
-- nil, err naming the field.
function _M.decode(v)
    if v == nil or is_null(v) then
        v = {}
    elseif type(v) ~= "table" or v[1] ~= nil then
        return nil, "field \"sticky\" must be an object"
    end
    local out = {}
    local cookie = v.cookie
    if cookie == nil then
        cookie = DEFAULTS.cookie
    elseif not is_token(cookie) or #cookie > _M.MAX_COOKIE_LEN then
        return nil, "field \"sticky.cookie\" must be 1-64 characters of a cookie name (a token)"
    end
    out.cookie = cookie
    local ttl = v.ttl_s
    if ttl == nil then
        ttl = DEFAULTS.ttl_s
    elseif not check.is_integer(ttl) or ttl < 0 or ttl > _M.MAX_TTL_S then
        return nil, "field \"sticky.ttl_s\" must be an integer between 0 and " .. _M.MAX_TTL_S
    end
    out.ttl_s = ttl
    local path = v.path
    if path == nil then
        path = DEFAULTS.path
    elseif type(path) ~= "string" or str_sub(path, 1, 1) ~= "/" or str_find(path, "[%c ;\127]") then
        return nil, "field \"sticky.path\" must start with \"/\" and have no \";\", spaces "
            .. "or control characters"
    end
    out.path = path
    local domain = v.domain
    if domain ~= nil and not is_null(domain) then
        if not _M.is_host_name(domain) then
            return nil, "field \"sticky.domain\" must be null or a host name"
        end
        out.domain = domain
    end
    local err
    out.secure, err = bool_field(v, "secure", DEFAULTS.secure)
    if out.secure == nil then
        return nil, err
    end
    out.httponly, err = bool_field(v, "httponly", DEFAULTS.httponly)
    if out.httponly == nil then
        return nil, err
    end
    out.var = "cookie_" .. cookie   -- the nginx variable with the request's cookie
    return out
end

-- "<cookie>=<id>; Path=/; Max-Age=3600; Domain=...; Secure; HttpOnly"
function _M.cookie_string(s, id)
    local parts = {s.cookie .. "=" .. id, "Path=" .. s.path}
    if s.ttl_s > 0 then
        parts[#parts + 1] = "Max-Age=" .. s.ttl_s
    end
    if s.domain then
        parts[#parts + 1] = "Domain=" .. s.domain
    end
    if s.secure then
        parts[#parts + 1] = "Secure"
    end
    if s.httponly then
        parts[#parts + 1] = "HttpOnly"
    end
    return tbl_concat(parts, "; ")
end

local function hex_id(hash, s)
    local h = hash(s)
    if h < 0 then
        h = h + 4294967296
    end
    return str_format("%08x", h)
end

-- Gives every endpoint of the document its id and cookie string (once per document:
-- the caller (switchyard.balancer.algorithm) does it once per upstream object). eps: every
-- endpoint of the upstream, in order.
function _M.prepare(eps, settings, hash)
    local used = {}
    for i = 1, #eps do
        local ep = eps[i]
        local id = hex_id(hash, ep.address)
        local k = 0
        while used[id] and k < 100 do
            k = k + 1
            id = hex_id(hash, ep.address .. "#" .. k)
        end
        used[id] = true
        ep.sticky_id = id
        ep.sticky_cookie = _M.cookie_string(settings, id)
    end
end

-- peers: the endpoints in rotation (already prepared); env.var: the request's variables.
function _M.new(peers, settings, env)
    local by_id = {}
    for i = 1, #peers do
        by_id[peers[i].sticky_id] = peers[i]
    end
    return setmetatable({
        rr = wrr.new(peers),
        by_id = by_id,
        var_name = settings.var,
        var = env.var,
        peers = peers,
        n = #peers,
    }, mt)
end

function _M.count(self)
    return self.n
end

local function queue_cookie(ctx, peer)
    local cookies = ctx[C_COOKIES]
    if not cookies then
        cookies = {}
        ctx[C_COOKIES] = cookies
    end
    local i = ctx[C_STICKY_I]
    if not i then
        i = #cookies + 1
        ctx[C_STICKY_I] = i
    end
    cookies[i] = peer.sticky_cookie
end

function _M.pick(self, ctx)
    if self.n == 0 then
        return nil
    end
    local v = self.var[self.var_name]
    if v then
        local p = self.by_id[v]
        if p then
            return p
        end
    end
    local p = self.rr:pick()
    if ctx then
        queue_cookie(ctx, p)
    end
    return p
end

function _M.retry(self, ctx, tried)
    local p = self.rr:retry(ctx, tried)
    if p and ctx then
        queue_cookie(ctx, p)
    end
    return p
end

return _M
