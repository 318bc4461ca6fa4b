-- The "protocol" member of an upstream document (issue 22 item 5; docs/traffic-policies.md,
-- "gRPC"), decoded as the controller validates it (UpstreamProtocol.swift):
--   absent, null, "http"  an HTTP upstream (its "scheme" says HTTP or HTTPS)
--   "grpc"                gRPC over cleartext HTTP/2 (h2c) to the endpoints
--   "grpcs"               gRPC over TLS; tls_server_name and tls_verify as for "scheme":
--                         "https" (switchyard.tls.fields)
-- "scheme": "https" with either gRPC protocol is refused (the protocol says whether TLS is
-- used), like an unknown protocol: the upstream is left out, as for any bad field.
--
-- Pure: works on Lua 5.2 and LuaJIT.

local check = require "switchyard.util.check"
local tls_fields = require "switchyard.tls.fields"

local tostring = tostring

local _M = {}

-- The upstream's protocol and TLS settings: (false, up_tls) for HTTP, ("grpc", false) or
-- ("grpcs", {name, verify}); nil, err for a bad document. up_tls: what
-- switchyard.tls.fields.upstream_fields made of the document (false for plain HTTP).
function _M.decode(obj, up_tls)
    local proto = obj.protocol
    if proto == nil or check.is_null(proto) or proto == "http" then
        return false, up_tls
    end
    if proto ~= "grpc" and proto ~= "grpcs" then
        return nil, "field \"protocol\": unknown protocol \"" .. tostring(proto)
            .. "\" (want http, grpc or grpcs)"
    end
    if up_tls then
        return nil, "field \"scheme\": \"https\" is for HTTP upstreams (gRPC over TLS is "
            .. "\"protocol\": \"grpcs\")"
    end
    if proto == "grpc" then
        return proto, false
    end
    local t, err = tls_fields.upstream_fields({scheme = "https",
                                               tls_server_name = obj.tls_server_name,
                                               tls_verify = obj.tls_verify})
    if not t then
        return nil, err
    end
    return proto, t
end

return _M
