-- busted spec: switchyard.grpc.fields decodes "protocol" as the controller validates it.

local fields = require "switchyard.grpc.fields"
local tls_fields = require "switchyard.tls.fields"

local function decode(obj)
    local up_tls = tls_fields.upstream_fields(obj)
    assert(up_tls ~= nil)
    return fields.decode(obj, up_tls)
end

describe("grpc.fields", function()
    it("leaves HTTP upstreams alone", function()
        assert.same({false, false}, {fields.decode({}, false)})
        assert.same({false, false}, {fields.decode({protocol = "http"}, false)})
        local https = {name = "a.internal", verify = true}
        local proto, t = fields.decode({protocol = "http", scheme = "https"}, https)
        assert.is_false(proto)
        assert.equal(https, t)
    end)

    it("reads grpc as cleartext and grpcs as TLS with its name and verification", function()
        assert.same({"grpc", false}, {decode({protocol = "grpc"})})
        -- TLS settings of a cleartext gRPC upstream are ignored, as for plain HTTP
        assert.same({"grpc", false}, {decode({protocol = "grpc", tls_verify = true})})
        assert.same({"grpcs", {name = nil, verify = false}}, {decode({protocol = "grpcs"})})
        assert.same({"grpcs", {name = "api.internal", verify = true}},
                    {decode({protocol = "grpcs", tls_server_name = "api.internal", tls_verify = true})})
    end)

    it("refuses an unknown protocol, https with gRPC and bad TLS members", function()
        local proto, err = fields.decode({protocol = "GRPC"}, false)
        assert.is_nil(proto)
        assert.matches("unknown protocol", err)
        proto, err = fields.decode({protocol = 2}, false)
        assert.is_nil(proto)
        assert.matches("unknown protocol", err)
        proto, err = decode({protocol = "grpc", scheme = "https"})
        assert.is_nil(proto)
        assert.matches("grpcs", err)
        proto, err = decode({protocol = "grpcs", tls_verify = "yes"})
        assert.is_nil(proto)
        assert.matches("tls_verify", err)
        proto, err = decode({protocol = "grpcs", tls_server_name = "*.internal"})
        assert.is_nil(proto)
        assert.matches("tls_server_name", err)
    end)
end)
