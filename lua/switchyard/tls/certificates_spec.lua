-- busted spec for switchyard.tls.certificates: certificate documents and the per-worker
-- certificate table (SNI selection, the later-not_after rule, failures). PEM parsing and
-- key decryption are injected fakes here (the real ones are ngx.ssl and
-- switchyard.tls.aesgcm, exercised by e2e/test_tls.py).

local cjson = require "cjson"
local tls = require "switchyard.tls.certificates"

local PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
local NONE = {}   -- a field left out of the document

local function cert_doc(id, names, fields)
    local d = {version = 3, id = id, cert = PEM .. id, key = "KEY " .. id, names = names,
               not_after = "2030-01-01T00:00:00.000Z", default = false}
    for k, v in pairs(fields or {}) do
        if v == NONE then
            v = nil
        end
        d[k] = v
    end
    return cjson.encode(d)
end

local function new_table(overrides)
    local logs = {}
    local parsed = 0
    local opts = {
        parse_cert = function(pem)
            parsed = parsed + 1
            if pem:find("BROKEN", 1, true) then
                return nil, "bad PEM"
            end
            return {pem = pem}
        end,
        parse_key = function(pem) return {key = pem} end,
        decrypt = function(sealed, id)
            if sealed == "good:" .. id then
                return "KEY " .. id
            end
            return nil, "tag mismatch"
        end,
        log = function(level, msg) logs[#logs + 1] = level .. " " .. msg end,
    }
    for k, v in pairs(overrides or {}) do
        opts[k] = v
    end
    local t = tls.new_table(opts)
    return t, logs, function() return parsed end
end

local function id_of(entry)
    return entry and entry.id or nil
end

describe("certificate documents", function()
    it("decode what the controller stores", function()
        local c = assert(tls.decode_certificate(cert_doc("a", {"a.example.com"}), "a"))
        assert.equal("a", c.id)
        assert.same({"a.example.com"}, c.names)
        assert.equal("KEY a", c.key)
        assert.is_false(c.default)
        assert.equal(3, c.version)
    end)

    it("refuse broken ones with a reason", function()
        local cases = {
            {"not json", "invalid JSON"},
            {cert_doc("a", {"a.example.com"}), "does not match", "b"},
            {cert_doc("a", {"a.example.com"}, {cert = "junk"}), "PEM"},
            {cert_doc("a", {"a.example.com"}, {key = NONE}), "key"},
            {cert_doc("a", {"A.example.com"}), "invalid name"},
            {cert_doc("a", {}), "nothing to serve"},
            {cert_doc("a", {"a.example.com"}, {default = "yes"}), "default"},
        }
        for _, case in ipairs(cases) do
            local c, err = tls.decode_certificate(case[1], case[3] or "a")
            assert.is_nil(c)
            assert.truthy(err:find(case[2], 1, true), err)
        end
        -- a default certificate may have no names
        assert.truthy(tls.decode_certificate(cert_doc("d", {}, {default = true}), "d"))
    end)
end)

describe("the certificate table", function()
    it("serves the exact name, then the wildcard one label up, then the default", function()
        local t = new_table()
        assert.is_true(t:apply("shop", cert_doc("shop", {"shop.example.com"})))
        assert.is_true(t:apply("wild", cert_doc("wild", {"*.example.com"})))
        assert.equal("shop", id_of(t:select("shop.example.com")))
        assert.equal("shop", id_of(t:select("SHOP.Example.COM.")))
        assert.equal("wild", id_of(t:select("other.example.com")))
        assert.is_nil(t:select("a.b.example.com"))   -- one label only
        assert.is_nil(t:select("example.com"))       -- never the bare parent
        assert.is_nil(t:select(nil))                 -- no SNI and no default
        assert.is_true(t:apply("fallback", cert_doc("fallback", {}, {default = true})))
        assert.equal("fallback", id_of(t:select("a.b.example.com")))
        assert.equal("fallback", id_of(t:select(nil)))
        assert.equal("fallback", id_of(t:select("")))
        assert.equal("shop", id_of(t:select("shop.example.com")))
        assert.same({certificates = 3, default = "fallback"}, t:summary())
    end)

    it("hands out the parsed objects, parsing each version once", function()
        local t, _, parsed = new_table()
        t:apply("a", cert_doc("a", {"a.example.com"}))
        local e = t:select("a.example.com")
        assert.equal(PEM .. "a", e.cert.pem)
        assert.equal("KEY a", e.key.key)
        for _ = 1, 100 do
            t:select("a.example.com")
        end
        assert.equal(1, parsed())
    end)

    it("lets the later not_after win a shared name, then the smaller id", function()
        local t = new_table()
        t:apply("old", cert_doc("old", {"dup.example.com"}, {not_after = "2027-01-01T00:00:00.000Z"}))
        t:apply("new", cert_doc("new", {"dup.example.com"}, {not_after = "2028-01-01T00:00:00.000Z"}))
        assert.equal("new", id_of(t:select("dup.example.com")))
        t:apply("b-twin", cert_doc("b-twin", {"dup.example.com"}, {not_after = "2028-01-01T00:00:00.000Z"}))
        -- the same not_after as "new": the smaller id wins
        assert.equal("b-twin", id_of(t:select("dup.example.com")))
        -- the winner goes away: the next one takes over
        t:apply("b-twin", nil)
        t:apply("new", nil)
        assert.equal("old", id_of(t:select("dup.example.com")))
        -- replacing a certificate with one for other names releases the old names
        t:apply("old", cert_doc("old", {"elsewhere.example.com"}))
        assert.is_nil(t:select("dup.example.com"))
        assert.equal("old", id_of(t:select("elsewhere.example.com")))
        assert.equal(1, t:summary().certificates)
    end)

    it("decrypts key_enc and says why it cannot", function()
        local t, logs = new_table()
        assert.is_true(t:apply("enc", cert_doc("enc", {"enc.example.com"},
                                               {key = NONE, key_enc = "good:enc"})))
        assert.equal("KEY enc", t:select("enc.example.com").key.key)
        assert.is_false(t:apply("bad", cert_doc("bad", {"bad.example.com"},
                                                {key = NONE, key_enc = "other"})))
        assert.is_nil(t:select("bad.example.com"))
        assert.truthy(t:summary().not_served.bad:find("cannot decrypt", 1, true))
        assert.truthy(logs[#logs]:find("certificate:bad", 1, true))
        -- without a key configured on the edge
        local blind = new_table({decrypt = false})
        assert.is_false(blind:apply("enc", cert_doc("enc", {"enc.example.com"},
                                                    {key = NONE, key_enc = "good:enc"})))
        assert.truthy(blind:summary().not_served.enc:find("SWITCHYARD_CERT_KEY", 1, true))
    end)

    it("drops a certificate whose new version is broken, keeps the others", function()
        local t = new_table()
        t:apply("a", cert_doc("a", {"a.example.com"}))
        t:apply("b", cert_doc("b", {"b.example.com"}))
        assert.is_false(t:apply("a", cert_doc("a", {"a.example.com"}, {cert = PEM .. "BROKEN"})))
        assert.is_nil(t:select("a.example.com"))
        assert.equal("b", id_of(t:select("b.example.com")))
        assert.is_false(t:apply("a", "garbage"))
        -- fixed again
        assert.is_true(t:apply("a", cert_doc("a", {"a.example.com"})))
        assert.equal("a", id_of(t:select("a.example.com")))
        assert.is_nil(t:summary().not_served)
    end)
end)
