-- busted spec for switchyard.sync.resp (RESP2 encoder and parser, with a fake reader)

local resp = require "switchyard.sync.resp"

-- A reader with the ngx.socket.tcp receive API over a fixed byte string; `chunks` limits
-- how much each receive may return to prove the parser asks for exact sizes.
local function reader(data)
    local pos = 1
    return {
        receive = function(_, pat)
            if pat == "*l" then
                local s, e = data:find("\r\n", pos, true)
                if not s then
                    return nil, "closed", data:sub(pos)
                end
                local line = data:sub(pos, s - 1)
                pos = e + 1
                return line
            end
            if pos + pat - 1 > #data then
                local rest = data:sub(pos)
                pos = #data + 1
                return nil, "closed", rest
            end
            local out = data:sub(pos, pos + pat - 1)
            pos = pos + pat
            return out
        end,
        left = function() return data:sub(pos) end,
    }
end

describe("resp.encode", function()
    it("encodes commands as arrays of bulk strings", function()
        assert.equal("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", resp.encode({"GET", "k"}))
        assert.equal("*3\r\n$4\r\nZADD\r\n$13\r\n1732160000123\r\n$0\r\n\r\n",
                     resp.encode({"ZADD", 1732160000123, ""}))
        assert.equal("*1\r\n$4\r\na\r\nb\r\n", resp.encode({"a\r\nb"}))  -- binary safe
    end)

    it("encodes a pipeline into one buffer", function()
        local buf = resp.encode_into({}, {"PING"})
        resp.encode_into(buf, {"GET", "x"})
        assert.equal("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n",
                     table.concat(buf))
    end)
end)

