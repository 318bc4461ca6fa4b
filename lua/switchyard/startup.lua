-- Starting the edge: init_by_lua (the master) and init_worker_by_lua (each worker).
--
--   init(conf)     the configuration (Redis host/port, edge id, listen, prefix, https_port;
--                  the Redis password from SWITCHYARD_REDIS_PASSWORD, the certificate key
--                  from SWITCHYARD_CERT_KEY, neither ever logged). On a fresh start (empty
--                  shared dicts, not a HUP reload) it loads the snapshot on disk
--                  (switchyard.sync.snapshot; blocking file I/O, fine in the master) so the
--                  edge serves its last good configuration even if Redis is unreachable;
--                  the syncer checks it against Redis as soon as Redis answers. Loads the
--                  modules in the master, so the workers share them.
--   init_worker()  each worker builds its tables from the shared dicts
--                  (switchyard.worker.setup: a respawned or late worker starts from there,
--                  not from zero), hands them to the request handlers, and checks for
--                  changes every second and for passive health marks every 100 ms in
--                  timers; worker 0 starts the syncer (switchyard.sync.syncer), the only
--                  code that talks to Redis.

local request_metrics = require "switchyard.request.metrics"
local worker = require "switchyard.worker"
local store_mod = require "switchyard.shm.store"
local digest_mod = require "switchyard.shm.digest"
local passive_mod = require "switchyard.health.passive"
local snapshot_mod = require "switchyard.sync.snapshot"
local access = require "switchyard.request.access"
local balance = require "switchyard.request.balance"
local response = require "switchyard.request.response"
local reply = require "switchyard.request.reply"
local handshake = require "switchyard.tls.handshake"
local log_fn = require("switchyard.util.log").to_nginx
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local math_floor = math.floor

local _M = {}

local config        -- from init()
local cert_key      -- the 32-byte SWITCHYARD_CERT_KEY, nil without one; never logged

local function required(c, name)
    local v = c[name]
    if v == nil or v == "" then
        error("switchyard: init() needs " .. name, 3)
    end
    return v
end

-- Fills the empty shared dicts from the snapshot file, if there is a usable one.
local function load_snapshot(path)
    local meta = ngx.shared.sy_meta
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
    if snap.epoch then
        meta:set("epoch", snap.epoch)           -- the history that version belongs to
    end
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
            " (version ", snap.version, " of epoch ", snap.epoch or "none", ", digest ", hex,
            ", written at ",
            tostring(snap.written_at), ") in ", math_floor((ngx_now() - started) * 1000),
            " ms; serving them until Redis answers",
            failed > 0 and ", FAILED WRITES: " or "", failed > 0 and failed or "")
end

