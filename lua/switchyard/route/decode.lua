-- Decoding and validation of route and upstream documents (redis/README.md, "Documents").
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT (uses lua-cjson). Any phase may call it; it
-- never yields. Nothing here raises on bad input: every function returns nil, err for a
-- document that is not valid JSON, has a field of the wrong type, misses a required field,
-- or carries a bad value (host, path, regex, address, weight). Callers log the error with
-- the document's key and skip the object. Strict enough that an accepted document cannot
-- throw at request time: regexes are compiled once here through the injected checker,
-- addresses are parsed into what ngx.balancer.set_current_peer accepts.
--
-- Unknown fields are ignored (newer controllers may add fields). TLS members (route
-- https_redirect/hsts, upstream scheme/tls_server_name/tls_verify) are decoded by
-- switchyard.tls.certificates.

local check = require "switchyard.util.check"
local tls = require "switchyard.tls.certificates"
local health = require "switchyard.health.rotation"
local balancer = require "switchyard.balancer.algorithm"
local route_policy = require "switchyard.route.policy"
local locations = require "switchyard.request.locations"

local type = type
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local str_lower = string.lower
local str_find = string.find
local str_match = string.match
local str_sub = string.sub
local math_floor = math.floor

local _M = {}

local MAX_WEIGHT = 1000
local MAX_HOST_LEN = 253
local is_integer = check.is_integer
local decode_object = check.decode_object

local function non_empty_string(obj, field)
    local v = obj[field]
    if v == nil then
        return nil, "missing field \"" .. field .. "\""
    end
    if type(v) ~= "string" then
        return nil, "field \"" .. field .. "\" must be a string"
    end
    if v == "" then
        return nil, "field \"" .. field .. "\" must not be empty"
    end
    return v
end

-- Host names as nginx's $host gives them: lowercase, no port, no trailing dot. A leading
-- "*." makes a wildcard over every name that ends in ".<suffix>" (any number of labels).
-- Returns the normalized host or nil, err.
-- Valid hosts already normalized, by the text they were given as: many routes share a
-- host, and a 100k-route build spent ~10% of its time here (string patterns do not compile
-- in LuaJIT). Emptied when it holds HOST_CACHE_MAX names.
local HOST_CACHE_MAX = 100000
local host_cache, host_cached = {}, 0

function _M.normalize_host(host)
    if type(host) ~= "string" then
        return nil, "host must be a string"
    end
    local hit = host_cache[host]
    if hit then
        return hit
    end
    local given = host
    host = str_lower(host)
    if str_sub(host, -1) == "." then
        host = str_sub(host, 1, -2)
    end
    local name = host
    if str_sub(host, 1, 2) == "*." then
        name = str_sub(host, 3)
    end
    if name == "" or #host > MAX_HOST_LEN then
        return nil, "invalid host \"" .. host .. "\""
    end
    if str_find(name, "[^%w%-_%.]") or str_find(name, "..", 1, true)
        or str_sub(name, 1, 1) == "." then
        return nil, "invalid host \"" .. host .. "\""
    end
    if host_cached >= HOST_CACHE_MAX then
        host_cache, host_cached = {}, 0
    end
    host_cache[given] = host
    host_cached = host_cached + 1
    return host
end

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

local MATCH_KINDS = {exact = true, prefix = true, regex = true}

-- raw: the JSON text; id: the id from the key (must agree with the document);
-- regex_check(re) -> true | nil, err: compiles a regex (ngx.re in nginx).
-- Returns {id, host, path, match, priority, upstream, version, plan, https_redirect,
-- hsts, full} or nil, err:
-- upstream is nil for split and redirect routes, plan is nil for a plain upstream without
-- options (switchyard.route.policy: every option is decoded and compiled there).
function _M.decode_route(raw, id, regex_check)
    local obj, err = decode_object(raw)
    if not obj then
        return nil, err
    end
    local doc_id
    doc_id, err = non_empty_string(obj, "id")
    if not doc_id then
        return nil, err
    end
    if id ~= nil and doc_id ~= id then
        return nil, "id \"" .. doc_id .. "\" does not match its key"
    end
    local host
    host, err = non_empty_string(obj, "host")
    if not host then
        return nil, err
    end
    host, err = _M.normalize_host(host)
    if not host then
        return nil, err
    end
    local match
    match, err = non_empty_string(obj, "match")
    if not match then
        return nil, err
    end
    if not MATCH_KINDS[match] then
        return nil, "unknown match \"" .. match .. "\" (want exact, prefix or regex)"
    end
    local path
    path, err = non_empty_string(obj, "path")
    if not path then
        return nil, err
    end
    if match == "regex" then
        if not regex_check then
            return nil, "no regex engine"
        end
        local ok, rerr = regex_check(path)
        if not ok then
            return nil, "invalid regex: " .. tostring(rerr)
        end
    else
        if str_sub(path, 1, 1) ~= "/" then
            return nil, "path must start with \"/\""
        end
        if str_find(path, "[%c ]") then
            return nil, "path must not contain spaces or control characters"
        end
    end
    -- the action (upstream, split or redirect) and the options, compiled into route.plan
    -- (nil for a plain upstream without options; switchyard.route.policy)
    local upstream, plan
    upstream, plan = route_policy.decode(obj, match, path, doc_id, regex_check)
    if upstream == nil then
        return nil, plan
    end
    local priority = obj.priority
    if priority == nil then
        priority = 0
    elseif not is_integer(priority) then
        return nil, "field \"priority\" must be an integer"
    end
    local version = obj.version
    if version ~= nil and not is_integer(version) then
        return nil, "field \"version\" must be an integer"
    end
    local https_redirect, hsts = tls.route_fields(obj)
    if https_redirect == nil then
        return nil, hsts
    end
    -- full: the route is served from the edge's @sy_full location (switchyard.request.locations)
    local full = locations.route_full(hsts, plan) or nil
    return {
        id = doc_id,
        host = host,
        path = path,
        match = match,
        priority = priority,
        upstream = upstream or nil,
        version = version,
        plan = plan,
        https_redirect = https_redirect or nil,
        hsts = hsts,
        full = full,
    }
end

-- Returns {name, balance, endpoints = {{address, host, port, weight}...}, version, tls,
-- policy} (policy: switchyard.health.upstream_fields: health_check, passive, retries,
-- on_all_down, defaults filled in),
-- or nil, err. A third return value is a warning (e.g. an unknown balance value, served
-- as round_robin) for the caller to log.
function _M.decode_upstream(raw, name)
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
    balancing, err, warning = balancer.decode(obj)
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
    local policy, policy_err = health.upstream_fields(obj)
    if not policy then
        return nil, policy_err
    end
    local up_tls, tls_err = tls.upstream_fields(obj)
    if up_tls == nil then
        return nil, tls_err
    end
    return {
        name = doc_name,
        balance = balance,
        balancing = balancing,   -- {balance, var, hash_on, sticky} (switchyard.balancer.algorithm)
        endpoints = endpoints,
        version = version,
        tls = up_tls or nil,
        policy = policy,
    }, nil, warning
end

return _M
