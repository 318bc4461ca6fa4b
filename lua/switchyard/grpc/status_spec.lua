-- busted spec: switchyard.grpc.status maps the edge's answers to gRPC statuses and encodes
-- grpc-message as the gRPC spec says.

local status = require "switchyard.grpc.status"

describe("grpc.status", function()
    it("maps HTTP statuses as the gRPC spec does", function()
        assert.equal(14, status.for_http(503))
        assert.equal(14, status.for_http(502))
        assert.equal(7, status.for_http(403))
        assert.equal(12, status.for_http(404))
        assert.equal(14, status.for_http(429))
        assert.equal(16, status.for_http(401))
        assert.equal(2, status.for_http(418))
    end)

    it("percent-encodes grpc-message outside printable ASCII and the percent sign", function()
        assert.equal("no endpoints", status.message("no endpoints"))
        assert.equal("50%25 down", status.message("50% down"))
        assert.equal("caf%C3%A9%0A", status.message("café\n"))
        assert.equal("~ !", status.message("~ !"))
    end)
end)
