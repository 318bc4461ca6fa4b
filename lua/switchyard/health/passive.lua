-- Passive health: this edge judges endpoints by the requests it sends them, as nginx's
-- own upstreams do with max_fails / fail_timeout. Shared by the edge's workers through
-- the sy_passive dict; each worker keeps the result in a local table so the request path
-- reads no shared dict for it.
--
-- Pure*: the dict, clock, logger and the rebuild callback are injected (busted runs it
-- with fakes). Never yields. failed() runs in the balancer phase (a retry) and in
-- @sy_failed (the last attempt; switchyard.request.response); tick() in a per-worker
-- ngx.timer.every(TICK_S).
--
-- Semantics (per upstream and endpoint address; policy from the upstream document):
--   * a failure is an attempt that ended in a connect error, a timeout, or a 502, 503 or
--     504 from the endpoint (what proxy_next_upstream retries; nginx's definition);
--   * max_fails failures within fail_timeout (counted from the first one: the counter is
--     a dict entry with that TTL) take the endpoint out of rotation for fail_timeout, on
--     every worker; afterwards it is back and needs max_fails new failures to go out
--     again (nginx lets one failure re-mark it; see lua/README.md);
--   * max_fails 0: no accounting at all;
--   * successes do not reset the counter (nginx does not either, within the window).
--
-- sy_passive keys:
--   fails:<upstream> <address>   failures counted so far (TTL fail_timeout from the first)
--   out:<upstream> <address>     until when (s, ngx.now() clock) it is out (TTL the same)
--   serial                       +1 per endpoint taken out (atomic incr, any worker)
--   log:<serial>                 "<upstream> <address> <until>" (TTL LOG_TTL)
-- A worker replays log entries after the serial it saw (scans the out: keys instead when
-- an entry is missing or it is more than MAX_REPLAY behind), drops expired marks, and
-- calls on_change(upstream) for every upstream whose marks moved (the balancer is rebuilt,
-- O(endpoints of that upstream)). The worker that takes an endpoint out applies it at
-- once; the others within TICK_S.

local changelog = require "switchyard.shm.changelog"

local setmetatable = setmetatable
local pairs = pairs
local next = next
local tonumber = tonumber
local tostring = tostring
local math_floor = math.floor
local str_match = string.match
local str_sub = string.sub

local _M = {}
local mt = {__index = _M}

_M.TICK_S = 0.1
_M.LOG_TTL = 60
_M.MAX_REPLAY = 1000

-- opts: dict (sy_passive), now() (s), log(level, msg), on_change(upstream_name)
function _M.new(opts)
    return setmetatable({
        dict = opts.dict,
        now = opts.now,
        log = opts.log or function() end,
        on_change = opts.on_change or function() end,
        -- this worker took an endpoint out (metrics: passive marks)
        on_mark = opts.on_mark or function() end,
        down = {},        -- upstream -> address -> until; shared with switchyard.health.rotation
        serial = nil,     -- the sy_passive serial replayed so far; nil: scan first
        scans = 0,
    }, mt)
end

local function mark(self, name, addr, until_)
    local t = self.down[name]
    if not t then
        t = {}
        self.down[name] = t
    end
    if t[addr] ~= until_ then
        t[addr] = until_
        return true
    end
    return false
end

-- One failed attempt of `peer` (an endpoint of up: {address, ...}).
function _M.failed(self, up, peer)
    local policy = up.policy
    if not policy or policy.max_fails == 0 or not peer then
        return
    end
    local dict = self.dict
    local id = up.name .. " " .. peer.address
    local fkey = "fails:" .. id
    local ttl = policy.fail_timeout
    local n, err = dict:incr(fkey, 1, 0, ttl)
    if not n then
        self.log("err", "sy_passive: cannot count a failure of " .. id .. ": " .. tostring(err))
        return
    end
    if n < policy.max_fails then
        return
    end
    local okey = "out:" .. id
    local until_ = self.now() + ttl
    local ok, _, forcible = dict:add(okey, until_, ttl)
    if forcible then
        self.log("warn", "sy_passive is full: older entries were evicted")
    end
    if ok then
        dict:delete(fkey)
        -- every worker writes: the serial is an atomic incr (switchyard.shm.changelog)
        changelog.append_shared(dict, "sy_passive", id .. " " .. until_, _M.LOG_TTL, self.log)
        self.on_mark(up.name, peer.address)
        local ms = math_floor(ttl * 1000 + 0.5)
        self.log("warn", "upstream:" .. up.name .. ": endpoint " .. peer.address .. " failed "
                 .. n .. " times within " .. ms .. " ms: out of rotation for " .. ms
                 .. " ms (passive health)")
    else
        -- another worker took it out first: use its deadline
        until_ = dict:get(okey) or until_
    end
    if mark(self, up.name, peer.address, until_) then
        self.on_change(up.name)
    end
end

-- Rebuilds self.down from the out: keys (in place: switchyard.health.rotation holds the table).
local function scan(self, dirty)
    local dict = self.dict
    local fresh = {}
    local keys = dict:get_keys(0)
    for i = 1, #keys do
        local key = keys[i]
        if str_sub(key, 1, 4) == "out:" then
            local name, addr = str_match(key, "^out:(%S+) (%S+)$")
            local until_ = dict:get(key)
            if name and until_ then
                local t = fresh[name]
                if not t then
                    t = {}
                    fresh[name] = t
                end
                t[addr] = until_
            end
        end
    end
    local down = self.down
    for name, t in pairs(down) do
        local f = fresh[name]
        for addr, u in pairs(t) do
            if not f or f[addr] ~= u then
                dirty[name] = true
            end
        end
        down[name] = nil
    end
    for name, t in pairs(fresh) do
        down[name] = t
        dirty[name] = true
    end
    self.scans = self.scans + 1
end

-- Brings this worker's marks up to date and drops expired ones. Returns the number of
-- upstreams rebuilt.
function _M.tick(self)
    local dict = self.dict
    local s = changelog.serial(dict)
    local dirty = {}
    if s ~= self.serial then
        -- the marks taken since (switchyard.shm.changelog); nil: scan the out: keys instead
        local entries = changelog.entries(dict, self.serial, s, _M.MAX_REPLAY)
        if entries then
            for i = 1, #entries do
                local name, addr, until_ = str_match(entries[i], "^(%S+) (%S+) (%S+)$")
                until_ = tonumber(until_)
                if name and until_ and mark(self, name, addr, until_) then
                    dirty[name] = true
                end
            end
        else
            scan(self, dirty)
        end
        self.serial = s
    end
    local down = self.down
    if next(down) ~= nil then
        local now = self.now()
        for name, t in pairs(down) do
            for addr, u in pairs(t) do
                if u <= now then
                    t[addr] = nil
                    dirty[name] = true
                end
            end
            if next(t) == nil then
                down[name] = nil
            end
        end
    end
    local n = 0
    for name in pairs(dirty) do
        n = n + 1
        self.on_change(name)
    end
    return n
end

-- {"<upstream> <address>" = ms left} for /_switchyard/status (at most `max` entries).
function _M.outs(self, max)
    local out = {}
    local now = self.now()
    local n = 0
    for name, t in pairs(self.down) do
        for addr, u in pairs(t) do
            if n >= max then
                return out
            end
            n = n + 1
            out[name .. " " .. addr] = math_floor((u - now) * 1000)
        end
    end
    return out
end

return _M
