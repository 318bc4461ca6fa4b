-- The syncer's health half: follows the prober's verdicts in Redis (redis/README.md,
-- "Health": the contract) into the sy_health dict, and tells the workers through the same
-- serial and log:<serial> entries the configuration uses (token "health:<upstream>", or
-- "prober:fresh"), so a worker rebuilds only the balancer of the upstream that changed.
--
-- Runs in worker 0's syncer timer (switchyard.sync.syncer), as a light thread of its own with
-- its own Redis connection: a long configuration reload never delays a health change.
-- Yields; never on the request path. Writes only while this worker holds the syncer lock.
-- One follower per worker (new(ctx), kept in the syncer's context as ctx.health): its
-- state outlives the syncer timer's restarts.
--
--   subscriber (switchyard.sync.subscriber) SUBSCRIBEs events and health_events in one
--       command; health_events messages are queued here (on_message) and every
--       (re)subscribe asks for a load (on_subscribed).
--   loop  waits for a message or at most CHECK_S, then
--     * applies queued messages "<v> <upstream> <address> <state>": v <= applied:
--       ignore; v = applied + 1: apply (up/down/unknown set the state, removed forgets the
--       address, or the whole upstream for "*"); v > applied + 1: messages were lost, load;
--     * every CHECK_S (and whenever a load is due): GET health_version + GET and PTTL
--       prober:heartbeat in one round trip. The heartbeat decides "prober:fresh": fresh
--       when present; stale once it has been missing (or Redis unreachable) for longer
--       than a third of the lease it announced (lease_ms, default 3 s) + CHECK_S after
--       its expiry as last seen (switchyard.health.staleness), so a failover, where the
--       standby takes over within a third of a lease, does not flap the edges.
--       A change is logged and announced (workers rebuild upstreams with a health
--       check). A health_version other than the applied one (after the queue is
--       drained) means a load;
--     * load: GET health_version (H) + SMEMBERS health_upstreams, then HGETALL of each
--       (pipelined, CHUNK at a time); the result replaces everything (upstreams no longer
--       listed are forgotten); applied = H. Messages queued meanwhile are applied on top.
--   Redis unreachable (connect or command failing): the edge cannot tell whether a prober
--   is alive, so after the same grace its verdicts are treated as stale too (passive
--   health decides) until Redis answers again.
--
-- sy_health (written here only; read by workers through switchyard.health.rotation):
--   health:<upstream>   addresses the prober has marked down, sorted, space-separated
--                       ("" = none); absent = no health hash in Redis
--   prober:fresh        true while the prober's heartbeat key exists
--   status:version, status:loads, status:last_load, status:fresh_since   for the status
-- Per-change cost: one upstream's addresses (encoding its down set); a load is O(health
-- records) and happens only at (re)subscribe, after lost messages, or when the versions
-- disagree.

local keys = require "switchyard.sync.keys"
local store_mod = require "switchyard.shm.store"
local changelog = require "switchyard.shm.changelog"
local health = require "switchyard.health.rotation"
local staleness = require "switchyard.health.staleness"
local context = require "switchyard.sync.context"
local lock = require "switchyard.sync.lock"
local resp = require "switchyard.sync.resp"
local redis_reply = require "switchyard.sync.reply"
local log_fn = require("switchyard.util.log").to_nginx
local backoff = require("switchyard.util.backoff").delay
local semaphore = require "ngx.semaphore"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local INFO = ngx.INFO
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_update_time = ngx.update_time
local worker_exiting = ngx.worker.exiting
local setmetatable = setmetatable
local pcall = pcall
local pairs = pairs
local next = next
local type = type
local tonumber = tonumber
local tostring = tostring
local math_min = math.min
local math_floor = math.floor
local str_match = string.match
local str_sub = string.sub
local tbl_concat = table.concat

local is_error = resp.is_error
local pairs_to_table = resp.pairs_to_table
local first_error = redis_reply.first_error
local parse_version = redis_reply.parse_version

local HEALTH_PREFIX = health.HEALTH_PREFIX
local FRESH_KEY = health.FRESH_KEY

