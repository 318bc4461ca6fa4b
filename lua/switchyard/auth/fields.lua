-- A route's authentication fields (docs/traffic-policies.md, "Authentication"; issue 22
-- item 4), decoded once into the plan's `auth` member by switchyard.route.policy. The
-- controller's rules (Sources/SwitchyardCore/Policies/Auth.swift), except that a jwt key's
-- PEM is only checked for its shape here: it is parsed when first used
-- (switchyard.auth.jwt), and a key that does not parse refuses its tokens (401, logged).
-- An HS256 key's secret is stored as `secret_enc` (sealed with SWITCHYARD_CERT_KEY, bound
-- to the route by the AAD `aad` names) or, without that key, `secret`; it is decrypted when
-- first used, never here, and never logged.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never raises on bad input; messages name the
-- field and never quote a hash or a key.
--
-- basic_auth(v) -> {kind = "basic", realm, challenge (the WWW-Authenticate value),
--                   users = {name -> hash}}  or nil, err
-- jwt(v, id)    -> {kind = "jwt", keys = {{alg, kid, pem | secret | secret_enc}...} (from
--                   `keys`, or from `jwks.keys`: JWKs with the PEM the controller derived),
--                   by_kid = {kid -> key}, aad ("switchyard:route:<id>:jwt.secret"),
--                   issuer, audience, leeway, claims = {{claim, header}...},
--                   header_var ("http_x_token") | cookie_var ("cookie_tok") | nil (Bearer)}
--                  or nil, err
-- forward_auth(v) -> {kind = "forward", host, port, path, host_header, request = {names},
--                   request_vars = {"http_x"...}, response = {names}, cache_s, timeout_ms,
--                   fail_open}  or nil, err

local check = require "switchyard.util.check"
local cidr = require "switchyard.route.cidr"

local type = type
local pairs = pairs
local ipairs = ipairs
local tonumber = tonumber
local tostring = tostring
local str_find = string.find
local str_sub = string.sub
local str_lower = string.lower
local str_match = string.match
local str_gsub = string.gsub

local is_integer = check.is_integer

local _M = {}

local MAX_USERS = 64
local MAX_REALM = 64
local MAX_NAME = 64
local MAX_KEYS = 8
local MAX_PEM = 4096
local MAX_CLAIMS = 16
local MAX_TEXT = 256
local MAX_LEEWAY = 300
local DEFAULT_LEEWAY = 30
local DEFAULT_REALM = "restricted"

