-- Small checks shared by the document decoders (route/, balancer/, health/, tls/).
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Any phase may call it; never yields.

local cjson = require "cjson"

local type = type
local pcall = pcall
local tostring = tostring
local math_floor = math.floor
local json_decode = cjson.decode
local str_find = string.find
local str_gsub = string.gsub
local str_lower = string.lower
local null = cjson.null

local _M = {}

local MAX_INT = 2 ^ 53

-- A finite integer that a double holds exactly (JSON numbers arrive as doubles).
function _M.is_integer(v)
    return type(v) == "number" and v == v and v > -MAX_INT and v < MAX_INT
        and math_floor(v) == v
end

-- JSON null as lua-cjson decodes it (cjson.null; the same value for cjson.safe).
function _M.is_null(v)
    return v == null
end

-- obj[name], with JSON null counted as absent (nil).
function _M.member(obj, name)
    local v = obj[name]
    if v == null then
        return nil
    end
    return v
end

-- A JSON array as lua-cjson decodes it: a table keyed 1..n only (an empty table counts).
function _M.is_array(v)
    if type(v) ~= "table" then
        return false
    end
    local n = #v
    for k in pairs(v) do
        if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
            return false
        end
    end
    return true
end

-- A JSON object as lua-cjson decodes it: a table keyed by strings only (an empty table counts).
function _M.is_object(v)
    if type(v) ~= "table" then
        return false
    end
    for k in pairs(v) do
        if type(k) ~= "string" then
            return false
        end
    end
    return true
end

-- An RFC 7230 token (header names; RFC 6265 cookie names are tokens too): ! # $ % & ' * +
-- - . ^ _ ` | ~ DIGIT ALPHA, at least one. max: at most that many bytes (nil: any length).
function _M.is_token(s, max)
    return type(s) == "string" and s ~= "" and (max == nil or #s <= max)
        and not str_find(s, "[^%w!#%$%%&'%*%+%-%.%^_`|~]")
end

-- "X-Canary" -> "http_x_canary": how ngx.var names a request header.
function _M.header_var(name)
    return "http_" .. (str_gsub(str_lower(name), "-", "_"))
end

-- obj[field] when it is a non-empty string, else nil, err naming the field.
function _M.non_empty_string(obj, field)
    local v = obj[field]
    if v == nil then
        return nil, "missing field \"" .. field .. "\""
    end
    if type(v) ~= "string" then
        return nil, "field \"" .. field .. "\" must be a string"
    end
    if v == "" then
        return nil, "field \"" .. field .. "\" must not be empty"
    end
    return v
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
