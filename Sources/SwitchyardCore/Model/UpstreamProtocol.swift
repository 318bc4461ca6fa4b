// The protocol an upstream's endpoints speak (issue 22 item 5; docs/traffic-policies.md,
// "gRPC"):
//
//   "protocol": "http"   (the default, never written) HTTP/1.1, or HTTPS with "scheme"
//   "protocol": "grpc"   gRPC over cleartext HTTP/2 (h2c) to the endpoints
//   "protocol": "grpcs"  gRPC over TLS to the endpoints; tls_server_name and tls_verify
//                        apply as they do with "scheme": "https"
//
// Edges proxy gRPC upstreams with grpc_pass (a location of their own) and answer their
// failures as gRPC statuses. What makes no sense with gRPC is refused by the controller
// (422 naming the field): "scheme": "https" (gRPC over TLS is "grpcs"), "balance":
// "sticky" (a cookie: gRPC clients keep none) and an http/https health check (HTTP/1.1
// GETs, which gRPC servers do not answer: "type": "tcp").

/// What an upstream's endpoints speak.
public enum UpstreamProtocol: String, Sendable, CaseIterable {
    case http
    case grpc
    case grpcs

    public var isGRPC: Bool { self != .http }

    /// The member to add to the upstream's document (none for the default, so documents of
    /// HTTP upstreams stay byte-identical to those written before the field existed).
    public var members: [(key: String, value: JSONValue)] {
        self == .http ? [] : [("protocol", .string(rawValue))]
    }

    /// The protocol of `json` ("http" when absent or null); nil with a problem when the
    /// value is not one of the protocols.
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> UpstreamProtocol? {
        switch present(json, "protocol") {
        case nil:
            return .http
        case .string(let s)?:
            if let value = UpstreamProtocol(rawValue: s) { return value }
            reader.add(
                join(prefix, "protocol"), .invalid,
                "'\(s)' must be one of \(allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        case let other?:
            reader.add(join(prefix, "protocol"), .invalid, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    /// The members of a gRPC upstream that make no sense with it, each a problem (request
    /// bodies only: stored documents are read as they are).
    static func checkGRPC(
        _ proto: UpstreamProtocol, balance: Balance?, healthCheck: HealthCheck?, at prefix: String, into reader: inout FieldReader
    ) {
        guard proto.isGRPC, reader.strict else { return }
        if balance == .sticky {
            reader.add(
                join(prefix, "balance"), .invalid,
                "sticky keeps clients on an endpoint with a cookie, which gRPC clients do not keep; "
                    + "with \"protocol\": \"\(proto.rawValue)\" use hash (e.g. \"hash_on\": \"header:x-user\") or another balance")
        }
        if let healthCheck, healthCheck.type != .tcp {
            reader.add(
                join(prefix, "health_check.type"), .invalid,
                "\(healthCheck.type.rawValue) checks send HTTP/1.1 requests, which gRPC servers do not answer; "
                    + "with \"protocol\": \"\(proto.rawValue)\" use \"type\": \"tcp\"")
        }
    }
}
