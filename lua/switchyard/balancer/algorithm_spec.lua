-- busted spec for the balancing algorithms: switchyard.balancer.algorithm (decoding of balance,
-- hash_on, sticky; the factory), switchyard.balancer.chash (the ring), switchyard.balancer.least_conn,
-- switchyard.balancer.sticky, and their wiring through switchyard.health.rotation (endpoints in rotation,
-- retries) and switchyard.route.decode. Fake dict, fake request variables.

local cjson = require "cjson"
local repo = require "spec_support.repo"
local shared_dict = require "spec_support.shared_dict"
local balancer = require "switchyard.balancer.algorithm"
local chash = require "switchyard.balancer.chash"
local least_conn = require "switchyard.balancer.least_conn"
local sticky = require "switchyard.balancer.sticky"
local health = require "switchyard.health.rotation"
local upstream_mod = require "switchyard.balancer.upstream"


local function eps_of(n, weights)
    local out = {}
    for i = 1, n do
        out[i] = {address = "10.0.0." .. i .. ":80", host = "10.0.0." .. i, port = 80,
                  weight = weights and weights[i] or 1}
    end
    return out
end

-- an upstream built like switchyard.state does, with the env the edge injects
local function build(settings, endpoints, env, hctx_opts)
    local hctx = health.new_context(hctx_opts or {})
    hctx.env = env
    return health.build(hctx, {name = "u", n = #endpoints, endpoints = endpoints,
                               policy = require("switchyard.health.policy").DEFAULT, balancing = settings}), hctx
end

local function settings_of(fields)
    return assert(balancer.decode(fields))
end

