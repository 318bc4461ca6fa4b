-- A route's action and options (docs/traffic-policies.md, "Route fields"), decoded and
-- compiled ONCE, when the route document is decoded, into a per-route plan that the
-- request path (switchyard.route.exec) only reads.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The regex compile check is injected (the
-- same regex_check doc.decode_route receives). Never yields; never raises on bad input.
--
-- decode(obj, match, path, id, regex_check) -> upstream, plan  or  nil, err
--   upstream: the route's plain `upstream` name, or false (split / redirect routes)
--   plan:     nil for a route with an upstream and no option at all (the request path then
--             costs one field check), else a table:
--     refs       upstream names the route uses (upstream, split, canary), for warnings
--     resp       {remove = {names}, set = {{name, value}...}}  response_headers
--     guard      true when deny, allow, rate_limit or authentication is set (checked
--                before https_redirect)
--     deny, allow   switchyard.route.cidr sets
--     rate       {interval, tolerance, var, prefix}: var is the ngx.var holding the key
--                ("binary_remote_addr" or "http_<name>"), prefix the dict key prefix
--     redirect   {location, status, keep_path}: location without a trailing "/" when
--                keep_path (the request URI starts with one)
--     max_body   bytes
--     canary     {upstream, header_var, cookie_var, value}
--     split      {n, names, cum (cumulative weights), total, sticky}: sticky =
--                {cookie_var, live = {name -> true for weight > 0}, cookies = {name ->
--                complete Set-Cookie value}}
--     rewrite    {kind = "strip"|"replace"|"regex", len (route path length), to, regex,
--                replacement}
--     req        {remove = {names}, set = {{name, value}...}, host}  request_headers
--                (host: a "Host" to set, sent upstream via $sy_host_set, not set_header;
--                host or host:port, as the controller accepts it)
--     timeouts   {connect, send, read} in seconds (absent ones nil)
--     gzip       {min (bytes), types = {media type -> true}}
--     pages      error_pages: {[status] = {body, ctype} | {location}} (switchyard.request.reply)
--     auth       basic_auth, jwt or forward_auth (switchyard.auth.fields; one per route),
--                checked in the guard step
--     cors       {any (origins ["*"]), origins = {origin -> true}, credentials, methods,
--                headers, expose (header values, nil when empty), max_age (a string)}
-- Errors name the field ("split[2].weight must be an integer 0-1000").

local check = require "switchyard.util.check"
local cidr = require "switchyard.route.cidr"
local auth_fields = require "switchyard.auth.fields"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local str_match = string.match
local str_lower = string.lower
local str_find = string.find
local str_sub = string.sub
local str_format = string.format

local is_integer = check.is_integer
local header_var = check.header_var

local _M = {}

local MAX_HEADERS = 32
local MAX_TOKEN = 256
local MAX_CIDRS = 256
local MAX_TTL = 31536000
local MAX_BODY = 104857600
_M.MAX_BODY = MAX_BODY

local REFUSED_REQUEST = {
    connection = true, upgrade = true, ["keep-alive"] = true, te = true,
    ["transfer-encoding"] = true, ["content-length"] = true, ["x-forwarded-for"] = true,
    ["x-forwarded-proto"] = true, ["x-forwarded-host"] = true, ["x-real-ip"] = true,
}
local REFUSED_RESPONSE = {
    connection = true, ["keep-alive"] = true, ["transfer-encoding"] = true,
    ["content-length"] = true, upgrade = true, trailer = true,
}
local REDIRECT_STATUS = {[301] = true, [302] = true, [303] = true, [307] = true, [308] = true}

-- fields that need an upstream: refused on redirect routes
local NEEDS_UPSTREAM = {"upstream", "split", "split_sticky", "canary", "rewrite",
                        "request_headers", "timeouts", "max_body_bytes", "gzip"}

-- JSON null counts as absent
local field = check.member

-- header and cookie names: tokens of at most 256 bytes unless said otherwise
local function is_token(s, max)
    return check.is_token(s, max or MAX_TOKEN)
end

local is_array = check.is_array

local is_object = check.is_object

-- upstream names as the controller allows them (Sources/SwitchyardCore/Model/Names.swift):
-- not "." or "..", which API URLs cannot name
local function is_name(v)
    return type(v) == "string" and v ~= "" and #v <= 63 and not str_find(v, "[^a-z0-9%._%-]")
        and v ~= "." and v ~= ".."
end
_M.is_name = is_name

