-- busted spec for switchyard.route.policy: route actions and options, decoded through
-- doc.decode_route (the way the edge meets them) and compiled into route.plan

local cjson = require "cjson"
local doc = require "switchyard.route.decode"
local cidr = require "switchyard.route.cidr"

local check = require("spec_support.regex").check

-- a route document with `extra` fields merged in (false removes a field)
local function route(extra, match)
    local obj = {id = "r", host = "h.example", path = "/api", match = match or "prefix",
                 upstream = "blue"}
    for k, v in pairs(extra or {}) do
        if v == false then
            obj[k] = nil
        else
            obj[k] = v
        end
    end
    return cjson.encode(obj)
end

local function decode(extra, match)
    return doc.decode_route(route(extra, match), "r", check)
end

describe("route actions", function()
    it("a plain upstream route has no plan", function()
        local r = assert(decode())
        assert.equal("blue", r.upstream)
        assert.is_nil(r.plan)
    end)

    it("split: cumulative weights, refs, no upstream", function()
        local r = assert(decode({upstream = false, split = {
            {upstream = "blue", weight = 90}, {upstream = "green", weight = 10}}}))
        assert.is_nil(r.upstream)
        assert.same({"blue", "green"}, r.plan.split.names)
        assert.same({90, 100}, r.plan.split.cum)
        assert.equal(100, r.plan.split.total)
        assert.same({"blue", "green"}, r.plan.refs)
    end)

    it("split_sticky: one complete Set-Cookie per upstream, live only with weight > 0", function()
        local r = assert(decode({upstream = false, split = {
            {upstream = "blue", weight = 100}, {upstream = "green", weight = 0}},
            split_sticky = {cookie = "sy_split", ttl_s = 60}}))
        local st = r.plan.split.sticky
        assert.equal("cookie_sy_split", st.cookie_var)
        assert.equal("sy_split=blue; Path=/; Max-Age=60; HttpOnly", st.cookies.blue)
        assert.same({blue = true}, st.live)
        local s = assert(decode({upstream = false, split = {
            {upstream = "a", weight = 1}, {upstream = "b", weight = 1}},
            split_sticky = {ttl_s = 0}}))
        assert.equal("sy_split=a; Path=/; HttpOnly", s.plan.split.sticky.cookies.a)
    end)

    it("redirect: defaults, keep_path, no upstream refs", function()
        local r = assert(decode({upstream = false, redirect = {to = "https://example.com/new"}}))
        assert.same({location = "https://example.com/new", status = 301, keep_path = false},
                    r.plan.redirect)
        assert.same({}, r.plan.refs)
        r = assert(decode({upstream = false, redirect = {to = "https://example.com/",
                                                         status = 308, keep_path = true}}))
        assert.same({location = "https://example.com", status = 308, keep_path = true},
                    r.plan.redirect)
        assert.truthy(decode({upstream = false, redirect = {to = "/elsewhere"},
                              allow = {"10.0.0.0/8"}, rate_limit = {rps = 1},
                              response_headers = {set = {["X-A"] = "1"}}}))
    end)

    it("canary: header/cookie as ngx.var names, the canary upstream in refs once", function()
        local r = assert(decode({canary = {upstream = "green", header = "X-Canary",
                                           value = "1", cookie = "canary"}}))
        assert.same({upstream = "green", header_var = "http_x_canary",
                     cookie_var = "cookie_canary", value = "1"}, r.plan.canary)
        assert.same({"blue", "green"}, r.plan.refs)
        r = assert(decode({canary = {upstream = "blue", cookie = "c"}}))
        assert.same({"blue"}, r.plan.refs)
    end)
end)

