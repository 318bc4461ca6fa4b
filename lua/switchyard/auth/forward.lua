-- forward_auth on the request path (docs/traffic-policies.md, "Authentication"): before
-- the request is served, the edge asks the route's authentication service (ingress-nginx
-- auth-url, Traefik ForwardAuth) with an HTTP/1.1 GET over a cosocket, sending the chosen
-- request headers and X-Forwarded-{Method,Proto,Host,Uri,For}.
--
--   check(f, var) -> nil when admitted, else status, body
--
--   2xx            admitted; the chosen headers of its answer go upstream (replacing the
--                  client's own, which are removed when the answer has none)
--   401, 403       that status to the client (401 with the service's WWW-Authenticate)
--   anything else, no answer within timeout_ms, refused connection: 503, or admitted
--                  without the headers when fail_open (logged at most every 10 s per route)
--
-- Answers are remembered by this worker (up to CACHE_SIZE per route plan) for cache_s
-- seconds, keyed by the SHA-1 of the chosen request headers' values; cache_s 0 asks every
-- time. The connection is closed after each answer (Connection: close).
--
-- The one place on the request path that yields (the cosocket), and only for routes with
-- forward_auth: it is not Redis, so it does not live in switchyard.sync. Never logs a
-- header's value.

local lrucache = require "resty.lrucache"
local vars = require "switchyard.request.vars"

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local WARN = ngx.WARN
local set_header = ngx.req.set_header
local sha1_bin = ngx.sha1_bin
local tcp = ngx.socket.tcp
local tonumber = tonumber
local tbl_concat = table.concat
local str_match = string.match
local str_lower = string.lower

local C_AUTH_REFUSED = vars.ctx.auth_refused

local _M = {}

local CACHE_SIZE = 1024
local MAX_HEADER_LINES = 100
local LOG_EVERY = 10

local BODY_UNAUTHORIZED = "authentication required\n"
local BODY_FORBIDDEN = "forbidden\n"
local BODY_UNAVAILABLE = "authentication service unavailable\n"

-- The service's answer: status, {values of f.response, false when absent}, its
-- WWW-Authenticate; or nil, err
local function ask(f, var)
    local sock = tcp()
    sock:settimeouts(f.timeout_ms, f.timeout_ms, f.timeout_ms)
    local ok, err = sock:connect(f.host, f.port)
    if not ok then
        return nil, "connect: " .. err
    end
    local req = {"GET ", f.path, " HTTP/1.1\r\nHost: ", f.host_header,
                 "\r\nConnection: close\r\nContent-Length: 0\r\nX-Forwarded-Method: ",
                 var.request_method, "\r\nX-Forwarded-Proto: ", var.scheme,
                 "\r\nX-Forwarded-Host: ", var.host, "\r\nX-Forwarded-Uri: ", var.request_uri,
                 "\r\nX-Forwarded-For: ", var.remote_addr, "\r\n"}
    local names, request_vars = f.request, f.request_vars
    for i = 1, #names do
        local v = var[request_vars[i]]
        if v then
            req[#req + 1] = names[i]
            req[#req + 1] = ": "
            req[#req + 1] = v
            req[#req + 1] = "\r\n"
        end
    end
    req[#req + 1] = "\r\n"
    ok, err = sock:send(req)
    if not ok then
        sock:close()
        return nil, "send: " .. err
    end
    local line
    line, err = sock:receive("*l")
    local status = line and tonumber(str_match(line, "^HTTP/1%.[01] (%d%d%d)"))
    if not status then
        sock:close()
        return nil, line and "not an HTTP answer" or "receive: " .. err
    end
    local want, values, www = f.response_low, {}, nil
    for i = 1, #want do
        values[i] = false
    end
    for _ = 1, MAX_HEADER_LINES do
        line, err = sock:receive("*l")
        if not line then
            sock:close()
            return nil, "receive: " .. err
        end
        if line == "" then
            break
        end
        local name, value = str_match(line, "^([^:]+):%s*(.-)%s*$")
        if name then
            name = str_lower(name)
            if name == "www-authenticate" then
                www = value
            end
            for i = 1, #want do
                if want[i] == name then
                    values[i] = value
                end
            end
        end
    end
    sock:close()
    return status, values, www
end

local function set_response_headers(f, values)
    local names = f.response
    for i = 1, #names do
        set_header(names[i], values and values[i] or nil)
    end
end

function _M.check(f, var)
    local key
    local cache = f.cache
    if f.cache_s > 0 then
        if not cache then
            cache = lrucache.new(CACHE_SIZE)
            f.cache = cache
        end
        local parts = {}
        local request_vars = f.request_vars
        for i = 1, #request_vars do
            parts[i] = var[request_vars[i]] or ""
        end
        key = sha1_bin(tbl_concat(parts, "\0"))
        local hit = cache:get(key)
        if hit then
            return _M.outcome(f, hit[1], hit[2], hit[3])
        end
    end
    local status, values, www = ask(f, var)
    if not status then
        local now = ngx_now()
        if not f.logged or now - f.logged >= LOG_EVERY then
            f.logged = now
            ngx_log(WARN, "[switchyard] forward_auth to ", f.host_header, f.path, " failed (",
                    values, "): ", f.fail_open and "admitting (fail_open)" or "answering 503")
        end
        set_response_headers(f, nil)
        if f.fail_open then
            return nil
        end
        return 503, BODY_UNAVAILABLE
    end
    if key and (status < 300 and status >= 200 or status == 401 or status == 403) then
        cache:set(key, {status, values, www}, f.cache_s)
    end
    return _M.outcome(f, status, values, www)
end

function _M.outcome(f, status, values, www)
    if status >= 200 and status < 300 then
        set_response_headers(f, values)
        return nil
    end
    set_response_headers(f, nil)
    if status == 401 then
        if www then
            ngx.header["WWW-Authenticate"] = www
        end
        return 401, BODY_UNAUTHORIZED
    elseif status == 403 then
        ngx.ctx[C_AUTH_REFUSED] = true
        return 403, BODY_FORBIDDEN
    end
    local now = ngx_now()
    if not f.logged or now - f.logged >= LOG_EVERY then
        f.logged = now
        ngx_log(WARN, "[switchyard] forward_auth to ", f.host_header, f.path, " answered ",
                status, ": ", f.fail_open and "admitting (fail_open)" or "answering 503")
    end
    if f.fail_open then
        return nil
    end
    return 503, BODY_UNAVAILABLE
end

return _M
