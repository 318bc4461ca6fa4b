-- The upstream object: built here and nowhere else, from its document (redis/README.md,
-- "Documents"; docs/traffic-policies.md, "Upstream fields").
--
--   name         the upstream's name
--   endpoints    {address, host, port, weight, checked}... (host and port as
--                set_current_peer takes them: "10.0.0.1" or "[::1]"; names are not
--                accepted, no DNS on the request path; checked == false for an endpoint
--                exempt from the active health check, `"health_check": false`: the
--                rotation ignores prober verdicts for it); the balancers add what they
--                precompute per endpoint
--                (sticky_id, sticky_cookie: balancer/sticky; conn_key: balancer/least_conn)
--   n            #endpoints
--   version      the document's version
--   balance      the algorithm's name; balancing: its settings {balance, var, hash_on,
--                sticky} (switchyard.balancer.algorithm)
--   policy       endpoint health {check, max_fails, fail_timeout, retries, all_down_503}
--                (switchyard.health.policy; defaults filled in)
--   tls          {name, verify} for "scheme": "https", else nil
--                (switchyard.tls.fields.upstream_fields)
--   full         true when @sy_full serves it (switchyard.request.locations), or a
--                gRPC location (grpc)
--   grpc         "grpc" or "grpcs" for "protocol": "grpc"/"grpcs" (switchyard.grpc.fields;
--                tls then holds grpcs's TLS settings), else nil
-- and, kept in step with endpoint health by switchyard.health.rotation.build (in place: the
-- object stays the same while the document does, so ngx.ctx may hold it):
--   balancer, available, more_tries, all_down, unavailable, down_active, down_passive,
--   health_raw, fresh; lb_cache (what balancer/algorithm computes once per document)
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never raises on bad input: a document with a
-- bad field is nil, err (the caller logs it with its key and leaves the upstream out).
-- Unknown fields are ignored (`owner` and `source` are the writer's).

local check = require "switchyard.util.check"
local cidr = require "switchyard.route.cidr"
local algorithm = require "switchyard.balancer.algorithm"
local health = require "switchyard.health.rotation"
local health_policy = require "switchyard.health.policy"
local tls = require "switchyard.tls.fields"
local locations = require "switchyard.request.locations"
local grpc_fields = require "switchyard.grpc.fields"

local type = type
local pairs = pairs
local tonumber = tonumber
local str_byte = string.byte
local str_find = string.find
local str_match = string.match
local str_sub = string.sub
local math_floor = math.floor

local is_integer = check.is_integer
local decode_object = check.decode_object
local non_empty_string = check.non_empty_string

local _M = {}

local MAX_WEIGHT = 1000

-- "ip:port" or "[ipv6]:port" -> host, port, bin where host is what set_current_peer
-- accepts ("10.0.0.1" or "[::1]"; it rejects a bare "::1") and bin the binary address
-- (parse_address below returns host and port).
-- Parsed as strictly as the controller does (EndpointAddress.swift): IPv6 by the rules of
-- inet_pton (what nginx parses it with: an address it refuses would fail every request),
-- no leading zeros in IPv4 octets or the port. Names are not accepted: the edge does no
-- DNS on the request path.
local function parse_address(addr)
    if type(addr) ~= "string" then
        return nil, "address must be a string"
    end
    local host, port, bin
    if str_sub(addr, 1, 1) == "[" then
        local ip6, p = str_match(addr, "^%[([^%]]*)%]:(.*)$")
        bin = ip6 and cidr.parse_v6(ip6, true)
        if not bin then
            return nil, "invalid address \"" .. addr .. "\""
        end
        host, port = "[" .. ip6 .. "]", p
    else
        local ip4, p = str_match(addr, "^([%d%.]+):(.*)$")
        bin = ip4 and cidr.parse_ip(ip4, true)
        if not bin or #bin ~= 4 then
            return nil, "invalid address \"" .. addr .. "\" (want ip:port or [ipv6]:port)"
        end
        host, port = ip4, p
    end
    if not str_find(port, "^[1-9]%d?%d?%d?%d?$") or tonumber(port) > 65535 then
        return nil, "invalid port in \"" .. addr .. "\" (1-65535, no leading zeros)"
    end
    return host, tonumber(port), bin
end

function _M.parse_address(addr)
    local host, port = parse_address(addr)
    return host, port
end

local MAPPED = string.rep("\0", 10) .. "\255\255"
local METADATA_V6 = "\253\0\14\194" .. string.rep("\0", 10) .. "\2\84"   -- fd00:ec2::254

-- Why the controller would refuse an endpoint at this binary address (EndpointAddress
-- usabilityProblem), or nil. The edge serves it anyway (a hand-typed document, or a
-- controller started with --allow-link-local-endpoints) and warns.
function _M.unusable(bin)
    if #bin == 16 and str_sub(bin, 1, 12) == MAPPED then
        bin = str_sub(bin, 13)
    end
    local a, b = str_byte(bin, 1, 2)
    if #bin == 4 then
        if a == 0 then
            return "unspecified"
        elseif bin == "\255\255\255\255" then
            return "broadcast"
        elseif a >= 224 then
            return "multicast or reserved"
        elseif a == 169 and b == 254 then
            return "link-local"
        end
        return nil
    end
    if bin == string.rep("\0", 16) then
        return "unspecified"
    elseif a == 255 then
        return "multicast"
    elseif a == 254 and b >= 128 and b < 192 then
        return "link-local"
    elseif bin == METADATA_V6 then
        return "a cloud metadata address"
    end
    return nil
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
    if doc_name == "." or doc_name == ".." then
        return nil, "field \"name\" must not be \".\" or \"..\" (API URLs cannot name them)"
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
        local at = "endpoints[" .. (i - 1) .. "]"
        if type(ep) ~= "table" then
            return nil, "field \"" .. at .. "\" is not an object"
        end
        local address = ep.address
        if type(address) ~= "string" then
            return nil, "field \"" .. at .. ".address\": missing or not a string"
        end
        local host, port, bin = parse_address(address)
        if not host then
            return nil, "field \"" .. at .. ".address\": " .. port
        end
        local weight = ep.weight
        if weight == nil then
            weight = 1
        elseif not is_integer(weight) or weight < 1 or weight > MAX_WEIGHT then
            return nil, "field \"" .. at .. ".weight\" must be an integer 1-" .. MAX_WEIGHT
        end
        local checked = ep.health_check
        if checked == nil or check.is_null(checked) then
            checked = true
        elseif type(checked) ~= "boolean" then
            return nil, "field \"" .. at .. ".health_check\" must be true or false"
        end
        local unusable = _M.unusable(bin)
        if unusable then
            warning = (warning and warning .. "; " or "") .. "endpoint " .. address .. " is "
                .. unusable
        end
        endpoints[i] = {address = address, host = host, port = port, weight = weight,
                        checked = checked}
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
    -- "protocol" (gRPC, issue 22 item 5): "grpcs" brings its own TLS settings
    local grpc
    grpc, up_tls = grpc_fields.decode(obj, up_tls)
    if grpc == nil then
        return nil, up_tls
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
        -- gRPC upstreams are never served from location / (switchyard.grpc.access)
        full = (grpc and true) or locations.upstream_full(up_tls, balancing) or nil,
        grpc = grpc or nil,
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
