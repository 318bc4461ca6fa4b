-- busted spec for switchyard.route.hostcheck (the request's host before it routes)

local hostcheck = require "switchyard.route.hostcheck"

describe("route.hostcheck", function()
    it("too_long: at most 253 bytes, the longest host name", function()
        assert.is_false(hostcheck.too_long(string.rep("a", 253)))
        assert.is_true(hostcheck.too_long(string.rep("a", 254)))
        assert.is_true(hostcheck.too_long(string.rep("a.", 8000) .. "m4.test"))
        assert.is_false(hostcheck.too_long(""))
    end)

    it("normalize: the Host header as nginx makes $host of it", function()
        assert.equal("www.a.test", hostcheck.normalize("www.a.test"))
        assert.equal("www.a.test", hostcheck.normalize("WWW.A.test"))
        assert.equal("www.a.test", hostcheck.normalize("www.a.test:8080"))
        assert.equal("www.a.test", hostcheck.normalize("www.a.test.:8080"))
        assert.equal("www.a.test", hostcheck.normalize("www.a.test."))
        assert.equal("[::1]", hostcheck.normalize("[::1]:8080"))
        assert.equal("[::1]", hostcheck.normalize("[::1]"))
        assert.equal("[::ab]", hostcheck.normalize("[::AB]:1"))
        assert.equal("127.0.0.1", hostcheck.normalize("127.0.0.1:80"))
    end)

    it("agrees: the host that routes is the host sent upstream", function()
        assert.is_true(hostcheck.agrees("www.a.test", "www.a.test"))
        assert.is_true(hostcheck.agrees("www.a.test", "www.a.test:8080"))
        assert.is_true(hostcheck.agrees("www.a.test", "Www.A.Test"))
        assert.is_true(hostcheck.agrees("www.a.test", "www.a.test."))
        assert.is_true(hostcheck.agrees("[::1]", "[::1]:8080"))
        assert.is_true(hostcheck.agrees("www.a.test", nil))   -- HTTP/1.0 without Host
        -- an absolute URI in the request line routes; the Host header names another site
        assert.is_false(hostcheck.agrees("www.m1.test", "admin.m1.test"))
        assert.is_false(hostcheck.agrees("www.m1.test", "admin.m1.test:80"))
        assert.is_false(hostcheck.agrees("www.m1.test", "www.m1.test.evil"))
        assert.is_false(hostcheck.agrees("www.m1.test", ""))
    end)

    it("is_name: only the bytes of a host name", function()
        assert.is_true(hostcheck.is_name("x.l1.test"))
        assert.is_true(hostcheck.is_name("a-b_c.0.test"))
        for _, bad in ipairs({"evil.com#.l1.test", "evil.com?.l1.test", "a@evil.com.l1.test",
                              "evil.com%23.l1.test", "evil.com\\.l1.test", "a b.l1.test",
                              "a\t.l1.test", "*.l1.test", "a:b.l1.test", "\195\169.l1.test",
                              "A.l1.test"}) do
            assert.is_false(hostcheck.is_name(bad), bad)
        end
    end)
end)
