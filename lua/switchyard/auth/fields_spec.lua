-- switchyard.auth.fields: basic_auth and jwt as the edge decodes them (the controller's
-- rules: Sources/SwitchyardCore/Policies/Auth.swift; the corpus keeps both equal).
local fields = require "switchyard.auth.fields"
local policy = require "switchyard.route.policy"
local cjson = require "cjson"

local BCRYPT = "$2y$05$" .. ("a"):rep(53)
local SHA512 = "$6$saltsalt$" .. ("b"):rep(86)
local PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
local SECRET = ("s"):rep(32)
local FP = "0123456789abcdef"
local SEALED = "aes-256-gcm:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA"

describe("switchyard.auth.fields", function()
    it("decodes basic_auth with its challenge", function()
        local a = assert(fields.basic_auth({realm = "staff", users = {{name = "ann", hash = BCRYPT},
                                                                     {name = "bob", hash = SHA512}}}))
        assert.equal("basic", a.kind)
        assert.equal(BCRYPT, a.users.ann)
        assert.equal(SHA512, a.users.bob)
        assert.equal('Basic realm="staff", charset="UTF-8"', a.challenge)
        assert.equal("restricted", fields.basic_auth({users = {{name = "a", hash = BCRYPT}}}).realm)
    end)

    it("verifies only bcrypt and SHA-512-crypt hashes it can afford", function()
        for _, ok in ipairs({BCRYPT, "$2b$12$" .. ("."):rep(53), "$2b$04$" .. ("/"):rep(53), SHA512,
                             "$6$rounds=5000$s$" .. ("b"):rep(86), "$6$" .. ("s"):rep(16) .. "$" .. ("b"):rep(86)}) do
            assert.is_nil(fields.hash_problem(ok), ok)
        end
        for _, bad in ipairs({"$2y$13$" .. ("a"):rep(53), "$2y$03$" .. ("a"):rep(53), "$2y$10$" .. ("a"):rep(52),
                              "$2a$10$" .. ("a"):rep(53), "$2y$10$" .. ("a"):rep(52) .. "*",
                              "$6$$" .. ("b"):rep(86), "$6$s$" .. ("b"):rep(85),
                              "$6$" .. ("s"):rep(17) .. "$" .. ("b"):rep(86),
                              "$6$rounds=999$s$" .. ("b"):rep(86), "$6$rounds=100001$s$" .. ("b"):rep(86),
                              "$6$rounds=05000$s$" .. ("b"):rep(86),
                              "$1$salt$abcdefghijklmnopqrstuv", "$apr1$salt$abc", "{SHA}abc", "plain", ""}) do
            assert.truthy(fields.hash_problem(bad), bad)
        end
    end)

    it("refuses bad basic_auth members, naming the field", function()
        for _, case in ipairs({
            {{}, "basic_auth.users is required"},
            {{users = {}}, "basic_auth.users must be"},
            {{users = {{name = "a"}}}, "basic_auth.users[0] needs"},
            {{users = {{name = "a:b", hash = BCRYPT}}}, "basic_auth.users[0].name"},
            {{users = {{name = "a b", hash = BCRYPT}}}, "basic_auth.users[0].name"},
            {{users = {{name = "a", hash = BCRYPT}, {name = "a", hash = SHA512}}}, "basic_auth.users[1].name appears"},
            {{users = {{name = "a", hash = "{SHA}x"}}}, "basic_auth.users[0].hash uses a scheme"},
            {{realm = 'a"b', users = {{name = "a", hash = BCRYPT}}}, "basic_auth.realm"},
            {{realm = "", users = {{name = "a", hash = BCRYPT}}}, "basic_auth.realm"},
        }) do
            local a, err = fields.basic_auth(case[1])
            assert.is_nil(a)
            assert.equal(1, err:find(case[2], 1, true), err)
        end
    end)

    it("decodes jwt with its defaults and where the token is", function()
        local j = assert(fields.jwt({keys = {{alg = "ES256", pem = PEM}}, issuer = "https://id.test",
                                     claims_to_headers = {sub = "X-User", email = "X-Email"}}))
        assert.equal(30, j.leeway)
        assert.equal("https://id.test", j.issuer)
        assert.same({{"email", "X-Email"}, {"sub", "X-User"}}, j.claims)
        assert.is_nil(j.header_var)
        assert.equal("http_x_token", fields.jwt({keys = {{alg = "RS256", pem = PEM}}, header = "X-Token"}).header_var)
        assert.equal("cookie_tok", fields.jwt({keys = {{alg = "RS256", pem = PEM}}, cookie = "tok"}).cookie_var)
        local two = assert(fields.jwt({keys = {{alg = "RS256", kid = "a", pem = PEM},
                                               {alg = "ES256", kid = "b", pem = PEM}}}))
        assert.equal("ES256", two.by_kid.b.alg)
    end)

    it("decodes HS256 keys: a plaintext secret, or a sealed one bound to the route", function()
        local j = assert(fields.jwt({keys = {{alg = "HS256", kid = "a", secret = SECRET, secret_sha256 = FP},
                                             {alg = "HS256", kid = "b", secret_enc = SEALED,
                                              secret_sha256 = FP},
                                             {alg = "RS256", kid = "c", pem = PEM}}}, "api"))
        assert.equal(SECRET, j.by_kid.a.secret)
        assert.is_nil(j.by_kid.a.secret_enc)
        assert.is_nil(j.by_kid.b.secret)
        assert.equal(SEALED, j.by_kid.b.secret_enc)
        assert.is_nil(j.by_kid.c.secret)
        assert.equal("switchyard:route:api:jwt.secret", j.aad)
        local _, plan = policy.decode({upstream = "b", jwt = {keys = {{alg = "HS256", secret_enc = SEALED,
                                                                        secret_sha256 = FP}}}},
                                      "prefix", "/", "r7")
        assert.equal("switchyard:route:r7:jwt.secret", plan.auth.aad)
    end)

    it("decodes a JWKS's keys with the PEM the controller derived", function()
        local rsa = {kty = "RSA", alg = "RS256", kid = "r", n = "AQAB", e = "AQAB", pem = PEM}
        local ec = {kty = "EC", alg = "ES256", kid = "e", crv = "P-256", x = "AA", y = "AA", pem = PEM}
        local j = assert(fields.jwt({jwks = {keys = {rsa, ec}}}, "api"))
        assert.equal("RS256", j.by_kid.r.alg)
        assert.equal(PEM, j.by_kid.e.pem)
        for _, case in ipairs({
            {{jwks = {keys = {rsa}}, keys = {{alg = "RS256", pem = PEM}}}, "jwt.jwks: give keys or jwks"},
            {{jwks = {}}, "jwt.jwks.keys is required"},
            {{jwks = "x"}, "jwt.jwks must be an object"},
            {{jwks = {keys = {rsa, rsa}}}, "jwt.jwks.keys[1].kid appears twice"},
            {{jwks = {keys = {{kty = "RSA", alg = "RS256", n = "AQAB", e = "AQAB", pem = PEM},
                              {kty = "RSA", alg = "RS256", n = "AQAB", e = "AQAB", pem = PEM}}}},
             "jwt.jwks.keys: every key needs a kid"},
            {{jwks = {keys = {{kty = "oct", k = "c2VjcmV0"}}}}, "jwt.jwks.keys[0].k is a private"},
            {{jwks = {keys = {{kty = "RSA", alg = "RS256", n = "AQAB", e = "AQAB", d = "AQAB",
                               pem = PEM}}}}, "jwt.jwks.keys[0].d is a private"},
            {{jwks = {keys = {{kty = "EC", alg = "ES256", crv = "P-384", x = "A", y = "A",
                               pem = PEM}}}}, "jwt.jwks.keys[0] is not an ES256"},
            {{jwks = {keys = {{kty = "RSA", alg = "ES256", n = "A", e = "A", pem = PEM}}}},
             "jwt.jwks.keys[0] is not an RS256"},
            {{jwks = {keys = {{kty = "RSA", alg = "RS256", n = "A", e = "A"}}}}, "jwt.jwks.keys[0].pem"},
            {{jwks = {keys = {{kty = "oct", alg = "HS256", secret = SECRET}}}}, "jwt.jwks.keys[0].kty"},
        }) do
            local bad, err = fields.jwt(case[1], "api")
            assert.is_nil(bad)
            assert.equal(1, err:find(case[2], 1, true), err)
        end
    end)

    it("refuses bad jwt members, naming the field", function()
        local key = {alg = "RS256", pem = PEM}
        for _, case in ipairs({
            {{}, "jwt.keys is required"},
            {{keys = {{alg = "HS256", pem = PEM}}}, "jwt.keys[0].pem"},
            {{keys = {{alg = "HS256"}}}, "jwt.keys[0].secret is required"},
            {{keys = {{alg = "HS256", secret = SECRET:sub(2)}}}, "jwt.keys[0].secret must be 32-512"},
            {{keys = {{alg = "HS256", secret = SECRET:rep(17)}}}, "jwt.keys[0].secret must be 32-512"},
            {{keys = {{alg = "HS256", secret = 12345}}}, "jwt.keys[0].secret must be"},
            {{keys = {{alg = "HS256", secret_enc = SEALED}}}, "jwt.keys[0].secret is required"},
            {{keys = {{alg = "HS256", secret_enc = "x", secret_sha256 = FP}}}, "jwt.keys[0].secret is"},
            {{keys = {{alg = "HS256", secret_sha256 = FP}}}, "jwt.keys[0].secret is required"},
            {{keys = {{alg = "RS256", pem = PEM, secret = SECRET}}}, "jwt.keys[0].secret: only HS256"},
            {{keys = {{alg = "ES256", pem = PEM, secret_sha256 = FP}}}, "jwt.keys[0].secret_sha256: only"},
            {{keys = {{alg = "HS384", secret = SECRET}}}, "jwt.keys[0].alg"},
            {{keys = {{alg = "none", pem = PEM}}}, "jwt.keys[0].alg"},
            {{keys = {{alg = "RS256", pem = "secret"}}}, "jwt.keys[0].pem"},
            {{keys = {{alg = "RS256", pem = PEM .. PEM}}}, "jwt.keys[0].pem"},
            {{keys = {key, key}}, "jwt.keys: every key needs a kid"},
            {{keys = {{alg = "RS256", kid = "a", pem = PEM}, {alg = "RS256", kid = "a", pem = PEM}}},
             "jwt.keys[1].kid"},
            {{keys = {key}, leeway_s = 301}, "jwt.leeway_s"},
            {{keys = {key}, leeway_s = 1.5}, "jwt.leeway_s"},
            {{keys = {key}, issuer = ""}, "jwt.issuer"},
            {{keys = {key}, claims_to_headers = {sub = "Authorization"}}, "jwt.claims_to_headers.sub"},
            {{keys = {key}, claims_to_headers = {sub = "X-A", email = "x-a"}}, "jwt.claims_to_headers."},
            {{keys = {key}, claims_to_headers = {["a b"] = "X-A"}}, "jwt.claims_to_headers"},
            {{keys = {key}, header = "X-T", cookie = "t"}, "jwt.cookie"},
        }) do
            local j, err = fields.jwt(case[1])
            assert.is_nil(j)
            assert.equal(1, err:find(case[2], 1, true), err)
        end
    end)

    it("puts one authentication in the route's plan, behind the guard", function()
        local up, plan = policy.decode({upstream = "b", basic_auth = {users = {{name = "a", hash = BCRYPT}}}},
                                       "prefix", "/", "r")
        assert.equal("b", up)
        assert.equal("basic", plan.auth.kind)
        assert.is_true(plan.guard)
        local _, err = policy.decode({upstream = "b", basic_auth = {users = {{name = "a", hash = BCRYPT}}},
                                      jwt = {keys = {{alg = "RS256", pem = PEM}}}}, "prefix", "/", "r")
        assert.truthy(err:find("one authentication", 1, true))
        up, plan = policy.decode({upstream = "b", jwt = cjson.null}, "prefix", "/", "r")
        assert.equal("b", up)
        assert.is_nil(plan)
    end)

    it("decodes forward_auth with its defaults", function()
        local f = assert(fields.forward_auth({url = "http://127.0.0.1:9000/auth?x=1",
                                              response_headers = {"X-User"}}))
        assert.equal("127.0.0.1", f.host)
        assert.equal(9000, f.port)
        assert.equal("/auth?x=1", f.path)
        assert.equal("127.0.0.1:9000", f.host_header)
        assert.same({"Authorization", "Cookie"}, f.request)
        assert.same({"http_authorization", "http_cookie"}, f.request_vars)
        assert.same({"x-user"}, f.response_low)
        assert.equal(0, f.cache_s)
        assert.equal(1000, f.timeout_ms)
        assert.is_false(f.fail_open)
        local v6 = assert(fields.forward_auth({url = "http://[::1]:80/"}))
        assert.equal("[::1]", v6.host)
        assert.equal("[::1]:80", v6.host_header)
    end)

    it("refuses forward_auth urls the edge cannot ask", function()
        for _, url in ipairs({"https://127.0.0.1:1/x", "http://auth.test:80/x", "http://127.0.0.1/x",
                              "http://127.0.0.1:80", "http://127.0.0.1:0/x", "http://127.0.0.1:65536/x",
                              "http://127.0.0.01:80/x", "http://[::1]/x", "http://::1:80/x",
                              "http://127.0.0.1:80/a b", "http://127.0.0.1:80/#x", "",
                              "http://127.0.0.1:80/" .. ("x"):rep(1005)}) do
            local f, err = fields.forward_auth({url = url})
            assert.is_nil(f, url)
            assert.equal(1, err:find("forward_auth.url", 1, true))
        end
        for _, case in ipairs({
            {{response_headers = {"Host"}}, "forward_auth.response_headers[0]"},
            {{response_headers = {"X-A", "x-a"}}, "forward_auth.response_headers[1]"},
            {{request_headers = {"a b"}}, "forward_auth.request_headers[0]"},
            {{request_headers = {"Authorization", "Content-Length"}}, "forward_auth.request_headers[1]"},
            {{request_headers = {"X-Forwarded-Uri"}}, "forward_auth.request_headers[0]"},
            {{request_headers = {"host"}}, "forward_auth.request_headers[0]"},
            {{cache_s = 301}, "forward_auth.cache_s"},
            {{timeout_ms = 0}, "forward_auth.timeout_ms"},
            {{fail_open = "yes"}, "forward_auth.fail_open"},
        }) do
            case[1].url = "http://127.0.0.1:80/"
            local f, err = fields.forward_auth(case[1])
            assert.is_nil(f)
            assert.equal(1, err:find(case[2], 1, true), err)
        end
    end)
end)
