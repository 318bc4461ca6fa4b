-- `"balance": "least_conn"`: the endpoint in rotation with the fewest active requests per
-- unit of weight (active / weight), counted per edge across all its workers in the shared
-- dict sy_conns; ties are broken by smooth WRR among the tied endpoints (nginx's
-- least_conn does the same).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The dict (get/incr) is injected.
--
-- sy_conns keys: "<upstream> <address>" -> active attempts on this edge (precomputed
-- per endpoint: no string is built per request). Accounting:
--   pick / retry   +1 on the chosen endpoint, remembered in ctx.sy_conn (the key);
--   retry          first -1 on the previous attempt's key;
--   release(ctx)   -1 on ctx.sy_conn (log phase: the last attempt ended).
-- A count that reads negative (a dict cleared by hand) counts as 0. The cost per pick is
-- one dict get per endpoint in rotation and one incr.
-- Limit: an attempt whose log phase never runs (a worker killed mid-request) leaves its
-- +1 behind until the edge restarts; the endpoint then looks a little busier than it is.

local setmetatable = setmetatable
local vars = require "switchyard.request.vars"
local C_CONN = vars.ctx.conn

local _M = {}
local mt = {__index = _M}

-- peers: the endpoints in rotation; name: the upstream's name; env.conns: sy_conns.
function _M.new(peers, name, env)
    local n = #peers
    local list, weights, keys, current = {}, {}, {}, {}
    for i = 1, n do
        local p = peers[i]
        list[i] = p
        weights[i] = p.weight or 1
        keys[i] = p.conn_key or (name .. " " .. p.address)
        p.conn_key = keys[i]
        current[i] = 0
    end
    return setmetatable({
        peers = list,
        weights = weights,
        keys = keys,
        current = current,
        scores = {},     -- scratch, reused per pick (a pick never yields)
        dict = env.conns,
        n = n,
    }, mt)
end

function _M.count(self)
    return self.n
end

-- The least loaded peer not in `skip` (nil: none skipped), ties by smooth WRR.
local function choose(self, skip)
    local n = self.n
    local peers, weights, keys, scores = self.peers, self.weights, self.keys, self.scores
    local dict = self.dict
    local best, ties = nil, 0
    for i = 1, n do
        local s = false
        if not (skip and skip[peers[i]]) then
            local a = dict:get(keys[i]) or 0
            if a < 0 then
                a = 0
            end
            s = a / weights[i]
            if best == nil or s < best then
                best, ties = s, 1
            elseif s == best then
                ties = ties + 1
            end
        end
        scores[i] = s
    end
    if best == nil then
        return nil
    end
    local current = self.current
    local pick, pick_w, total = nil, nil, 0
    for i = 1, n do
        if scores[i] == best then
            if ties == 1 then
                return i
            end
            local w = weights[i]
            local c = current[i] + w
            current[i] = c
            total = total + w
            if pick_w == nil or c > pick_w then
                pick, pick_w = i, c
            end
        end
    end
    current[pick] = pick_w - total
    return pick
end

local function take(self, ctx, i)
    local key = self.keys[i]
    self.dict:incr(key, 1, 0)
    if ctx then
        ctx[C_CONN] = key
    end
    return self.peers[i]
end

function _M.pick(self, ctx)
    if self.n == 0 then
        return nil
    end
    return take(self, ctx, choose(self, nil))
end

-- -1 for the attempt that ended (ctx.sy_conn), if any.
function _M.release(dict, ctx)
    local key = ctx[C_CONN]
    if key then
        ctx[C_CONN] = nil
        dict:incr(key, -1)   -- no init: a key gone from the dict stays gone
    end
end

function _M.retry(self, ctx, tried)
    if ctx then
        _M.release(self.dict, ctx)
    end
    local i = choose(self, tried)
    if not i then
        return nil
    end
    return take(self, ctx, i)
end

return _M
