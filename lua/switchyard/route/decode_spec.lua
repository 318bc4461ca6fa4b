-- busted spec for switchyard.route.decode (decoding and validation of route documents)

local doc = require "switchyard.route.decode"

local check = require("spec_support.regex").check

local ROUTE = '{"version":7,"host":"bbs.test.com","id":"bbs-api","match":"prefix",'
    .. '"path":"/api","priority":0,"upstream":"backend"}'

describe("doc.decode_route", function()
    it("decodes the documented example", function()
        local r = assert(doc.decode_route(ROUTE, "bbs-api", check))
        assert.same({id = "bbs-api", host = "bbs.test.com", path = "/api", match = "prefix",
                     priority = 0, upstream = "backend", version = 7}, r)
    end)

    it("lowercases the host, drops a trailing dot, keeps wildcards", function()
        local r = assert(doc.decode_route('{"id":"a","host":"*.Apps.X.","path":"/",'
            .. '"match":"exact","upstream":"u"}', "a", check))
        assert.equal("*.apps.x", r.host)
        assert.equal(0, r.priority)   -- priority is optional
    end)

    -- route.full: served from the edge's @sy_full location (a header filter, HSTS or the
    -- Host map there); everything else from location / (edge.nginx.conf)
    it("marks the routes that need the full location", function()
        local base = '{"id":"a","host":"h","path":"/","match":"prefix"'
        local cases = {
            {'"upstream":"u"}', nil},
            {'"upstream":"u","hsts":{"max_age_s":600}}', true},
            {'"upstream":"u","response_headers":{"set":{"X-A":"1"}}}', true},
            {'"upstream":"u","response_headers":{"remove":["Server"]}}', true},
            {'"upstream":"u","request_headers":{"set":{"Host":"in.test"}}}', true},
            {'"upstream":"u","request_headers":{"set":{"X-A":"1"}}}', nil},
            {'"split":[{"upstream":"u","weight":1},{"upstream":"v","weight":1}],'
                .. '"split_sticky":{}}', true},
            {'"split":[{"upstream":"u","weight":1},{"upstream":"v","weight":1}]}', nil},
            {'"upstream":"u","canary":{"upstream":"v","header":"X-C"}}', nil},
            {'"upstream":"u","rewrite":{"replace_prefix":"/x"},"timeouts":{"read_ms":500},'
                .. '"rate_limit":{"rps":5},"deny":["10.0.0.0/8"]}', nil},
            {'"upstream":"u","https_redirect":true}', nil},
        }
        for _, case in ipairs(cases) do
            local r, err = doc.decode_route(base .. "," .. case[1], "a", check)
            assert(r, case[1] .. ": " .. tostring(err))
            assert.equal(case[2], r.full, case[1])
        end
    end)

    it("decodes segment_prefix without a trailing slash, and one-label wildcards", function()
        local base = '{"id":"a","host":"h","match":"segment_prefix","upstream":"u","path":'
        assert.equal("/api", assert(doc.decode_route(base .. '"/api/"}', "a", check)).path)
        assert.equal("/api", assert(doc.decode_route(base .. '"/api"}', "a", check)).path)
        local root = assert(doc.decode_route(base .. '"/"}', "a", check))
        assert.equal("/", root.path)
        assert.equal("segment_prefix", root.match)
        local r = assert(doc.decode_route('{"id":"a","host":"*.h.test","path":"/","match":'
            .. '"prefix","upstream":"u","wildcard":"one_label"}', "a", check))
        assert.equal("one_label", r.wildcard)
        assert.is_nil(assert(doc.decode_route(ROUTE, "bbs-api", check)).wildcard)
    end)

    it("decodes require_sni_match, and ignores owner and source", function()
        local r = assert(doc.decode_route('{"id":"a","host":"h","path":"/","match":"exact",'
            .. '"upstream":"u","require_sni_match":true,"owner":"k8s/x","source":"k8s:a/b"}',
            "a", check))
        assert.is_true(r.require_sni_match)
        assert.is_nil(r.owner)
        assert.is_nil(assert(doc.decode_route(ROUTE, "bbs-api", check)).require_sni_match)
    end)

    it("ignores unknown fields", function()
        assert.truthy(doc.decode_route('{"id":"a","host":"h","path":"/","match":"exact",'
            .. '"upstream":"u","future":{"x":[1]}}', "a", check))
    end)

    local bad = {
        {"garbage", "invalid JSON"},
        {"", "invalid JSON"},
        {"[1,2]", "missing field \"id\""},
        {"42", "not a JSON object"},
        {"null", "not a JSON object"},
        {'{"id":"a"}', "missing field \"host\""},
        {'{"id":"b","host":"h","path":"/","match":"exact","upstream":"u"}', "does not match"},
        {'{"id":1,"host":"h","path":"/","match":"exact","upstream":"u"}', "must be a string"},
        {'{"id":"a","host":null,"path":"/","match":"exact","upstream":"u"}', "must be a string"},
        {'{"id":"a","host":"","path":"/","match":"exact","upstream":"u"}', "must not be empty"},
        {'{"id":"a","host":"h h","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"a.*.b","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"*.","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"**","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"a..b","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"h:80","path":"/","match":"exact","upstream":"u"}', "invalid host"},
        {'{"id":"a","host":"h","path":"api","match":"prefix","upstream":"u"}', "start with"},
        {'{"id":"a","host":"h","path":"/a b","match":"prefix","upstream":"u"}', "spaces"},
        {'{"id":"a","host":"h","path":"/","match":"glob","upstream":"u"}', "unknown match"},
        {'{"id":"a","host":"h","path":"(","match":"regex","upstream":"u"}', "invalid regex"},
        {'{"id":"a","host":"h","path":"/","match":"exact"}', "missing field \"upstream\""},
        {'{"id":"a","host":"h","path":"/","match":"exact","upstream":"u","priority":1.5}',
         "priority"},
        {'{"id":"a","host":"h","path":"/","match":"exact","upstream":"u","priority":"1"}',
         "priority"},
        {'{"id":"a","host":"h","path":"/","match":"exact","upstream":"u","version":"x"}',
         "version"},
        -- paths the edge's $uri never holds (decoded, slashes merged, dot segments resolved)
        {'{"id":"a","host":"h","path":"/caf%C3%A9","match":"exact","upstream":"u"}',
         "percent-encoded"},
        {'{"id":"a","host":"h","path":"/x//y","match":"prefix","upstream":"u"}', "//"},
        {'{"id":"a","host":"h","path":"/a/../b","match":"segment_prefix","upstream":"u"}',
         "segments"},
        {'{"id":"a","host":"h","path":"/a/.","match":"prefix","upstream":"u"}', "segments"},
        {'{"id":"a","host":"*.h","path":"/","match":"exact","upstream":"u","wildcard":"any"}',
         "wildcard"},
        {'{"id":"a","host":"h","path":"/","match":"exact","upstream":"u","wildcard":"one_label"}',
         "wildcard"},
        {'{"id":"a","host":"h","path":"/","match":"exact","upstream":"u",'
            .. '"require_sni_match":"yes"}', "require_sni_match"},
    }
    for _, case in ipairs(bad) do
        it("rejects " .. case[1], function()
            local r, err = doc.decode_route(case[1], "a", check)
            assert.is_nil(r)
            assert.is_string(err)
            assert.truthy(err:find(case[2], 1, true), err)
        end)
    end

    it("rejects the ids . and .. (API URLs cannot name them)", function()
        for _, id in ipairs({".", ".."}) do
            local r, err = doc.decode_route('{"id":"' .. id .. '","host":"h","path":"/",'
                .. '"match":"exact","upstream":"u"}', id, check)
            assert.is_nil(r)
            assert.matches("id must not be", err)
        end
    end)

    it("rejects a non-string document without raising", function()
        assert.is_nil(doc.decode_route(nil, "a", check))
        assert.is_nil(doc.decode_route({}, "a", check))
    end)
end)

describe("doc.normalize_host", function()
    it("gives the same answer every time for a name it has seen (cached)", function()
        for _ = 1, 3 do
            assert.equal("a.example.com", doc.normalize_host("A.Example.COM."))
            assert.equal("*.apps.x", doc.normalize_host("*.Apps.X"))
        end
    end)

    it("refuses an invalid name every time (errors are not cached as names)", function()
        for _ = 1, 2 do
            local host, err = doc.normalize_host("bad host.example")
            assert.is_nil(host)
            assert.truthy(err:find("invalid host", 1, true))
        end
        assert.is_nil(doc.normalize_host(42))
    end)
end)
