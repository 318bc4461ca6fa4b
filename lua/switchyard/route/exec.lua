-- A route's options on the request path (docs/traffic-policies.md, "Request order"): reads
-- the plan switchyard.route.policy compiled when the route was decoded. Only routes WITH
-- options come here (route.plan ~= nil); switchyard.request.access calls:
--
--   guard(plan, var)          1-2: deny, allow (403), rate_limit (429 + Retry-After),
--                             authentication (401 + WWW-Authenticate, forward_auth's
--                             403/503: switchyard.auth;
--                             a CORS preflight on a cors route skips it: browsers send
--                             no credentials with one); before https_redirect. Returns
--                             nil, or status, body.
--   apply(plan, var, ctx, again)  3-8: redirect, max_body_bytes (413), canary, split (+
--                             sticky cookie), rewrite, request_headers, timeouts
--                             (ctx.sy_timeouts for balance()). Returns the upstream name,
--                             or nil, status, body when the edge answers itself.
--                             again: a later pass after ngx.exec to @sy_full or
--                             @sy_https_verified ($sy_done; ngx.ctx is new, $uri already
--                             rewritten, headers already set, the request already
--                             counted and admitted).
--   response_headers(resp)    9: header_filter: remove, then set.
--   cors(c, var, ctx)         after the guard: a preflight from an allowed origin is
--                             answered here (204, true); from another origin 403 (true);
--                             any other request notes the origin's answer for the header
--                             filter (ctx.sy_cors, ctx.sy_cors_origin).
--   cors_headers(c, origin)   header_filter: the Access-Control-* headers and Vary.
--   gzip_filter(gz)           header_filter of @sy_gzip: a response of another type, or
--                             shorter than min (Content-Length), is not compressed.
--
-- Table lookups, ngx.var reads and at most a few short strings per request; a body without
-- Content-Length is read (ngx.req.read_body) only for routes with max_body_bytes.
-- A later pass takes the canary's or split's choice from $sy_pick (and re-queues the
-- split's sticky cookie, $sy_pick_cookie) instead of choosing again, so a request stays on
-- the upstream it was sent on for.

local cidr = require "switchyard.route.cidr"
local ratelimit = require "switchyard.route.ratelimit"
local redirect = require "switchyard.route.redirect"
local vars = require "switchyard.request.vars"
local logsafe = require "switchyard.util.logsafe"
local C_COOKIES = vars.ctx.cookies
local C_TIMEOUTS = vars.ctx.timeouts
local V_PICK = vars.var.pick
local V_PICK_COOKIE = vars.var.pick_cookie
local V_HOST_SET = vars.var.host_set
local C_CORS, C_CORS_ORIGIN = vars.ctx.cors, vars.ctx.cors_origin

local ngx = ngx
local ngx_req = ngx.req
local ngx_now = ngx.now
local ngx_re_sub = ngx.re.sub
local ngx_log = ngx.log
local ERR = ngx.ERR
local tonumber = tonumber
local type = type
local math_random = math.random
local str_sub = string.sub
local str_match = string.match
local str_lower = string.lower
local contains = cidr.contains
local rate_check = ratelimit.check
local redirect_location = redirect.location

local _M = {}

local BODY_FORBIDDEN = "forbidden\n"
local BODY_TOO_MANY = "too many requests\n"
local BODY_REDIRECT = "redirecting\n"
local BODY_TOO_LARGE = "request body too large\n"
local BODY_CORS_REFUSED = "origin not allowed\n"
local MAX_KEY = 256

local limits   -- ngx.shared.sy_ratelimit
local auth_checks = {}   -- auth kind -> check(auth, var), required when first used

-- basic_auth, jwt and forward_auth (switchyard.auth.basic, .jwt, .forward) are loaded when
-- a route first uses them (libcrypt is loaded only then)
local function auth_check(a, var)
    local check = auth_checks[a.kind]
    if not check then
        local kind = a.kind
        if kind == "basic" then
            check = require("switchyard.auth.basic").check
        elseif kind == "jwt" then
            check = require("switchyard.auth.jwt").check
        else
            check = require("switchyard.auth.forward").check
        end
        auth_checks[a.kind] = check
    end
    return check(a, var)
end

-- The allow/deny verdict for a client address (binary, as $binary_remote_addr): nil
-- when admitted, else "deny" (in the deny list) or "allow" (not in the allow list).
-- guard() and the explain handler share it.
local function refused_by(plan, addr)
    local deny, allow = plan.deny, plan.allow
    if deny and contains(deny, addr) then
        return "deny"
    end
    if allow and not contains(allow, addr) then
        return "allow"
    end
    return nil
end
_M.refused_by = refused_by

function _M.guard(plan, var)
    if (plan.deny or plan.allow) and refused_by(plan, var.binary_remote_addr) then
        return 403, BODY_FORBIDDEN
    end
    local rate = plan.rate
    if rate then
        if not limits then
            limits = ngx.shared.sy_ratelimit
            if not limits then
                ngx_log(ERR, "[switchyard] lua_shared_dict sy_ratelimit is missing: "
                        .. "rate limits are not enforced")
                return nil
            end
        end
        local key = var[rate.var] or ""
        if #key > MAX_KEY then
            key = ngx.md5(key)
        end
        local ok, retry = rate_check(limits, rate.prefix .. key, ngx_now(), rate.interval,
                                     rate.tolerance)
        if not ok then
            ngx.header["Retry-After"] = retry
            return 429, BODY_TOO_MANY
        end
    end
    local a = plan.auth
    if a and not (plan.cors and var.request_method == "OPTIONS"
                  and var.http_access_control_request_method and var.http_origin) then
        return auth_check(a, var)
    end
    return nil
end

-- the body's size: Content-Length, else read and measured (chunked HTTP/1.1, or HTTP/2
-- without content-length; read_body returns at once when there is no body)
local function body_size(var)
    local len = var.http_content_length
    if len then
        return tonumber(len) or 0
    end
    ngx_req.read_body()
    local data = ngx_req.get_body_data()
    if data then
        return #data
    end
    local path = ngx_req.get_body_file()
    if not path then
        return 0
    end
    local f = io.open(path, "rb")
    if not f then
        return 0
    end
    local size = f:seek("end")
    f:close()
    return size or 0
