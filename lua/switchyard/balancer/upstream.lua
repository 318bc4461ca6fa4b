-- The upstream object: built here and nowhere else, from its document (redis/README.md,
-- "Documents"; docs/traffic-policies.md, "Upstream fields").
--
--   name         the upstream's name
--   endpoints    {address, host, port, weight}... (host and port as set_current_peer
--                takes them: "10.0.0.1" or "[::1]"; names are not accepted, no DNS on the
--                request path); the balancers add what they precompute per endpoint
--                (sticky_id, sticky_cookie: balancer/sticky; conn_key: balancer/least_conn)
--   n            #endpoints
--   version      the document's version
--   balance      the algorithm's name; balancing: its settings {balance, var, hash_on,
--                sticky} (switchyard.balancer.algorithm)
--   policy       endpoint health {check, max_fails, fail_timeout, retries, all_down_503}
--                (switchyard.health.policy; defaults filled in)
--   tls          {name, verify} for "scheme": "https", else nil
--                (switchyard.tls.fields.upstream_fields)
--   full         true when @sy_full serves it (switchyard.request.locations)
-- and, kept in step with endpoint health by switchyard.health.rotation.build (in place: the
-- object stays the same while the document does, so ngx.ctx may hold it):
--   balancer, available, more_tries, all_down, unavailable, down_active, down_passive,
--   health_raw, fresh; lb_cache (what balancer/algorithm computes once per document)
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never raises on bad input: a document with a
-- bad field is nil, err (the caller logs it with its key and leaves the upstream out).
-- Unknown fields are ignored.

local check = require "switchyard.util.check"
local algorithm = require "switchyard.balancer.algorithm"
local health = require "switchyard.health.rotation"
local health_policy = require "switchyard.health.policy"
local tls = require "switchyard.tls.fields"
local locations = require "switchyard.request.locations"

local type = type
local pairs = pairs
local tonumber = tonumber
local str_find = string.find
local str_match = string.match
local str_sub = string.sub
local math_floor = math.floor

local is_integer = check.is_integer
local decode_object = check.decode_object
local non_empty_string = check.non_empty_string

local _M = {}

local MAX_WEIGHT = 1000

-- "ip:port" or "[ipv6]:port" -> host, port where host is what set_current_peer accepts
-- ("10.0.0.1" or "[::1]"; it rejects a bare "::1"). Names are not accepted: the edge
-- does no DNS on the request path.
function _M.parse_address(addr)
    if type(addr) ~= "string" then
        return nil, "address must be a string"
    end
    local host, port
    if str_sub(addr, 1, 1) == "[" then
        local ip6, p = str_match(addr, "^%[([%x:%.]+)%]:(%d+)$")
        if not ip6 or not str_find(ip6, ":", 1, true) then
            return nil, "invalid address \"" .. addr .. "\""
        end
        -- at most one "::", no ":::", between 2 and 8 groups
        local _, doubles = ip6:gsub("::", "")
        if doubles > 1 or str_find(ip6, ":::", 1, true) then
            return nil, "invalid address \"" .. addr .. "\""
        end
        host, port = "[" .. ip6 .. "]", p
    else
        local a, b, c, d, p = str_match(addr, "^(%d+)%.(%d+)%.(%d+)%.(%d+):(%d+)$")
        if not a then
            return nil, "invalid address \"" .. addr .. "\" (want ip:port or [ipv6]:port)"
        end
        local octets = {a, b, c, d}
        for i = 1, 4 do
            local o = octets[i]
            if #o > 3 or tonumber(o) > 255 then
                return nil, "invalid address \"" .. addr .. "\""
            end
        end
        host, port = a .. "." .. b .. "." .. c .. "." .. d, p
    end
    if #port > 5 then
        return nil, "invalid port in \"" .. addr .. "\""
    end
    port = tonumber(port)
    if port < 1 or port > 65535 then
        return nil, "invalid port in \"" .. addr .. "\""
    end
    return host, port
end

-- The object of an upstream document (the fields of the header before the rotation's),
-- or nil, err. A third return value is a warning (e.g. an unknown balance value, served as
-- round_robin) for the caller to log.
function _M.decode(raw, name)
    local obj, err = decode_object(raw)
    if not obj then
        return nil, err
    end
    local doc_name
    doc_name, err = non_empty_string(obj, "name")
    if not doc_name then
        return nil, err
    end
    if name ~= nil and doc_name ~= name then
        return nil, "name \"" .. doc_name .. "\" does not match its key"
    end
    -- balance, hash_on, sticky (switchyard.balancer.algorithm; unknown balance: a warning)
    local balancing, warning
    balancing, err, warning = algorithm.decode(obj)
    if not balancing then
        return nil, err
    end
    local balance = balancing.balance
    local eps = obj.endpoints
    if eps == nil then
        return nil, "missing field \"endpoints\""
    end
    if type(eps) ~= "table" then
        return nil, "field \"endpoints\" must be an array"
    end
    local n = #eps
    for k in pairs(eps) do
        if type(k) ~= "number" or k < 1 or k > n or math_floor(k) ~= k then
            return nil, "field \"endpoints\" must be an array"
        end
    end
    local endpoints = {}
    for i = 1, n do
        local ep = eps[i]
        if type(ep) ~= "table" then
            return nil, "endpoint " .. i .. " is not an object"
        end
        local address = ep.address
        if type(address) ~= "string" then
            return nil, "endpoint " .. i .. ": missing or non-string \"address\""
        end
        local host, port = _M.parse_address(address)
        if not host then
            return nil, "endpoint " .. i .. ": " .. port
        end
        local weight = ep.weight
        if weight == nil then
            weight = 1
        elseif not is_integer(weight) or weight < 1 or weight > MAX_WEIGHT then
            return nil, "endpoint " .. i .. ": weight must be an integer 1-" .. MAX_WEIGHT
        end
        endpoints[i] = {address = address, host = host, port = port, weight = weight}
    end
    local version = obj.version
    if version ~= nil and not is_integer(version) then
        return nil, "field \"version\" must be an integer"
    end
    -- health_check, passive, retries, on_all_down (defaults when missing)
    local policy, policy_err = health_policy.decode(obj)
    if not policy then
        return nil, policy_err
    end
    local up_tls, tls_err = tls.upstream_fields(obj)
    if up_tls == nil then
        return nil, tls_err
    end
    up_tls = up_tls or nil
    return {
        name = doc_name,
        n = n,
        endpoints = endpoints,
        version = version,
        balance = balance,
        balancing = balancing,
        policy = policy,
        tls = up_tls,
        full = locations.upstream_full(up_tls, balancing) or nil,
    }, nil, warning
end

-- The upstream object of a document, with its balancer over the endpoints in rotation
-- (hctx: switchyard.health.rotation's context; nil: every endpoint). Returns up, or nil,
-- err; a third value is a warning for the caller to log.
function _M.new(hctx, raw, name)
    local up, err, warning = _M.decode(raw, name)
    if not up then
        return nil, err
    end
    return health.build(hctx, up), nil, warning
end

return _M
