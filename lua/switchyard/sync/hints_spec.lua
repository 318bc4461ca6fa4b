-- busted spec for switchyard.sync.hints (the objects named by configuration events)

local hints = require "switchyard.sync.hints"

local KINDS = {route = true, upstream = true, certificate = true}

describe("hints", function()
    it("parses the version alone and the version with the objects it changed", function()
        local h = hints.new(KINDS, 10)
        local v, keys = h:parse("8")
        assert.equal(8, v)
        assert.same({}, keys)
        v, keys = h:parse("12 route:bbs-api upstream:backend certificate:www.example")
        assert.equal(12, v)
        assert.same({"route:bbs-api", "upstream:backend", "certificate:www.example"}, keys)
    end)

    it("ignores what is not an event, and names that are not objects", function()
        local h = hints.new(KINDS, 10)
        assert.is_nil(h:parse("hello"))
        assert.is_nil(h:parse(""))
        assert.is_nil(h:parse(nil))
        assert.is_false(h:add("route:x 12"))
        local v, keys = h:parse("9 route: widget:x route:a:b ROUTE:x route:ok upstream:a/b")
        assert.equal(9, v)
        assert.same({"route:ok"}, keys)
        assert.is_nil(h:take(0))
    end)

    it("collects keys once each until taken, newer than what is applied", function()
        local h = hints.new(KINDS, 10)
        assert.is_true(h:add("5 route:a upstream:u"))
        assert.is_true(h:add("6 route:a route:b"))
        assert.same({"route:a", "upstream:u", "route:b"}, h:take(4))
        assert.is_nil(h:take(4))   -- taken: starts over
    end)

    it("gives nothing when every announced version is already applied", function()
        local h = hints.new(KINDS, 10)
        h:add("5 route:a")
        h:add("6 route:b")
        assert.is_nil(h:take(6))
        h:add("7")   -- a big batch names no object
        assert.is_nil(h:take(6))
    end)

    it("keeps at most `cap` keys", function()
        local h = hints.new(KINDS, 2)
        h:add("3 route:a route:b route:c")
        h:add("4 route:d")
        assert.same({"route:a", "route:b"}, h:take(0))
    end)
end)
