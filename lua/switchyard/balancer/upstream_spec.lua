-- busted spec for switchyard.balancer.upstream (the upstream object, from its document)

local upstream = require "switchyard.balancer.upstream"

local UPSTREAM = '{"version":5,"balance":"round_robin","endpoints":[{"address":'
    .. '"127.0.0.1:9101","weight":1},{"address":"[::1]:9102","weight":3}],"name":"backend"}'

describe("upstream.decode", function()
    it("decodes endpoints and parses addresses once", function()
        local u = assert(upstream.decode(UPSTREAM, "backend"))
        assert.equal("backend", u.name)
        assert.equal("round_robin", u.balance)
        assert.same({address = "127.0.0.1:9101", host = "127.0.0.1", port = 9101, weight = 1,
                     checked = true}, u.endpoints[1])
        assert.same({address = "[::1]:9102", host = "[::1]", port = 9102, weight = 3,
                     checked = true}, u.endpoints[2])
    end)

    it("marks endpoints exempt from the active health check (checked == false)", function()
        local u = assert(upstream.decode('{"name":"m","endpoints":[{"address":"10.0.0.1:80"},'
            .. '{"address":"10.0.0.2:80","health_check":false},'
            .. '{"address":"10.0.0.3:80","health_check":true}],"owner":"k8s/x"}', "m"))
        assert.same({true, false, true}, {u.endpoints[1].checked, u.endpoints[2].checked,
                                          u.endpoints[3].checked})
    end)

    it("serves unusable and link-local endpoints of a hand-typed document, with a warning", function()
        for _, address in ipairs({"0.0.0.0:80", "[::]:80", "255.255.255.255:80", "224.0.0.1:80",
                                  "[ff02::1]:80", "169.254.169.254:80", "[fe80::1]:80",
                                  "[::ffff:169.254.169.254]:80", "[fd00:ec2::254]:80"}) do
            local u, err, warning = upstream.decode('{"name":"w","endpoints":[{"address":"'
                .. address .. '"}]}', "w")
            assert(u, address .. ": " .. tostring(err))
            assert.matches(address, warning, 1, true)
        end
        local _, _, none = upstream.decode('{"name":"w","endpoints":[{"address":"127.0.0.1:80"}]}',
                                           "w")
        assert.is_nil(none)
    end)

    it("accepts no endpoints (the edge answers 503)", function()
        local u = assert(upstream.decode('{"name":"e","endpoints":[]}', "e"))
        assert.same({}, u.endpoints)
        u = assert(upstream.decode('{"name":"e","endpoints":{}}', "e"))
        assert.same({}, u.endpoints)
    end)

    it("serves an unknown balance as round_robin with a warning", function()
        local u, err, warning = upstream.decode(
            '{"name":"e","balance":"ewma","endpoints":[]}', "e")
        assert.truthy(u)
        assert.is_nil(err)
        assert.truthy(warning:find("ewma", 1, true))
    end)

    local bad = {
        {"{not json", "invalid JSON"},
        {'{"name":"x","endpoints":[]}', "does not match"},
        {'{"name":"e"}', "missing field \"endpoints\""},
        {'{"name":"e","endpoints":"a"}', "must be an array"},
        {'{"name":"e","endpoints":{"a":1}}', "must be an array"},
        {'{"name":"e","endpoints":[1]}', "not an object"},
        {'{"name":"e","endpoints":[{"weight":1}]}', "address"},
        {'{"name":"e","endpoints":[{"address":"localhost:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.256:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:0"}]}', "invalid port"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:65536"}]}', "invalid port"},
        {'{"name":"e","endpoints":[{"address":"::1:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"[1::2::3]:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"[zz]:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:80","weight":0}]}', "weight"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:80","weight":1001}]}', "weight"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:80","weight":"2"}]}', "weight"},
        {'{"name":"e","balance":3,"endpoints":[]}', "balance"},
        -- as strict as the controller (issue 16): what nginx's inet_pton refuses would fail
        -- every request; leading zeros are ambiguous
        {'{"name":"e","endpoints":[{"address":"[1:2:3:4:5:6::7:8]:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"[fe80::1%eth0]:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"127.000.0.1:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"[::ffff:01.2.3.4]:80"}]}', "invalid address"},
        {'{"name":"e","endpoints":[{"address":"127.0.0.1:08"}]}', "invalid port"},
        {'{"name":"e","endpoints":[{"address":"1.2.3.4:80","health_check":"no"}]}',
         "health_check"},
    }
    for _, case in ipairs(bad) do
        it("rejects " .. case[1], function()
            local u, err = upstream.decode(case[1], "e")
            assert.is_nil(u)
            assert.is_string(err)
            assert.truthy(err:find(case[2], 1, true), err)
        end)
    end

    it("rejects the names . and .. (API URLs cannot name them)", function()
        for _, name in ipairs({".", ".."}) do
            local u, err = upstream.decode('{"name":"' .. name .. '","endpoints":[]}', name)
            assert.is_nil(u)
            assert.matches("\"name\" must not be", err)
        end
    end)
end)

describe("upstream.parse_address", function()
    it("parses IPv4 and bracketed IPv6", function()
        assert.same({"10.0.0.1", 80}, {upstream.parse_address("10.0.0.1:80")})
        assert.same({"[::1]", 8080}, {upstream.parse_address("[::1]:8080")})
        assert.same({"[fe80::1:2]", 1}, {upstream.parse_address("[fe80::1:2]:1")})
        assert.same({"[::ffff:10.0.0.1]", 443}, {upstream.parse_address("[::ffff:10.0.0.1]:443")})
    end)
end)

describe("upstream.new", function()
    it("builds the whole object in one place: the document's fields and the rotation's", function()
        local up = assert(upstream.new(nil, UPSTREAM, "backend"))
        assert.equal("backend", up.name)
        assert.equal(2, up.n)
        assert.equal(5, up.version)
        assert.equal("round_robin", up.balancing.balance)
        assert.equal(require("switchyard.health.policy").DEFAULT, up.policy)
        assert.is_nil(up.tls)
        assert.is_nil(up.full)
        assert.equal(2, up.available)
        assert.equal(1, up.more_tries)
        assert.equal("[::1]:9102", up.balancer:pick().address)   -- weight 3 first
    end)

    it("marks what @sy_full serves, and passes errors and warnings on", function()
        local eps = '"endpoints":[{"address":"10.0.0.1:443"}]'
        assert.is_true(assert(upstream.new(nil, '{"name":"t","scheme":"https",' .. eps .. '}', "t")).full)
        assert.is_true(assert(upstream.new(nil, '{"name":"s","balance":"sticky",' .. eps .. '}', "s")).full)
        local none, err = upstream.new(nil, '{"name":"x",' .. eps .. '}', "y")
        assert.is_nil(none)
        assert.equal('name "x" does not match its key', err)
        local up, _, warning = upstream.new(nil, '{"name":"w","balance":"fancy",' .. eps .. '}', "w")
        assert.equal("round_robin", up.balancing.balance)
        assert.matches("unknown balance", warning)
    end)
end)
