-- nginx phase handlers: every *_by_lua_block in deploy/edge.nginx.conf is one line calling
-- one of these.
--
--   init(conf)     init_by_lua (master): configuration; no I/O.
--   init_worker()  each worker builds its tables from the shared dicts (a respawned or
--                  late worker starts from there, not from zero) and checks for changes
--                  every second in a timer; worker 0 starts the syncer
--                  (switchyard.syncer), the only code that talks to Redis.
--   access()       picks the route and upstream; never yields, never calls Redis. Reads
--                  ONE shared-dict key (sy_meta "serial") per request; when it moved, the
--                  worker applies the logged changes first (switchyard.state).
--                  No route: 404 "no route". Upstream without endpoints (or missing): 503.
--                  Nothing loaded yet (Redis never reached since the shm was created): 503.
--                  Passes the upstream to balance() in ngx.ctx.sy_up; sets $sy_route.
--   balance()      balancer_by_lua: smooth WRR pick + set_current_peer; table lookups only.
--   status()       content handler of /_switchyard/status (JSON, loopback clients only).

local state_mod = require "switchyard.state"
local ngx_balancer = require "ngx.balancer"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ngx_print = ngx.print
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_re_find = ngx.re.find
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local HTTP_OK = ngx.HTTP_OK
local set_current_peer = ngx_balancer.set_current_peer
local pcall = pcall
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local math_floor = math.floor

local _M = {}

local config        -- from init()
local meta          -- ngx.shared.sy_meta
local meta_get      -- its get method
local state         -- this worker's switchyard.state
local router        -- state.router (same object for the worker's lifetime)
local upstreams     -- state.upstreams (same table for the worker's lifetime)
local serial        -- state.serial, cached
local warned = {}   -- route id -> time of the last "missing upstream" log

local BODY_NO_ROUTE = "no route\n"
local BODY_NO_ENDPOINTS = "no endpoints\n"
local BODY_NOT_READY = "configuration not loaded\n"
local ROUTE_HEADER = "X-Switchyard-Route"

local function log_fn(level, msg)
    if level == "err" then
        ngx_log(ERR, "[switchyard] ", msg)
    elseif level == "warn" then
        ngx_log(WARN, "[switchyard] ", msg)
    else
        ngx_log(NOTICE, "[switchyard] ", msg)
    end
end

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

-- conf: redis_host, redis_port, edge_id, listen; optional lua_dir, prefix, full_resync_s.
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
    meta = ngx.shared.sy_meta
    if not meta or not ngx.shared.sy_config then
        error("switchyard: lua_shared_dict sy_config and sy_meta are required", 2)
    end
    meta_get = meta.get
    -- when the edge (master) started; a HUP reload keeps the shared dict and the value
    meta:add("started", math_floor(ngx_now() * 1000))
    -- load everything in the master so workers share the compiled modules
    require "switchyard.syncer"
    require "switchyard.doc"
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

function _M.init_worker()
    local pid = ngx.worker.pid()
    math.randomseed(math_floor(ngx_now() * 1000) + pid)
    state = state_mod.new({
        cfg = ngx.shared.sy_config,
        meta = meta,
        find = regex_find,
        check = regex_check,
        log = log_fn,
    })
    router = state.router
    upstreams = state.upstreams
    refresh(meta:get("serial"))
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
        require("switchyard.syncer").start(c)
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

function _M.access()
    local s = meta_get(meta, "serial")
    if s ~= serial then
        refresh(s)
    end
    if serial == nil then
        return respond(503, "none", BODY_NOT_READY)
    end
    local var = ngx_var
    local route = router:match(var.host, var.uri)
    if not route then
        return respond(404, "none", BODY_NO_ROUTE)
    end
    local id = route.id
    var.sy_route = id
    local up = upstreams[route.upstream]
    if not up or up.n == 0 then
        local now = ngx_now()
        local last = warned[id]
        if not last or now - last >= 10 then
            warned[id] = now
            ngx_log(WARN, "[switchyard] route:", id, ": upstream \"", route.upstream, "\" ",
                    up and "has no endpoints" or "does not exist", ", answering 503")
        end
        return respond(503, id, BODY_NO_ENDPOINTS)
    end
    ngx.ctx.sy_up = up
end

function _M.balance()
    local up = ngx.ctx.sy_up
    if not up then
        ngx_log(ERR, "[switchyard] balancer without an upstream")
        return ngx_exit(ngx.ERROR)
    end
    local peer = up.balancer:pick()
    local ok, err = set_current_peer(peer.host, peer.port)
    if not ok then
        ngx_log(ERR, "[switchyard] set_current_peer(", peer.address, ") failed: ", err)
        return ngx_exit(ngx.ERROR)
    end
end

function _M.status()
    refresh(meta_get(meta, "serial"))
    local cfg = ngx.shared.sy_config
    local body = {
        edge_id = config.edge_id,
        listen = config.listen,
        version = meta:get("version"),
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
            shm_errors = meta:get("sync:shm_errors") or 0,
        },
        config_dict = {
            capacity = cfg:capacity(),
            free_space = cfg:free_space(),
        },
    }
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(body))
end

return _M
