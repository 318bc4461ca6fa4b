-- Checks of Redis replies, shared by the syncer's pieces and the health follower (sync/).
-- Pure: works on Lua 5.2 and LuaJIT (replies as switchyard.sync.resp decodes them: error
-- replies are values, a missing value is resp.null).

local resp = require "switchyard.sync.resp"

local type = type
local tonumber = tonumber
local tostring = tostring

local null = resp.null
local is_error = resp.is_error

local _M = {}

-- checked(what, client:call(...)): the reply when it is neither a transport failure nor a
-- Redis error reply, else nil, err.
function _M.checked(what, res, err)
    if res == nil then
        return nil, what .. ": " .. tostring(err)
    end
    if is_error(res) then
        return nil, what .. ": " .. res.message
    end
    return res
end

-- checked(), for a reply that must be an array
function _M.checked_array(what, res, err)
    res, err = _M.checked(what, res, err)
    if res ~= nil and type(res) ~= "table" then
        return nil, what .. ": unexpected reply"
    end
    return res, err
end

-- The message of the first error reply among replies[1..n] (a pipeline's), or nil.
function _M.first_error(replies, n)
    for i = 1, n do
        if is_error(replies[i]) then
            return replies[i].message
        end
    end
    return nil
end

-- A version counter as Redis stores it (INCR: version, health_version): a missing key is
-- 0; anything but a non-negative integer is nil (the caller refuses it).
function _M.parse_version(v)
    if v == null then
        return 0
    end
    local n = tonumber(v)
    if not n or n < 0 or n % 1 ~= 0 then
        return nil
    end
    return n
end

return _M
