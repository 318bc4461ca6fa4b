-- Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_get_peer).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Per-worker state: each worker balances on
-- its own, exactly as nginx's own round robin does without a shared zone.
--
-- For every pick, each peer's current weight grows by its weight; the peer with the
-- largest current weight wins (the first one on ties) and loses the total weight. Over a
-- cycle of sum(weights) picks every peer is chosen exactly `weight` times, and picks of
-- one peer are spread out (weights 5,1,1 give a a b a c a a, not a a a a a b c).
--
-- Interface shared by balancers (switchyard.balancer.algorithm): new(peers), pick(ctx) -> peer,
-- retry(ctx, tried) -> a peer not in tried, count(), n, peers. Round robin ignores ctx.
-- peers: array of tables with a positive integer `weight`; pick returns the table itself.

local setmetatable = setmetatable

local _M = {}
local mt = {__index = _M}

function _M.new(peers)
    local n = #peers
    local weights, current, list = {}, {}, {}
    local total = 0
    for i = 1, n do
        local w = peers[i].weight or 1
        list[i] = peers[i]
        weights[i] = w
        current[i] = 0
        total = total + w
    end
    return setmetatable({
        peers = list,
        weights = weights,
        current = current,
        total = total,
        n = n,
    }, mt)
end

function _M.count(self)
    return self.n
end

-- Returns the next peer, or nil when there are no peers.
function _M.pick(self)
    local n = self.n
    if n == 1 then
        return self.peers[1]
    end
    if n == 0 then
        return nil
    end
    local weights, current = self.weights, self.current
    local best, best_w = 1, nil
    for i = 1, n do
        local c = current[i] + weights[i]
        current[i] = c
        if best_w == nil or c > best_w then
            best, best_w = i, c
        end
    end
    current[best] = best_w - self.total
    return self.peers[best]
end

-- The next pick that is not in `tried` (peer -> true), or nil after a whole round of
-- tried peers. At most n picks (each one advances the sequence, as nginx's retries do).
function _M.retry(self, _, tried)
    for _ = 1, self.n do
        local p = self:pick()
        if not tried[p] then
            return p
        end
    end
    return nil
end

return _M
