-- busted spec for switchyard.tls.fields: the TLS members of route and upstream documents,
-- as the edge meets them (through the route and upstream decoders).

local cjson = require "cjson"
local doc = require "switchyard.route.decode"
local upstream_mod = require "switchyard.balancer.upstream"

describe("route and upstream members", function()
    local function route(fields)
        local d = {id = "r", host = "a.example.com", path = "/", match = "prefix", upstream = "u"}
        for k, v in pairs(fields) do
            d[k] = v
        end
        return doc.decode_route(cjson.encode(d), "r")
    end

    it("precompute the HSTS header and the redirect flag", function()
        local r = assert(route({https_redirect = true, hsts = {max_age_s = 600, include_subdomains = true}}))
        assert.is_true(r.https_redirect)
        assert.equal("max-age=600; includeSubDomains", r.hsts)
        r = assert(route({hsts = {max_age_s = 31536000, include_subdomains = true, preload = true}}))
        assert.is_nil(r.https_redirect)
        assert.equal("max-age=31536000; includeSubDomains; preload", r.hsts)
        r = assert(route({}))
        assert.is_nil(r.https_redirect)
        assert.is_nil(r.hsts)
        local bad, err = route({https_redirect = "yes"})
        assert.is_nil(bad)
        assert.truthy(err:find("https_redirect", 1, true))
        bad, err = route({hsts = {max_age_s = -1}})
        assert.is_nil(bad)
        assert.truthy(err:find("max_age_s", 1, true))
    end)

    it("give https upstreams their SNI name and verification", function()
        local function upstream(fields)
            local d = {name = "u", endpoints = {{address = "127.0.0.1:9443"}}}
            for k, v in pairs(fields) do
                d[k] = v
            end
            return upstream_mod.decode(cjson.encode(d), "u")
        end
        assert.is_nil(assert(upstream({})).tls)
        assert.is_nil(assert(upstream({scheme = "http"})).tls)
        assert.same({verify = false}, assert(upstream({scheme = "https"})).tls)
        assert.same({name = "backend.internal", verify = true},
                    assert(upstream({scheme = "https", tls_server_name = "backend.internal",
                                     tls_verify = true})).tls)
        assert.is_nil(upstream({scheme = "ftp"}))
        assert.is_nil(upstream({scheme = "https", tls_server_name = "*.x.internal"}))
        assert.is_nil(upstream({scheme = "https", tls_verify = "yes"}))
    end)
end)