local _M = {}
local mt = {__index = _M}

local CHECK_S = 1
local DEFAULT_LEASE_S = 3   -- the prober's default lease, until a heartbeat tells its own
local CHUNK = 200
local MAX_QUEUE = 10000

-- ctx: switchyard.sync.context (its meta, its lock, its Redis settings).
function _M.new(ctx)
    return setmetatable({
        ctx = ctx,
        hdict = ngx.shared.sy_health,
        meta = ctx.meta,
        sema = semaphore.new(),
        queue = {},         -- health_events payloads, in arrival order
        load_wanted = 1,    -- bumped by whoever wants a load; loaded = the value a load served
        loaded = 0,
        applied = nil,      -- health_version applied; nil before the first load
        states = {},        -- upstream -> address -> "up" | "down" | "unknown" (Redis's records)
        last_check = 0,
        stale = staleness.new(DEFAULT_LEASE_S, CHECK_S),   -- the heartbeat's expiry, seen
    }, mt)
end

local function now()
    ngx_update_time()
    return ngx_now()
end

-- subscriber thread: a health_events payload
function _M.on_message(self, payload)
    local queue = self.queue
    local n = #queue
    if n >= MAX_QUEUE then
        self.queue = {}
        self.load_wanted = self.load_wanted + 1
    else
        queue[n + 1] = payload
    end
    self.sema:post(1)
end

-- subscriber thread: (re)subscribed; whatever happened meanwhile is unknown
function _M.on_subscribed(self)
    self.load_wanted = self.load_wanted + 1
    self.sema:post(1)
end

-- Announces changed sy_health keys to the workers in sy_meta's change log, as store.commit
-- does (switchyard.shm.changelog; this worker's applier is the only other writer and does
-- not yield inside a commit either), LOG_MAX_KEYS tokens per entry. Before anything is
-- loaded (no serial) the workers will read sy_health when they first build.
local function announce(self, changed)
    local meta = self.meta
    local n = #changed
    if n == 0 or changelog.serial(meta) == nil then
        return
    end
    local max = store_mod.LOG_MAX_KEYS
    for i = 1, n, max do
        changelog.append(meta, "sy_meta", tbl_concat(changed, " ", i, math_min(n, i + max - 1)),
                         store_mod.LOG_TTL, log_fn)
    end
end

-- Writes sy_health for the touched upstreams (name -> true); returns the changed keys.
local function write(self, touched, changed)
    local hdict, states = self.hdict, self.states
    for name in pairs(touched) do
        local key = HEALTH_PREFIX .. name
        local value
        local t = states[name]
        if t then
            local down = {}
            for addr, state in pairs(t) do
                if state == "down" then
                    down[addr] = true
                end
            end
            value = health.encode_down(down)
        end
        if hdict:get(key) ~= value then
            if value then
                local ok, err = hdict:safe_set(key, value)
                if not ok then
                    ngx_log(ERR, "[switchyard] sy_health: cannot store ", key, " (", err,
                            "): raise the sy_health dict")
                end
            else
                hdict:delete(key)
            end
            changed[#changed + 1] = key
        end
    end
    return changed
end

local function set_fresh(self, fresh, why, changed)
    local hdict = self.hdict
    if (hdict:get(FRESH_KEY) == true) == fresh then
        return
    end
    hdict:set(FRESH_KEY, fresh)
    hdict:set("status:fresh_since", math_floor(ngx_now() * 1000))
    changed[#changed + 1] = FRESH_KEY
    if fresh then
        ngx_log(NOTICE, "[switchyard] the prober's heartbeat is fresh: applying its verdicts")
    else
        ngx_log(WARN, "[switchyard] ", why, ": ignoring the prober's verdicts, passive",
                " health decides until it is back")
    end
end

-- The heartbeat was not seen (missing, or Redis could not be asked): stale once its
-- expiry as last seen is more than lease/3 + CHECK_S ago (switchyard.health.staleness):
-- a standby writes it again within a third of a lease after the expiry, so a failover
-- (or a short Redis blip) does not flap the edges; a dead prober is ignored at most
-- lease + lease/3 + 2 CHECK_S after its last renewal (6 s with the defaults).
local function not_seen(self, why)
    if self.hdict:get(FRESH_KEY) == true and self.stale:stale(now()) then
        local changed = {}
        set_fresh(self, false, why, changed)
        announce(self, changed)
    end
end

local function unreachable(self)
    if lock.held(self.ctx) then
        not_seen(self, "Redis unreachable: the prober's heartbeat cannot be checked")
    end
end

local function apply(self, name, addr, state, touched)
    local states = self.states
    if state == "removed" then
        if addr == "*" then
            states[name] = nil
        else
            local t = states[name]
            if t then
                t[addr] = nil
                if next(t) == nil then
                    states[name] = nil
                end
            end
        end
    elseif state == "up" or state == "down" or state == "unknown" then
        local t = states[name]
        if not t then
            t = {}
            states[name] = t
        end
        t[addr] = state
    else
        ngx_log(WARN, "[switchyard] health message with unknown state \"", state, "\" ignored")
        return
    end
    touched[name] = true
end

local function drain(self)
    if #self.queue == 0 then
        return
    end
    local q = self.queue
    self.queue = {}
    if self.loaded < self.load_wanted or self.applied == nil then
        return   -- a load is due: it reads everything these say (they were published earlier)
    end
    local touched = {}
    local any = false
    for i = 1, #q do
        local v, name, addr, state = str_match(q[i], "^(%d+) (%S+) (%S+) (%S+)$")
        v = tonumber(v)
        local applied = self.applied
        if not v then
            ngx_log(WARN, "[switchyard] unreadable health message ignored: ",
                    str_sub(q[i], 1, 200))
        elseif v == applied + 1 then
            apply(self, name, addr, state, touched)
            self.applied = v
            any = true
        elseif v > applied + 1 then
            ngx_log(NOTICE, "[switchyard] health messages lost (got ", v, ", applied ", applied,
                    "): loading the health records again")
            self.load_wanted = self.load_wanted + 1
            break
        end
    end
    if any then
        if not lock.held(self.ctx) then
            self.load_wanted = self.load_wanted + 1
            return
        end
        announce(self, write(self, touched, {}))
        self.hdict:set("status:version", self.applied)
    end
end

local function load(self, cmd)
    local hdict = self.hdict
    local wanted = self.load_wanted
    local replies, err = cmd:pipeline({
        {"GET", keys.health_version},
        {"SMEMBERS", keys.health_upstreams},
    })
    if not replies then
        return nil, "health load: " .. tostring(err)
    end
    local rerr = first_error(replies, 2)
    if rerr then
        return nil, "health load: " .. rerr
    end
    local version = parse_version(replies[1])
    if not version then
        return nil, "health load: health_version is not an integer"
    end
    local names = type(replies[2]) == "table" and replies[2] or {}
    local fresh = {}
    for i = 1, #names, CHUNK do
        local last = math_min(#names, i + CHUNK - 1)
        local cmds = {}
        for j = i, last do
            cmds[#cmds + 1] = {"HGETALL", keys.health(names[j])}
        end
        local res
        res, err = cmd:pipeline(cmds)
        if not res then
            return nil, "health load: " .. tostring(err)
        end
        for j = i, last do
            local reply = res[j - i + 1]
            if is_error(reply) then
                return nil, "health load: " .. reply.message
            end
            local t = {}
            for addr, raw in pairs(pairs_to_table(reply)) do
                local record = cjson.decode(raw)
                local state = type(record) == "table" and record.state
                if state == "up" or state == "down" or state == "unknown" then
                    t[addr] = state
                else
                    ngx_log(WARN, "[switchyard] unreadable health record of ", names[j], " ",
                            addr, " ignored")
                end
            end
            if next(t) ~= nil then
                fresh[names[j]] = t
            end
        end
    end
    if not lock.held(self.ctx) then
        return nil, "lost the syncer lock"
    end
    local touched = {}
    for name in pairs(self.states) do
        touched[name] = true
    end
    for name in pairs(fresh) do
        touched[name] = true
    end
    local present = hdict:get_keys(0)
    for i = 1, #present do
        local key = present[i]
        if str_sub(key, 1, #HEALTH_PREFIX) == HEALTH_PREFIX then
            touched[str_sub(key, #HEALTH_PREFIX + 1)] = true
        end
    end
    self.states = fresh
    local changed = write(self, touched, {})
    announce(self, changed)
    local before = self.applied
    self.applied = version
    self.loaded = wanted
    hdict:set("status:version", version)
    hdict:incr("status:loads", 1, 0)
    hdict:set("status:last_load", math_floor(ngx_now() * 1000))
    ngx_log(before == nil and NOTICE or INFO, "[switchyard] health loaded: version ", version,
            ", ", #names, " upstreams, ", #changed, " changed")
    return true
end

local function check(self, cmd)
    local replies, err = cmd:pipeline({
        {"GET", keys.health_version},
        {"GET", keys.prober_heartbeat},
        {"PTTL", keys.prober_heartbeat},
    })
    if not replies then
        return nil, "health check: " .. tostring(err)
    end
    local rerr = first_error(replies, 3)
    if rerr then
        return nil, "health check: " .. rerr
    end
    local t = now()
    self.last_check = t
    if not lock.held(self.ctx) then
        return true
    end
    local hb = replies[2]
    if type(hb) == "string" then
        local decoded = cjson.decode(hb)
        self.stale:seen(t, replies[3], type(decoded) == "table" and decoded.lease_ms)
        local changed = {}
        set_fresh(self, true, nil, changed)
        announce(self, changed)
    else
        not_seen(self, "the prober's heartbeat (" .. keys.prober_heartbeat .. ") has been"
                 .. " missing for over a lease")
    end
    -- messages published before this GET are usually queued by now
    drain(self)
    local version = parse_version(replies[1])
    if self.loaded < self.load_wanted or self.applied == nil then
        return load(self, cmd)
    end
    if version ~= self.applied then
        ngx_log(INFO, "[switchyard] health_version is ", tostring(version), ", applied ",
                self.applied, ": loading the health records again")
        return load(self, cmd)
    end
    return true
end

-- The health thread (spawned by the syncer's timer next to the applier and subscriber).
function _M.loop(self)
    local sema = self.sema
    local cmd = context.new_client(self.ctx, 2000)
    local attempt = 0
    while not worker_exiting() do
        local ok, err = pcall(function()
            if not lock.held(self.ctx) then
                self.load_wanted = self.load_wanted + 1   -- someone else may write meanwhile
                sema:wait(0.5)
                return
            end
            if not cmd:connected() then
                local cok, cerr = cmd:connect()
                if not cok then
                    unreachable(self)
                    ngx_log(WARN, "[switchyard] Redis health connection: ", cerr)
                    sema:wait(backoff(attempt))
                    attempt = attempt + 1
                    return
                end
                attempt = 0
            end
            local wait = CHECK_S - (now() - self.last_check)
            if wait > 0 and #self.queue == 0 and self.loaded >= self.load_wanted then
                sema:wait(wait)
            end
            for _ = 1, 10000 do   -- wake-ups already counted are in the queue
                if sema:count() <= 0 then
                    break
                end
                sema:wait(0)
            end
            if worker_exiting() then
                return
            end
            drain(self)
            if self.loaded < self.load_wanted or now() - self.last_check >= CHECK_S then
                local cok, cerr = check(self, cmd)
                if not cok then
                    cmd:close()
                    unreachable(self)
                    ngx_log(ERR, "[switchyard] ", cerr)
                    sema:wait(backoff(attempt))
                    attempt = attempt + 1
                end
            end
        end)
        if not ok then
            ngx_log(ERR, "[switchyard] health sync error: ", err)
            cmd:close()
            ngx_sleep(backoff(attempt))
            attempt = attempt + 1
        end
    end
    cmd:close()
end

return _M