-- A port as the controller accepts it: 1-65535, no leading zeros.
local function is_port(p)
    return #p <= 5 and str_find(p, "^[1-9]%d*$") ~= nil and tonumber(p) <= 65535
end
_M.is_port = is_port

-- A host name as the controller accepts it (HostNames.canonical, no wildcard): ASCII
-- letters, digits, hyphens and dots, at most 253 bytes, labels of 1-63 bytes that neither
-- start nor end with a hyphen, no trailing dot.
local function is_host_name(h)
    if h == "" or #h > 253 or str_find(h, "[^%w%-%.]") then
        return false
    end
    for label in (h .. "."):gmatch("([^.]*)%.") do
        if label == "" or #label > 63 or str_sub(label, 1, 1) == "-"
            or str_sub(label, -1) == "-" then
            return false
        end
    end
    return true
end

-- A Host to send upstream: host or host:port, host a name or an [IPv6 address]
-- (Sources/SwitchyardCore/Model/Names.swift, hostHeaderProblem).
local function is_host_header(v)
    local host, port
    if str_sub(v, 1, 1) == "[" then
        local inner, rest = str_match(v, "^%[([^%]]*)%](.*)$")
        if not inner or not cidr.parse_v6(inner, true) then
            return false
        end
        if rest ~= "" then
            port = str_match(rest, "^:(.*)$")
            if not port then
                return false
            end
        end
    else
        host, port = str_match(v, "^([^:]*):(.*)$")
        if not host then
            host = v
        end
        if not is_host_name(host) then
            return false
        end
    end
    return port == nil or is_port(port)
end
_M.is_host_header = is_host_header

local function int_in(v, lo, hi)
    return is_integer(v) and v >= lo and v <= hi
end

