-- busted spec for switchyard.route.cidr (allow/deny address sets)

local cidr = require "switchyard.route.cidr"

local function ip(text)
    return assert(cidr.parse_ip(text))
end

local function hex(bin)
    return (bin:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

describe("cidr.parse_ip", function()
    it("parses IPv4 into 4 bytes", function()
        assert.equal("7f000001", hex(ip("127.0.0.1")))
        assert.equal("ffffffff", hex(ip("255.255.255.255")))
    end)

    it("parses IPv6 forms into 16 bytes", function()
        assert.equal("00000000000000000000000000000001", hex(ip("::1")))
        assert.equal("00000000000000000000000000000000", hex(ip("::")))
        assert.equal("20010db8000000000000000000000000", hex(ip("2001:db8::")))
        assert.equal("20010db8000100020003000400050006", hex(ip("2001:db8:1:2:3:4:5:6")))
        assert.equal("00000000000000000000ffff01020304", hex(ip("::ffff:1.2.3.4")))
        assert.equal("fe800000000000000000000000000001", hex(ip("FE80::1")))
    end)

    for _, bad in ipairs({"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "0001.2.3.4", "1::2::3",
                          ":::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1",
                          "::1.2.3", "1.2.3.4::", "example.com", ":1::"}) do
        it("refuses " .. bad, function()
            assert.is_nil(cidr.parse_ip(bad))
        end)
    end
end)

describe("cidr sets", function()
    local set = assert(cidr.new_set({"10.0.0.0/8", "192.0.2.7", "2001:db8::/32",
                                     "127.0.0.0/8", "fe80::/10", "::1", "0.0.0.0/32"}))

    local cases = {
        {"10.1.2.3", true}, {"10.255.255.255", true}, {"11.0.0.0", false},
        {"9.255.255.255", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
        {"127.0.0.1", true}, {"0.0.0.0", true}, {"0.0.0.1", false},
        {"2001:db8:ffff::1", true}, {"2001:db9::1", false}, {"::1", true}, {"::2", false},
        {"fe80::1", true}, {"febf::1", true}, {"fec0::1", false},
        {"::ffff:10.9.9.9", true}, {"::ffff:11.9.9.9", false},
    }
    for _, c in ipairs(cases) do
        it((c[2] and "contains " or "does not contain ") .. c[1], function()
            assert.equal(c[2], cidr.contains(set, ip(c[1])))
        end)
    end

    it("matches everything with /0 and nothing when empty", function()
        local all = assert(cidr.new_set({"0.0.0.0/0", "::/0"}))
        assert.is_true(cidr.contains(all, ip("203.0.113.9")))
        assert.is_true(cidr.contains(all, ip("2001:db8::9")))
        local none = assert(cidr.new_set({}))
        assert.is_false(cidr.contains(none, ip("127.0.0.1")))
        assert.is_false(cidr.contains(none, ip("::1")))
    end)

    it("keeps the families apart", function()
        local v4 = assert(cidr.new_set({"0.0.0.0/0"}))
        assert.is_false(cidr.contains(v4, ip("2001:db8::1")))
        local v6 = assert(cidr.new_set({"::/0"}))
        assert.is_false(cidr.contains(v6, ip("1.2.3.4")))
    end)

    it("reads IPv4-mapped ranges of /96 or longer as the IPv4 range they name", function()
        local mapped = assert(cidr.new_set({"::ffff:10.0.0.0/104", "::ffff:192.0.2.7"}))
        assert.is_nil(mapped.v6)
        assert.is_true(cidr.contains(mapped, ip("10.9.8.7")))
        assert.is_true(cidr.contains(mapped, ip("::ffff:192.0.2.7")))
        assert.is_false(cidr.contains(mapped, ip("192.0.2.8")))
        -- shorter than /96: an IPv6 range, which IPv4 clients never match (documented)
        local wide = assert(cidr.new_set({"::/80"}))
        assert.is_nil(wide.v4)
        assert.is_false(cidr.contains(wide, ip("10.0.0.1")))
    end)

    it("parses strictly when asked (endpoints): no leading zeros in IPv4 octets", function()
        assert.truthy(cidr.parse_ip("010.0.0.1"))
        assert.is_nil(cidr.parse_ip("010.0.0.1", true))
        assert.is_nil(cidr.parse_ip("::ffff:01.2.3.4", true))
        assert.truthy(cidr.parse_ip("::ffff:1.2.3.4", true))
        assert.is_nil(cidr.parse_v6("1.2.3.4"))
        assert.is_nil(cidr.parse_v6("1:2:3:4:5:6::7:8"))
    end)

    local bad = {
        {{"10.0.0.1/8"}, "host bits"}, {{"2001:db8::1/32"}, "host bits"},
        {{"10.0.0.0/33"}, "prefix length"}, {{"::/129"}, "prefix length"},
        {{"10.0.0.0/"}, "invalid CIDR"}, {{"10.0.0.0/8/8"}, "invalid CIDR"},
        {{"nope"}, "not an IPv4"}, {{42}, "must be a string"},
        {{"10.0.0.0/8", "1.2.3.5/31"}, "deny%[1%]"},
    }
    for _, c in ipairs(bad) do
        it("refuses " .. tostring(c[1][#c[1]]) .. " naming the entry", function()
            local s, err = cidr.new_set(c[1], "deny")
            assert.is_nil(s)
            assert.matches(c[2], err)
            assert.matches("^deny%[%d+%]", err)
        end)
    end
end)