describe("route options", function()
    it("rewrite forms", function()
        assert.same({kind = "strip", len = 4}, decode({rewrite = {strip_prefix = true}}).plan.rewrite)
        assert.same({kind = "replace", len = 4, to = "/v2", slash = false},
                    decode({rewrite = {replace_prefix = "/v2"}}).plan.rewrite)
        assert.same({kind = "regex", regex = "^/old/(.*)", replacement = "/new/$1"},
                    decode({rewrite = {regex = "^/old/(.*)", replacement = "/new/$1"}},
                           "regex").plan.rewrite)
        assert.truthy(decode({rewrite = {regex = "^/a(b)", replacement = "/x/${1}/$$"}}))
    end)

    it("headers: remove then set lists", function()
        local r = assert(decode({request_headers = {set = {["X-A"] = "1", Host = "h2"},
                                                    remove = {"X-B"}},
                                 response_headers = {remove = {"Server"}}}))
        assert.same({remove = {"X-B"}, set = {{"X-A", "1"}}, host = "h2"}, r.plan.req)
        assert.same({remove = {"Server"}, set = {}}, r.plan.resp)
    end)

    it("empty header lists and allow/deny lists need no plan", function()
        local r = assert(decode({request_headers = {set = {}, remove = {}}, allow = {},
                                 deny = {}}))
        assert.is_nil(r.plan)
    end)

    it("timeouts in seconds, max_body_bytes, rate_limit", function()
        local r = assert(decode({timeouts = {read_ms = 250}, max_body_bytes = 0,
                                 rate_limit = {rps = 4, burst = 2, key = "header:X-Key"}}))
        assert.same({read = 0.25}, r.plan.timeouts)
        assert.equal(0, r.plan.max_body)
        assert.equal(0.25, r.plan.rate.interval)
        assert.equal(0.5, r.plan.rate.tolerance)
        assert.equal("http_x_key", r.plan.rate.var)
        assert.is_true(r.plan.guard)
        r = assert(decode({rate_limit = {rps = 1}}))
        assert.equal("binary_remote_addr", r.plan.rate.var)
        assert.equal(0, r.plan.rate.tolerance)
    end)

    it("allow/deny compile to address sets", function()
        local r = assert(decode({allow = {"127.0.0.0/8", "::1"}, deny = {"127.0.0.2"}}))
        assert.is_true(cidr.contains(r.plan.allow, cidr.parse_ip("127.0.0.9")))
        assert.is_true(cidr.contains(r.plan.allow, cidr.parse_ip("::1")))
        assert.is_true(cidr.contains(r.plan.deny, cidr.parse_ip("127.0.0.2")))
        assert.is_true(r.plan.guard)
    end)

    it("treats JSON null as absent", function()
        local r = assert(doc.decode_route('{"id":"r","host":"h","path":"/","match":"prefix",'
            .. '"upstream":"u","split":null,"redirect":null,"canary":null,"timeouts":null}',
            "r", check))
        assert.is_nil(r.plan)
    end)
end)

describe("request_headers.set.Host and rewrite groups (issue 16)", function()
    it("accepts host and host:port as the controller does", function()
        for _, host in ipairs({"a.test", "A.Test:8080", "1.2.3.4:80", "[::1]", "[::1]:443",
                               "x" .. string.rep("y", 62) .. ".test"}) do
            local r, err = decode({request_headers = {set = {Host = host}}})
            assert(r, host .. ": " .. tostring(err))
            assert.equal(host, r.plan.req.host)
        end
    end)

    it("counts a pattern's groups from its text, never fewer than PCRE", function()
        local policy = require "switchyard.route.policy"
        local cases = {
            {"^/a", 0}, {"^/(a)(b)", 2}, {"(?:a)(?=b)(?!c)(?<=d)(?<!e)", 0},
            {"(?<n>a)(?'m'b)(?P<o>c)", 3}, {"\\(a\\)", 0}, {"\\\\(a)", 1},
            {"(*UTF)(a)", 1}, {"(?|(a)|(b))", 2}, {"[(](a)", 2}, {"(?P>n)(?P=n)", 0},
        }
        for _, c in ipairs(cases) do
            assert.equal(c[2], policy.max_captures(c[1]), c[1])
        end
    end)

    it("takes the group count from the regex engine when it gives one", function()
        local function counting(re)
            return check(re) and true, 1
        end
        local raw = route({rewrite = {regex = "^/(a)(b)", replacement = "/$2"}})
        local r, err = doc.decode_route(raw, "r", counting)
        assert.is_nil(r)
        assert.matches("refers to group 2", err)
        assert.truthy(doc.decode_route(route({rewrite = {regex = "^/(a)(b)",
                                                         replacement = "/$1"}}), "r", counting))
    end)
end)