local ALGS = {RS256 = true, ES256 = true, HS256 = true}
local MIN_SECRET, MAX_SECRET = 32, 512
-- request headers a claim may not be copied into (the edge's own, and the credentials)
local REFUSED_CLAIM_HEADERS = {
    connection = true, upgrade = true, ["keep-alive"] = true, te = true,
    ["transfer-encoding"] = true, ["content-length"] = true, ["x-forwarded-for"] = true,
    ["x-forwarded-proto"] = true, ["x-forwarded-host"] = true, ["x-real-ip"] = true,
    host = true, authorization = true, cookie = true,
}

local field = check.member

local is_array = check.is_array

local is_object = check.is_object

-- unknown members are ignored, as in every stored document (newer writers may add some)

-- printable ASCII (0x20-0x7E) of 1-max bytes, without the bytes of `without` (a pattern
-- class body)
local function printable(s, max, without)
    return type(s) == "string" and #s >= 1 and #s <= max and not str_find(s, "[^ -~]")
        and not (without and str_find(s, "[" .. without .. "]"))
end

local CRYPT = "[^%./0-9A-Za-z]"

-- nil when hash is a bcrypt ($2b$/$2y$, cost 04-12) or SHA-512-crypt ($6$) hash the
-- edge verifies; else why not
function _M.hash_problem(hash)
    if str_sub(hash, 1, 4) == "$2b$" or str_sub(hash, 1, 4) == "$2y$" then
        local cost, rest = str_match(hash, "^%$2[by]%$(%d%d)%$(.*)$")
        if not cost or #rest ~= 53 or str_find(rest, CRYPT) then
            return "is not a bcrypt hash"
        end
        cost = tonumber(cost)
        if cost < 4 or cost > 12 then
            return "has a bcrypt cost outside 4-12"
        end
        return nil
    end
    if str_sub(hash, 1, 3) == "$6$" then
        local rest = str_sub(hash, 4)
        local rounds, after = str_match(rest, "^rounds=([^%$]*)%$(.*)$")
        if rounds then
            if not str_find(rounds, "^[1-9]%d?%d?%d?%d?%d?$") then
                return "is not a SHA-512-crypt hash"
            end
            local n = tonumber(rounds)
            if n < 1000 or n > 100000 then
                return "has rounds outside 1000-100000"
            end
            rest = after
        end
        local salt, sum = str_match(rest, "^([^%$]*)%$([^%$]*)$")
        if not salt or #salt < 1 or #salt > 16 or str_find(salt, CRYPT) or #sum ~= 86
                or str_find(sum, CRYPT) then
            return "is not a SHA-512-crypt hash"
        end
        return nil
    end
    return "uses a scheme the edge does not verify (bcrypt $2b$/$2y$ or SHA-512-crypt $6$)"
end

function _M.basic_auth(v)
    if not is_object(v) then
        return nil, "basic_auth must be an object"
    end
    local realm = field(v, "realm")
    if realm == nil then
        realm = DEFAULT_REALM
    elseif not printable(realm, MAX_REALM, "\"\\") then
        return nil, "basic_auth.realm must be 1-64 printable ASCII characters without \" and \\"
    end
    local users = field(v, "users")
    if users == nil then
        return nil, "basic_auth.users is required"
    end
    if not is_array(users) or #users < 1 or #users > MAX_USERS then
        return nil, "basic_auth.users must be an array of 1-" .. MAX_USERS .. " users"
    end
    local out = {}
    for i = 1, #users do
        local at = "basic_auth.users[" .. (i - 1) .. "]"
        local u = users[i]
        if not is_object(u) then
            return nil, at .. " must be an object"
        end
        local name, hash = field(u, "name"), field(u, "hash")
        if type(name) ~= "string" or type(hash) ~= "string" then
            return nil, at .. " needs name and hash (strings)"
        end
        if not printable(name, MAX_NAME, " :") then
            return nil, at .. ".name must be 1-64 printable ASCII characters without spaces and ':'"
        end
        local problem = _M.hash_problem(hash)
        if problem then
            return nil, at .. ".hash " .. problem
        end
        if out[name] then
            return nil, at .. ".name appears twice"
        end
        out[name] = hash
    end
    return {kind = "basic", realm = realm, users = out,
            challenge = "Basic realm=\"" .. realm .. "\", charset=\"UTF-8\""}
end

local function is_claim(s)
    return type(s) == "string" and #s >= 1 and #s <= 64 and not str_find(s, "[^%w_%-%.:]")
end

-- secret_sha256: 16 lowercase hex digits
local function is_fingerprint(s)
    return type(s) == "string" and #s == 16 and not str_find(s, "[^0-9a-f]")
end

local function is_pem(s)
    if type(s) ~= "string" or #s > MAX_PEM then
        return false
    end
    local _, n = str_gsub(s, "%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-", "")
    return n == 1 and str_find(s, "-----END PUBLIC KEY-----", 1, true) ~= nil
end

-- a stored JWK (jwt.jwks.keys[N]): the controller derived its PEM (`pem`) and filled in
-- its alg; nil when it is not one the controller stores, else why
local JWK_PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
local function jwk_problem(k)
    for _, name in ipairs(JWK_PRIVATE) do
        if field(k, name) ~= nil then
            return "." .. name .. " is a private key member"
        end
    end
    local kty, alg = field(k, "kty"), field(k, "alg")
    if kty == "RSA" then
        if alg ~= "RS256" or type(field(k, "n")) ~= "string"
                or type(field(k, "e")) ~= "string" then
            return " is not an RS256 JWK (alg, n, e)"
        end
    elseif kty == "EC" then
        if alg ~= "ES256" or field(k, "crv") ~= "P-256" or type(field(k, "x")) ~= "string"
                or type(field(k, "y")) ~= "string" then
            return " is not an ES256 P-256 JWK (alg, crv, x, y)"
        end
    else
        return ".kty must be RSA or EC"
    end
    return nil
end

local function keys(list, where, jwks)
    if list == nil then
        return nil, where .. " is required"
    end
    if not is_array(list) or #list < 1 or #list > MAX_KEYS then
        return nil, where .. " must be an array of 1-" .. MAX_KEYS .. " keys"
    end
    local out, by_kid = {}, {}
    for i = 1, #list do
        local at = where .. "[" .. (i - 1) .. "]"
        local k = list[i]
        if not is_object(k) then
            return nil, at .. " must be an object"
        end
        if jwks then
            local problem = jwk_problem(k)
            if problem then
                return nil, at .. problem
            end
        end
        local alg, kid, pem = field(k, "alg"), field(k, "kid"), field(k, "pem")
        local secret, sealed = field(k, "secret"), field(k, "secret_enc")
        if not ALGS[alg] then
            return nil, at .. ".alg must be RS256, ES256 or HS256"
        end
        if kid ~= nil and not printable(kid, MAX_TEXT) then
            return nil, at .. ".kid must be 1-256 printable ASCII characters"
        end
        if alg == "HS256" and jwks then
            return nil, at .. ".alg: a JWKS holds RS256 and ES256 keys only"
        elseif alg == "HS256" then
            if pem ~= nil then
                return nil, at .. ".pem: HS256 takes a secret, not a pem"
            end
            if secret ~= nil then
                if type(secret) ~= "string" or #secret < MIN_SECRET or #secret > MAX_SECRET then
                    return nil, at .. ".secret must be " .. MIN_SECRET .. "-" .. MAX_SECRET
                        .. " bytes"
                end
            elseif type(sealed) ~= "string" or not str_find(sealed, "^aes%-256%-gcm:")
                    or not is_fingerprint(field(k, "secret_sha256")) then
                return nil, at .. ".secret is required for HS256 (or secret_enc with secret_sha256)"
            end
        else
            for _, name in ipairs({"secret", "secret_sha256", "secret_enc"}) do
                if field(k, name) ~= nil then
                    return nil, at .. "." .. name .. ": only HS256 keys have a secret"
                end
            end
            if not is_pem(pem) then
                return nil, at .. ".pem must hold one PEM public key (-----BEGIN PUBLIC KEY-----)"
            end
        end
        if kid ~= nil then
            if by_kid[kid] then
                return nil, at .. ".kid appears twice"
            end
        elseif #list > 1 then
            return nil, where .. ": every key needs a kid when there are several"
        end
        local key = {alg = alg, kid = kid, pem = pem}
        if alg == "HS256" then
            -- the plaintext only when stored so (no SWITCHYARD_CERT_KEY); else decrypted
            -- when first used (switchyard.auth.jwt)
            key.secret = secret
            if secret == nil then
                key.secret_enc = sealed
            end
        end
        out[i] = key
        if kid then
            by_kid[kid] = key
        end
    end
    return out, by_kid
end

function _M.jwt(v, id)
    if not is_object(v) then
        return nil, "jwt must be an object"
    end
    local list, by_kid
    local jwks = field(v, "jwks")
    if jwks ~= nil then
        if field(v, "keys") ~= nil then
            return nil, "jwt.jwks: give keys or jwks, not both"
        end
        if not is_object(jwks) then
            return nil, "jwt.jwks must be an object {\"keys\": [JWK...]}"
        end
        list, by_kid = keys(field(jwks, "keys"), "jwt.jwks.keys", true)
    else
        list, by_kid = keys(field(v, "keys"), "jwt.keys")
    end
    if not list then
        return nil, by_kid
    end
    local j = {kind = "jwt", keys = list, by_kid = by_kid,
               aad = "switchyard:route:" .. tostring(id) .. ":jwt.secret"}
    for _, name in pairs({"issuer", "audience"}) do
        local s = field(v, name)
        if s ~= nil and not printable(s, MAX_TEXT) then
            return nil, "jwt." .. name .. " must be 1-256 printable ASCII characters"
        end
        j[name] = s
    end
    local leeway = field(v, "leeway_s")
    if leeway == nil then
        leeway = DEFAULT_LEEWAY
    elseif not is_integer(leeway) or leeway < 0 or leeway > MAX_LEEWAY then
        return nil, "jwt.leeway_s must be an integer 0-" .. MAX_LEEWAY
    end
    j.leeway = leeway
    local claims = field(v, "claims_to_headers")
    j.claims = {}
    if claims ~= nil then
        if not is_object(claims) then
            return nil, "jwt.claims_to_headers must be an object of claim: header"
        end
        local n, seen = 0, {}
        for claim, header in pairs(claims) do
            n = n + 1
            if n > MAX_CLAIMS then
                return nil, "jwt.claims_to_headers: at most " .. MAX_CLAIMS .. " claims"
            end
            local at = "jwt.claims_to_headers." .. claim
            if not is_claim(claim) then
                return nil, "jwt.claims_to_headers: a claim name is 1-64 letters, digits and _-.:"
            end
            if not check.is_token(header, 128) then
                return nil, at .. " must be a header name"
            end
            local low = str_lower(header)
            if REFUSED_CLAIM_HEADERS[low] then
                return nil, at .. ": " .. header .. " cannot carry a claim"
            end
            if seen[low] then
                return nil, at .. ": the header appears twice"
            end
            seen[low] = true
            j.claims[#j.claims + 1] = {claim, header}
        end
        table.sort(j.claims, function(a, b) return a[1] < b[1] end)
    end
    local header, cookie = field(v, "header"), field(v, "cookie")
    if header ~= nil then
        if not check.is_token(header, 128) then
            return nil, "jwt.header must be a header name"
        end
        j.header_var = check.header_var(header)
    end
    if cookie ~= nil then
        if not check.is_token(cookie, 64) then
            return nil, "jwt.cookie must be a cookie name"
        end
        if header ~= nil then
            return nil, "jwt.cookie: give header or cookie, not both"
        end
        j.cookie_var = "cookie_" .. cookie
    end
    return j
end

-- forward_auth's url: http://a.b.c.d:port/path or http://[v6]:port/path, as
-- EndpointAddress and ForwardAuth.urlProblem read it
local function forward_url(url)
    if type(url) ~= "string" or #url > 1024 or str_sub(url, 1, 7) ~= "http://" then
        return nil
    end
    local authority, path = str_match(url, "^http://([^/]*)(/.*)$")
    if not authority or str_find(path, "[^!-~]") or str_find(path, "#", 1, true) then
        return nil
    end
    local host, port, bin
    local v6
    v6, port = str_match(authority, "^%[([^%]]*)%]:(.*)$")
    if v6 then
        bin = cidr.parse_v6(v6, true)
        host = "[" .. v6 .. "]"
    else
        host, port = str_match(authority, "^([^:]*):(.*)$")
        bin = host and cidr.parse_ip(host, true)
        if bin and #bin ~= 4 then
            bin = nil
        end
    end
    if not bin or not port or not str_find(port, "^[1-9]%d?%d?%d?%d?$")
            or tonumber(port) > 65535 then
        return nil
    end
    -- ngx.socket.tcp connects to an IPv6 address written in brackets
    return {host = host, connect = host, port = tonumber(port), path = path}
end

local function header_names(v, at, max, refused, default)
    if v == nil then
        return default
    end
    if not is_array(v) or #v > max then
        return nil, at .. " must be an array of at most " .. max .. " header names"
    end
    local seen = {}
    for i = 1, #v do
        if not check.is_token(v[i], 128) then
            return nil, at .. "[" .. (i - 1) .. "] must be a header name"
        end
        local low = str_lower(v[i])
        if refused and refused[low] then
            return nil, at .. "[" .. (i - 1) .. "]: " .. v[i] .. " is set by the edge itself"
        end
        if seen[low] then
            return nil, at .. "[" .. (i - 1) .. "] appears twice"
        end
        seen[low] = true
    end
    return v
end

local REFUSED_FROM_SERVICE = {
    connection = true, upgrade = true, ["keep-alive"] = true, te = true,
    ["transfer-encoding"] = true, ["content-length"] = true, ["x-forwarded-for"] = true,
    ["x-forwarded-proto"] = true, ["x-forwarded-host"] = true, ["x-real-ip"] = true,
    host = true,
}

-- the request's framing and the X-Forwarded-* headers the edge sets itself
local REFUSED_TO_SERVICE = {
    host = true, connection = true, ["content-length"] = true, ["transfer-encoding"] = true,
    te = true, upgrade = true, ["keep-alive"] = true, expect = true,
    ["x-forwarded-method"] = true, ["x-forwarded-proto"] = true, ["x-forwarded-host"] = true,
    ["x-forwarded-uri"] = true, ["x-forwarded-for"] = true,
}

function _M.forward_auth(v)
    if not is_object(v) then
        return nil, "forward_auth must be an object"
    end
    local url = field(v, "url")
    if url == nil then
        return nil, "forward_auth.url is required"
    end
    local u = forward_url(url)
    if not u then
        return nil, "forward_auth.url must be http://ip:port/path"
    end
    local req, err = header_names(field(v, "request_headers"), "forward_auth.request_headers",
                                  16, REFUSED_TO_SERVICE, {"Authorization", "Cookie"})
    if not req then
        return nil, err
    end
    local resp
    resp, err = header_names(field(v, "response_headers"), "forward_auth.response_headers", 16,
                             REFUSED_FROM_SERVICE, {})
    if not resp then
        return nil, err
    end
    local f = {kind = "forward", host = u.connect, port = u.port, path = u.path,
               host_header = u.host .. ":" .. u.port, request = req, response = resp,
               request_vars = {}, response_low = {}}
    for i = 1, #req do
        f.request_vars[i] = check.header_var(req[i])
    end
    for i = 1, #resp do
        f.response_low[i] = str_lower(resp[i])
    end
    for _, spec in ipairs({{"cache_s", 0, 300, 0}, {"timeout_ms", 1, 10000, 1000}}) do
        local n = field(v, spec[1])
        if n == nil then
            n = spec[4]
        elseif not is_integer(n) or n < spec[2] or n > spec[3] then
            return nil, "forward_auth." .. spec[1] .. " must be an integer " .. spec[2] .. "-"
                .. spec[3]
        end
        f[spec[1]] = n
    end
    local open = field(v, "fail_open")
    if open ~= nil and type(open) ~= "boolean" then
        return nil, "forward_auth.fail_open must be a boolean"
    end
    f.fail_open = open or false
    return f
end

return _M
