-- A route's `rate_limit` (docs/traffic-policies.md): GCRA (the leaky bucket as a meter)
-- over a shared dict (sy_ratelimit in nginx), so every worker of an edge shares one limit.
--
-- Pure: no ngx; the dict (get/set like ngx.shared.DICT) and the clock are passed in, so
-- busted runs it on Lua 5.2. Never yields.
--
-- One number per key: the theoretical arrival time (TAT, seconds) of the next request
-- conforming to the rate. With interval = 1/rps and tolerance = burst/rps, a request at
-- `now` is refused while TAT - now > tolerance (Retry-After: that excess, rounded up to
-- whole seconds, at least 1); otherwise TAT becomes max(TAT, now) + interval. So a client
-- idle long enough gets burst + 1 requests at once, then one per interval. An idle key
-- expires from the dict once its TAT has passed (+1 s).
--
-- Race, accepted: get and set are two dict operations, not one. Two workers reading the
-- same TAT in the same instant both admit their request and the later set wins, so under
-- contention an edge can admit up to (workers - 1) extra requests per such collision; the
-- limit never refuses more than it should. nginx's limit_req takes a lock for this; a
-- shared-dict lock here would cost every limited request a second round of dict calls.
-- A full dict evicts the least recently used keys (ngx.shared set): a forgotten client
-- starts from a full burst again, nothing else breaks.

local math_ceil = math.ceil

local _M = {}

local EPSILON = 1e-6   -- float slack: burst + 1 back-to-back requests always pass

-- Returns true when the request conforms (and records it); false, retry_after (whole
-- seconds >= 1) when it is refused.
function _M.check(dict, key, now, interval, tolerance)
    local tat = dict:get(key)
    if not tat or tat < now then
        tat = now
    end
    local excess = tat - now - tolerance
    if excess > EPSILON then
        local retry = math_ceil(excess - EPSILON)
        if retry < 1 then
            retry = 1
        end
        return false, retry
    end
    tat = tat + interval
    dict:set(key, tat, tat - now + 1)
    return true
end

return _M
