-- busted spec for switchyard.sync.reply

local reply = require "switchyard.sync.reply"
local resp = require "switchyard.sync.resp"

local function error_reply(message)
    return resp.read_reply({receive = function(_, what)
        if what == "*l" then return "-" .. message end
    end})
end

describe("reply.parse_version", function()
    -- the syncer and the health follower had one copy each; the follower's took any number
    it("reads a missing key as 0 and only non-negative integers otherwise", function()
        assert.equal(0, reply.parse_version(resp.null))
        assert.equal(0, reply.parse_version("0"))
        assert.equal(42, reply.parse_version("42"))
        assert.equal(7, reply.parse_version(7))
        assert.is_nil(reply.parse_version("1.5"))
        assert.is_nil(reply.parse_version("-3"))
        assert.is_nil(reply.parse_version("abc"))
        assert.is_nil(reply.parse_version(""))
    end)
end)

describe("reply checks", function()
    it("passes replies through and names what failed", function()
        assert.equal("OK", reply.checked("SET", "OK"))
        assert.same({nil, "GET: timeout"}, {reply.checked("GET", nil, "timeout")})
        local e = error_reply("ERR wrong type")
        assert.truthy(resp.is_error(e))
        assert.same({nil, "GET: ERR wrong type"}, {reply.checked("GET", e)})
        assert.same({1, 2}, reply.checked_array("MGET", {1, 2}))
        assert.same({nil, "MGET: unexpected reply"}, {reply.checked_array("MGET", "x")})
        assert.is_nil(reply.first_error({"a", 1}, 2))
        assert.equal("ERR wrong type", reply.first_error({"a", e, error_reply("ERR other")}, 3))
    end)
end)
