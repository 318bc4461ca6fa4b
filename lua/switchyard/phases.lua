-- nginx phase handlers: every *_by_lua_block in deploy/edge.nginx.conf is one line calling
-- one of these.
--
--   init(conf)     init_by_lua (master): configuration. On a fresh start (empty shared
--                  dicts, not a HUP reload) it loads the snapshot on disk
--                  (switchyard.sync.snapshot, blocking file I/O, fine in the master) so the
--                  edge serves its last good configuration even if Redis is unreachable;
--                  the syncer checks it against Redis as soon as Redis answers.
--   init_worker()  each worker builds its tables from the shared dicts (a respawned or
--                  late worker starts from there, not from zero) and checks for changes
--                  every second in a timer; worker 0 starts the syncer
--                  (switchyard.sync.syncer), the only code that talks to Redis.
--   access()       access_by_lua of location /: picks the route and upstream; never
--                  yields, never calls Redis. Reads ONE shared-dict key (sy_meta
--                  "serial") per request; when it moved, the worker applies the logged
--                  changes first (switchyard.state).
--                  No route: 404 "no route". Upstream without endpoints (or missing): 503.
--                  Every endpoint down and on_all_down "503": 503 "all endpoints down".
--                  Nothing loaded yet (Redis never reached since the shm was created): 503.
--                  Sets $sy_route (the access log, the named locations and balance()
--                  read it); ngx.ctx.sy_up only for a route with options or an upstream
--                  a named location serves (a plain route's request has no ngx.ctx).
--                  Location / is the cheap path (edge.nginx.conf): a request that needs
--                  more goes on with ngx.exec -- at once for a route with route.full
--                  (response_headers, split_sticky, hsts, a Host override) or without a
--                  Host header; after the options ran ($sy_done) for an upstream with
--                  up.full (HTTPS, sticky, least_conn).
--   access_named() access_by_lua of @sy_full and @sy_https_verified: the same route again
--                  (by $sy_route), its options not run twice when $sy_done is set.
--   balance()      balancer_by_lua: the upstream (a plain route's by $sy_route, others'
--                  from ngx.ctx.sy_up); the upstream's algorithm (switchyard.balancer.algorithm:
--                  round_robin, least_conn, ip_hash, hash, sticky) picks among the
--                  endpoints in rotation (switchyard.health.rotation) + set_current_peer;
--                  the route's timeouts (ngx.ctx.sy_timeouts); set_more_tries for retries;
--                  a retry counts the failed attempt (switchyard.health.passive) and picks an
--                  endpoint this request has not tried (those in $upstream_addr). Table
--                  lookups only (a retry adds one shared-dict incr).
--   log()          log_by_lua of the named locations: least_conn's count of the last
--                  attempt ends (sy_conns).
--   failed()       error_page 502 504 (@sy_failed): nginx's own 502/504 after the last
--                  attempt failed; it counts for passive health (as nginx's max_fails).
--   ssl_certificate()  ssl_certificate_by_lua: the certificate for the SNI name from this
--                  worker's table (switchyard.tls.certificates; brought to the current serial first, like
--                  access()); none and no default: the handshake fails. No parsing here.
--   access() also: route options (route.plan, docs/traffic-policies.md; switchyard.route.exec):
--                  deny/allow 403 and rate_limit 429 before https_redirect; then redirect,
--                  max_body_bytes 413, canary, split, rewrite, request_headers, timeouts
--                  (ngx.ctx.sy_timeouts); response_headers via ngx.ctx.sy_resp. A route
--                  without options costs two nil checks.
--   access() also: https_redirect (308 over plain HTTP), HSTS ($sy_hsts), and for
--                  "scheme": "https" upstreams $sy_scheme, $sy_tls_name, $sy_pool, and the
--                  hop to @sy_https_verified for those with tls_verify.
--   status()       content handler of /_switchyard/status (JSON, loopback clients only).

