-- Minimal Redis client over ngx.socket.tcp (the codec is switchyard.sync.resp).
--
-- Yields: use only where cosockets are allowed (timers, access/content phases); the edge
-- uses it only from the syncer timer in worker 0, never on the request path.
--
-- One client is one dedicated connection: connect() opens it and sends AUTH when a
-- password is configured; call() sends one command and reads its reply; pipeline() sends
-- N commands in one write and reads N replies. Replies are read through a buffer
-- (resp.buffered: one receiveany per chunk, not two socket reads per element), which
-- belongs to the connection and is dropped with it. Failures:
--   * transport/protocol failures (refused, timeout, closed, garbage) return nil, err and
--     close the connection: the caller reconnects;
--   * a Redis error reply (-ERR ...) is a value: call() returns it as an error object
--     (resp.is_error(v)), the connection stays usable.
-- The password is never logged or put in an error message.

local resp = require "switchyard.sync.resp"

local ngx_socket_tcp = ngx.socket.tcp
local setmetatable = setmetatable
local tostring = tostring

local encode_into = resp.encode_into
local read_reply = resp.read_reply
local is_error = resp.is_error
local buffered = resp.buffered

local _M = {}
local mt = {__index = _M}

_M.null = resp.null
_M.is_error = is_error

-- opts: host, port, password (optional), connect_timeout, send_timeout, read_timeout (ms)
function _M.new(opts)
    return setmetatable({
        host = opts.host,
        port = opts.port,
        password = opts.password,
        connect_timeout = opts.connect_timeout or 1000,
        send_timeout = opts.send_timeout or 2000,
        read_timeout = opts.read_timeout or 2000,
        sock = nil,
        reader = nil,
    }, mt)
end

function _M.connected(self)
    return self.sock ~= nil
end

function _M.close(self)
    local sock = self.sock
    self.sock, self.reader = nil, nil
    if sock then
        sock:close()
    end
end

function _M.connect(self)
    self:close()
    local sock, err = ngx_socket_tcp()
    if not sock then
        return nil, err
    end
    sock:settimeouts(self.connect_timeout, self.send_timeout, self.read_timeout)
    local ok
    ok, err = sock:connect(self.host, self.port)
    if not ok then
        return nil, "connect to " .. self.host .. ":" .. tostring(self.port)
            .. " failed: " .. tostring(err)
    end
    self.sock, self.reader = sock, buffered(sock)
    if self.password and self.password ~= "" then
        local res
        res, err = self:call("AUTH", self.password)
        if res == nil then
            return nil, "AUTH failed: " .. tostring(err)
        end
        if is_error(res) then
            self:close()
            -- the reply text never contains the password
            return nil, "AUTH rejected: " .. res.message
        end
    end
    return true
end

-- Changes the read timeout of the open connection (e.g. for a long MGET or a pub/sub wait).
function _M.set_read_timeout(self, ms)
    self.read_timeout = ms
    if self.sock then
        self.sock:settimeouts(self.connect_timeout, self.send_timeout, ms)
    end
end

-- Sends commands (each an array of arguments) in one write without reading replies.
function _M.send(self, cmds)
    local sock = self.sock
    if not sock then
        return nil, "not connected"
    end
    local buf = {}
    for i = 1, #cmds do
        encode_into(buf, cmds[i])
    end
    local bytes, err = sock:send(buf)
    if not bytes then
        self:close()
        return nil, "send failed: " .. tostring(err)
    end
    return true
end

-- Reads one reply. keep_on_timeout: a timeout before the reply's first line arrived leaves
-- the connection open (returns nil, "timeout"); used by the pub/sub reader. Any other
-- failure closes the connection.
function _M.read(self, keep_on_timeout)
    local reader = self.reader
    if not reader then
        return nil, "not connected"
    end
    if keep_on_timeout then
        local ok, err = reader:has_line()
        if not ok then
            if err == "timeout" then
                return nil, "timeout"
            end
            self:close()
            return nil, "read failed: " .. tostring(err)
        end
    end
    local res, err = read_reply(reader)
    if res == nil then
        self:close()
        return nil, "read failed: " .. tostring(err)
    end
    return res
end

-- One command: client:call("GET", key). Returns the reply (maybe an error object) or
-- nil, err on transport failure.
function _M.call(self, ...)
    local ok, err = self:send({{...}})
    if not ok then
        return nil, err
    end
    return self:read()
end

-- Several commands in one round trip. Returns an array of replies (each maybe an error
-- object) or nil, err on transport failure.
function _M.pipeline(self, cmds)
    local ok, err = self:send(cmds)
    if not ok then
        return nil, err
    end
    local out = {}
    for i = 1, #cmds do
        local res
        res, err = self:read()
        if res == nil then
            return nil, err
        end
        out[i] = res
    end
    return out
end

return _M