local function headers(v, what, refused)
    if not is_object(v) then
        return nil, what .. " must be an object"
    end
    for k in pairs(v) do
        if k ~= "set" and k ~= "remove" then
            return nil, what .. ": unknown member \"" .. k .. "\" (want set, remove)"
        end
    end
    local out = {remove = {}, set = {}}
    local seen = {}
    local remove = field(v, "remove")
    if remove ~= nil then
        if not is_array(remove) then
            return nil, what .. ".remove must be an array of header names"
        end
        if #remove > MAX_HEADERS then
            return nil, what .. ".remove: at most " .. MAX_HEADERS .. " names"
        end
        for i = 1, #remove do
            local name = remove[i]
            if not is_token(name) then
                return nil, what .. ".remove[" .. (i - 1) .. "] must be a header name (a token)"
            end
            local low = str_lower(name)
            if refused[low] then
                return nil, what .. ".remove[" .. (i - 1) .. "]: \"" .. name
                    .. "\" is owned by the edge"
            end
            if seen[low] then
                return nil, what .. ".remove[" .. (i - 1) .. "]: \"" .. name .. "\" is listed twice"
            end
            seen[low] = "remove"
            out.remove[#out.remove + 1] = name
        end
    end
    local set = field(v, "set")
    if set ~= nil then
        if not is_object(set) then
            return nil, what .. ".set must be an object of header name -> value"
        end
        local names = {}
        for name in pairs(set) do
            names[#names + 1] = name
        end
        table.sort(names)
        if #names > MAX_HEADERS then
            return nil, what .. ".set: at most " .. MAX_HEADERS .. " names"
        end
        for i = 1, #names do
            local name = names[i]
            local value = set[name]
            if not is_token(name) then
                return nil, what .. ".set: \"" .. name .. "\" is not a header name (a token)"
            end
            local low = str_lower(name)
            if refused[low] then
                return nil, what .. ".set: \"" .. name .. "\" is owned by the edge"
            end
            if seen[low] == "remove" then
                return nil, what .. ": \"" .. name .. "\" is both in set and remove"
            elseif seen[low] then
                return nil, what .. ".set: \"" .. name .. "\" is listed twice"
            end
            seen[low] = "set"
            if type(value) ~= "string" or str_find(value, "%c") or #value > 4096 then
                return nil, what .. ".set." .. name
                    .. " must be a string without control characters (at most 4096 bytes)"
            end
            if low == "host" and refused == REFUSED_REQUEST then
                -- sent upstream through $sy_host_set: $host and X-Forwarded-Host keep the
                -- client's
                if not is_host_header(value) then
                    return nil, what .. ".set." .. name .. " must be host or host:port (a host"
                        .. " name or [IPv6 address], port 1-65535)"
                end
                out.host = value
            else
                out.set[#out.set + 1] = {name, value}
            end
        end
    end
    if #out.remove == 0 and #out.set == 0 and not out.host then
        return false
    end
    return out
end

local function cidrs(v, what)
    if not is_array(v) then
        return nil, what .. " must be an array of addresses or CIDRs"
    end
    if #v > MAX_CIDRS then
        return nil, what .. ": at most " .. MAX_CIDRS .. " entries"
    end
    if #v == 0 then
        return false
    end
    return cidr.new_set(v, what)
end

local function rate_limit(v, id)
    if not is_object(v) then
        return nil, "rate_limit must be an object"
    end
    local rps = field(v, "rps")
    if not int_in(rps, 1, 100000) then
        return nil, "rate_limit.rps must be an integer 1-100000"
    end
    local burst = field(v, "burst")
    if burst == nil then
        burst = 0
    elseif not int_in(burst, 0, 100000) then
        return nil, "rate_limit.burst must be an integer 0-100000"
    end
    local key = field(v, "key")
    local var = "binary_remote_addr"
    if key == nil or key == "ip" then
        key = "ip"
    elseif type(key) == "string" and str_sub(key, 1, 7) == "header:"
        and is_token(str_sub(key, 8)) then
        var = header_var(str_sub(key, 8))
    else
        return nil, "rate_limit.key must be \"ip\" or \"header:NAME\""
    end
    return {
        interval = 1 / rps,
        tolerance = burst / rps,
        var = var,
        prefix = id .. "\0" .. key .. "\0",
    }
end

local function url_ok(s)
    return not str_find(s, "[%c ]")
end

local function redirect(v)
    if not is_object(v) then
        return nil, "redirect must be an object"
    end
    local to = field(v, "to")
    if type(to) ~= "string" or #to > 2048 or not url_ok(to) then
        return nil, "redirect.to must be an http(s):// URL or a path starting with \"/\""
    end
    -- an absolute URL with a host, or a path; "//host" would be a redirect to another site
    local rest = to:match("^[Hh][Tt][Tt][Pp][Ss]?://(.*)$")
    if rest then
        if rest == "" or str_find(rest, "^[/?#]") then
            return nil, "redirect.to has no host after the scheme"
        end
    elseif str_sub(to, 1, 1) ~= "/" or str_sub(to, 1, 2) == "//" then
        return nil, "redirect.to must be an http(s):// URL or a path starting with a single \"/\""
    end
    local status = field(v, "status")
    if status == nil then
        status = 301
    elseif not REDIRECT_STATUS[status] then
        return nil, "redirect.status must be 301, 302, 303, 307 or 308"
    end
    local keep = field(v, "keep_path")
    if keep == nil then
        keep = false
    elseif type(keep) ~= "boolean" then
        return nil, "redirect.keep_path must be true or false"
    end
    local location = to
    if keep and str_sub(location, -1) == "/" then
        location = str_sub(location, 1, -2)   -- the request URI brings its own "/"
    end
    return {location = location, status = status, keep_path = keep}
end

local function split(v)
    if not is_array(v) or #v < 2 or #v > 10 then
        return nil, "split must be an array of 2-10 {upstream, weight} entries"
    end
    local s = {n = #v, names = {}, weights = {}, cum = {}, total = 0}
    local seen = {}
    for i = 1, #v do
        local e = v[i]
        local where = "split[" .. (i - 1) .. "]"
        if not is_object(e) then
            return nil, where .. " must be an object"
        end
        local name = field(e, "upstream")
        if not is_name(name) then
            return nil, where .. ".upstream must be an upstream name (a-z 0-9 . _ -, 1-63)"
        end
        if seen[name] then
            return nil, where .. ".upstream \"" .. name .. "\" appears twice"
        end
        seen[name] = true
        local w = field(e, "weight")
        if not int_in(w, 0, 1000) then
            return nil, where .. ".weight must be an integer 0-1000"
        end
        s.total = s.total + w
        s.names[i] = name
        s.weights[i] = w
        s.cum[i] = s.total
    end
    if s.total <= 0 then
        return nil, "split: the weights must add up to more than 0"
    end
    return s
end

local function split_sticky(v, s)
    if not is_object(v) then
        return nil, "split_sticky must be an object"
    end
    local cookie = field(v, "cookie")
    if cookie == nil then
        cookie = "sy_split"
    elseif not is_token(cookie, 64) then
        return nil, "split_sticky.cookie must be 1-64 characters of a token"
    end
    local ttl = field(v, "ttl_s")
    if ttl == nil then
        ttl = 3600
    elseif not int_in(ttl, 0, MAX_TTL) then
        return nil, "split_sticky.ttl_s must be an integer 0-" .. MAX_TTL
    end
    local attrs = "; Path=/" .. (ttl > 0 and str_format("; Max-Age=%d", ttl) or "")
        .. "; HttpOnly"
    local sticky = {cookie_var = "cookie_" .. cookie, live = {}, cookies = {}}
    for i = 1, s.n do
        local name = s.names[i]
        if s.weights[i] > 0 then
            sticky.live[name] = true
        end
        sticky.cookies[name] = cookie .. "=" .. name .. attrs
    end
    return sticky
end

local function canary(v)
    if not is_object(v) then
        return nil, "canary must be an object"
    end
    local up = field(v, "upstream")
    if not is_name(up) then
        return nil, "canary.upstream must be an upstream name (a-z 0-9 . _ -, 1-63)"
    end
    local c = {upstream = up}
    local header = field(v, "header")
    if header ~= nil then
        if not is_token(header) then
            return nil, "canary.header must be a header name (a token)"
        end
        c.header_var = header_var(header)
    end
    local cookie = field(v, "cookie")
    if cookie ~= nil then
        if not is_token(cookie, 64) then
            return nil, "canary.cookie must be a cookie name (a token)"
        end
        c.cookie_var = "cookie_" .. cookie
    end
    if not c.header_var and not c.cookie_var then
        return nil, "canary needs \"header\" and/or \"cookie\""
    end
    local value = field(v, "value")
    if value ~= nil then
        if type(value) ~= "string" or value == "" or str_find(value, "%c") then
            return nil, "canary.value must be a non-empty string without control characters"
        end
        c.value = value
    end
    return c
end

-- $n, ${n} (n of 1-3 digits) and $$ as the controller reads an ngx.re.sub template
-- (Rewrite.templateProblem); anything else after "$" is refused. Returns the highest group
-- number the template refers to (0 for none), or nil.
local function replacement_groups(s)
    local i, highest = 1, 0
    while true do
        local d = str_find(s, "$", i, true)
        if not d then
            return highest
        end
        if str_sub(s, d + 1, d + 1) == "$" then
            i = d + 2
        else
            local digits, close = str_match(s, "^{(%d+)()}", d + 1)
            if not digits then
                digits, close = str_match(s, "^(%d+)()", d + 1)
            else
                close = close + 1   -- past the "}"
            end
            if not digits or #digits > 3 then
                return nil
            end
            local n = tonumber(digits)
            if n > highest then
                highest = n
            end
            i = close
        end
    end
end

-- An upper bound of the capture groups of a PCRE pattern, from its text: every "(" that
-- is not escaped and not followed by "?" or "*", plus the named groups "(?<name>",
-- "(?'name'" and "(?P<name>". Never below PCRE's count (it may count a "(" in a character
-- class, a comment or \Q...\E, or a branch reset's groups twice), so a template it allows
-- may still be refused by the controller, never the other way round: used when the regex
-- engine does not say how many groups a pattern has (busted).
local function max_captures(re)
    local n, i, len = 0, 1, #re
    while i <= len do
        local c = str_sub(re, i, i)
        if c == "\\" then
            i = i + 1
        elseif c == "(" then
            local nxt = str_sub(re, i + 1, i + 1)
            if nxt ~= "?" and nxt ~= "*" then
                n = n + 1
            else
                local kind = str_sub(re, i + 2, i + 3)
                local k1 = str_sub(kind, 1, 1)
                if nxt == "?" and (k1 == "'" or kind == "P<"
                                   or (k1 == "<" and kind ~= "<=" and kind ~= "<!")) then
                    n = n + 1
                end
            end
        end
        i = i + 1
    end
    return n
end
_M.max_captures = max_captures

local function rewrite(v, match, path, regex_check)
    if not is_object(v) then
        return nil, "rewrite must be an object"
    end
    local forms = 0
    for k in pairs(v) do
        if k == "strip_prefix" or k == "replace_prefix" or k == "regex" then
            forms = forms + 1
        elseif k ~= "replacement" then
            return nil, "rewrite: unknown member \"" .. tostring(k) .. "\""
        end
    end
    if forms ~= 1 then
        return nil, "rewrite must have exactly one of strip_prefix, replace_prefix, regex"
    end
    local prefix_form = v.strip_prefix ~= nil or v.replace_prefix ~= nil
    if prefix_form and match == "regex" then
        return nil, "rewrite: strip_prefix and replace_prefix need an exact or prefix route"
    end
    if prefix_form and v.replacement ~= nil then
        return nil, "rewrite.replacement goes with rewrite.regex only"
    end
    if v.strip_prefix ~= nil then
        if v.strip_prefix ~= true then
            return nil, "rewrite.strip_prefix must be true"
        end
        return {kind = "strip", len = #path}
    end
    if v.replace_prefix ~= nil then
        local to = v.replace_prefix
        if type(to) ~= "string" or str_sub(to, 1, 1) ~= "/" or not url_ok(to) or #to > 2048 then
            return nil, "rewrite.replace_prefix must be a path starting with \"/\""
        end
        return {kind = "replace", len = #path, to = to,
                slash = str_sub(to, -1) == "/"}
    end
    local re = v.regex
    if type(re) ~= "string" or re == "" then
        return nil, "rewrite.regex must be a non-empty string"
    end
    if not regex_check then
        return nil, "rewrite.regex: no regex engine"
    end
    local ok, captures = regex_check(re)
    if not ok then
        return nil, "rewrite.regex is invalid: " .. tostring(captures)
    end
    if type(captures) ~= "number" then
        captures = max_captures(re)
    end
    local rep = v.replacement
    if type(rep) ~= "string" or str_sub(rep, 1, 1) ~= "/" or not url_ok(rep) or #rep > 2048 then
        return nil, "rewrite.replacement must be a path starting with \"/\""
    end
    local highest = replacement_groups(rep)
    if not highest then
        return nil, "rewrite.replacement: \"$\" must be followed by a group number, {n} or $"
    end
    if highest > captures then
        return nil, "rewrite.replacement refers to group " .. highest .. ", but rewrite.regex has "
            .. captures
    end
    return {kind = "regex", regex = re, replacement = rep}
end

local function timeouts(v)
    if not is_object(v) then
        return nil, "timeouts must be an object"
    end
    local t = {}
    local limits = {connect_ms = 60000, send_ms = 3600000, read_ms = 3600000}
    local names = {connect_ms = "connect", send_ms = "send", read_ms = "read"}
    local n = 0
    for k, hi in pairs(limits) do
        local ms = field(v, k)
        if ms ~= nil then
            if not int_in(ms, 1, hi) then
                return nil, "timeouts." .. k .. " must be an integer 1-" .. hi
            end
            t[names[k]] = ms / 1000
            n = n + 1
        end
    end
    if n == 0 then
        return nil, "timeouts needs at least one of connect_ms, send_ms, read_ms"
    end
    return t
end

-- cors (docs/traffic-policies.md, "CORS"): the controller's rules
-- (Sources/SwitchyardCore/Policies/CORS.swift); the header values are joined here, once.
local MAX_ORIGINS = 64
local MAX_CORS_NAMES = 32
local CORS_FIELDS = {origins = true, methods = true, headers = true, expose_headers = true,
                     credentials = true, max_age_s = true}

-- "http(s)://host[:port]" as a browser sends it: a lowercase host name or IPv4 address
local function is_origin(s)
    if #s > 300 then
        return false
    end
    local rest = str_match(s, "^https://(.*)$") or str_match(s, "^http://(.*)$")
    if not rest then
        return false
    end
    -- an IPv6 origin, as browsers write it: [lowercase hex], an optional port (the
    -- controller also wants the compressed form browsers send; one written otherwise
    -- never matches an Origin header, which does no harm here)
    local v6, after = str_match(rest, "^%[([0-9a-f:]+)%](.*)$")
    if v6 then
        if not cidr.parse_v6(v6, true) then
            return false
        end
        rest = after == "" and "" or str_match(after, "^:(.*)$")
        return rest ~= nil and (rest == "" or (str_find(rest, "^[1-9][0-9]?[0-9]?[0-9]?[0-9]?$")
                                               and tonumber(rest) <= 65535))
    end
    local host, port = str_match(rest, "^([^:]*):(.*)$")
    if host then
        if not str_find(port, "^[1-9][0-9]?[0-9]?[0-9]?[0-9]?$") or tonumber(port) > 65535 then
            return false
        end
    else
        host = rest
    end
    return host ~= "" and #host <= 253 and not str_find(host, "[^a-z0-9%.%-]")
        and str_sub(host, 1, 1) ~= "." and str_sub(host, -1) ~= "."
        and not str_find(host, "..", 1, true)
end

-- a list of strings of at most `max` entries, each passing ok(s), no duplicates (case-
-- insensitive); nil, err otherwise
local function cors_list(v, name, max, ok, what)
    if not is_array(v) then
        return nil, "cors." .. name .. " must be an array of strings"
    end
    if #v > max then
        return nil, "cors." .. name .. ": at most " .. max .. " entries"
    end
    local seen = {}
    for i = 1, #v do
        local s = v[i]
        if type(s) ~= "string" or not ok(s) then
            return nil, "cors." .. name .. "[" .. (i - 1) .. "] must be " .. what
        end
        local low = str_lower(s)
        if seen[low] then
            return nil, "cors." .. name .. "[" .. (i - 1) .. "] appears twice"
        end
        seen[low] = true
    end
    return v
end

local function is_method(s)
    return #s >= 1 and #s <= 32 and not str_find(s, "[^A-Z]")
end

local function is_header_name(s)
    return is_token(s, 128)
end

local function cors(v)
    if not is_object(v) then
        return nil, "cors must be an object"
    end
    for k in pairs(v) do
        if not CORS_FIELDS[k] then
            return nil, "cors: unknown member \"" .. k .. "\""
        end
    end
    local origins = field(v, "origins")
    if origins == nil then
        return nil, "cors.origins is required"
    end
    local err
    origins, err = cors_list(origins, "origins", MAX_ORIGINS,
                             function(s) return s == "*" or is_origin(s) end,
                             "\"*\" or an origin (http(s)://host[:port])")
    if not origins then
        return nil, err
    end
    if #origins == 0 then
        return nil, "cors.origins must name at least one origin, or [\"*\"]"
    end
    local c = {origins = {}}
    for i = 1, #origins do
        if origins[i] == "*" then
            if #origins > 1 then
                return nil, "cors.origins: \"*\" must be alone"
            end
            c.any = true
        else
            c.origins[origins[i]] = true
        end
    end
    local lists = {}
    for _, spec in ipairs({{"methods", is_method, "a method (A-Z)"},
                           {"headers", is_header_name, "a header name"},
                           {"expose_headers", is_header_name, "a header name"}}) do
        local name = spec[1]
        local list = field(v, name)
        if list ~= nil then
            list, err = cors_list(list, name, MAX_CORS_NAMES, spec[2], spec[3])
            if not list then
                return nil, err
            end
        end
        lists[name] = list
    end
    local methods = lists.methods or {"GET", "HEAD", "POST"}
    local allowed = lists.headers or {}
    local expose = lists.expose_headers or {}
    if #allowed > 1 then
        for i = 1, #allowed do
            if allowed[i] == "*" then
                return nil, "cors.headers: \"*\" must be alone"
            end
        end
    end
    local credentials = field(v, "credentials")
    if credentials == nil then
        credentials = false
    elseif type(credentials) ~= "boolean" then
        return nil, "cors.credentials must be a boolean"
    end
    if credentials and (c.any or allowed[1] == "*") then
        return nil, "cors.credentials cannot be true with origins or headers [\"*\"]"
    end
    local max_age = field(v, "max_age_s")
    if max_age == nil then
        max_age = 600
    elseif not int_in(max_age, 0, 86400) then
        return nil, "cors.max_age_s must be an integer 0-86400"
    end
    c.credentials = credentials or nil
    c.methods = table.concat(methods, ", ")
    c.headers = #allowed > 0 and table.concat(allowed, ", ") or nil
    c.expose = #expose > 0 and table.concat(expose, ", ") or nil
    c.max_age = tostring(max_age)
    return c
end

-- error_pages (docs/traffic-policies.md, "Error pages"; Sources/SwitchyardCore/Policies/
-- ErrorPages.swift): {[status] = {body, ctype} | {location}}. Also the edge's default
-- pages (switchyard edge --error-pages), read once at start by switchyard.startup.
local MAX_PAGES = 16
local MAX_PAGE_BODY = 16384
local PAGE_FIELDS = {body = true, content_type = true, redirect = true}

local function page_redirect_ok(to)
    if #to > 2048 or str_find(to, "[%z\1-\32\127]") or str_sub(to, 1, 2) == "//" then
        return false
    end
    if str_sub(to, 1, 1) == "/" then
        return true
    end
    local rest = str_match(to, "^https://(.*)$") or str_match(to, "^http://(.*)$")
    return rest ~= nil and rest ~= "" and str_sub(rest, 1, 1) ~= "/"
end

function _M.error_pages(v, what)
    what = what or "error_pages"
    if not is_object(v) then
        return nil, what .. " must be an object of status to page"
    end
    local out, n = {}, 0
    for k, page in pairs(v) do
        n = n + 1
        if not str_find(k, "^[45]%d%d$") then
            return nil, what .. ": \"" .. k .. "\" is not an error status (400-599)"
        end
        local at = what .. "." .. k
        if not is_object(page) then
            return nil, at .. " must be an object"
        end
        for m in pairs(page) do
            if not PAGE_FIELDS[m] then
                return nil, at .. ": unknown member \"" .. m .. "\""
            end
        end
        local body, to = field(page, "body"), field(page, "redirect")
        local ctype = field(page, "content_type")
        if body ~= nil and to ~= nil then
            return nil, at .. " is either a body or a redirect"
        elseif body ~= nil then
            if type(body) ~= "string" or #body > MAX_PAGE_BODY then
                return nil, at .. ".body must be a string of at most " .. MAX_PAGE_BODY .. " bytes"
            end
            if ctype == nil then
                ctype = "text/html; charset=utf-8"
            elseif type(ctype) ~= "string" or ctype == "" or #ctype > 4096
                    or str_find(ctype, "[%z\1-\31\127]") then
                return nil, at .. ".content_type must be a header value"
            end
            out[tonumber(k)] = {body = body, ctype = ctype}
        elseif to ~= nil then
            if ctype ~= nil then
                return nil, at .. ".content_type only applies with body"
            end
            if type(to) ~= "string" or not page_redirect_ok(to) then
                return nil, at .. ".redirect must be an http(s) URL or a path"
            end
            out[tonumber(k)] = {location = to}
        else
            return nil, at .. " needs body or redirect"
        end
    end
    if n == 0 or n > MAX_PAGES then
        return nil, what .. " must have 1-" .. MAX_PAGES .. " pages"
    end
    return out
end

-- gzip (docs/traffic-policies.md, "Compression"; Sources/SwitchyardCore/Policies/
-- Compression.swift)
local GZIP_TYPES = {"text/html", "text/css", "text/plain", "text/javascript",
                    "application/javascript", "application/json", "image/svg+xml"}

local function is_media_type(s)
    if type(s) ~= "string" or #s > 127 or str_lower(s) ~= s then
        return false
    end
    local a, b = str_match(s, "^([^/]*)/([^/]*)$")
    return a ~= nil and is_token(a, 127) and is_token(b, 127)
end

local function gzip(v)
    if not is_object(v) then
        return nil, "gzip must be an object"
    end
    local min = field(v, "min_bytes")
    if min == nil then
        min = 1024
    elseif not int_in(min, 0, MAX_BODY) then
        return nil, "gzip.min_bytes must be an integer 0-" .. MAX_BODY
    end
    local list = field(v, "types")
    if list == nil then
        list = GZIP_TYPES
    elseif not is_array(list) or #list == 0 or #list > 32 then
        return nil, "gzip.types must be an array of 1-32 media types"
    end
    local types = {}
    for i = 1, #list do
        local t = list[i]
        if not is_media_type(t) then
            return nil, "gzip.types[" .. (i - 1) .. "] must be a lowercase media type"
        end
        if types[t] then
            return nil, "gzip.types[" .. (i - 1) .. "] appears twice"
        end
        types[t] = true
    end
    return {min = min, types = types}
end

function _M.decode(obj, match, path, id, regex_check)
    local err
    local upstream = field(obj, "upstream")
    local split_v = field(obj, "split")
    local redirect_v = field(obj, "redirect")
    local actions = (upstream ~= nil and 1 or 0) + (split_v ~= nil and 1 or 0)
        + (redirect_v ~= nil and 1 or 0)
    if actions ~= 1 then
        return nil, actions == 0 and "missing field \"upstream\" (or \"split\" or \"redirect\")"
            or "a route has exactly one of \"upstream\", \"split\" and \"redirect\""
    end
    if upstream ~= nil and not is_name(upstream) then
        return nil, "field \"upstream\" must be an upstream name (a-z 0-9 . _ -, 1-63)"
    end
    if redirect_v ~= nil then
        for i = 1, #NEEDS_UPSTREAM do
            if field(obj, NEEDS_UPSTREAM[i]) ~= nil then
                return nil, "field \"" .. NEEDS_UPSTREAM[i] .. "\" is not allowed with redirect"
            end
        end
    end
    if field(obj, "split_sticky") ~= nil and split_v == nil then
        return nil, "field \"split_sticky\" needs \"split\""
    end

    local plan = {refs = {}}
    local any = false
    if upstream ~= nil then
        plan.refs[1] = upstream
    end
    if split_v ~= nil then
        plan.split, err = split(split_v)
        if not plan.split then
            return nil, err
        end
        for i = 1, plan.split.n do
            plan.refs[#plan.refs + 1] = plan.split.names[i]
        end
        local sticky = field(obj, "split_sticky")
        if sticky ~= nil then
            plan.split.sticky, err = split_sticky(sticky, plan.split)
            if not plan.split.sticky then
                return nil, err
            end
        end
        any = true
    end
    if redirect_v ~= nil then
        plan.redirect, err = redirect(redirect_v)
        if not plan.redirect then
            return nil, err
        end
        any = true
    end
    local v = field(obj, "canary")
    if v ~= nil then
        plan.canary, err = canary(v)
        if not plan.canary then
            return nil, err
        end
        local dup = false
        for i = 1, #plan.refs do
            dup = dup or plan.refs[i] == plan.canary.upstream
        end
        if not dup then
            plan.refs[#plan.refs + 1] = plan.canary.upstream
        end
        any = true
    end
    v = field(obj, "rewrite")
    if v ~= nil then
        plan.rewrite, err = rewrite(v, match, path, regex_check)
        if not plan.rewrite then
            return nil, err
        end
        any = true
    end
    v = field(obj, "request_headers")
    if v ~= nil then
        local h
        h, err = headers(v, "request_headers", REFUSED_REQUEST)
        if h == nil then
            return nil, err
        end
        plan.req = h or nil
        any = any or h ~= false
    end
    v = field(obj, "response_headers")
    if v ~= nil then
        local h
        h, err = headers(v, "response_headers", REFUSED_RESPONSE)
        if h == nil then
            return nil, err
        end
        plan.resp = h or nil
        any = any or h ~= false
    end
    v = field(obj, "timeouts")
    if v ~= nil then
        plan.timeouts, err = timeouts(v)
        if not plan.timeouts then
            return nil, err
        end
        any = true
    end
    v = field(obj, "max_body_bytes")
    if v ~= nil then
        if not int_in(v, 0, MAX_BODY) then
            return nil, "field \"max_body_bytes\" must be an integer 0-" .. MAX_BODY
        end
        plan.max_body = v
        any = true
    end
    v = field(obj, "rate_limit")
    if v ~= nil then
        plan.rate, err = rate_limit(v, id)
        if not plan.rate then
            return nil, err
        end
        any = true
    end
    for _, name in pairs({"deny", "allow"}) do
        v = field(obj, name)
        if v ~= nil then
            local set
            set, err = cidrs(v, name)
            if set == nil then
                return nil, err
            end
            plan[name] = set or nil
            any = any or set ~= false
        end
    end
    v = field(obj, "gzip")
    if v ~= nil then
        plan.gzip, err = gzip(v)
        if not plan.gzip then
            return nil, err
        end
        any = true
    end
    v = field(obj, "error_pages")
    if v ~= nil then
        plan.pages, err = _M.error_pages(v)
        if not plan.pages then
            return nil, err
        end
        any = true
    end
    v = field(obj, "cors")
    if v ~= nil then
        plan.cors, err = cors(v)
        if not plan.cors then
            return nil, err
        end
        any = true
    end
    -- authentication: one of basic_auth, jwt, forward_auth
    local n_auth = 0
    for _, kind in ipairs({"basic_auth", "jwt", "forward_auth"}) do
        v = field(obj, kind)
        if v ~= nil then
            n_auth = n_auth + 1
            if n_auth > 1 then
                return nil, "a route has one authentication: basic_auth, jwt or forward_auth"
            end
            plan.auth, err = auth_fields[kind](v, id)
            if not plan.auth then
                return nil, err
            end
            any = true
        end
    end
    plan.guard = (plan.deny or plan.allow or plan.rate or plan.auth) and true or nil
    if upstream ~= nil and not any then
        return upstream, nil
    end
    return upstream or false, plan
end

return _M
