-- Decoding and validation of route documents (redis/README.md, "Documents"); the route
-- object the router and the request path use is built here and nowhere else (upstream
-- documents: switchyard.balancer.upstream).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT (uses lua-cjson). Any phase may call it; it
-- never yields. Nothing here raises on bad input: every function returns nil, err for a
-- document that is not valid JSON, has a field of the wrong type, misses a required field,
-- or carries a bad value (host, path, regex). Callers log the error with the document's
-- key and skip the object. Strict enough that an accepted document cannot throw at
-- request time: regexes are compiled once here through the injected checker.
--
-- Unknown fields are ignored (newer controllers may add fields; `owner` and `source` are
-- the writer's, for humans and the controller). The action and options are compiled by
-- switchyard.route.policy, the TLS members (https_redirect, hsts, require_sni_match)
-- decoded by switchyard.tls.fields.

local check = require "switchyard.util.check"
local tls = require "switchyard.tls.fields"
local route_policy = require "switchyard.route.policy"
local locations = require "switchyard.request.locations"

local type = type
local tostring = tostring
local str_lower = string.lower
local str_find = string.find
local str_sub = string.sub

local _M = {}

local MAX_HOST_LEN = 253
local is_integer = check.is_integer
local decode_object = check.decode_object
local non_empty_string = check.non_empty_string

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
    if host == "*" then -- the catch-all host: requests no other host entry claims
        return host
    end
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

local MATCH_KINDS = {exact = true, prefix = true, regex = true, segment_prefix = true}

-- A literal route path (exact, prefix, segment_prefix) as the controller accepts it: "/"
-- first, no spaces or control characters, and in the form nginx's $uri has (decoded,
-- slashes merged, dot segments resolved), or it could never match. Returns nil or err.
local function path_problem(path)
    if str_sub(path, 1, 1) ~= "/" then
        return "path must start with \"/\""
    end
    if str_find(path, "[%c ]") then
        return "path must not contain spaces or control characters"
    end
    if str_find(path, "%%%x%x") then
        return "path must not be percent-encoded (write it decoded, as the edge sees it)"
    end
    if str_find(path, "//", 1, true) then
        return "path must not contain \"//\" (the edge merges slashes)"
    end
    local rest = path .. "/"
    if str_find(rest, "/./", 1, true) or str_find(rest, "/../", 1, true) then
        return "path must not contain \".\" or \"..\" segments (the edge resolves them)"
    end
    return nil
end
_M.path_problem = path_problem

-- raw: the JSON text; id: the id from the key (must agree with the document);
-- regex_check(re) -> true[, ncaptures] | nil, err: compiles a regex (ngx.re in nginx).
-- Returns {id, host, wildcard, path, match, priority, upstream, version, plan,
-- https_redirect, hsts, require_sni_match, full, location} or nil, err:
-- location: the named location of a full route other than @sy_full (@sy_gzip), or nil;
-- wildcard is "one_label" (a *. host standing for exactly one label) or nil (any depth);
-- a segment_prefix path is kept without a trailing "/" (except "/");
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
    if doc_id == "." or doc_id == ".." then
        return nil, "id must not be \".\" or \"..\""
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
    local wildcard = obj.wildcard
    if wildcard ~= nil and not check.is_null(wildcard) then
        if wildcard ~= "one_label" then
            return nil, "field \"wildcard\" must be \"one_label\" (or absent)"
        end
        if str_sub(host, 1, 2) ~= "*." then
            return nil, "field \"wildcard\" only applies to a wildcard host (*.example.com)"
        end
    else
        wildcard = nil
    end
    local match
    match, err = non_empty_string(obj, "match")
    if not match then
        return nil, err
    end
    if not MATCH_KINDS[match] then
        return nil, "unknown match \"" .. match
            .. "\" (want exact, prefix, segment_prefix or regex)"
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
            return nil, "invalid regex in \"path\": " .. tostring(rerr)
        end
    else
        err = path_problem(path)
        if err then
            return nil, err
        end
        if match == "segment_prefix" and #path > 1 and str_sub(path, -1) == "/" then
            path = str_sub(path, 1, -2)   -- "/foo/" stands for "/foo" (as stored)
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
    local https_redirect, hsts, require_sni_match = tls.route_fields(obj)
    if https_redirect == nil then
        return nil, hsts
    end
    -- full: the route is served from the edge's @sy_full location (switchyard.request.locations)
    local full = locations.route_full(hsts, plan) or nil
    return {
        id = doc_id,
        host = host,
        wildcard = wildcard,
        path = path,
        match = match,
        priority = priority,
        upstream = upstream or nil,
        version = version,
        plan = plan,
        https_redirect = https_redirect or nil,
        hsts = hsts,
        require_sni_match = require_sni_match or nil,
        full = full,
        location = locations.route_location(plan),
    }
end

return _M
