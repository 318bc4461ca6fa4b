-- What a client sent, made safe for a line of nginx's error log: nginx writes what Lua
-- hands it as it is, so an SNI name, URI or header value with a newline would start a
-- line of its own that reads like nginx's (log injection; issue 16).
--
--   escape(s, max)   a value the client controls (SNI, Host, URI, header or cookie value):
--                    bytes below 0x20, 0x7F, '"' and '\' become \xHH, and the text is cut
--                    at `max` bytes of the input (default MAX) with "..." appended. For a
--                    value quoted in a log line ("<value>"), so the quotes stay ours.
--   line(msg)        a whole message: only the bytes that end or forge a line (below 0x20
--                    and 0x7F) become \xHH, the rest is left readable. util/log.lua runs
--                    every message of the pure modules through it.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Only on the paths that log (rare); a value
-- without anything to escape is returned as it is (one string.find).

local str_find = string.find
local str_gsub = string.gsub
local str_format = string.format
local str_byte = string.byte
local str_sub = string.sub
local tostring = tostring
local type = type

local _M = {}

_M.MAX = 256

local function hex(c)
    return str_format("\\x%02X", str_byte(c))
end

-- the Lua pattern classes (on bytes: no locale): controls, DEL, quote, backslash
local UNSAFE_VALUE = "[%z\1-\31\127\"\\]"
local UNSAFE_LINE = "[%z\1-\31\127]"

function _M.escape(s, max)
    if s == nil then
        return "(none)"
    end
    if type(s) ~= "string" then
        s = tostring(s)
    end
    max = max or _M.MAX
    local cut = #s > max
    if cut then
        s = str_sub(s, 1, max)
    end
    if str_find(s, UNSAFE_VALUE) then
        s = str_gsub(s, UNSAFE_VALUE, hex)
    end
    if cut then
        return s .. "..."
    end
    return s
end

function _M.line(msg)
    if type(msg) ~= "string" then
        msg = tostring(msg)
    end
    if str_find(msg, UNSAFE_LINE) then
        return (str_gsub(msg, UNSAFE_LINE, hex))
    end
    return msg
end

return _M
