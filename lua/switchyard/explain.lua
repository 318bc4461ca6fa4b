-- GET /_switchyard/explain?url=...&method=GET&header=Name:value&client=10.0.0.1 (content
-- handler; loopback clients on the traffic listener, and the metrics listener): which
-- route this worker would serve the request with, and why, in JSON (the contract:
-- docs/metrics.md does not hold it; lua/README.md, "Explain").
--
-- No second implementation: the route is this worker's router:match() (the same call
-- access() makes), the explanation router:explain() (the same lookups, checked against
-- match() in route/explain_spec.lua; "explain_agrees" says so per answer), the options
-- the plan's own functions (route/exec: refused_by, canary_hit, rewritten; route/redirect,
-- tls/fields), in the order serve() runs them. Reads this worker's tables; never yields,
-- never changes anything (a rate limit is described, not charged).

local worker = require "switchyard.worker"
local changelog = require "switchyard.shm.changelog"
local hostcheck = require "switchyard.route.hostcheck"
local route_exec = require "switchyard.route.exec"
local redirect = require "switchyard.route.redirect"
local cidr = require "switchyard.route.cidr"
local tls_fields = require "switchyard.tls.fields"
local health_mod = require "switchyard.health.rotation"
local urlnorm = require "switchyard.route.urlnorm"
local cjson = require "cjson.safe"

local ngx = ngx
local pairs = pairs
local ipairs = ipairs
local type = type
local str_lower = string.lower
local str_gsub = string.gsub
local str_match = string.match

local _M = {}

_M.MAX_CANDIDATES = 200
_M.MAX_HEADERS = 50

-- a list, also when empty: cjson without array_mt encodes an empty table as {}; an
-- empty list is swapped for a marker, which the encoded text turns into [] (no value of
-- the answer can hold the marker: it has NUL bytes, refused in every input)
local EMPTY = "\0[]\0"
local EMPTY_PATTERN = ('"\\u0000[]\\u0000"'):gsub("%p", "%%%0")
local function arr(t)
    if cjson.array_mt then
        setmetatable(t, cjson.array_mt)
    end
    return t
end
local function list(t)
    if #t == 0 and not cjson.array_mt then
        return EMPTY
    end
    return t
end
local function encode(body)
    local text = cjson.encode(body)
    if text and not cjson.array_mt then
        text = text:gsub(EMPTY_PATTERN, "[]")
    end
    return text
end

local function bad(field, reason)
    ngx.status = 400
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({error = reason, field = field}))
end

local function endpoint_view(up)
    local policy = up.policy or {}
    local down = policy.check and up.fresh and health_mod.decode_down(up.health_raw) or nil
    local pdown = (policy.max_fails or 0) > 0 and worker.passive.down[up.name] or nil
    local now = ngx.now()
    local out = arr({})
    for _, ep in ipairs(up.endpoints) do
        local addr = ep.address
        local health, why = "unknown", cjson.null
        if down and down[addr] and ep.checked ~= false then
            health, why = "down", "prober"
        elseif pdown and (pdown[addr] or 0) > now then
            health, why = "down", "passive"
        elseif policy.check and up.fresh and ep.checked ~= false then
            health = "up"
        end
        out[#out + 1] = {
            address = addr,
            weight = ep.weight,
            health = health,
            why = why,
            -- every endpoint serves when all are down and on_all_down is fail_open
            in_rotation = (health ~= "down" or (up.all_down and not up.unavailable)) and true
                or false,
        }
    end
    return out
end

local function upstream_view(name)
    local up = worker.upstreams[name]
    if not up then
        return {name = name, missing = true, endpoints = arr({})}
    end
    local b = up.balancing
    return {
        name = name,
        balance = b and b.balance or "round_robin",
        on_all_down = (up.policy and up.policy.all_down_503) and "503" or "fail_open",
        all_down = up.all_down or false,
        protocol = up.grpc or "http",   -- "grpc"/"grpcs": served from the gRPC locations
        endpoints = endpoint_view(up),
    }
