-- Endpoint health at the edge: which endpoints of an upstream are in rotation.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The dicts, the clock and the logger are
-- injected (switchyard.worker in nginx, fakes in busted). Never yields; called from
-- init_worker, the access phase (when the serial moved), the worker timers, and — for
-- retry_pick — the balancer phase (table lookups only).
--
-- Three inputs decide whether an endpoint is in rotation (README.md, "Endpoint health"):
--   active   the prober's verdicts: sy_health "health:<upstream>" holds the addresses the
--            prober has marked down, space-separated and sorted ("" = none down); written
--            by the syncer (switchyard.sync.health_follower) from
--            switchyard:{cfg}:health:<upstream>.
--            They count only for an upstream that has a health_check, only while the
--            prober is fresh (sy_health "prober:fresh" = true: its heartbeat key exists),
--            and never for an endpoint exempt from the check ("health_check": false in
--            its document, ep.checked == false: its own readiness decides, e.g. a
--            Kubernetes pod's; a verdict recorded before it was exempted never takes it
--            out). An endpoint without a verdict ("unknown") is in rotation.
--   passive  this edge's own failure accounting (switchyard.health.passive): addresses taken out
--            for fail_timeout_ms after max_fails failures, per worker in hctx.passive
--            (upstream -> address -> until, seconds). Ignored when max_fails is 0.
--   policy   when nothing is left: on_all_down "fail_open" puts every endpoint back (and
--            says so, loudly, at most every ALL_DOWN_LOG_S per upstream and worker); "503"
--            makes access() answer 503 without trying any.
-- Workers learn of active changes through the serial: the syncer logs "health:<upstream>"
-- (or "prober:fresh") in log:<serial> like a document, and the worker rebuilds only that
-- upstream's balancer (prober:fresh: every upstream with a health check). Passive changes
-- come from switchyard.health.passive, which calls rebuild() for the upstream it changed.
--
-- The upstream object (switchyard.balancer.upstream) gains:
--   policy       {check, max_fails, fail_timeout (s), retries, all_down_503}
--                (switchyard.health.policy, decoded with the document)
--   balancer     the upstream's algorithm (switchyard.balancer.algorithm: round_robin, least_conn,
--                ip_hash, hash, sticky) over the endpoints in rotation (all of them when
--                fail_open applies), rebuilt in place (the object stays the same for ngx.ctx)
--   available    endpoints in that balancer
--   more_tries   min(retries, available - 1): what balance() passes to set_more_tries
--   all_down     true when no endpoint is in rotation (fail_open or 503 applies)
--   unavailable  true when all_down and on_all_down is "503"
--   health_raw, fresh   the inputs it was built from (nothing to do when unchanged)

local balancer_mod = require "switchyard.balancer.algorithm"
local policy_mod = require "switchyard.health.policy"

local pairs = pairs
local math_min = math.min
local str_sub = string.sub
local str_gmatch = string.gmatch
local tbl_sort = table.sort
local tbl_concat = table.concat

local DEFAULT_POLICY = policy_mod.DEFAULT

local _M = {}

_M.HEALTH_PREFIX = "health:"     -- sy_health key and log token: health:<upstream>
_M.FRESH_KEY = "prober:fresh"    -- sy_health key and log token
_M.ALL_DOWN_LOG_S = 10