local state_mod = require "switchyard.state"
local store_mod = require "switchyard.shm.store"
local digest_mod = require "switchyard.shm.digest"
local snapshot_mod = require "switchyard.sync.snapshot"
local ngx_balancer = require "ngx.balancer"
local tls_mod = require "switchyard.tls.certificates"
local health_mod = require "switchyard.health.rotation"
local passive_mod = require "switchyard.health.passive"
local cjson = require "cjson.safe"
local route_exec = require "switchyard.route.exec"
local log_fn = require("switchyard.util.log").to_nginx

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ngx_print = ngx.print
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_re_find = ngx.re.find
local req_http_version = ngx.req.http_version
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local HTTP_OK = ngx.HTTP_OK
local set_current_peer = ngx_balancer.set_current_peer
local set_more_tries = ngx_balancer.set_more_tries
local get_last_failure = ngx_balancer.get_last_failure
local retry_pick = health_mod.retry_pick
local set_timeouts = ngx_balancer.set_timeouts
-- proxy_connect/send/read_timeout of edge.nginx.conf: what a route without them gets
local DEFAULT_CONNECT_S, DEFAULT_SEND_S, DEFAULT_READ_S = 5, 60, 60
local balancer_finish = require("switchyard.balancer.algorithm").finish
local exec_guard = route_exec.guard
local exec_apply = route_exec.apply
local exec_response_headers = route_exec.response_headers
local pcall = pcall
local pairs = pairs
local type = type
local tostring = tostring
local tonumber = tonumber
local math_floor = math.floor
local str_match = string.match
local str_gmatch = string.gmatch

local _M = {}

