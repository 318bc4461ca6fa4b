-- When the prober's verdicts go stale at the edge (README.md, "Endpoint health", "Stale
-- prober"; redis/README.md, "Staleness: the heartbeat").
--
-- The active prober renews switchyard:{cfg}:prober:heartbeat with PX = its lease on every
-- renewal (every lease/3); a standby that takes over writes it again within a third of a
-- lease after the old lease expired. So the edge counts from the heartbeat's EXPIRY, as it
-- last saw it (the time of that check + the key's PTTL then, on the edge's own clock: no
-- clock shared with the prober is needed), and calls the prober stale once
--
--     now > expiry + lease/3 + check_s
--
-- (lease: the lease_ms the heartbeat announced; check_s: how often the edge looks, 1 s).
-- A failover therefore never flaps the edges (the standby's heartbeat is back within
-- lease/3 of the expiry, and seen within check_s), and a dead prober is ignored at most
-- lease + lease/3 + 2 check_s after its last renewal: the key expires a lease after it,
-- the grace adds lease/3 + check_s, and the check that notices comes at most check_s
-- later (6 s with the default 3 s lease). Redis unreachable: the same rule, from the last
-- expiry seen.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The clock is the caller's (seconds).
-- Used by switchyard.sync.health_follower.

local setmetatable = setmetatable
local tonumber = tonumber

local _M = {}
local mt = {__index = _M}

-- default_lease_s: until a heartbeat announces its own; check_s: the follower's interval
function _M.new(default_lease_s, check_s)
    return setmetatable({
        lease = default_lease_s,
        default_lease = default_lease_s,
        check = check_s,
        expiry = nil,       -- when the heartbeat key expires, as last seen (nil: never seen)
    }, mt)
end

-- The heartbeat key was there at `now`: pttl_ms its PTTL in the same round trip (-1: no
-- expiry, as a hand-written key; nil or -2: gone meanwhile), lease_ms the lease it
-- announced (nil or below 100: the default).
function _M.seen(self, now, pttl_ms, lease_ms)
    lease_ms = tonumber(lease_ms)
    if lease_ms and lease_ms >= 100 then
        self.lease = lease_ms / 1000
    else
        self.lease = self.default_lease
    end
    pttl_ms = tonumber(pttl_ms)
    if pttl_ms and pttl_ms >= 0 then
        self.expiry = now + pttl_ms / 1000
    else
        -- no TTL to go by: as if renewed just now
        self.expiry = now + self.lease
    end
end

-- The grace after the expiry: a third of a lease (a standby's takeover) + one check.
function _M.grace(self)
    return self.lease / 3 + self.check
end

-- true once the heartbeat has been missing for longer than the grace after its expiry
function _M.stale(self, now)
    local expiry = self.expiry
    if not expiry then
        return true
    end
    return now > expiry + self:grace()
end

-- The bound the README promises (seconds after the last renewal) for a lease of lease_s.
function _M.bound(lease_s, check_s)
    return lease_s + lease_s / 3 + 2 * check_s
end

return _M
