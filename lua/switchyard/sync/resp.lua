-- RESP2 codec: the pure half of the Redis client (switchyard.sync.redis is the socket half).
--
-- Pure: no ngx, no I/O of its own; works on Lua 5.2 and LuaJIT. Reading goes through a
-- "reader", any object with the ngx.socket.tcp receive API:
--     reader:receive("*l")  -> line without CRLF | nil, err
--     reader:receive(n)     -> exactly n bytes   | nil, err
-- so it yields only when the reader does (a cosocket in a timer or request context).
--
-- Replies:
--     +OK              -> "OK"            (string)
--     :12              -> 12              (number)
--     $3 abc           -> "abc"           (string)
--     $-1 / *-1        -> _M.null         (a sentinel; never nil, so arrays keep their length)
--     *2 ...           -> { ... }         (array table, nested)
--     -ERR msg         -> error object    (_M.is_error(v) is true; v.message is the text)
-- A Redis error reply is data, not a failure: read_reply returns it as a value. Transport
-- and protocol failures return nil, err; after one the connection must be closed.

local tostring = tostring
local tonumber = tonumber
local type = type
local setmetatable = setmetatable
local getmetatable = getmetatable
local str_byte = string.byte
local str_sub = string.sub
local str_format = string.format
local str_find = string.find
local tbl_concat = table.concat

local _M = {}

local null = setmetatable({}, {__tostring = function() return "null" end})
_M.null = null

local error_mt = {__tostring = function(e) return "redis error: " .. e.message end}

-- Nested arrays deeper than this are a protocol error (we never send commands that
-- produce more than three levels: XRANGE replies are the deepest).
local MAX_DEPTH = 8
-- Largest bulk string and array we accept (sanity bound against a corrupt stream).
local MAX_BULK = 512 * 1024 * 1024
local MAX_ARRAY = 16 * 1024 * 1024

function _M.error_reply(message)
    return setmetatable({message = message}, error_mt)
end

function _M.is_error(v)
    return type(v) == "table" and getmetatable(v) == error_mt
end

-- Appends the RESP encoding of one command (an array of arguments) to buf, which is a
-- table of strings suitable for sock:send(buf). Numbers are sent as their decimal text.
-- Returns buf.
function _M.encode_into(buf, args)
    local n = #buf
    n = n + 1
    buf[n] = "*" .. #args .. "\r\n"
    for i = 1, #args do
        local a = args[i]
        if type(a) ~= "string" then
            if type(a) == "number" and a % 1 == 0 then
                a = str_format("%d", a)   -- no exponent for big integers (ms epochs)
            else
                a = tostring(a)
            end
        end
        buf[n + 1] = "$" .. #a .. "\r\n"
        buf[n + 2] = a
        buf[n + 3] = "\r\n"
        n = n + 3
    end
    return buf
end

-- Encodes one command into a string.
function _M.encode(args)
    return tbl_concat(_M.encode_into({}, args))
end

local BYTE_PLUS = str_byte("+")
local BYTE_MINUS = str_byte("-")
local BYTE_COLON = str_byte(":")
local BYTE_DOLLAR = str_byte("$")
local BYTE_STAR = str_byte("*")

local read_reply

-- A bulk string's len bytes and the CRLF after them (checked, not returned), read with
-- one receive.
local function read_bulk(reader, len)
    local data, err = reader:receive(len + 2)
    if not data then
        return nil, err or "closed"
    end
    if #data ~= len + 2 or str_sub(data, -2) ~= "\r\n" then
        return nil, "protocol error: bulk string not terminated by CRLF"
    end
    return str_sub(data, 1, len)
end

local function read_array(reader, count, depth)
    local out = {}
    for i = 1, count do
        local v, err = read_reply(reader, depth + 1)
        if v == nil then
            return nil, err
        end
        out[i] = v
    end
    return out
end