local config        -- from init()
local meta          -- ngx.shared.sy_meta
local meta_get      -- its get method
local state         -- this worker's switchyard.state
local router        -- state.router (same object for the worker's lifetime)
local upstreams     -- state.upstreams (same table for the worker's lifetime)
local serial        -- state.serial, cached
local warned = {}   -- route id -> time of the last "missing upstream" log
local certs         -- this worker's certificate table (switchyard.tls.certificates), fed by state
local cert_key      -- the 32-byte SWITCHYARD_CERT_KEY, nil without one; never logged
local https_suffix = ""   -- ":<port>" of https_redirect Locations ("" for 443)
local sni_warned = 0      -- time of the last "no certificate for" log
local tls_pools           -- up -> upstream{} block for HTTPS upstreams (tls.plan_pools)
local tls_pools_serial    -- the serial tls_pools was planned at
local ngx_ssl             -- require "ngx.ssl" (loaded in init_worker)
local hctx                -- this worker's switchyard.health.rotation context (sy_health, passive marks)
local passive             -- this worker's switchyard.health.passive (sy_passive accounting)

local BODY_NO_ROUTE = "no route\n"
local BODY_NO_ENDPOINTS = "no endpoints\n"
local BODY_NOT_READY = "configuration not loaded\n"
local BODY_REDIRECT = "redirecting to https\n"
local BODY_ALL_DOWN = "all endpoints down\n"
local BODY_BAD_GATEWAY = "bad gateway\n"
local BODY_TIMEOUT = "gateway timeout\n"
local ROUTE_HEADER = "X-Switchyard-Route"

local function regex_find(subject, re)
    return ngx_re_find(subject, re, "jo")
end

-- compiles (and caches, "o") the regex once; a bad one is rejected when the route is built
local function regex_check(re)
    local _, _, err = ngx_re_find("", re, "jo")
    if err then
        return nil, err
    end
    return true
end

local function required(c, name)
    local v = c[name]
    if v == nil or v == "" then
        error("switchyard: init() needs " .. name, 3)
    end
    return v
end

-- Fills the empty shared dicts from the snapshot file, if there is a usable one.
local function load_snapshot(path)
    local hash = require("switchyard.shm.sha1hash").hasher(ngx.sha1_bin)
    ngx_update_time()
    local started = ngx_now()
    local snap, err, missing = snapshot_mod.read(path, cjson.decode, hash)
    if not snap then
        if missing then
            ngx_log(NOTICE, "[switchyard] no snapshot at ", path, ": waiting for Redis")
        else
            ngx_log(ERR, "[switchyard] ignoring the snapshot: ", err)
        end
        return
    end
    local store = store_mod.new(ngx.shared.sy_config, meta, log_fn, hash)
    local changed, failed = store:full(snap.docs, snap.version, snap.digest)
    local hex = digest_mod.hex(snap.digest)
    meta:set("sync:verify", true)               -- the syncer checks it against Redis
    meta:set("snapshot:loaded_version", snap.version)
    meta:set("snapshot:loaded_journal_records", snap.journal_records)
    meta:set("snapshot:version", snap.version)  -- already on disk: not written again
    meta:set("snapshot:digest", hex)
    ngx_update_time()
    if snap.journal_stop then
        ngx_log(WARN, "[switchyard] snapshot journal: ", snap.journal_stop, "; using the ",
                snap.journal_records, " records before it")
    end
    ngx_log(NOTICE, "[switchyard] loaded ", changed, " objects from the snapshot ", path,
            " and ", snap.journal_records, " journal records",
            " (version ", snap.version, ", digest ", hex, ", written at ",
            tostring(snap.written_at), ") in ", math_floor((ngx_now() - started) * 1000),
            " ms; serving them until Redis answers",
            failed > 0 and ", FAILED WRITES: " or "", failed > 0 and failed or "")
end

-- conf: redis_host, redis_port, edge_id, listen; optional lua_dir, prefix, full_resync_s,
-- snapshot (path of the snapshot file, or "off"; default <prefix>/state/snapshot.json).
-- The Redis password comes from the environment (SWITCHYARD_REDIS_PASSWORD; nginx.conf
-- must say `env SWITCHYARD_REDIS_PASSWORD;`) and is never logged.
function _M.init(c)
    local host = required(c, "redis_host")
    if host == "localhost" then
        host = "127.0.0.1"   -- cosockets do not read /etc/hosts
    end
    local port = tonumber(required(c, "redis_port"))
    if not port then
        error("switchyard: redis_port must be a number", 2)
    end
    local password = os.getenv("SWITCHYARD_REDIS_PASSWORD")
    if password == "" then
        password = nil
    end
    config = {
        redis_host = host,
        redis_port = port,
        redis_password = password,
        edge_id = required(c, "edge_id"),
        listen = tostring(c.listen or ""),
        lua_dir = c.lua_dir,
        prefix = c.prefix,
        full_resync_s = tonumber(c.full_resync_s) or 300,
    }
    local snapshot = c.snapshot
    if snapshot == nil or snapshot == "" then
        local prefix = c.prefix or ngx.config.prefix()
        -- <prefix>/state is created by nginx for the worker user (edge.nginx.conf)
        snapshot = (prefix:sub(-1) == "/" and prefix or prefix .. "/") .. "state/snapshot.json"
    end
    if snapshot ~= "off" then
        config.snapshot_path = snapshot
    end
    local https_port = tonumber(c.https_port) or 443
    https_suffix = https_port == 443 and "" or ":" .. https_port
    local key_text = os.getenv("SWITCHYARD_CERT_KEY")
    if key_text and key_text ~= "" then
        local err
        cert_key, err = require("switchyard.tls.aesgcm").parse_key(key_text)
        if not cert_key then
            ngx_log(ERR, "[switchyard] ", err,
                    ": certificates with encrypted keys will not be served")
        end
    end
    meta = ngx.shared.sy_meta
    if not meta or not ngx.shared.sy_config then
        error("switchyard: lua_shared_dict sy_config and sy_meta are required", 2)
    end
    if not ngx.shared.sy_health or not ngx.shared.sy_passive then
        error("switchyard: lua_shared_dict sy_health and sy_passive are required", 2)
    end
    meta_get = meta.get
    -- when the edge (master) started; a HUP reload keeps the shared dict and the value
    meta:add("started", math_floor(ngx_now() * 1000))
    -- a fresh start (a HUP reload keeps the filled dicts): the last good configuration
    if config.snapshot_path and meta:get("serial") == nil then
        load_snapshot(config.snapshot_path)
    end
    -- load everything in the master so workers share the compiled modules
    require "switchyard.sync.syncer"
    require "switchyard.route.decode"
end

local function refresh(target)
    local rebuilds = state.full_rebuilds
    ngx_update_time()
    local started = ngx_now()
    local ok, err = pcall(state.refresh, state, target)
    if not ok then
        ngx_log(ERR, "[switchyard] failed to apply configuration serial ", tostring(target),
                ": ", err)
        -- stamp anyway: retrying on every request would not fix it; the next change or a
        -- full rebuild (missing log entry) will
        state.serial = target
    end
    serial = state.serial
    if state.full_rebuilds ~= rebuilds then
        ngx_update_time()
        ngx_log(NOTICE, "[switchyard] worker rebuilt its tables: ", router.n, " routes, ",
                state.n_upstreams, " upstreams in ",
                math_floor((ngx_now() - started) * 1000), " ms (serial ", serial, ")")
    end
end

local function refresh_tick(premature)
    if premature then
        return
    end
    local s = meta_get(meta, "serial")
    if s ~= serial then
        refresh(s)
    end
end

-- passive marks of `name` changed (switchyard.health.passive): rebuild its balancer in place
local function passive_changed(name)
    local up = upstreams and upstreams[name]
    if up then
        health_mod.build(hctx, up)
    end
end

local function passive_tick(premature)
    if premature then
        return
    end
    local ok, err = pcall(passive.tick, passive)
    if not ok then
        ngx_log(ERR, "[switchyard] passive health: ", err)
    end
end

function _M.init_worker()
    local pid = ngx.worker.pid()
    math.randomseed(math_floor(ngx_now() * 1000) + pid)
    ngx_ssl = require "ngx.ssl"
    certs = tls_mod.new_table({
        parse_cert = ngx_ssl.parse_pem_cert,
        parse_key = ngx_ssl.parse_pem_priv_key,
        decrypt = cert_key and require("switchyard.tls.aesgcm").decrypter(cert_key) or nil,
        log = log_fn,
    })
    -- endpoint health: the prober's verdicts (sy_health, via the serial) and this edge's
    -- passive marks (sy_passive, via passive_tick); both rebuild only the balancer of the
    -- upstream that changed (switchyard.health.rotation)
    passive = passive_mod.new({
        dict = ngx.shared.sy_passive,
        now = ngx_now,
        log = log_fn,
        on_change = passive_changed,
    })
    hctx = health_mod.new_context({
        dict = ngx.shared.sy_health,
        passive = passive.down,
        now = ngx_now,
        log = log_fn,
        -- what balancers read per request (switchyard.balancer.algorithm)
        env = {var = ngx.var, crc32 = ngx.crc32_long, conns = ngx.shared.sy_conns},
    })
    state = state_mod.new({
        cfg = ngx.shared.sy_config,
        meta = meta,
        find = regex_find,
        check = regex_check,
        log = log_fn,
        certificates = certs,
        health = hctx,
    })
    router = state.router
    upstreams = state.upstreams
    -- tables already in the shm (a HUP reload, a respawned worker, a snapshot): every
    -- worker builds at once while the others (old ones) serve, so with the collector
    -- running; a cold edge's first build (after its first load) stops it (switchyard.util.bulk)
    state.no_bulk = true
    refresh(meta:get("serial"))
    state.no_bulk = nil
    passive_tick(false)
    local pok, perr = ngx.timer.every(passive_mod.TICK_S, passive_tick)
    if not pok then
        ngx_log(ERR, "[switchyard] cannot start the passive health timer: ", perr)
    end
    -- apply changes in the background too, so idle workers stay current and requests
    -- rarely pay for a rebuild (the access phase still checks on every request)
    local ok, err = ngx.timer.every(1, refresh_tick)
    if not ok then
        ngx_log(ERR, "[switchyard] cannot start the refresh timer: ", err)
    end
    if ngx.worker.id() == 0 then
        local process = require "ngx.process"
        local c = {}
        for k, v in pairs(config) do
            c[k] = v
        end
        c.pid = process.get_master_pid() or pid
        require("switchyard.sync.syncer").start(c)
    end
end

local function respond(status, route_id, body)
    ngx.status = status
    local header = ngx.header
    header[ROUTE_HEADER] = route_id
    header["Content-Type"] = "text/plain"
    header["Content-Length"] = #body
    ngx_print(body)
    return ngx_exit(HTTP_OK)
end

-- Serves `route` (matched in location / or found again by id in a named location).
-- named: running in @sy_full or @sy_https_verified. again: the route's options already ran
-- in an earlier pass ($sy_done; $uri may have been rewritten since): its guard, body
-- check, rewrite and request headers do not run twice, and the canary or split choice
-- comes from $sy_pick.
local function serve(route, var, named, again)
    local id = route.id
    -- route options (switchyard.route.exec), in the order of docs/traffic-policies.md;
    -- a route without any costs the two `plan` checks
    local plan = route.plan
    if plan then
        local resp = plan.resp
        if resp then
            ngx.ctx.sy_resp = resp   -- response_headers, also on the edge's own answers
        end
        if plan.guard and not again then
            local status, body = exec_guard(plan, var)
            if status then
                return respond(status, id, body)
            end
        end
    end
    if route.https_redirect and var.https ~= "on" then
        local header = ngx.header
        header["Location"] = tls_mod.redirect_location(var.host, https_suffix, var.request_uri)
        return respond(308, id, BODY_REDIRECT)
    end
    if route.hsts then
        -- the route owns the header: its value over HTTPS, none ("-") over plain HTTP;
        -- nginx adds it ($sy_hsts_header in edge.nginx.conf), no Lua header filter
        var.sy_hsts = var.https == "on" and route.hsts or "-"
    end
    local name = route.upstream
    if plan then
        local pick, status, body = exec_apply(plan, var, ngx.ctx, again)
        if status then
            return respond(status, id, body)
        end
        name = pick or name
    end
    local up = upstreams[name]
    if not up or up.n == 0 then
        local now = ngx_now()
        local last = warned[id]
        if not last or now - last >= 10 then
            warned[id] = now
            ngx_log(WARN, "[switchyard] route:", id, ": upstream \"", name, "\" ",
                    up and "has no endpoints" or "does not exist", ", answering 503")
        end
        return respond(503, id, BODY_NO_ENDPOINTS)
    end
    if up.all_down and health_mod.all_down_hit(hctx, up) then
        -- every endpoint is down and on_all_down is "503" (fail_open: logged, then sent)
        return respond(503, id, BODY_ALL_DOWN)
    end
    if not up.full then
        if plan then
            ngx.ctx.sy_up = up   -- a canary or split choice, timeouts (balance())
        end
        return
    end
    ngx.ctx.sy_up = up
    local tls = up.tls
    if not named then
        -- HTTPS, sticky or least_conn: on to the location that can do it, options done
        var.sy_done = "1"
        return ngx.exec(tls and tls.verify and "@sy_https_verified" or "@sy_full")
    end
    if tls then
        if tls_pools_serial ~= serial then
            tls_pools = tls_mod.plan_pools(upstreams)
            tls_pools_serial = serial
        end
        var.sy_scheme = "https"
        var.sy_pool = tls_pools[up] or tls_mod.POOL_FRESH
        var.sy_tls_name = tls.name or var.host
        if tls.verify and var.sy_tls_verified ~= "1" then
            -- nginx cannot turn proxy_ssl_verify on per request: the location does it
            var.sy_done = "1"
            return ngx.exec("@sy_https_verified")
        end
    end
end

-- Brings this worker's tables to the serial in sy_meta (one shared-dict read; the logged
-- changes are applied when it moved). False while nothing was ever loaded.
local function current()
    local s = meta_get(meta, "serial")
    if s ~= serial then
        refresh(s)
    end
    return serial ~= nil
end

-- access_by_lua of location /: routes by host and path. A route that needs @sy_full
-- (route.full: response-side options, hsts, a Host override) or a request without a Host
-- header (sent upstream as $host there) goes on before anything else runs.
function _M.access()
    if not current() then
        return respond(503, "none", BODY_NOT_READY)
    end
    local var = ngx_var
    local route = router:match(var.host, var.uri)
    if not route then
        return respond(404, "none", BODY_NO_ROUTE)
    end
    var.sy_route = route.id
    -- HTTP/1.1 always has a Host header (nginx answers 400 without one); an HTTP/1.0 or
    -- HTTP/2 request may not, and @sy_full sends $host for it
    if route.full or (req_http_version() ~= 1.1 and not var.http_host) then
        return ngx.exec("@sy_full")
    end
    return serve(route, var, false, false)
end

-- access_by_lua of @sy_full and @sy_https_verified (after ngx.exec from access() or from
-- an earlier named pass): the route the first pass matched, by $sy_route.
function _M.access_named()
    if not current() then
        return respond(503, "none", BODY_NOT_READY)
    end
    local var = ngx_var
    local route = router.by_id[var.sy_route]
    if not route then
        -- removed between the passes (a change applied in between)
        return respond(404, "none", BODY_NO_ROUTE)
    end
    return serve(route, var, true, var.sy_done == "1")
end

function _M.ssl_certificate()
    current()
    local ssl = ngx_ssl
    local name = ssl.server_name()
    local entry = certs:select(name)
    if not entry then
        local now = ngx_now()
        if now - sni_warned >= 10 then
            sni_warned = now
            ngx_log(WARN, "[switchyard] no certificate for ",
                    name and ("\"" .. name:sub(1, 253) .. "\"") or "a handshake without SNI",
                    " and no default certificate: handshake refused (logged at most every 10 s)")
        end
        return ngx_exit(ngx.ERROR)
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(entry.cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(entry.key)
    end
    if not ok then
        ngx_log(ERR, "[switchyard] certificate:", entry.id, ": cannot use it: ", err)
        return ngx_exit(ngx.ERROR)
    end
end

-- The endpoints a retry must not pick again, from $upstream_addr ("a, b : " while the
-- balancer runs for the next attempt): every address in it that is one of up's endpoints,
-- and the last of them (the attempt that just failed). O(attempts x endpoints), on retries
-- only.
local function tried_so_far(up, list)
    local tried, last = {}, nil
    if list then
        local eps = up.endpoints
        for addr in str_gmatch(list, "[^%s,]+") do
            for i = 1, #eps do
                local ep = eps[i]
                if ep.address == addr then
                    tried[ep] = true
                    last = ep
                    break
                end
            end
        end
    end
    return tried, last
end

-- The route's upstream if location / can serve it (not HTTPS, sticky or least_conn).
local function plain_upstream(route)
    local up = upstreams[route.upstream]
    if up and not up.full then
        return up
    end
    return nil
end

-- First attempt: the balancer's pick among the endpoints in rotation, and set_more_tries
-- (up.more_tries = min(retries, in rotation - 1)) so nginx may retry on error, timeout,
-- 502/503/504 (proxy_next_upstream; nginx itself never retries a POST, PATCH or LOCK it
-- has already sent). Each retry: the failed attempt counts for passive health, and the
-- next endpoint is one this request has not tried (switchyard.health.retry_pick).
-- A plain route (no options, an upstream location / serves) passes nothing in ngx.ctx:
-- its upstream is found again from $sy_route, which the access log needs anyway: that
-- read and two table lookups cost ~900 instructions per request less than creating the
-- request's ngx.ctx table in access() and reading it here (callgrind,
-- bench/instructions.py). Only a retry (rare) makes one. Routes with options and the
-- upstreams @sy_full serves get theirs from ngx.ctx.sy_up (a canary or split choice,
-- timeouts, sticky or least_conn state).
function _M.balance()
    local var = ngx_var
    local id = var.sy_route
    -- recent: also a route removed or replaced while nginx read this request's body
    local route = id and router:recent(id)
    local up, ctx
    if route and not route.plan then
        up = plain_upstream(route)
    end
    if not up then
        ctx = ngx.ctx
        -- no sy_up: routed as a plain route, given options since (while the body was
        -- read): its upstream now
        up = ctx.sy_up or (route and plain_upstream(route))
        if not up then
            -- its upstream was removed (or made HTTPS, sticky or least_conn) while the
            -- request was on its way: the request fails (500)
            ngx_log(WARN, "[switchyard] route:", tostring(id),
                    ": its upstream is gone since the request was routed")
            return ngx_exit(ngx.ERROR)
        end
    end
    local peer
    local failure = get_last_failure()
    if failure == nil then
        -- the upstream's algorithm (switchyard.balancer.algorithm); state it keeps goes in ctx
        peer = up.balancer:pick(ctx)
        if not peer then
            ngx_log(ERR, "[switchyard] upstream:", up.name, ": no endpoint in rotation")
            return ngx_exit(ngx.ERROR)
        end
        local more = up.more_tries
        if more > 0 then
            local ok, err = set_more_tries(more)
            if not ok then
                ngx_log(ERR, "[switchyard] set_more_tries(", more, ") failed: ", err)
            end
        end
    else
        local tried, last = tried_so_far(up, var.upstream_addr)
        if failure == "failed" and last then
            passive:failed(up, last)
        end
        peer = retry_pick(up, tried, ctx or ngx.ctx)
    end
    local ok, err = set_current_peer(peer.host, peer.port)
    if not ok then
        ngx_log(ERR, "[switchyard] set_current_peer(", peer.address, ") failed: ", err)
        return ngx_exit(ngx.ERROR)
    end
    -- the route's timeouts (seconds; access() sets them), on every attempt; the edge's
    -- defaults (proxy_*_timeout in edge.nginx.conf) for those it does not set
    local t = ctx and ctx.sy_timeouts
    if t then
        ok, err = set_timeouts(t.connect or DEFAULT_CONNECT_S, t.send or DEFAULT_SEND_S,
                               t.read or DEFAULT_READ_S)
        if not ok then
            ngx_log(ERR, "[switchyard] set_timeouts failed: ", err)
        end
    end
end

-- header_filter_by_lua: the route's response_headers (ngx.ctx.sy_resp, set by access():
-- remove, then set), then the Set-Cookie values queued in ngx.ctx.sy_cookies (an array
-- of complete cookie strings). One ngx.ctx read and two field checks when there is none.
function _M.header_filter()
    local ctx = ngx.ctx
    local resp = ctx.sy_resp
    if resp then
        exec_response_headers(resp)
    end
    local cookies = ctx.sy_cookies
    if cookies then
        local header = ngx.header
        local existing = header["Set-Cookie"]
        if existing then
            local all = type(existing) == "table" and existing or {existing}
            for i = 1, #cookies do
                all[#all + 1] = cookies[i]
            end
            header["Set-Cookie"] = all
        else
            header["Set-Cookie"] = #cookies == 1 and cookies[1] or cookies
        end
    end
end

-- log_by_lua of the named locations: least_conn's count of the last attempt ends
-- (sy_conns). Location / has no log phase (least_conn upstreams are served from @sy_full):
-- entering Lua once more per request cost about 4% of a plain request's CPU.
function _M.log()
    local ctx = ngx.ctx
    if ctx.sy_conn then
        balancer_finish(hctx.env, ctx)
    end
end

-- The last endpoint in $upstream_addr ("a, b : c": retries, then internal redirects).
local function last_address(list)
    return list and str_match(list, "([^%s,]+)$")
end

-- content_by_lua of @sy_failed, the error_page for the 502 and 504 nginx itself answers
-- when the last attempt failed (connect error, timeout, invalid response): that attempt
-- counts for passive health, as nginx's max_fails counts it (balance() counts the earlier
-- ones when it retries; a 502/503/504 the endpoint sent itself counts only when it is
-- retried, as in nginx). ngx.ctx did not survive the redirect: the route, the upstream
-- and the endpoint come from $sy_route, $sy_pick and $upstream_addr. Answers the status
-- nginx chose (error_page keeps it) with a short text body, the route's response_headers
-- and, for least_conn, ends the attempt's count (no log phase runs for it).
function _M.failed()
    local var = ngx_var
    local status = tonumber(var.status) or 502
    local id = var.sy_route
    local route = id and router.by_id[id]
    local up
    if route then
        local name = var.sy_pick
        if not name or name == "" then
            name = route.upstream
        end
        up = name and upstreams[name]
    end
    local addr = up and last_address(var.upstream_addr)
    if addr then
        local eps = up.endpoints
        for i = 1, #eps do
            local ep = eps[i]
            if ep.address == addr then
                passive:failed(up, ep)
                local b = up.balancing
                if b and b.balance == "least_conn" and ep.conn_key then
                    -- least_conn: the attempt ended (no log phase in this location)
                    balancer_finish(hctx.env, {sy_conn = ep.conn_key})
                end
                break
            end
        end
    end
    local plan = route and route.plan
    if plan and plan.resp then
        exec_response_headers(plan.resp)
    end
    return respond(status, id or "none", status == 504 and BODY_TIMEOUT or BODY_BAD_GATEWAY)
