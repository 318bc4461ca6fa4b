-- How long a Redis loop waits before it tries again: 100 ms doubling per failed attempt up
-- to 1 s, with jitter (half to all of it), so an edge notices a returning Redis within
-- about a second and edges do not retry in step. Pure (math.random).

local math_min = math.min
local math_random = math.random

local _M = {}

_M.MIN_S = 0.1
_M.MAX_S = 1

-- attempt: failures so far, from 0. Returns seconds.
function _M.delay(attempt)
    local d = math_min(_M.MIN_S * 2 ^ attempt, _M.MAX_S)
    return d * (0.5 + math_random() * 0.5)
end

return _M