-- The sy_health value of a set of down addresses (address -> true): sorted, spaces.
function _M.encode_down(set)
    local list = {}
    for addr in pairs(set) do
        list[#list + 1] = addr
    end
    tbl_sort(list)
    return tbl_concat(list, " ")
end

-- "a b" -> {a = true, b = true}; nil or "" -> nil
function _M.decode_down(raw)
    if raw == nil or raw == "" then
        return nil
    end
    local set = {}
    for addr in str_gmatch(raw, "%S+") do
        set[addr] = true
    end
    return set
end

-- A log token (a key of log:<serial>) that belongs to health, not to sy_config.
function _M.is_key(key)
    return key == _M.FRESH_KEY or str_sub(key, 1, 7) == _M.HEALTH_PREFIX
end

-- hctx (one per worker; nil in specs that do not care): {
--   dict     sy_health (get)
--   passive  upstream name -> address -> until (s); switchyard.health.passive keeps it
--   now()    seconds (ngx.now)
--   log(level, msg)
--   logged   upstream name -> time of the last all-down log (rate limit)
--   env      what balancers read per request (switchyard.balancer.algorithm): var (ngx.var),
--            crc32 (ngx.crc32_long), conns (sy_conns); nil: none (specs)
-- }
function _M.new_context(opts)
    return {
        dict = opts.dict,
        passive = opts.passive or {},
        now = opts.now or os.time,
        log = opts.log or function() end,
        logged = {},
        env = opts.env,
    }
end

local function note_all_down(hctx, up, why)
    local now = hctx.now()
    local last = hctx.logged[up.name]
    if last and now - last < _M.ALL_DOWN_LOG_S then
        return
    end
    hctx.logged[up.name] = now
    hctx.log("err", "upstream:" .. up.name .. ": all " .. up.n .. " endpoints are down ("
        .. why .. "): " .. (up.policy.all_down_503
            and "on_all_down 503, answering 503 without trying any"
            or "on_all_down fail_open, sending to all of them anyway")
        .. " (said at most every " .. _M.ALL_DOWN_LOG_S .. " s)")
end

-- Called when a request meets an upstream with all_down set (rate-limited log).
function _M.all_down_hit(hctx, up)
    if hctx then
        note_all_down(hctx, up, "still")
    end
    return up.unavailable
end

-- (Re)computes up.balancer and the fields above from up.endpoints, up.policy and hctx.
-- O(endpoints of this upstream). Returns up.
function _M.build(hctx, up)
    local policy = up.policy or DEFAULT_POLICY
    up.policy = policy
    local eps = up.endpoints
    local n = #eps
    local raw, fresh
    local down, pdown, now
    if hctx then
        local dict = hctx.dict
        if dict then
            raw = dict:get(_M.HEALTH_PREFIX .. up.name)
            fresh = dict:get(_M.FRESH_KEY) == true
        end
        if policy.check and fresh then
            down = _M.decode_down(raw)
        end
        if policy.max_fails > 0 then
            pdown = hctx.passive[up.name]
            if pdown then
                now = hctx.now()
            end
        end
    end
    up.health_raw = raw
    up.fresh = fresh
    local avail = eps
    local n_active, n_passive = 0, 0
    if down or pdown then
        avail = {}
        for i = 1, n do
            local ep = eps[i]
            local addr = ep.address
            if down and down[addr] and ep.checked ~= false then
                n_active = n_active + 1
            elseif pdown and (pdown[addr] or 0) > now then
                n_passive = n_passive + 1
            else
                avail[#avail + 1] = ep
            end
        end
    end
    local all_down = n > 0 and #avail == 0
    up.all_down = all_down or nil
    up.unavailable = (all_down and policy.all_down_503) or nil
    if all_down then
        if not policy.all_down_503 then
            avail = eps
        end
        if hctx then
            note_all_down(hctx, up, n_active .. " by the prober, " .. n_passive
                          .. " by passive health")
        end
    end
    up.balancer = balancer_mod.new(up, up.unavailable and {} or avail, hctx and hctx.env)
    up.available = up.unavailable and 0 or #avail
    up.more_tries = up.available > 1 and math_min(policy.retries, up.available - 1) or 0
    up.down_active, up.down_passive = n_active, n_passive
    return up
end

-- Rebuilds when the health inputs changed since up was built (or always, with force).
function _M.refresh(hctx, up, force)
    if not force then
        local dict = hctx and hctx.dict
        if not dict then
            return false   -- no verdicts to follow
        end
        if dict:get(_M.HEALTH_PREFIX .. up.name) == up.health_raw
            and (dict:get(_M.FRESH_KEY) == true) == (up.fresh == true) then
            return false
        end
    end
    _M.build(hctx, up)
    return true
end

-- A logged health token for the worker's upstreams (switchyard.state): "health:<name>"
-- rebuilds that upstream, "prober:fresh" every upstream with a health check.
function _M.apply_key(hctx, upstreams, key)
    if key == _M.FRESH_KEY then
        for _, up in pairs(upstreams) do
            if up.policy and up.policy.check then
                _M.refresh(hctx, up)
            end
        end
        return
    end
    local up = upstreams[str_sub(key, #_M.HEALTH_PREFIX + 1)]
    if up then
        _M.refresh(hctx, up)
    end
end

-- After a full rebuild of the worker's tables: every upstream whose inputs moved.
-- O(upstreams); only on full rebuilds.
function _M.refresh_all(hctx, upstreams)
    for _, up in pairs(upstreams) do
        _M.refresh(hctx, up)
    end
end

-- The next endpoint for a retry: the balancer's choice among the endpoints in rotation
-- this request has not tried (tried: endpoint table -> true; the algorithm's own order:
-- next WRR pick, least loaded, next endpoint clockwise on the hash ring), else an
-- endpoint never tried even if out of rotation (the rotation shrank during this request),
-- else the balancer's pick. ctx: the request's ngx.ctx (balancers keep their state there).
-- Bounded: one balancer retry (at most one pass over its endpoints or ring) plus one pass
-- over the endpoints.
function _M.retry_pick(up, tried, ctx)
    local b = up.balancer
    local p = b:retry(ctx, tried)
    if p then
        return p
    end
    local eps = up.endpoints
    for i = 1, #eps do
        if not tried[eps[i]] then
            return eps[i]
        end
    end
    return b:pick(ctx) or eps[1]
end

-- For /_switchyard/status: sy_health (the edge) and the answering worker's view.
-- hdict: sy_health; passive_outs: switchyard.health.passive outs(); upstreams: the worker's.
-- At most `max` upstreams are listed; O(upstreams) (a status request, never a proxied one).
function _M.status(hdict, passive_outs, upstreams, max)
    local down = {}
    local keys = hdict:get_keys(max)
    local prefix = _M.HEALTH_PREFIX
    for i = 1, #keys do
        local key = keys[i]
        if str_sub(key, 1, #prefix) == prefix then
            local raw = hdict:get(key)
            if raw and raw ~= "" then
                down[str_sub(key, #prefix + 1)] = raw
            end
        end
    end
    local all_down, limited = {}, {}
    for name, up in pairs(upstreams) do
        if up.all_down and #all_down < max then
            all_down[#all_down + 1] = name
        end
        if (up.down_active or 0) + (up.down_passive or 0) > 0 and not up.all_down then
            limited[name] = up.available
        end
    end
    tbl_sort(all_down)
    return {
        prober_fresh = hdict:get(_M.FRESH_KEY) == true,
        fresh_since = hdict:get("status:fresh_since"),
        version = hdict:get("status:version"),
        loads = hdict:get("status:loads") or 0,
        last_load = hdict:get("status:last_load"),
        down = down,                  -- upstream -> the prober's down addresses
        passive_out = passive_outs,   -- "<upstream> <address>" -> ms left (this worker)
        all_down = all_down,          -- upstreams with no endpoint in rotation
        in_rotation = limited,        -- upstream -> endpoints left, where some are out
    }
end

return _M