describe("resp.read_reply", function()
    it("reads every RESP2 type", function()
        assert.equal("OK", resp.read_reply(reader("+OK\r\n")))
        assert.equal(42, resp.read_reply(reader(":42\r\n")))
        assert.equal(-3, resp.read_reply(reader(":-3\r\n")))
        assert.equal("a\r\nb", resp.read_reply(reader("$4\r\na\r\nb\r\n")))
        assert.equal("", resp.read_reply(reader("$0\r\n\r\n")))
        assert.equal(resp.null, resp.read_reply(reader("$-1\r\n")))
        assert.equal(resp.null, resp.read_reply(reader("*-1\r\n")))
        assert.same({}, resp.read_reply(reader("*0\r\n")))
    end)

    it("reads nested arrays with nulls kept in place (MGET, XRANGE)", function()
        local r = resp.read_reply(reader("*3\r\n$1\r\na\r\n$-1\r\n$1\r\nc\r\n"))
        assert.equal(3, #r)
        assert.equal("a", r[1])
        assert.equal(resp.null, r[2])
        assert.equal("c", r[3])
        local x = resp.read_reply(reader(
            "*1\r\n*2\r\n$3\r\n7-0\r\n*4\r\n$4\r\nkind\r\n$5\r\nroute\r\n$2\r\nid\r\n$1\r\nr\r\n"))
        assert.equal("7-0", x[1][1])
        assert.same({kind = "route", id = "r"}, resp.pairs_to_table(x[1][2]))
    end)

    it("returns error replies as values, distinct from transport errors", function()
        local e, err = resp.read_reply(reader("-ERR unknown command\r\n"))
        assert.is_nil(err)
        assert.is_true(resp.is_error(e))
        assert.equal("ERR unknown command", e.message)
        assert.is_false(resp.is_error("ERR"))
        -- an error inside an array (pipelined MULTI/EXEC style) stays a value
        local arr = resp.read_reply(reader("*2\r\n-WRONGTYPE x\r\n:1\r\n"))
        assert.is_true(resp.is_error(arr[1]))
        assert.equal(1, arr[2])
    end)

    it("reads consecutive replies from one stream (pipelining)", function()
        local rd = reader("+PONG\r\n:1\r\n$1\r\nx\r\n")
        assert.equal("PONG", resp.read_reply(rd))
        assert.equal(1, resp.read_reply(rd))
        assert.equal("x", resp.read_reply(rd))
        assert.equal("", rd.left())
    end)

    it("fails with nil, err on transport and protocol problems", function()
        local cases = {
            "",                    -- closed before anything
            "$5\r\nab",            -- truncated bulk
            "$2\r\nabcd\r\n",      -- bulk without CRLF where it should be
            "*2\r\n:1\r\n",        -- truncated array
            "?what\r\n",           -- unknown type
            ":x\r\n",              -- bad integer
            "$-5\r\n",             -- bad length
            "$1.5\r\n",            -- bad length
            "*abc\r\n",            -- bad count
        }
        for _, data in ipairs(cases) do
            local v, err = resp.read_reply(reader(data))
            assert.is_nil(v, data)
            assert.is_string(err, data)
        end
        local deep = string.rep("*1\r\n", 20) .. ":1\r\n"
        local v, err = resp.read_reply(reader(deep))
        assert.is_nil(v)
        assert.truthy(err:find("deeply", 1, true))
    end)
end)

-- A connection with the ngx.socket.tcp API handing out `data` in the given chunk sizes
-- (receiveany returns at most the next chunk; "timeout" once data runs out, like a
-- connection that is open and quiet), counting the reads.
local function conn(data, sizes)
    local pos, k = 1, 0
    local c = {reads = 0}
    function c.receiveany(_, max)
        c.reads = c.reads + 1
        if pos > #data then
            return nil, "timeout"
        end
        k = k + 1
        local n = math.min(max, sizes and sizes[(k - 1) % #sizes + 1] or max, #data - pos + 1)
        local out = data:sub(pos, pos + n - 1)
        pos = pos + n
        return out
    end
    function c.receive(_, n)
        c.reads = c.reads + 1
        if pos + n - 1 > #data then
            pos = #data + 1
            return nil, "timeout"
        end
        local out = data:sub(pos, pos + n - 1)
        pos = pos + n
        return out
    end
    return c
end

describe("resp.buffered", function()
    local replies = "*3\r\n$1\r\na\r\n$-1\r\n$3\r\nc\r\n\r\n" .. "+OK\r\n" .. ":7\r\n"
        .. "*1\r\n*2\r\n$3\r\n7-0\r\n*4\r\n$4\r\nkind\r\n$5\r\nroute\r\n$2\r\nid\r\n$1\r\nr\r\n"

    local function read_all(rd)
        local out = {}
        for i = 1, 4 do
            local v, err = resp.read_reply(rd)
            assert.is_not_nil(v, err)
            out[i] = v
        end
        return out
    end

    it("reads pipelined replies split at every possible place", function()
        local whole = read_all(reader(replies))
        for _, sizes in ipairs({{1}, {2}, {3}, {5, 1}, {7, 2, 11}, {#replies}}) do
            local c = conn(replies, sizes)
            local got = read_all(resp.buffered(c))
            assert.same(whole[1][1], got[1][1])
            assert.equal(resp.null, got[1][2])
            assert.equal("c\r\n", got[1][3])
            assert.equal("OK", got[2])
            assert.equal(7, got[3])
            assert.same({kind = "route", id = "r"}, resp.pairs_to_table(got[4][1][2]))
        end
    end)

    it("reads replies that arrive together with one socket read", function()
        local c = conn(replies)
        read_all(resp.buffered(c))
        assert.equal(1, c.reads)
    end)

    it("completes a bulk string longer than the buffer with one exact read", function()
        local big = string.rep("x", 100000)
        local c = conn("$100000\r\n" .. big .. "\r\n:1\r\n")
        local rd = resp.buffered(c, 4096)
        assert.equal(big, resp.read_reply(rd))
        assert.equal(1, resp.read_reply(rd))
        assert.equal(3, c.reads)   -- the header's chunk, the rest of the bulk, ":1"
    end)

    it("keeps a partial line across a timeout and reports it", function()
        local c = conn(":4")
        local rd = resp.buffered(c)
        local ok, err = rd:has_line()
        assert.is_nil(ok)
        assert.equal("timeout", err)
        assert.equal(2, rd:pending())
    end)

    it("refuses a line that never ends", function()
        local old = resp.MAX_LINE
        resp.MAX_LINE = 16
        local v, err = resp.read_reply(resp.buffered(conn(string.rep("+", 100), {8})))
        resp.MAX_LINE = old
        assert.is_nil(v)
        assert.truthy(err:find("too long", 1, true))
    end)

    it("fails like the plain reader on truncated and malformed replies", function()
        for _, data in ipairs({"", "$5\r\nab", "$2\r\nabcd\r\n", "*2\r\n:1\r\n", "?what\r\n"}) do
            local v, err = resp.read_reply(resp.buffered(conn(data, {3})))
            assert.is_nil(v, data)
            assert.is_string(err, data)
        end
    end)
end)