describe("balancer.decode", function()
    it("defaults to round_robin and accepts every algorithm", function()
        assert.equal("round_robin", settings_of({}).balance)
        assert.equal("least_conn", settings_of({balance = "least_conn"}).balance)
        assert.equal("remote_addr", settings_of({balance = "ip_hash"}).var)
        assert.equal("http_x_user_id", settings_of({balance = "hash", hash_on = "header:X-User-Id"}).var)
        assert.equal("cookie_sid", settings_of({balance = "hash", hash_on = "cookie:sid"}).var)
        assert.equal("request_uri", settings_of({balance = "hash", hash_on = "uri"}).var)
        assert.equal("remote_addr", settings_of({balance = "hash", hash_on = "ip"}).var)
        local s = settings_of({balance = "sticky"}).sticky
        assert.same({"sy_sticky", 3600, "/", true, false},
                    {s.cookie, s.ttl_s, s.path, s.httponly, s.secure})
        assert.is_nil(s.domain)
    end)

    it("serves an unknown balance as round_robin with a warning", function()
        local s, err, warning = balancer.decode({balance = "random", hash_on = "x"})
        assert.is_nil(err)
        assert.equal("round_robin", s.balance)
        assert.matches("unknown balance \"random\"", warning)
    end)

    local bad = {
        {"a non-string balance", {balance = 3}, "\"balance\""},
        {"hash without hash_on", {balance = "hash"}, "\"hash_on\" is required"},
        {"hash_on with round_robin", {hash_on = "uri"}, "only allowed"},
        {"hash_on with ip_hash", {balance = "ip_hash", hash_on = "ip"}, "only allowed"},
        {"an unknown hash_on", {balance = "hash", hash_on = "body"}, "\"hash_on\""},
        {"an empty header name", {balance = "hash", hash_on = "header:"}, "\"hash_on\""},
        {"a header name with a space", {balance = "hash", hash_on = "header:X Y"}, "\"hash_on\""},
        {"a cookie name with =", {balance = "hash", hash_on = "cookie:a=b"}, "\"hash_on\""},
        {"hash_on not a string", {balance = "hash", hash_on = 1}, "\"hash_on\""},
        {"sticky with least_conn", {balance = "least_conn", sticky = {}}, "only allowed"},
        {"sticky not an object", {balance = "sticky", sticky = "x"}, "\"sticky\""},
        {"sticky as an array", {balance = "sticky", sticky = {1}}, "\"sticky\""},
        {"a long cookie name", {balance = "sticky", sticky = {cookie = string.rep("c", 65)}}, "sticky.cookie"},
        {"a cookie name with ;", {balance = "sticky", sticky = {cookie = "a;b"}}, "sticky.cookie"},
        {"an empty cookie name", {balance = "sticky", sticky = {cookie = ""}}, "sticky.cookie"},
        {"a negative ttl", {balance = "sticky", sticky = {ttl_s = -1}}, "sticky.ttl_s"},
        {"a ttl over a year", {balance = "sticky", sticky = {ttl_s = 31536001}}, "sticky.ttl_s"},
        {"a fractional ttl", {balance = "sticky", sticky = {ttl_s = 1.5}}, "sticky.ttl_s"},
        {"a relative path", {balance = "sticky", sticky = {path = "a"}}, "sticky.path"},
        {"a path with ;", {balance = "sticky", sticky = {path = "/a;b"}}, "sticky.path"},
        {"a path with a space", {balance = "sticky", sticky = {path = "/a b"}}, "sticky.path"},
        {"a path with a control character", {balance = "sticky", sticky = {path = "/a\n"}}, "sticky.path"},
        {"a bad domain", {balance = "sticky", sticky = {domain = "a..b"}}, "sticky.domain"},
        {"a domain with a port", {balance = "sticky", sticky = {domain = "a.b:80"}}, "sticky.domain"},
        {"a string secure", {balance = "sticky", sticky = {secure = "yes"}}, "sticky.secure"},
        {"a numeric httponly", {balance = "sticky", sticky = {httponly = 1}}, "sticky.httponly"},
    }
    for _, case in ipairs(bad) do
        it("rejects " .. case[1], function()
            local s, err = balancer.decode(case[2])
            assert.is_nil(s)
            assert.matches(case[3], err, 1, true)
        end)
    end

    it("accepts the edges of the ranges and JSON nulls", function()
        local s = settings_of({balance = "sticky", sticky = {cookie = string.rep("c", 64),
            ttl_s = 31536000, path = "/app", domain = "Example.COM", secure = true,
            httponly = false}}).sticky
        assert.equal(31536000, s.ttl_s)
        assert.equal("Example.COM", s.domain)
        assert.equal(0, settings_of({balance = "sticky", sticky = {ttl_s = 0}}).sticky.ttl_s)
        assert.equal("round_robin", settings_of({hash_on = cjson.null, sticky = cjson.null}).balance)
        assert.equal("sy_sticky", settings_of({balance = "sticky", sticky = cjson.null}).sticky.cookie)
    end)

    it("makes upstream.decode refuse bad parameters and carry the settings", function()
        local raw = cjson.encode({name = "u", endpoints = {{address = "10.0.0.1:80"}},
                                  balance = "hash", hash_on = "header:X-A"})
        local up = assert(upstream_mod.decode(raw, "u"))
        assert.equal("hash", up.balance)
        assert.equal("http_x_a", up.balancing.var)
        local bad_raw = cjson.encode({name = "u", endpoints = {{address = "10.0.0.1:80"}},
                                      balance = "hash"})
        local none, err = upstream_mod.decode(bad_raw, "u")
        assert.is_nil(none)
        assert.matches("hash_on", err)
        local _, _, warning = upstream_mod.decode(cjson.encode({name = "u", endpoints = {},
                                                               balance = "fastest"}), "u")
        assert.matches("unknown balance", warning)
    end)
end)