read_reply = function(reader, depth)
    depth = depth or 0
    if depth > MAX_DEPTH then
        return nil, "protocol error: replies nested too deeply"
    end
    local line, err = reader:receive("*l")
    if not line then
        return nil, err or "closed"
    end
    local prefix = str_byte(line, 1)
    local rest = str_sub(line, 2)
    if prefix == BYTE_PLUS then
        return rest
    elseif prefix == BYTE_MINUS then
        return _M.error_reply(rest)
    elseif prefix == BYTE_COLON then
        local n = tonumber(rest)
        if not n then
            return nil, "protocol error: bad integer reply"
        end
        return n
    elseif prefix == BYTE_DOLLAR then
        local len = tonumber(rest)
        if not len or len ~= len or len < -1 or len > MAX_BULK or len % 1 ~= 0 then
            return nil, "protocol error: bad bulk length"
        end
        if len == -1 then
            return null
        end
        if reader.bulk then   -- a buffered reader: no intermediate string with the CRLF
            return reader:bulk(len)
        end
        return read_bulk(reader, len)
    elseif prefix == BYTE_STAR then
        local count = tonumber(rest)
        if not count or count ~= count or count < -1 or count > MAX_ARRAY
            or count % 1 ~= 0 then
            return nil, "protocol error: bad array length"
        end
        if count == -1 then
            return null
        end
        return read_array(reader, count, depth)
    end
    return nil, "protocol error: unexpected reply type"
end

-- Reads one reply. Returns the value (possibly an error object), or nil, err.
function _M.read_reply(reader)
    return read_reply(reader, 0)
end

-- A reader over a connection that reads in chunks. receive("*l") and receive(n) are served
-- from a buffer that conn:receiveany(chunk) fills, so a reply of many elements (an MGET of
-- 500 documents, an XRANGE entry, a pub/sub message) costs one or two socket reads instead
-- of two per element; what is left over after a reply is the start of the next one
-- (pipelined replies, pub/sub messages): keep one reader per connection, new after a
-- reconnect. A bulk string longer than what is buffered is completed with one exact
-- conn:receive(rest). conn: the ngx.socket.tcp API (receiveany, receive).
local Buffered = {}
Buffered.__index = Buffered

-- A line (a reply's header) longer than this is a protocol error, not a reason to buffer
-- without bound.
_M.MAX_LINE = 1024 * 1024

function _M.buffered(conn, chunk)
    return setmetatable({conn = conn, buf = "", pos = 1, chunk = chunk or 65536}, Buffered)
end

-- Bytes buffered and not yet read.
function Buffered:pending()
    return #self.buf - self.pos + 1
end

local function fill(self)
    local data, err = self.conn:receiveany(self.chunk)
    if not data then
        return nil, err
    end
    if self.pos > #self.buf then
        self.buf = data
    else
        self.buf = str_sub(self.buf, self.pos) .. data
    end
    self.pos = 1
    return true
end

-- Where the CRLF ending the next line is, once a whole line is buffered; nil, err when the
-- connection fails first (what was buffered stays: after a timeout the reader is still
-- usable).
function Buffered:has_line()
    local i = str_find(self.buf, "\r\n", self.pos, true)
    while not i do
        if self:pending() > _M.MAX_LINE then
            return nil, "protocol error: line too long"
        end
        local ok, err = fill(self)
        if not ok then
            return nil, err
        end
        i = str_find(self.buf, "\r\n", self.pos, true)
    end
    return i
end

function Buffered:receive(pat)
    if pat == "*l" then
        local i, err = self:has_line()
        if not i then
            return nil, err
        end
        local line = str_sub(self.buf, self.pos, i - 1)
        self.pos = i + 2
        return line
    end
    local pos = self.pos
    local avail = #self.buf - pos + 1
    if avail >= pat then
        self.pos = pos + pat
        return str_sub(self.buf, pos, pos + pat - 1)
    end
    local head = str_sub(self.buf, pos)
    self.buf, self.pos = "", 1
    local rest, err = self.conn:receive(pat - avail)
    if not rest then
        return nil, err
    end
    return head .. rest
end

-- A bulk string's len bytes and the CRLF after them (checked, not returned).
function Buffered:bulk(len)
    local pos = self.pos
    local buf = self.buf
    if #buf - pos + 1 >= len + 2 then
        if str_byte(buf, pos + len) ~= 13 or str_byte(buf, pos + len + 1) ~= 10 then
            return nil, "protocol error: bulk string not terminated by CRLF"
        end
        self.pos = pos + len + 2
        return str_sub(buf, pos, pos + len - 1)
    end
    return read_bulk(self, len)
end

-- Flattened [field, value, field, value ...] array to a table (HGETALL, XRANGE fields).
function _M.pairs_to_table(arr)
    local t = {}
    if type(arr) ~= "table" then
        return t
    end
    for i = 1, #arr - 1, 2 do
        t[arr[i]] = arr[i + 1]
    end
    return t
end

return _M
