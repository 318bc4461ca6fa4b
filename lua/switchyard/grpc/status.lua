-- The edge's own answers to gRPC requests (issue 22 item 5): a gRPC client reads a failure
-- from the grpc-status and grpc-message trailers, not from the HTTP status or an HTML
-- body. An answer here is "trailers-only" (the gRPC over HTTP/2 spec): HTTP 200,
-- content-type application/grpc, grpc-status and grpc-message in the only HEADERS frame
-- (nginx ends the stream with it: no body), plus X-Switchyard-Route as on every answer of
-- the edge.
--
--   14 UNAVAILABLE        no endpoints, all endpoints down, connecting or the upstream
--                         failed (nginx's 502): the client may retry
--   4  DEADLINE_EXCEEDED  the upstream timed out (nginx's 504)
-- for_http(status) maps the edge's other answers (403 deny, 429 rate_limit, 404 ...) as
-- the gRPC spec maps HTTP statuses.
--
-- grpc-message is percent-encoded (the spec: bytes outside 0x20-0x7E, and "%").
-- message() and for_http() are pure; respond() needs ngx (content phase). Never yields.

local str_byte = string.byte
local str_format = string.format
local str_gsub = string.gsub

local _M = {}

_M.OK = 0
_M.UNKNOWN = 2
_M.DEADLINE_EXCEEDED = 4
_M.PERMISSION_DENIED = 7
_M.RESOURCE_EXHAUSTED = 8
_M.UNIMPLEMENTED = 12
_M.INTERNAL = 13
_M.UNAVAILABLE = 14
_M.UNAUTHENTICATED = 16

-- HTTP status -> gRPC status (grpc/doc/http-grpc-status-mapping.md), for the edge's
-- answers that are not gRPC's own
local BY_HTTP = {
    [400] = _M.INTERNAL,
    [401] = _M.UNAUTHENTICATED,
    [403] = _M.PERMISSION_DENIED,
    [404] = _M.UNIMPLEMENTED,
    [429] = _M.UNAVAILABLE,
    [502] = _M.UNAVAILABLE,
    [503] = _M.UNAVAILABLE,
    [504] = _M.UNAVAILABLE,
}

function _M.for_http(status)
    return BY_HTTP[status] or _M.UNKNOWN
end

local function escape(c)
    return str_format("%%%02X", str_byte(c))
end

-- grpc-message as sent: percent-encoded.
function _M.message(text)
    return (str_gsub(text, "[^\32-\36\38-\126]", escape))
end

local ROUTE_HEADER = "X-Switchyard-Route"

-- The answer itself, in the content phase of @sy_grpc_status (deploy/edge.nginx.conf),
-- whose add_trailer lines send $sy_grpc_status and $sy_grpc_message (set before):
-- HTTP 200, content-type application/grpc, no message, and the status in the trailers.
-- (nginx 1.22 cannot end an HTTP/2 stream with the response's HEADERS frame unless the
-- status is 204, which it sends without a content-type; gRPC clients that check
-- content-type, grpc-go among them, would read that as UNKNOWN.)
function _M.respond(route_id)
    local ngx = ngx
    ngx.status = 200
    local header = ngx.header
    header["Content-Type"] = "application/grpc"
    header[ROUTE_HEADER] = route_id
    return ngx.exit(200)
end

return _M