end

-- request headers and cookies as the variables the plan reads (http_x_canary, cookie_a)
local function request_vars(headers, host, path, request_uri, scheme, client_bin)
    local var = {host = host, uri = path, request_uri = request_uri,
                 https = scheme == "https" and "on" or "",
                 binary_remote_addr = client_bin}
    for name, value in pairs(headers) do
        var["http_" .. str_gsub(name, "-", "_")] = value
    end
    local cookie = headers["cookie"]
    if cookie then
        for k, v in cookie:gmatch("([^=;%s]+)=([^;]*)") do
            if var["cookie_" .. k] == nil then
                var["cookie_" .. k] = v
            end
        end
    end
    return var
end

local function options_of(route, var, client_given, https_suffix)
    local plan = route.plan or {}
    local o = {}
    local outcome, status
    if route.require_sni_match then
        o.require_sni_match = true
    end
    if plan.deny or plan.allow then
        if not client_given then
            o.allow_deny = {verdict = "not_checked", reason = "no client address given"}
        else
            local why = route_exec.refused_by(plan, var.binary_remote_addr)
            if why then
                o.allow_deny = {verdict = "denied", reason = why == "deny"
                    and "the client is in the deny list" or "the client is not in the allow list"}
                outcome, status = "forbidden", 403
            else
                o.allow_deny = {verdict = "allowed", reason = plan.allow
                    and "the client is in the allow list" or "the client is not in the deny list"}
            end
        end
    end
    if plan.rate then
        local r = plan.rate
        o.rate_limit = {per_s = 1 / r.interval, burst = r.tolerance / r.interval,
                        key = r.var == "binary_remote_addr" and "client"
                            or (str_gsub(r.var, "^http_", "header:"))}
    end
    -- authentication (issue 22 item 4): which, and what it asks of the request; explain
    -- does not check credentials (it never sees them)
    local a = plan.auth
    if a then
        if a.kind == "basic" then
            o.auth = {kind = "basic_auth", realm = a.realm}
        elseif a.kind == "forward" then
            o.auth = {kind = "forward_auth", url = "http://" .. a.host_header .. a.path,
                      request_headers = arr(a.request), response_headers = arr(a.response),
                      cache_s = a.cache_s, timeout_ms = a.timeout_ms, fail_open = a.fail_open}
        else
            local algs, claims = {}, {}
            for i = 1, #a.keys do
                algs[#algs + 1] = a.keys[i].alg
            end
            for i = 1, #a.claims do
                claims[a.claims[i][1]] = a.claims[i][2]
            end
            o.auth = {kind = "jwt", algorithms = arr(algs), issuer = a.issuer or cjson.null,
                      audience = a.audience or cjson.null, leeway_s = a.leeway,
                      token = a.header_var and (str_gsub(a.header_var, "^http_", "header:"))
                          or a.cookie_var and (str_gsub(a.cookie_var, "^cookie_", "cookie:"))
                          or "bearer",
                      claims_to_headers = claims}
        end
        o.auth.note = "credentials are checked when a request is served, not here"
    end
    if not outcome and route.https_redirect and var.https ~= "on" then
        o.https_redirect = {location = tls_fields.redirect_location(var.host, https_suffix,
                                                                    var.request_uri)}
        outcome, status = "https_redirect", 308
    end
    if route.hsts then
        o.hsts = route.hsts
    end
    if plan.redirect then
        local r = plan.redirect
        o.redirect = {status = r.status,
                      location = redirect.location(r, r.keep_path and var.request_uri)}
        if not outcome then
            outcome, status = "redirect", r.status
        end
    end
    if plan.max_body then
        o.max_body_bytes = plan.max_body
    end
    local name = route.upstream
    local names = {}
    if plan.canary then
        local c = plan.canary
        local hit = route_exec.canary_hit(c, var)
        local header = cjson.null
        if c.header_var then
            header = str_gsub(c.header_var, "^http_", "")
            header = str_gsub(header, "_", "-")
        end
        local cookie = c.cookie_var and (str_gsub(c.cookie_var, "^cookie_", "")) or cjson.null
        o.canary = {upstream = c.upstream, header = header, cookie = cookie,
                    value = c.value or cjson.null, hit = hit}
        if hit then
            name = c.upstream
        end
        names[#names + 1] = c.upstream
    end
    if plan.split and not (plan.canary and o.canary.hit) then
        local s = plan.split
        local weights = {}
        for i = 1, s.n do
            weights[s.names[i]] = s.weights[i]
            names[#names + 1] = s.names[i]
        end
        local pinned = cjson.null
        if s.sticky then
            local v = var[s.sticky.cookie_var]
            if v and s.sticky.live[v] then
                pinned = v
            end
        end
        o.split = {weights = weights,
                   sticky_cookie = s.sticky and (str_gsub(s.sticky.cookie_var, "^cookie_", ""))
                       or cjson.null,
                   pinned = pinned}
        name = pinned ~= cjson.null and pinned or nil
    end
    if plan.rewrite then
        local to = route_exec.rewritten(plan.rewrite, var.uri)
        o.rewrite = {from = var.uri, to = to or var.uri}
    end
    if plan.req then
        local set = {}
        for _, kv in ipairs(plan.req.set) do
            set[kv[1]] = kv[2]
        end
        o.request_headers = {set = set, remove = arr(plan.req.remove)}
        if plan.req.host then
            o.request_headers.set.Host = plan.req.host
        end
    end
    if plan.resp then
        o.response_headers = true
    end
    if plan.timeouts then
        o.timeouts = plan.timeouts
    end
    -- cors and gzip (issue 22): the Origin's verdict and what a preflight would get; the
    -- compression the route asks for
    local c = plan.cors
    if c then
        local origin = var.http_origin
        local allowed = route_exec.cors_origin(c, var)
        o.cors = {
            origin = origin or cjson.null,
            verdict = not origin and "no_origin" or allowed and "allowed" or "refused",
            allow_origin = allowed or cjson.null,
            preflight = (var.request_method == "OPTIONS" and origin
                         and var.http_access_control_request_method) and true or false,
            credentials = c.credentials and true or false,
        }
    end
    local gz = plan.gzip
    if gz then
        local types = {}
        for t in pairs(gz.types) do
            types[#types + 1] = t
        end
        table.sort(types)
        o.gzip = {min_bytes = gz.min, types = arr(types)}
    end
    if route.upstream then
        names[#names + 1] = route.upstream
    end
    return o, outcome, status, name, names
end

function _M.serve()
    local args = ngx.req.get_uri_args(100)
    local url = args.url
    if type(url) ~= "string" or url == "" then
        return bad("url", "url is required: an absolute http:// or https:// URL")
    end
    local u, uerr = urlnorm.parse(url)
    if not u then
        return bad("url", uerr)
    end
    local method = args.method or "GET"
    if type(method) ~= "string" or not str_match(method, "^[A-Z]+$") or #method > 20 then
        return bad("method", "method must be an HTTP method in capitals (GET, POST, ...)")
    end
    local headers = {}
    local hs = args.header
    if type(hs) == "string" then
        hs = {hs}
    elseif hs ~= nil and type(hs) ~= "table" then
        return bad("header", "header must be Name:value")
    end
    if hs and #hs > _M.MAX_HEADERS then
        return bad("header", "at most " .. _M.MAX_HEADERS .. " headers")
    end
    for _, h in ipairs(hs or {}) do
        local name, value = str_match(type(h) == "string" and h or "",
                                      "^([!#$%%&'*+.^_`|~%w-]+):%s*(.-)%s*$")
        if not name then
            return bad("header", "header must be Name:value (a token, a colon, a value)")
        end
        name = str_lower(name)
        if value:find("%c") then
            return bad("header", "a header value must not contain control characters")
        end
        if name ~= "host" then
            headers[name] = value
        end
    end
    local client_bin
    local client = args.client
    if client ~= nil then
        local err
        client_bin, err = cidr.parse_ip(type(client) == "string" and client or "", true)
        if not client_bin then
            return bad("client", "client must be an IPv4 or IPv6 address: " .. tostring(err))
        end
    end

    local meta = ngx.shared.sy_meta
    local loaded = worker.current()
    worker.refresh(changelog.serial(meta))
    local router = worker.router
    local body = {
        edge_id = worker.config.edge_id,
        version = meta:get("version") or cjson.null,
        serial = meta:get("serial") or cjson.null,
        worker = ngx.worker.id(),
        request = {method = method, scheme = u.scheme, host = u.host, path = u.path,
                   query = u.query or cjson.null, headers = headers,
                   client = client or cjson.null},
        route = cjson.null, options = cjson.null, upstream = cjson.null, upstreams = arr({}),
        candidates = arr({}), candidates_truncated = false,
        status = cjson.null,
    }
    local outcome, status
    local host = u.host
    local route, wild
    if not loaded then
        outcome, status = "not_ready", 503
    elseif hostcheck.too_long(host) then
        outcome, status = "bad_host", 400
    else
        route, wild = router:match(host, u.path)
        local ex = router:explain(host, u.path)
        body.explain_agrees = ex.route == route
        if not body.explain_agrees then
            ngx.log(ngx.ERR, "[switchyard] explain chose another route than match for ",
                    host, ": a bug")
        end
        local h = ex.host
        body.host = {entry = h.entry or cjson.null, kind = h.kind or cjson.null, why = h.why,
                     tried = arr({})}
        for _, t in ipairs(h.tried) do
            body.host.tried[#body.host.tried + 1] = {entry = t.entry, kind = t.kind,
                                                     found = t.found}
        end
        for i, c in ipairs(ex.candidates) do
            if i > _M.MAX_CANDIDATES then
                body.candidates_truncated = true
                break
            end
            local r = c.route
            body.candidates[i] = {id = r.id, host = r.host, match = r.match, path = r.path,
                                  priority = r.priority, chosen = c.chosen, reason = c.reason}
        end
        if not route then
            outcome, status = "no_route", 404
        elseif wild and not hostcheck.is_name(host) then
            outcome, status = "bad_host", 400
        end
    end
    if route and not outcome then
        body.route = route.id
        local https_port = worker.config.https_port or 443
        local var = request_vars(headers, host, u.path, u.request_uri, u.scheme, client_bin)
        var.request_method = method
        local o, oc, st, name, names = options_of(route, var, client_bin ~= nil,
                                                  https_port == 443 and "" or ":" .. https_port)
        body.options = o
        outcome, status = oc, st
        local seen = {}
        for _, n in ipairs(names) do
            if not seen[n] then
                seen[n] = true
                body.upstreams[#body.upstreams + 1] = upstream_view(n)
            end
        end
        if name then
            body.upstream = upstream_view(name)
            local up = worker.upstreams[name]
            if not outcome then
                if not up or up.n == 0 then
                    outcome, status = "no_endpoints", 503
                elseif up.all_down and up.unavailable then
                    outcome, status = "all_down", 503
                end
            end
        end
    elseif route then
        body.route = route.id
    end
    body.outcome = outcome or "proxy"
    body.status = status or cjson.null
    for _, up in ipairs(body.upstreams) do
        up.endpoints = list(up.endpoints)
    end
    if type(body.upstream) == "table" then
        body.upstream.endpoints = list(body.upstream.endpoints)
    end
    local rh = type(body.options) == "table" and body.options.request_headers
    if rh then
        rh.remove = list(rh.remove)
    end
    if body.host then
        body.host.tried = list(body.host.tried)
    end
    body.upstreams = list(body.upstreams)
    body.candidates = list(body.candidates)
    ngx.header["Content-Type"] = "application/json"
    ngx.say(encode(body))
end

return _M