describe("invalid route options", function()
    local many = {}
    for i = 1, 33 do
        many["X-H" .. i] = "v"
    end
    local cidrs = {}
    for i = 1, 257 do
        cidrs[i] = "10.0.0." .. (i % 256)
    end
    local two = {{upstream = "a", weight = 1}, {upstream = "b", weight = 1}}
    local bad = {
        {{upstream = false}, nil, "missing field \"upstream\""},
        {{split = two}, nil, "exactly one"},
        {{redirect = {to = "/x"}}, nil, "exactly one"},
        {{upstream = ""}, nil, "upstream"},
        {{upstream = false, split = {{upstream = "a", weight = 1}}}, nil, "split"},
        {{upstream = false, split = {{upstream = "a", weight = 1}, {upstream = "a", weight = 1}}},
         nil, "split%[1%]%.upstream"},
        {{upstream = false, split = {{upstream = "a", weight = 0}, {upstream = "b", weight = 0}}},
         nil, "more than 0"},
        {{upstream = false, split = {{upstream = "a", weight = 1001}, {upstream = "b", weight = 1}}},
         nil, "split%[0%]%.weight"},
        {{upstream = false, split = {{upstream = "a", weight = 1.5}, {upstream = "b", weight = 1}}},
         nil, "split%[0%]%.weight"},
        {{split_sticky = {cookie = "s"}}, nil, "split_sticky"},
        {{upstream = false, split = two, split_sticky = {cookie = "a b"}}, nil, "split_sticky.cookie"},
        {{upstream = false, split = two, split_sticky = {ttl_s = -1}}, nil, "split_sticky.ttl_s"},
        {{canary = {upstream = "g"}}, nil, "header\" and/or \"cookie"},
        {{canary = {header = "X-C"}}, nil, "canary.upstream"},
        {{canary = {upstream = "g", header = "X C"}}, nil, "canary.header"},
        {{canary = {upstream = "g", header = "X-C", value = 1}}, nil, "canary.value"},
        {{upstream = false, redirect = {to = "/x"}, canary = {upstream = "g", header = "X"}},
         nil, "canary\" is not allowed with redirect"},
        {{upstream = false, redirect = {to = "/x"}, timeouts = {read_ms = 1}}, nil, "timeouts"},
        {{upstream = false, redirect = {to = "/x"}, max_body_bytes = 1}, nil, "max_body_bytes"},
        {{upstream = false, redirect = {to = "ftp://x"}}, nil, "redirect.to"},
        {{upstream = false, redirect = {to = "https://"}}, nil, "redirect.to"},
        {{upstream = false, redirect = {to = "x/y"}}, nil, "redirect.to"},
        {{upstream = false, redirect = {to = "/a b"}}, nil, "redirect.to"},
        {{upstream = false, redirect = {to = "/x", status = 200}}, nil, "redirect.status"},
        {{upstream = false, redirect = {to = "/x", keep_path = "yes"}}, nil, "redirect.keep_path"},
        {{rewrite = {}}, nil, "exactly one of"},
        {{rewrite = {strip_prefix = true, replace_prefix = "/v"}}, nil, "exactly one of"},
        {{rewrite = {strip_prefix = false}}, nil, "strip_prefix"},
        {{rewrite = {strip_prefix = true}}, "regex", "exact or prefix"},
        {{rewrite = {replace_prefix = "v2"}}, nil, "replace_prefix"},
        {{rewrite = {regex = "^(", replacement = "/x"}}, nil, "rewrite.regex"},
        {{rewrite = {regex = "^/a", replacement = "x"}}, nil, "rewrite.replacement"},
        {{rewrite = {regex = "^/a"}}, nil, "rewrite.replacement"},
        {{rewrite = {regex = "^/a", replacement = "/$x"}}, nil, "rewrite.replacement"},
        {{request_headers = {set = many}}, nil, "at most 32"},
        {{request_headers = {set = {["X-A"] = "1"}, remove = {"x-a"}}}, nil, "both in set and remove"},
        {{request_headers = {set = {["X-Forwarded-For"] = "1"}}}, nil, "owned by the edge"},
        {{request_headers = {remove = {"Connection"}}}, nil, "request_headers.remove%[0%]"},
        {{request_headers = {set = {["X A"] = "1"}}}, nil, "not a header name"},
        {{request_headers = {set = {["X-A"] = "a\nb"}}}, nil, "control characters"},
        {{request_headers = {add = {}}}, nil, "unknown member"},
        {{response_headers = {remove = {"Content-Length"}}}, nil, "owned by the edge"},
        {{response_headers = {set = {Trailer = "x"}}}, nil, "owned by the edge"},
        {{timeouts = {}}, nil, "at least one"},
        {{timeouts = {connect_ms = 60001}}, nil, "timeouts.connect_ms"},
        {{timeouts = {read_ms = 0}}, nil, "timeouts.read_ms"},
        {{max_body_bytes = 104857601}, nil, "max_body_bytes"},
        {{max_body_bytes = -1}, nil, "max_body_bytes"},
        {{rate_limit = {rps = 0}}, nil, "rate_limit.rps"},
        {{rate_limit = {rps = 1, burst = 100001}}, nil, "rate_limit.burst"},
        {{rate_limit = {rps = 1, key = "cookie:x"}}, nil, "rate_limit.key"},
        {{allow = {"10.0.0.1/8"}}, nil, "allow%[0%]: host bits"},
        {{deny = cidrs}, nil, "at most 256"},
        {{deny = "10.0.0.0/8"}, nil, "deny must be an array"},
        -- issue 16: what the controller refuses and would hurt at request time
        {{upstream = false, redirect = {to = "//evil.test"}}, nil, "redirect.to"},
        {{upstream = false, redirect = {to = "https://?x"}}, nil, "redirect.to"},
        {{rewrite = {regex = "^/(a)", replacement = "/$2"}}, nil, "refers to group 2"},
        {{rewrite = {regex = "^/a", replacement = "/${1}"}}, nil, "refers to group 1"},
        {{rewrite = {regex = "^/(a)", replacement = "/$1234"}}, nil, "rewrite.replacement"},
        {{upstream = "."}, nil, "upstream"},
        {{upstream = false, split = {{upstream = "..", weight = 1}, {upstream = "b", weight = 1}}},
         nil, "split%[0%]%.upstream"},
        {{request_headers = {set = {Host = ""}}}, nil, "request_headers.set.Host"},
        {{request_headers = {set = {host = "a b"}}}, nil, "request_headers.set.host"},
        {{request_headers = {set = {Host = "*.a.test"}}}, nil, "host:port"},
        {{request_headers = {set = {Host = "a.test:08"}}}, nil, "host:port"},
        {{request_headers = {set = {Host = "a.test:65536"}}}, nil, "host:port"},
        {{request_headers = {set = {Host = "a_b.test"}}}, nil, "host:port"},
        {{request_headers = {set = {Host = "a.test."}}}, nil, "host:port"},
        {{request_headers = {set = {Host = "[1::2::3]"}}}, nil, "host:port"},
    }
    for i, c in ipairs(bad) do
        it("refuses case " .. i .. " (" .. c[3] .. ")", function()
            local r, err = decode(c[1], c[2])
            assert.is_nil(r)
            assert.matches(c[3], err)
        end)
    end
end)