end

-- The URI a rewrite makes of uri, or nil when it leaves it as it is (and for a regex
-- that fails, logged). rewrite() and the explain handler share it.
local function rewritten(rw, uri)
    local new
    local kind = rw.kind
    if kind == "strip" then
        new = str_sub(uri, rw.len + 1)
        if str_sub(new, 1, 1) ~= "/" then
            new = "/" .. new
        end
    elseif kind == "replace" then
        local rest = str_sub(uri, rw.len + 1)
        if rw.slash and str_sub(rest, 1, 1) == "/" then
            rest = str_sub(rest, 2)
        end
        new = rw.to .. rest
    else
        local n, err
        new, n, err = ngx_re_sub(uri, rw.regex, rw.replacement, "jo")
        if not new then
            -- the URI is the client's, decoded (%0A is a newline): escaped
            ngx_log(ERR, "[switchyard] rewrite of \"", logsafe.escape(uri), "\" failed: ", err)
            return nil
        end
        if n == 0 then
            return nil
        end
    end
    if new ~= uri then
        return new
    end
    return nil
end
_M.rewritten = rewritten

local function rewrite(rw, var)
    local new = rewritten(rw, var.uri)
    if new then
        ngx_req.set_uri(new, false)
    end
end

-- Whether the request goes to the canary: its header (or else its cookie) has the value
-- (any non-empty value without one). apply() and the explain handler share it.
local function canary_hit(c, var)
    local want = c.value
    if c.header_var then
        local v = var[c.header_var]
        if v and (want and v == want or not want and v ~= "") then
            return true
        end
    end
    if c.cookie_var then
        local v = var[c.cookie_var]
        if v and (want and v == want or not want and v ~= "") then
            return true
        end
    end
    return false
end
_M.canary_hit = canary_hit