describe("chash", function()
    it("is CRC-32 (IEEE), the same as ngx.crc32_long", function()
        assert.equal(0x414FA339, chash.crc32("The quick brown fox jumps over the lazy dog"))
        assert.equal(0, chash.crc32(""))
        assert.equal(0xCBF43926, chash.crc32("123456789"))
    end)

    it("mixes with MurmurHash3's fmix32", function()
        assert.equal(0, chash.mix(0))
        assert.equal(0x514E28B7, chash.mix(1))
        assert.equal(0x81F16F39, chash.mix(0xFFFFFFFF))
    end)

    it("gives positions in proportion to weight, capped per upstream", function()
        local eps = eps_of(3, {1, 2, 3})
        local pts = chash.points(eps, chash.crc32)
        assert.equal(160, #pts[eps[1]])
        assert.equal(320, #pts[eps[2]])
        assert.equal(480, #pts[eps[3]])
        local heavy = eps_of(4, {1000, 1000, 1000, 1})
        local hp = chash.points(heavy, chash.crc32)
        local total = 0
        for _, list in pairs(hp) do total = total + #list end
        assert.is_true(total <= chash.MAX_POINTS + 4)
        assert.equal(1, #hp[heavy[4]])   -- never none
    end)

    it("finds the first position at or after the hash, wrapping", function()
        local a, b = {address = "a"}, {address = "b"}
        local ring = chash.new({a, b}, {[a] = {100, 300}, [b] = {200}}, {[a] = 1, [b] = 2})
        -- (positions given directly: lookup takes mixed hashes)
        assert.equal(a, ring:lookup(0))
        assert.equal(a, ring:lookup(100))
        assert.equal(b, ring:lookup(101))
        assert.equal(b, ring:lookup(200))
        assert.equal(a, ring:lookup(250))
        assert.equal(a, ring:lookup(301))   -- wraps
        local p, i = ring:lookup(150)
        assert.equal(b, p)
        assert.equal(a, ring:walk(i, {[b] = true}))
        assert.is_nil(ring:walk(i, {[a] = true, [b] = true}))
        assert.is_nil(chash.new({}, {}, {}):lookup(5))
    end)
end)

-- key -> address over `keys` request keys, through the hash balancer
local function assign(b, var, name, keys)
    local out = {}
    for i = 1, keys do
        var[name] = "user-" .. i
        out[i] = b:pick({}).address
    end
    return out
end

describe("hash balancing", function()
    local settings = settings_of({balance = "hash", hash_on = "header:X-User"})

    it("sends one key to one endpoint and spreads many keys by weight", function()
        local var = {}
        local up = build(settings, eps_of(4, {1, 1, 1, 3}), {var = var})
        local first = assign(up.balancer, var, "http_x_user", 6000)
        assert.same(first, assign(up.balancer, var, "http_x_user", 6000))
        local count = {}
        for _, a in ipairs(first) do count[a] = (count[a] or 0) + 1 end
        for i = 1, 3 do
            local share = count["10.0.0." .. i .. ":80"] / 6000
            assert.is_true(share > 1 / 6 * 0.7 and share < 1 / 6 * 1.3, "share " .. share)
        end
        local share4 = count["10.0.0.4:80"] / 6000
        assert.is_true(share4 > 0.5 * 0.8 and share4 < 0.5 * 1.2, "share " .. share4)
    end)

    it("hashes a missing key as the empty string (one endpoint)", function()
        local var = {}
        local up = build(settings, eps_of(4), {var = var})
        local a = up.balancer:pick({})
        for _ = 1, 10 do assert.equal(a, up.balancer:pick({})) end
    end)

    it("moves only about 1/(n+1) of the keys when an endpoint is added", function()
        local var = {}
        local before = assign(build(settings, eps_of(4), {var = var}).balancer, var, "http_x_user", 4000)
        local after = assign(build(settings, eps_of(5), {var = var}).balancer, var, "http_x_user", 4000)
        local moved = 0
        for i = 1, 4000 do
            if before[i] ~= after[i] then
                moved = moved + 1
                assert.equal("10.0.0.5:80", after[i])   -- only to the new endpoint
            end
        end
        assert.is_true(moved > 4000 * 0.2 * 0.6 and moved < 4000 * 0.2 * 1.4, "moved " .. moved)
    end)

    it("moves only the keys of an endpoint that goes down, and back when it returns", function()
        local var = {}
        local endpoints = eps_of(4)
        local passive_marks = {}
        local clock = {t = 100}
        local up, hctx = build(settings, endpoints, {var = var},
                               {passive = passive_marks, now = function() return clock.t end})
        local before = assign(up.balancer, var, "http_x_user", 2000)
        passive_marks.u = {["10.0.0.2:80"] = 200}
        health.build(hctx, up)
        local during = assign(up.balancer, var, "http_x_user", 2000)
        for i = 1, 2000 do
            if before[i] ~= "10.0.0.2:80" then
                assert.equal(before[i], during[i])
            else
                assert.are_not.equal("10.0.0.2:80", during[i])
            end
        end
        clock.t = 300
        health.build(hctx, up)
        assert.same(before, assign(up.balancer, var, "http_x_user", 2000))
    end)

    it("retries from the key's own ring index when the first pick kept none", function()
        -- the edge's first pick on location / runs without a ctx (switchyard.phases)
        local var = {}
        local up = build(settings, eps_of(5), {var = var})
        for i = 1, 50 do
            var.http_x_user = "user-" .. i
            local ctx = {}
            local first = up.balancer:pick(ctx)
            local with = health.retry_pick(up, {[first] = true}, ctx)
            assert.equal(first, up.balancer:pick(nil))
            local without = health.retry_pick(up, {[first] = true}, {})
            assert.equal(with, without)
            assert.are_not.equal(first, without)
        end
    end)

    it("ip_hash hashes the whole client address", function()
        local var = {}
        local up = build(settings_of({balance = "ip_hash"}), eps_of(4), {var = var})
        local seen = {}
        for i = 1, 200 do
            var.remote_addr = "192.0.2." .. (i % 50)
            local a = up.balancer:pick({}).address
            if seen[var.remote_addr] then assert.equal(seen[var.remote_addr], a) end
            seen[var.remote_addr] = a
        end
        local distinct = {}
        for _, a in pairs(seen) do distinct[a] = true end
        local n = 0
        for _ in pairs(distinct) do n = n + 1 end
        assert.equal(4, n)   -- 50 addresses of one /24 still spread
    end)
end)

describe("least_conn", function()
    it("picks the fewest active per unit of weight, counting in the dict", function()
        local dict = shared_dict.new()
        local up = build(settings_of({balance = "least_conn"}), eps_of(3, {1, 2, 1}),
                         {conns = dict})
        local b = up.balancer
        dict:set("u 10.0.0.1:80", 2)
        dict:set("u 10.0.0.2:80", 3)   -- 1.5 per unit
        dict:set("u 10.0.0.3:80", 1)
        local ctx = {}
        assert.equal("10.0.0.3:80", b:pick(ctx).address)
        assert.equal("u 10.0.0.3:80", ctx.sy_conn)
        assert.equal(2, dict:get("u 10.0.0.3:80"))
        -- now 2, 1.5, 2: the weighted one
        assert.equal("10.0.0.2:80", b:pick({}).address)
        balancer.finish({conns = dict}, ctx)
        assert.is_nil(ctx.sy_conn)
        assert.equal(1, dict:get("u 10.0.0.3:80"))
    end)

    it("breaks ties by weighted round robin", function()
        local dict = shared_dict.new()
        local up = build(settings_of({balance = "least_conn"}), eps_of(3, {2, 1, 1}), {conns = dict})
        local seq = {}
        for i = 1, 8 do
            local ctx = {}
            seq[i] = up.balancer:pick(ctx).address:match("%.(%d+):")
            balancer.finish({conns = dict}, ctx)   -- idle again: always a tie
        end
        assert.equal("12311231", table.concat(seq))   -- smooth WRR 2,1,1
        for _, v in pairs(dict:contents()) do assert.equal(0, v) end
    end)

    it("retries the least loaded untried endpoint and moves the count", function()
        local dict = shared_dict.new()
        local up = build(settings_of({balance = "least_conn"}), eps_of(3), {conns = dict})
        local ctx = {}
        local first = up.balancer:pick(ctx)
        local tried = {[first] = true}
        local second = health.retry_pick(up, tried, ctx)
        assert.are_not.equal(first, second)
        assert.equal(0, dict:get(first.conn_key))
        assert.equal(1, dict:get(second.conn_key))
        tried[second] = true
        local third = health.retry_pick(up, tried, ctx)
        assert.is_nil(tried[third])
        balancer.finish({conns = dict}, ctx)
        for _, v in pairs(dict:contents()) do assert.equal(0, v) end
    end)

    it("counts a negative reading as 0 and falls back to round robin without sy_conns", function()
        local dict = shared_dict.new()
        dict:set("u 10.0.0.1:80", -5)
        dict:set("u 10.0.0.2:80", 0)
        local up = build(settings_of({balance = "least_conn"}), eps_of(2), {conns = dict})
        local seen = {}
        for _ = 1, 4 do seen[up.balancer:pick({}).address] = true end
        assert.is_true(seen["10.0.0.1:80"])
        local rr = build(settings_of({balance = "least_conn"}), eps_of(2), {})
        assert.equal(require("switchyard.balancer.wrr").pick, rr.balancer.pick)
    end)
end)

describe("sticky", function()
    local settings = settings_of({balance = "sticky", sticky = {cookie = "aff", ttl_s = 60,
                                  domain = "example.com", secure = true}})

    it("issues a cookie with the endpoint's id, then honours it", function()
        local var = {}
        local up = build(settings, eps_of(3), {var = var})
        local ctx = {}
        local p = up.balancer:pick(ctx)
        assert.equal(1, #ctx.sy_cookies)
        local id = ctx.sy_cookies[1]:match("^aff=(%x+);")
        assert.equal(8, #id)
        assert.is_nil(ctx.sy_cookies[1]:find(p.host, 1, true))   -- not the address
        assert.equal("aff=" .. id .. "; Path=/; Max-Age=60; Domain=example.com; Secure; HttpOnly",
                     ctx.sy_cookies[1])
        var.cookie_aff = id
        for _ = 1, 10 do
            local c = {}
            assert.equal(p, up.balancer:pick(c))
            assert.is_nil(c.sy_cookies)
        end
    end)

    it("balances round robin without a cookie or with an unknown one", function()
        local var = {cookie_aff = "nothing"}
        local up = build(settings, eps_of(3), {var = var})
        local seq = {}
        for i = 1, 6 do
            local ctx = {sy_cookies = {"other=1"}}   -- another module's cookie stays
            seq[i] = up.balancer:pick(ctx).address:match("%.(%d+):")
            assert.equal(2, #ctx.sy_cookies)
            assert.equal("other=1", ctx.sy_cookies[1])
        end
        assert.equal("123123", table.concat(seq))
    end)

    it("reissues the cookie when the pinned endpoint is out of rotation or gone", function()
        local var = {}
        local endpoints = eps_of(3)
        local marks = {}
        local up, hctx = build(settings, endpoints, {var = var},
                               {passive = marks, now = function() return 10 end})
        local ctx = {}
        local pinned = up.balancer:pick(ctx)
        var.cookie_aff = ctx.sy_cookies[1]:match("^aff=(%x+);")
        marks.u = {[pinned.address] = 20}
        health.build(hctx, up)
        local c = {}
        local other = up.balancer:pick(c)
        assert.are_not.equal(pinned, other)
        assert.equal(other.sticky_cookie, c.sy_cookies[1])
        -- gone from the document: a new upstream object without it
        local rest = {}
        for _, ep in ipairs(endpoints) do
            if ep ~= pinned then rest[#rest + 1] = {address = ep.address, host = ep.host, port = 80, weight = 1} end
        end
        local up2 = build(settings, rest, {var = var})
        local c2 = {}
        assert.are_not.equal(pinned.address, up2.balancer:pick(c2).address)
        assert.equal(1, #c2.sy_cookies)
    end)

    it("ids are stable across builds and distinct within an upstream", function()
        local a = build(settings, eps_of(20), {var = {}})
        local b = build(settings, eps_of(20), {var = {}})
        local ids = {}
        for i = 1, 20 do
            local id = a.endpoints[i].sticky_id
            assert.equal(id, b.endpoints[i].sticky_id)
            assert.is_nil(ids[id])
            ids[id] = true
        end
    end)

    it("a retry re-pins the cookie to the endpoint that answers", function()
        local var = {}
        local up = build(settings, eps_of(3), {var = var})
        local ctx = {sy_cookies = {"x=1"}}
        local first = up.balancer:pick(ctx)
        local second = health.retry_pick(up, {[first] = true}, ctx)
        assert.are_not.equal(first, second)
        assert.same({"x=1", second.sticky_cookie}, ctx.sy_cookies)
        -- pinned by cookie (nothing queued), then retried: queued now
        var.cookie_aff = first.sticky_id
        local c = {}
        assert.equal(first, up.balancer:pick(c))
        local r = health.retry_pick(up, {[first] = true}, c)
        assert.same({r.sticky_cookie}, c.sy_cookies)
    end)

    it("writes a session cookie when ttl_s is 0", function()
        local s = settings_of({balance = "sticky", sticky = {ttl_s = 0, httponly = false}}).sticky
        assert.equal("sy_sticky=abc; Path=/", sticky.cookie_string(s, "abc"))
    end)
end)

describe("retries of every algorithm", function()
    local all = {
        {balance = "round_robin"}, {balance = "least_conn"}, {balance = "ip_hash"},
        {balance = "hash", hash_on = "uri"}, {balance = "sticky"},
    }
    for _, fields in ipairs(all) do
        it("never repeat an endpoint while another is in rotation: " .. fields.balance, function()
            for trial = 1, 20 do
                local var = {remote_addr = "10.1.1." .. trial, request_uri = "/p" .. trial}
                local up = build(settings_of(fields), eps_of(4, {1, 2, 3, 4}),
                                 {var = var, conns = shared_dict.new()})
                local ctx = {}
                local tried = {}
                local p = up.balancer:pick(ctx)
                tried[p] = true
                for _ = 1, 3 do
                    p = health.retry_pick(up, tried, ctx)
                    assert.is_nil(tried[p])
                    tried[p] = true
                end
                -- everything tried: still an endpoint
                assert.is_not_nil(health.retry_pick(up, tried, ctx))
            end
        end)
    end

    it("leave out endpoints out of rotation: hash", function()
        local var = {request_uri = "/x"}
        local marks = {u = {["10.0.0.1:80"] = 50, ["10.0.0.2:80"] = 50}}
        local up = build(settings_of({balance = "hash", hash_on = "uri"}), eps_of(4), {var = var},
                         {passive = marks, now = function() return 1 end})
        for i = 1, 50 do
            var.request_uri = "/k" .. i
            local ctx = {}
            local p = up.balancer:pick(ctx)
            local q = health.retry_pick(up, {[p] = true}, ctx)
            for _, x in ipairs({p, q}) do
                assert.is_true(x.address == "10.0.0.3:80" or x.address == "10.0.0.4:80")
            end
        end
    end)
end)

describe("least_conn.release", function()
    it("does not create a key that is gone", function()
        local dict = shared_dict.new()
        least_conn.release(dict, {sy_conn = "u x"})
        assert.is_nil(dict:get("u x"))
    end)
end)

-- the shared fixture (controller's side): every valid upstream decodes with its algorithm;
-- every invalid one is refused naming the controller's field, except an unknown balance
-- name, which the edge serves as round_robin with a warning (forward compatible: an edge
-- older than the controller keeps routing; the controller refuses it with a 422)
describe("policy-documents.json upstreams", function()
    local fixture = cjson.decode(repo.read("Tests/Fixtures/policy-documents.json"))
    for i, d in ipairs(fixture.upstreams.valid) do
        it("decodes valid upstream " .. i .. " (" .. d.name .. ")", function()
            local up, err, warning = upstream_mod.decode(cjson.encode(d), d.name)
            assert(up, tostring(err))
            assert.is_nil(warning)
            assert.equal(d.balance or "round_robin", up.balancing.balance)
        end)
    end
    for i, case in ipairs(fixture.upstreams.invalid) do
        it("handles invalid upstream " .. i .. " (" .. case.field .. ": " .. case.why .. ")", function()
            local up, err, warning = upstream_mod.decode(cjson.encode(case.doc), case.doc.name)
            if case.edge == "accepts" then   -- a documented leniency of the edge
                assert(up, tostring(err))
            elseif case.field == "balance" and type(case.doc.balance) == "string" then
                assert.equal("round_robin", up.balancing.balance)
                assert.matches("unknown balance", warning)
            else
                assert.is_nil(up)
                assert(err:find("\"" .. case.field .. "\"", 1, true), err .. " / " .. case.field)
            end
        end)
    end
end)