-- "host:port,host:port" as {{host=, port=}, ...}; nil for nil or "" (cosockets do not
-- read /etc/hosts: localhost is 127.0.0.1).
local function addresses(text, name)
    if text == nil or text == "" then
        return nil
    end
    local out = {}
    for item in tostring(text):gmatch("[^,]+") do
        local h, p = item:match("^%[(.+)%]:(%d+)$")
        if not h then
            h, p = item:match("^([^:]+):(%d+)$")
        end
        p = tonumber(p)
        if not h or not p or p < 1 or p > 65535 then
            error("switchyard: " .. name .. " must be host:port[,host:port...], not " .. text, 3)
        end
        out[#out + 1] = {host = h == "localhost" and "127.0.0.1" or h, port = p}
    end
    return out
end

-- TLS to Redis from the init arguments: nil when off; else {server_name=, cert=, key=}
-- with the client certificate and key parsed (ngx.ssl cdata; a file that cannot be read or
-- parsed stops the start, as a bad nginx.conf would).
local function redis_tls(c)
    if c.redis_tls ~= "on" then
        return nil
    end
    local name = c.redis_tls_server_name
    local tls = {server_name = (name or "") ~= "" and name or nil}
    local cert_path, key_path = c.redis_tls_cert or "", c.redis_tls_key or ""
    if (cert_path == "") ~= (key_path == "") then
        error("switchyard: redis_tls_cert and redis_tls_key go together", 3)
    end
    if cert_path ~= "" then
        local ssl = require "ngx.ssl"
        local function read(path, what)
            local f, err = io.open(path, "rb")
            if not f then
                error("switchyard: cannot read the Redis TLS " .. what .. ": " .. tostring(err), 4)
            end
            local text = f:read("*a")
            f:close()
            return text
        end
        local cert, cerr = ssl.parse_pem_cert(read(cert_path, "certificate"))
        if not cert then
            error("switchyard: Redis TLS certificate " .. cert_path .. ": " .. tostring(cerr), 3)
        end
        -- the key's text is not kept, and never logged
        local key, kerr = ssl.parse_pem_priv_key(read(key_path, "key"))
        if not key then
            error("switchyard: Redis TLS key " .. key_path .. ": " .. tostring(kerr), 3)
        end
        tls.cert, tls.key = cert, key
    end
    return tls
end

-- conf: redis_host, redis_port, edge_id, listen; optional group (switchyard edge --group:
-- every Redis key is switchyard:{<group>}:...; "" or absent: the default group cfg),
-- redis_user, redis_sentinels and
-- redis_master (find the master through Sentinel), redis_read (replicas to read from),
-- redis_tls ("on": TLS to Redis and the sentinels; the CA is nginx's
-- lua_ssl_trusted_certificate), redis_tls_cert and redis_tls_key (PEM files of the client
-- certificate, read here, in the master process), redis_tls_server_name,
-- lua_dir, prefix, full_resync_s,
-- https_port, error_pages (a JSON file of the edge's error pages, or "off"), snapshot (path
-- of the snapshot file, or "off"; default
-- <prefix>/state/snapshot.json, <prefix>/state/snapshot.<group>.json in another group).
-- The Redis password comes from the environment
-- (SWITCHYARD_REDIS_PASSWORD; nginx.conf must say `env SWITCHYARD_REDIS_PASSWORD;`) and
-- is never logged.
function _M.init(c)
    -- first: every key name the syncer uses is the group's from here on (sync/keys.lua)
    local keys = require "switchyard.sync.keys"
    keys.configure(c.group)
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
    local sentinel_password = os.getenv("SWITCHYARD_REDIS_SENTINEL_PASSWORD")
    if sentinel_password == "" then
        sentinel_password = nil
    end
    local sentinels = addresses(c.redis_sentinels, "redis_sentinels")
    local master = c.redis_master ~= "" and c.redis_master or nil
    if (sentinels == nil) ~= (master == nil) then
        error("switchyard: redis_sentinels and redis_master go together", 2)
    end
    config = {
        redis_tls = redis_tls(c),
        redis_host = host,
        redis_port = port,
        redis_user = c.redis_user ~= "" and c.redis_user or nil,
        redis_password = password,
        redis_sentinels = sentinels,
        redis_master = master,
        redis_sentinel_password = sentinel_password,
        redis_read = addresses(c.redis_read, "redis_read"),
        edge_id = required(c, "edge_id"),
        group = keys.group,
        listen = tostring(c.listen or ""),
        lua_dir = c.lua_dir,
        prefix = c.prefix,
        full_resync_s = tonumber(c.full_resync_s) or 300,
        https_port = tonumber(c.https_port) or 443,
        -- the metrics listener ("" when off): /metrics, /_switchyard/status and explain;
        -- in the heartbeat (metrics_listen) so the controller finds explain
        -- "json": balance() sets $sy_upstream for the JSON access log
        access_log_format = c.access_log_format == "json" and "json" or "text",
        -- false with --access-log off: nothing but the named locations reads $sy_route then
        -- (a template that does not say counts as logging)
        access_log = c.access_log ~= "off",
        metrics_listen = (c.metrics_listen and c.metrics_listen ~= "off")
            and tostring(c.metrics_listen) or "",
    }
    -- the edge's error pages (switchyard edge --error-pages FILE; checked there already):
    -- a file that does not decode stops the start, as a bad nginx.conf would
    local pages_path = c.error_pages
    if pages_path and pages_path ~= "" and pages_path ~= "off" then
        local f, ferr = io.open(pages_path, "rb")
        if not f then
            error("switchyard: cannot read the error pages " .. tostring(ferr), 2)
        end
        local text = f:read("*a")
        f:close()
        local obj = cjson.decode(text)
        local pages, perr = require("switchyard.route.policy").error_pages(obj, "--error-pages")
        if not pages then
            error("switchyard: " .. pages_path .. ": " .. tostring(perr), 2)
        end
        config.error_pages = pages
    end
    local snapshot = c.snapshot
    if snapshot == nil or snapshot == "" then
        local prefix = c.prefix or ngx.config.prefix()
        -- <prefix>/state is created by nginx for the worker user (edge.nginx.conf)
        -- one file per group: an edge moved to another group never loads the first's
        local name = keys.group == keys.default_group and "snapshot.json"
            or "snapshot." .. keys.group .. ".json"
        snapshot = (prefix:sub(-1) == "/" and prefix or prefix .. "/") .. "state/" .. name
    end
    if snapshot ~= "off" then
        config.snapshot_path = snapshot
    end
    local key_text = os.getenv("SWITCHYARD_CERT_KEY")
    if key_text and key_text ~= "" then
        local err
        cert_key, err = require("switchyard.tls.aesgcm").parse_key(key_text)
        if not cert_key then
            ngx_log(ERR, "[switchyard] ", err,
                    ": certificates with encrypted keys will not be served, and tokens of"
                    .. " routes' encrypted HS256 secrets are refused")
        end
    end
    local meta = ngx.shared.sy_meta
    if not meta or not ngx.shared.sy_config then
        error("switchyard: lua_shared_dict sy_config and sy_meta are required", 2)
    end
    if not ngx.shared.sy_health or not ngx.shared.sy_passive then
        error("switchyard: lua_shared_dict sy_health and sy_passive are required", 2)
    end
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

function _M.init_worker()
    local pid = ngx.worker.pid()
    math.randomseed(math_floor(ngx_now() * 1000) + pid)
    local ngx_ssl = require "ngx.ssl"
    worker.setup({
        config = config,
        ssl = ngx_ssl,
        decrypt = cert_key and require("switchyard.tls.aesgcm").decrypter(cert_key) or nil,
    })
    -- routes' HS256 secrets are sealed with the same key (switchyard.auth.jwt)
    require("switchyard.auth.jwt").set_opener(
        cert_key and require("switchyard.tls.aesgcm").opener(cert_key) or nil)
    -- request metrics (switchyard.request.metrics): counted per worker, flushed every
    -- second; on or off before the request handlers attach (access() asks)
    request_metrics.enable(config.metrics_listen ~= "" and ngx.shared.sy_metrics ~= nil)
    -- the request handlers keep this worker's objects (the same for its lifetime)
    access.attach(worker)
    balance.attach(worker)
    response.attach(worker)
    reply.attach(worker, config.error_pages)
    handshake.attach(worker, ngx_ssl)
    -- gRPC upstreams (issue 22 item 5)
    require("switchyard.grpc.access").attach(worker)
    if request_metrics.enabled() then
        local mok, merr = ngx.timer.every(1, require("switchyard.metrics.serve").flush_tick)
        if not mok then
            ngx_log(ERR, "[switchyard] cannot start the metrics flush timer: ", merr)
        end
    end
    worker.passive_tick(false)
    local pok, perr = ngx.timer.every(passive_mod.TICK_S, worker.passive_tick)
    if not pok then
        ngx_log(ERR, "[switchyard] cannot start the passive health timer: ", perr)
    end
    -- apply changes in the background too, so idle workers stay current and requests
    -- rarely pay for a rebuild (the access phase still checks on every request)
    local ok, err = ngx.timer.every(1, worker.refresh_tick)
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

return _M