function _M.apply(plan, var, ctx, again)
    local r = plan.redirect
    if r then
        -- keep_path: the request's path and query after `to`, never "//host"
        -- (switchyard.route.redirect)
        ngx.header["Location"] = redirect_location(r, r.keep_path and var.request_uri)
        return nil, r.status, BODY_REDIRECT
    end
    local max = plan.max_body
    if max and not again and body_size(var) > max then
        return nil, 413, BODY_TOO_LARGE
    end
    local name
    if again then
        -- the first pass's choice ($sy_pick, set below): a split is not drawn twice
        name = var[V_PICK]   -- nil when nothing was chosen (never set: edge.nginx.conf)
        if name and name ~= "" then
            local s = plan.split
            if s and s.sticky and var[V_PICK_COOKIE] == "1" then
                ctx[C_COOKIES] = {s.sticky.cookies[name]}
            end
        else
            name = nil
        end
    end
    local c = not name and plan.canary
    if c then
        name = canary_hit(c, var) and c.upstream or nil
        if name and not again then
            -- kept for a later pass: request_headers (below) may change what it read
            var[V_PICK] = name
        end
    end
    if not name then
        local s = plan.split
        if s then
            local sticky = s.sticky
            local chosen
            if sticky then
                chosen = var[sticky.cookie_var]
                if chosen and not sticky.live[chosen] then
                    chosen = nil
                end
            end
            if not chosen then
                local x = math_random() * s.total
                local cum, names = s.cum, s.names
                for i = 1, s.n do
                    if x < cum[i] then
                        chosen = names[i]
                        break
                    end
                end
                chosen = chosen or names[s.n]
                if sticky then
                    local cookies = ctx[C_COOKIES]
                    if cookies then
                        cookies[#cookies + 1] = sticky.cookies[chosen]
                    else
                        ctx[C_COOKIES] = {sticky.cookies[chosen]}
                    end
                end
            end
            name = chosen
            if not again then
                -- kept for a later pass in @sy_full or @sy_https_verified (ngx.ctx does
                -- not survive ngx.exec; variables do)
                var[V_PICK] = chosen
                if sticky and ctx[C_COOKIES] then
                    var[V_PICK_COOKIE] = "1"
                end
            end
        end
    end
    if not again then
        local rw = plan.rewrite
        if rw then
            rewrite(rw, var)
        end
        local h = plan.req
        if h then
            local remove, set = h.remove, h.set
            for i = 1, #remove do
                ngx_req.clear_header(remove[i])
            end
            for i = 1, #set do
                local kv = set[i]
                ngx_req.set_header(kv[1], kv[2])
            end
            if h.host then
                var[V_HOST_SET] = h.host
            end
        end
    end
    local t = plan.timeouts
    if t then
        ctx[C_TIMEOUTS] = t
    end
    return name
end

-- The Access-Control-Allow-Origin value for this request: "*" (any origin, without
-- credentials), the request's Origin when listed, or nil.
local function cors_origin(c, var)
    if c.any then
        return "*"
    end
    local origin = var.http_origin
    if origin and c.origins[origin] then
        return origin
    end
    return nil
end
_M.cors_origin = cors_origin

-- Vary: Origin added to what the response has (listed origins only: with "*" every
-- response carries the same header)
local function vary_origin(header)
    local vary = header["Vary"]
    if vary == nil then
        header["Vary"] = "Origin"
    elseif type(vary) == "table" then
        vary[#vary + 1] = "Origin"
        header["Vary"] = vary
    else
        header["Vary"] = vary .. ", Origin"
    end
end

function _M.cors(c, var, ctx)
    if var.request_method == "OPTIONS" and var.http_access_control_request_method
            and var.http_origin then
        -- a preflight: answered here, never sent upstream
        local header = ngx.header
        if not c.any then
            vary_origin(header)
        end
        local origin = cors_origin(c, var)
        if not origin then
            return 403, BODY_CORS_REFUSED
        end
        header["Access-Control-Allow-Origin"] = origin
        if c.credentials then
            header["Access-Control-Allow-Credentials"] = "true"
        end
        header["Access-Control-Allow-Methods"] = c.methods
        if c.headers then
            header["Access-Control-Allow-Headers"] = c.headers
        end
        header["Access-Control-Max-Age"] = c.max_age
        return 204
    end
    ctx[C_CORS] = c
    ctx[C_CORS_ORIGIN] = cors_origin(c, var)
    return nil
end

function _M.cors_headers(c, origin)
    local header = ngx.header
    -- the edge owns these on a route with cors: the upstream's own are replaced
    header["Access-Control-Allow-Origin"] = origin
    header["Access-Control-Allow-Credentials"] = origin and c.credentials and "true" or nil
    header["Access-Control-Expose-Headers"] = origin and c.expose or nil
    if not c.any then
        vary_origin(header)
    end
end

-- nginx's gzip filter in @sy_gzip compresses any type of any length (gzip_types *,
-- gzip_min_length 0) for a client that accepts gzip, unless the upstream encoded the
-- response already; it reads the request's Accept-Encoding after this header filter, so
-- removing it leaves the response alone. That keeps a route's types and min_bytes out of
-- nginx.conf: a change needs no reload.
function _M.gzip_filter(gz)
    local header = ngx.header
    local ctype = header["Content-Type"]
    local want = false
    if type(ctype) == "string" then
        local t = str_match(ctype, "^%s*([^;%s]+)")
        want = t ~= nil and gz.types[str_lower(t)] == true
    end
    if want and gz.min > 0 then
        local len = tonumber(header["Content-Length"])
        if len and len < gz.min then
            want = false
        end
    end
    if not want then
        ngx_req.clear_header("Accept-Encoding")
    end
end

function _M.response_headers(resp)
    local header = ngx.header
    local remove, set = resp.remove, resp.set
    for i = 1, #remove do
        header[remove[i]] = nil
    end
    for i = 1, #set do
        local kv = set[i]
        header[kv[1]] = kv[2]
    end
end

return _M
