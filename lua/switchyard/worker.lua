-- This worker's view of the configuration, as the request handlers read it: the router and
-- upstreams (switchyard.state, built from the shared dicts), the certificate table
-- (switchyard.tls.certificates), endpoint health (switchyard.health.rotation's context,
-- switchyard.health.passive), and current(), which brings them to the serial in sy_meta.
--
-- Built once per worker by setup() (from switchyard.startup's init_worker); the objects
-- stay the same for the worker's lifetime (the request modules cache them). On the request
-- path: never yields, never talks to Redis (it must not require switchyard.sync.*).
--
--   setup(opts)   builds everything, then the tables from the shm (a HUP reload, a
--                 respawned worker and a start from the snapshot find them filled)
--   current()     one shm read (sy_meta "serial"); when it moved, the logged changes are
--                 applied first (switchyard.state). False while nothing was ever loaded.
--   refresh(s)    the same for a serial already read (under pcall; logged)
--   refresh_tick, passive_tick   the per-worker timers' handlers (1 s, 100 ms)
--
-- Fields after setup(): config, state, router, upstreams, certs, hctx, passive.

local state_mod = require "switchyard.state"
local changelog = require "switchyard.shm.changelog"
local tls_certificates = require "switchyard.tls.certificates"
local health_mod = require "switchyard.health.rotation"
local passive_mod = require "switchyard.health.passive"
local metrics = require "switchyard.request.metrics"
local log_fn = require("switchyard.util.log").to_nginx

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_re_find = ngx.re.find
local ERR = ngx.ERR
local NOTICE = ngx.NOTICE
local pcall = pcall
local tostring = tostring
local math_floor = math.floor

local SERIAL = changelog.SERIAL

local _M = {}

local meta          -- ngx.shared.sy_meta
local meta_get      -- its get method
local state         -- this worker's switchyard.state
local serial        -- state.serial, cached

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

-- Brings the tables to `target` (a serial just read from sy_meta).
function _M.refresh(target)
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
        ngx_log(NOTICE, "[switchyard] worker rebuilt its tables: ", _M.router.n, " routes, ",
                state.n_upstreams, " upstreams in ",
                math_floor((ngx_now() - started) * 1000), " ms (serial ", serial, ")")
    end
end
local refresh = _M.refresh

-- Brings this worker's tables to the serial in sy_meta (one shared-dict read; the logged
-- changes are applied when it moved). False while nothing was ever loaded.
function _M.current()
    local s = meta_get(meta, SERIAL)
    if s ~= serial then
        refresh(s)
    end
    return serial ~= nil
end

-- ngx.timer.every: apply changes in the background too, so idle workers stay current and
-- requests rarely pay for a rebuild (the access phase still checks on every request)
function _M.refresh_tick(premature)
    if premature then
        return
    end
    local s = meta_get(meta, SERIAL)
    if s ~= serial then
        refresh(s)
    end
end

-- ngx.timer.every(passive TICK_S): this edge's passive marks (sy_passive)
function _M.passive_tick(premature)
    if premature then
        return
    end
    local ok, err = pcall(_M.passive.tick, _M.passive)
    if not ok then
        ngx_log(ERR, "[switchyard] passive health: ", err)
    end
end

-- opts: config (switchyard.startup's), decrypt (key_enc -> PEM, or nil: no
-- SWITCHYARD_CERT_KEY), ssl (require "ngx.ssl").
function _M.setup(opts)
    _M.config = opts.config
    meta = ngx.shared.sy_meta
    meta_get = meta.get
    local ssl = opts.ssl
    local certs = tls_certificates.new_table({
        parse_cert = ssl.parse_pem_cert,
        parse_key = ssl.parse_pem_priv_key,
        decrypt = opts.decrypt,
        log = log_fn,
    })
    -- endpoint health: the prober's verdicts (sy_health, via the serial) and this edge's
    -- passive marks (sy_passive, via passive_tick); both rebuild only the balancer of the
    -- upstream that changed (switchyard.health.rotation)
    local hctx
    local passive = passive_mod.new({
        dict = ngx.shared.sy_passive,
        now = ngx_now,
        log = log_fn,
        on_mark = function(name, addr)
            metrics.count("passive_marks", name, addr)
        end,
        -- passive marks of `name` changed: rebuild its balancer in place
        on_change = function(name)
            local up = _M.upstreams and _M.upstreams[name]
            if up then
                health_mod.build(hctx, up)
            end
        end,
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
    _M.state = state
    _M.router = state.router          -- the same object for the worker's lifetime
    _M.upstreams = state.upstreams    -- the same table for the worker's lifetime
    _M.certs = certs
    _M.hctx = hctx
    _M.passive = passive
    -- tables already in the shm (a HUP reload, a respawned worker, a snapshot): every
    -- worker builds at once while the others (old ones) serve, so with the collector
    -- running; a cold edge's first build (after its first load) stops it (switchyard.util.bulk)
    state.no_bulk = true
    refresh(meta_get(meta, SERIAL))
    state.no_bulk = nil
end

return _M
