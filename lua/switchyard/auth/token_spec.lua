-- switchyard.auth.token: JWS compact parsing, ES256's r||s to DER, and the claims checks.
local token = require "switchyard.auth.token"
local cjson = require "cjson"

-- base64url without padding (RFC 4648 section 5), as the edge's ngx.base64 decodes it
local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function enc(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
        for k = 1, chars do
            local v = math.floor(n / 2 ^ (18 - 6 * (k - 1))) % 64
            out[#out + 1] = ALPHA:sub(v + 1, v + 1)
        end
    end
    return table.concat(out)
end
local function dec(s)
    if s:find("[^%w%-_]") or #s % 4 == 1 then
        return nil
    end
    local out, bits, n = {}, 0, 0
    for i = 1, #s do
        n = n * 64 + (ALPHA:find(s:sub(i, i), 1, true) - 1)
        bits = bits + 6
        if bits >= 8 then
            bits = bits - 8
            out[#out + 1] = string.char(math.floor(n / 2 ^ bits) % 256)
            n = n % 2 ^ bits
        end
    end
    return table.concat(out)
end
local function json(s)
    local ok, v = pcall(cjson.decode, s)
    return ok and v or nil
end
local function jwt(header, claims, sig)
    return enc(cjson.encode(header)) .. "." .. enc(cjson.encode(claims)) .. "." .. enc(sig or "sig")
end

describe("switchyard.auth.token", function()
    it("splits a token into its header, claims, signed part and signature", function()
        local t = jwt({alg = "RS256", kid = "k1"}, {sub = "ann", exp = 100}, "\1\2\3")
        local parts = assert(token.split(t, dec, json))
        assert.equal("RS256", parts.header.alg)
        assert.equal("k1", parts.header.kid)
        assert.equal("ann", parts.claims.sub)
        assert.equal("\1\2\3", parts.sig)
        assert.equal(t:match("^([^.]+%.[^.]+)%."), parts.signed)
    end)

    it("refuses malformed tokens", function()
        local good = jwt({alg = "RS256"}, {sub = "a"})
        for _, bad in ipairs({
            "", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", good .. ".x",
            good:gsub("^[^.]+", enc("not json")),          -- header is not JSON
            good:gsub("^[^.]+", enc("\"RS256\"")),         -- header is not an object
            good:gsub("%.[^.]+%.", "." .. enc("[]x") .. "."),
            good .. "=",                                    -- padding is not base64url
            good:gsub("%.", " .", 1),
            ("a"):rep(token.MAX_TOKEN) .. "." .. good,
            42,
        }) do
            local parts, why = token.split(bad, dec, json)
            assert.is_nil(parts, tostring(bad))
            assert.equal("malformed", why)
        end
    end)

    it("turns a 64-byte r||s into a DER ECDSA-Sig-Value", function()
        local r = ("\0"):rep(31) .. "\5"          -- leading zeros dropped
        local s = "\128" .. ("\1"):rep(31)        -- a high bit gets a zero byte
        local der = token.ecdsa_der(r .. s)
        assert.equal("\48" .. string.char(3 + 35) .. "\2\1\5" .. "\2\33\0" .. s, der)
        assert.equal("\48\6\2\1\0\2\1\0", token.ecdsa_der(("\0"):rep(64)))
        assert.is_nil(token.ecdsa_der(("\1"):rep(63)))
        assert.is_nil(token.ecdsa_der(("\1"):rep(65)))
    end)

    it("checks exp and nbf with the leeway", function()
        local j = {leeway = 10}
        assert.is_nil(token.check_claims({exp = 1000}, j, 1009))
        assert.equal("expired", token.check_claims({exp = 1000}, j, 1010))
        assert.is_nil(token.check_claims({nbf = 1000}, j, 990))
        assert.equal("not yet valid", token.check_claims({nbf = 1000}, j, 989))
        assert.equal("expired", token.check_claims({exp = 1000}, {leeway = 0}, 1000))
        assert.is_nil(token.check_claims({}, j, 5))
        assert.equal("malformed", token.check_claims({exp = "1000"}, j, 5))
        assert.equal("malformed", token.check_claims({nbf = true}, j, 5))
    end)

    it("checks the issuer and the audience (a string or a list)", function()
        local j = {leeway = 0, issuer = "https://id.test", audience = "api"}
        assert.is_nil(token.check_claims({iss = "https://id.test", aud = "api"}, j, 0))
        assert.is_nil(token.check_claims({iss = "https://id.test", aud = {"x", "api"}}, j, 0))
        assert.equal("wrong issuer", token.check_claims({iss = "https://evil.test", aud = "api"}, j, 0))
        assert.equal("wrong issuer", token.check_claims({aud = "api"}, j, 0))
        assert.equal("wrong audience", token.check_claims({iss = "https://id.test", aud = "web"}, j, 0))
        assert.equal("wrong audience", token.check_claims({iss = "https://id.test", aud = {"web"}}, j, 0))
        assert.equal("wrong audience", token.check_claims({iss = "https://id.test"}, j, 0))
        assert.is_nil(token.check_claims({}, {leeway = 0}, 0))
    end)
end)
