-- Reading configuration documents from Redis by their shm keys ("route:a" is
-- switchyard:{cfg}:route:a), for the catch-up and the full reload.
--
-- Yields (fetch on the command connection); worker 0's syncer timer only.

local keys = require "switchyard.sync.keys"
local store_mod = require "switchyard.shm.store"
local checked_array = require("switchyard.sync.reply").checked_array

local math_min = math.min
local tostring = tostring
local type = type

local _M = {}

_M.MGET_CHUNK = 500
_M.MGET_PIPELINE = 10     -- MGET chunks per round trip (fetch)

-- The MGET command of shm_keys[first..last] (as Redis keys).
function _M.mget_args(shm_keys, first, last)
    local args = {"MGET"}
    for j = first, last do
        local kind, id = store_mod.split_key(shm_keys[j])
        args[#args + 1] = keys.object(kind, id)
    end
    return args
end

-- Stores an MGET reply for shm_keys[first..] into out (false: the object is gone).
-- Returns out, or nil, err.
function _M.put(out, shm_keys, first, reply)
    local res, err = checked_array("MGET", reply)
    if not res then
        return nil, err
    end
    for j = 1, #res do
        local raw = res[j]
        out[shm_keys[first + j - 1]] = type(raw) == "string" and raw or false
    end
    return out
end

-- The HMGET of the hashes sy_apply recorded for shm_keys[first..last] (the field is the
-- shm key).
local function hmget_args(shm_keys, first, last)
    local args = {"HMGET", keys.hashes}
    for j = first, last do
        args[#args + 1] = shm_keys[j]
    end
    return args
end

-- MGET the given shm keys ({"route:a", ...}) into out (default: a new table); returns
-- shm key -> raw string or false. Chunks of MGET_CHUNK keys, MGET_PIPELINE chunks per round
-- trip: Redis answers the next chunks while this worker parses the first ones (a 100k-route
-- cold start: 200 chunks). recorded (optional): filled with shm key -> the hash sy_apply
-- recorded (13 hex digits), read in the same round trips (HMGET of <base>hashes).
function _M.fetch(cmd, shm_keys, out, recorded)
    out = out or {}
    local n = #shm_keys
    local i = 1
    local per = recorded and 2 or 1
    while i <= n do
        local cmds, firsts = {}, {}
        while i <= n and #firsts < _M.MGET_PIPELINE do
            local last = math_min(i + _M.MGET_CHUNK - 1, n)
            cmds[#cmds + 1] = _M.mget_args(shm_keys, i, last)
            if recorded then
                cmds[#cmds + 1] = hmget_args(shm_keys, i, last)
            end
            firsts[#firsts + 1] = i
            i = last + 1
        end
        local replies, err = cmd:pipeline(cmds)
        if not replies then
            return nil, "MGET: " .. tostring(err)
        end
        for c = 1, #firsts do
            local ok
            ok, err = _M.put(out, shm_keys, firsts[c], replies[(c - 1) * per + 1])
            if not ok then
                return nil, err
            end
            if recorded then
                local hashes
                hashes, err = checked_array("HMGET hashes", replies[c * per])
                if not hashes then
                    return nil, err
                end
                for j = 1, #hashes do
                    local h = hashes[j]
                    recorded[shm_keys[firsts[c] + j - 1]] = type(h) == "string" and h or nil
                end
            end
        end
    end
    return out
end

return _M
