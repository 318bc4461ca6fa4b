-- Minimal Redis client over ngx.socket.tcp (the codec is switchyard.sync.resp).
--
-- Yields: use only where cosockets are allowed (timers, access/content phases); the edge
-- uses it only from the syncer timer in worker 0, never on the request path.
--
-- One client is one dedicated connection: connect() opens it (to the master, which with
-- sentinels it asks them for and checks with ROLE; or, for a read client, to a replica)
-- and sends AUTH when a password is configured; call() sends one command and reads its
-- reply; pipeline() sends N commands in one write and reads N replies. Replies are read
-- through a buffer (resp.buffered: one receiveany per chunk, not two socket reads per
-- element), which belongs to the connection and is dropped with it. Failures:
--   * transport/protocol failures (refused, timeout, closed, garbage) return nil, err and
--     close the connection: the caller reconnects;
--   * a Redis error reply (-ERR ...) is a value: call() returns it as an error object
--     (resp.is_error(v)), the connection stays usable.
-- The password is never logged or put in an error message.

local resp = require "switchyard.sync.resp"

local ngx_socket_tcp = ngx.socket.tcp
local setmetatable = setmetatable
local tostring = tostring
local tonumber = tonumber
local type = type
local table_concat = table.concat

local encode_into = resp.encode_into
local read_reply = resp.read_reply
local is_error = resp.is_error
local buffered = resp.buffered

local _M = {}
local mt = {__index = _M}

_M.null = resp.null
_M.is_error = is_error

-- opts: host, port, username (ACL user, optional), password (optional), connect_timeout,
-- send_timeout, read_timeout (ms); optional:
--   sentinels        {{host=, port=}, ...}: find the master through them (with master_name),
--                    instead of host/port; the connection must say ROLE master (a replica is
--                    never written to); sentinel_password: the sentinels' own password
--   read             {{host=, port=}, ...}: a read connection: the first of these that
--                    accepts it (the last good one first), else the master
--   tls              {server_name=, cert=, key=}: TLS to every address (sentinels too), the
--                    server's chain verified against lua_ssl_trusted_certificate and, when a
--                    name is known (server_name, else a host that is not an IP address),
--                    its certificate checked for that name; cert/key (ngx.ssl cdata): the
--                    client certificate for tls-auth-clients
function _M.new(opts)
    return setmetatable({
        host = opts.host,
        port = opts.port,
        username = opts.username,
        password = opts.password,
        sentinels = opts.sentinels,
        master_name = opts.master_name,
        sentinel_password = opts.sentinel_password,
        read_addrs = opts.read,
        tls = opts.tls,
        read_index = 1,
        connect_timeout = opts.connect_timeout or 1000,
        send_timeout = opts.send_timeout or 2000,
        read_timeout = opts.read_timeout or 2000,
        sock = nil,
        reader = nil,
        -- host:port of the open connection (for logs)
        endpoint = nil,
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

-- Opens the socket to host:port and authenticates (username, password). Returns true or
-- nil, err (closed).
local function open(self, host, port, username, password)
    self:close()
    local sock, err = ngx_socket_tcp()
    if not sock then
        return nil, err
    end
    sock:settimeouts(self.connect_timeout, self.send_timeout, self.read_timeout)
    local ok
    ok, err = sock:connect(host, port)
    if not ok then
        return nil, "connect to " .. host .. ":" .. tostring(port)
            .. " failed: " .. tostring(err)
    end
    local tls = self.tls
    if tls then
        if tls.cert then
            ok, err = sock:setclientcert(tls.cert, tls.key)
            if not ok then
                sock:close()
                return nil, "TLS client certificate: " .. tostring(err)
            end
        end
        local name = tls.server_name
        if not name and not host:find("^[%d.]+$") and not host:find(":", 1, true) then
            name = host
        end
        -- false: no session to reuse or keep; true: verify the certificate
        ok, err = sock:sslhandshake(false, name, true)
        if not ok then
            sock:close()
            return nil, "TLS with " .. host .. ":" .. tostring(port) .. " failed: " .. tostring(err)
        end
    end
    self.sock, self.reader = sock, buffered(sock)
    self.endpoint = host .. ":" .. tostring(port)
    if password and password ~= "" then
        local res
        if username and username ~= "" then
            res, err = self:call("AUTH", username, password)
        else
            res, err = self:call("AUTH", password)
        end
        if res == nil then
            return nil, "AUTH failed: " .. tostring(err)
        end
        if is_error(res) then
            self:close()
            -- the reply text never contains the password
            return nil, "AUTH to " .. host .. ":" .. tostring(port) .. " rejected: " .. res.message
        end
    end
    return true
end

-- The master's address from the sentinels (each in turn): host, port or nil, err.
function _M.ask_sentinels(self)
    local reasons = {}
    for i = 1, #self.sentinels do
        local s = self.sentinels[i]
        local ok, err = open(self, s.host, s.port, nil, self.sentinel_password)
        local res
        if ok then
            res, err = self:call("SENTINEL", "get-master-addr-by-name", self.master_name)
            self:close()
        end
        if type(res) == "table" and not is_error(res) and type(res[1]) == "string"
                and tonumber(res[2]) then
            return res[1], tonumber(res[2])
        end
        if res ~= nil then
            err = is_error(res) and res.message or "does not know the master"
        end
        reasons[#reasons + 1] = s.host .. ":" .. tostring(s.port) .. ": " .. tostring(err)
    end
    return nil, "no sentinel names a master for " .. tostring(self.master_name) .. " ("
        .. table_concat(reasons, "; ") .. ")"
end

-- Connects to the master: host/port, or the one the sentinels name, which must say it is
-- the master (ROLE).
local function connect_master(self)
    if not self.sentinels then
        return open(self, self.host, self.port, self.username, self.password)
    end
    local host, port = self:ask_sentinels()
    if not host then
        return nil, port
    end
    local ok, err = open(self, host, port, self.username, self.password)
    if not ok then
        return nil, err
    end
    local role
    role, err = self:call("ROLE")
    if role == nil then
        return nil, "ROLE: " .. tostring(err)
    end
    if is_error(role) or type(role) ~= "table" or role[1] ~= "master" then
        self:close()
        return nil, host .. ":" .. tostring(port) .. " is not the master ("
            .. (is_error(role) and role.message or tostring(type(role) == "table" and role[1]))
            .. ")"
    end
    return true
end

-- Connects (again): a read connection tries its read addresses, the last good one first,
-- then the master; a master connection connects to the master. Returns true, or nil, err.
function _M.connect(self)
    local read = self.read_addrs
    if read and #read > 0 then
        local reasons = {}
        for k = 0, #read - 1 do
            local i = (self.read_index - 1 + k) % #read + 1
            local a = read[i]
            local ok, err = open(self, a.host, a.port, self.username, self.password)
            if ok then
                self.read_index = i
                return true
            end
            reasons[#reasons + 1] = err
        end
        local ok, err = connect_master(self)
        if ok then
            return true
        end
        reasons[#reasons + 1] = err
        return nil, table_concat(reasons, "; ")
    end
    return connect_master(self)
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