end

function _M.status()
    refresh(meta_get(meta, "serial"))
    local cfg = ngx.shared.sy_config
    local body = {
        edge_id = config.edge_id,
        listen = config.listen,
        version = meta:get("version"),
        digest = meta:get("digest") and digest_mod.hex(meta:get("digest")) or nil,
        serial = meta:get("serial"),
        started = meta:get("started"),
        worker = {
            id = ngx.worker.id(),
            pid = ngx.worker.pid(),
            serial = state.serial,
            routes = router.n,
            upstreams = state.n_upstreams,
            full_rebuilds = state.full_rebuilds,
        },
        syncer = {
            pid = meta:get("syncer"),
            redis = meta:get("sync:redis"),
            subscribed = meta:get("sync:subscribed"),
            last_sync = meta:get("sync:last_sync"),
            last_error = meta:get("sync:last_error"),
            last_error_at = meta:get("sync:last_error_at"),
            full_reloads = meta:get("sync:full_reloads") or 0,
            last_full_reload = meta:get("sync:last_full_reload"),
            last_verified = meta:get("sync:last_verified"),
            shm_errors = meta:get("sync:shm_errors") or 0,
            prefetch_hits = meta:get("sync:prefetch_hits") or 0,
            prefetch_misses = meta:get("sync:prefetch_misses") or 0,
            redis_empty = meta:get("sync:redis_empty"),
            verifying_snapshot = meta:get("sync:verify") or false,
        },
        snapshot = {
            path = config.snapshot_path,
            loaded_version = meta:get("snapshot:loaded_version"),
            version = meta:get("snapshot:version"),
            written_at = meta:get("snapshot:written_at"),
            write_ms = meta:get("snapshot:write_ms"),
            bytes = meta:get("snapshot:bytes"),
            journal_records = meta:get("snapshot:journal_records") or 0,
            journal_bytes = meta:get("snapshot:journal_bytes") or 0,
            loaded_journal_records = meta:get("snapshot:loaded_journal_records"),
            errors = meta:get("snapshot:errors") or 0,
            last_error = meta:get("snapshot:last_error"),
        },
        config_dict = {
            capacity = cfg:capacity(),
            free_space = cfg:free_space(),
        },
        tls = certs:summary(),
        health = health_mod.status(ngx.shared.sy_health, passive:outs(100), upstreams, 100),
    }
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(body))
end

return _M
