-- Small checks shared by the document decoders (doc.lua, tls.lua, health.lua).
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Any phase may call it; never yields.

local cjson = require "cjson"

local type = type
local pcall = pcall
local tostring = tostring
local math_floor = math.floor
local json_decode = cjson.decode

local _M = {}

local MAX_INT = 2 ^ 53

-- A finite integer that a double holds exactly (JSON numbers arrive as doubles).
function _M.is_integer(v)
    return type(v) == "number" and v == v and v > -MAX_INT and v < MAX_INT
        and math_floor(v) == v
end

-- Decodes a stored document that must be a JSON object. Returns the table or nil, err.
function _M.decode_object(raw)
    if type(raw) ~= "string" then
        return nil, "document is not a string"
    end
    local ok, obj = pcall(json_decode, raw)
    if not ok then
        return nil, "invalid JSON: " .. tostring(obj)
    end
    if type(obj) ~= "table" then
        return nil, "document is not a JSON object"
    end
    return obj
end

return _M
