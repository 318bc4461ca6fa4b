// Syntax rules for names, host names and paths (pure functions; no I/O).

/// Route ids and upstream names: `^[a-z0-9._-]{1,63}$`, except `.` and `..`. They appear
/// in Redis keys, the change stream, log lines and API URLs (where `.` and `..` are path
/// segments clients normalize away: such an object could not be read or deleted), so the
/// alphabet is deliberately small.
public enum Names {
    public static let maxLength = 63

    public static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard (1...maxLength).contains(bytes.count), name != ".", name != ".." else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    public static let rule = "1-63 characters from a-z 0-9 . _ -, not . or .."
}

/// Host names per RFC 1123, lowercased, with an optional leading `*.` wildcard label; for a
/// route's host also `*`, the catch-all host (requests for hosts no other route claims; a
/// Kubernetes rule without host).
public enum HostNames {
    public static let maxLength = 253
    public static let maxLabelLength = 63

    /// The canonical (lowercase) host, or a message saying what is wrong. `catchAll`: `*` is
    /// accepted (a route's host only; every other host field names one host).
    public static func canonical(_ host: String, catchAll: Bool = false) -> Result<String, HostNameError> {
        if host.isEmpty { return .failure(.init("must not be empty")) }
        if catchAll && host == "*" { return .success(host) }
        guard host.utf8.allSatisfy({ $0 < 0x80 }) else {
            return .failure(.init("must be ASCII (use the punycode form of international names)"))
        }
        let lower = host.lowercased()
        if lower.utf8.count > maxLength { return .failure(.init("must be at most \(maxLength) characters")) }
        if lower.hasSuffix(".") { return .failure(.init("must not end with a dot")) }
        var labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" {
            labels.removeFirst()
            if labels.isEmpty { return .failure(.init("a wildcard needs a suffix, e.g. *.example.com")) }
        }
        for label in labels {
            if label.isEmpty { return .failure(.init("must not contain empty labels")) }
            if label == "*" || label.contains("*") {
                return .failure(.init("a wildcard is allowed only as the whole first label (*.example.com)"))
            }
            if label.utf8.count > maxLabelLength { return .failure(.init("labels must be at most \(maxLabelLength) characters")) }
            guard label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else {
                return .failure(.init("labels may contain only letters, digits and hyphens"))
            }
            if label.first == "-" || label.last == "-" {
                return .failure(.init("labels must not start or end with a hyphen"))
            }
        }
        return .success(lower)
    }
}

extension HostNames {
    /// nil when `value` may be sent as a request's `Host`: `host` or `host:port` with a host
    /// name (not a wildcard; case kept) or `[ipv6]`, and a port 1-65535 without leading zeros.
    public static func hostHeaderProblem(_ value: String) -> String? {
        let rule = "must be host or host:port (a host name or [IPv6 address], port 1-65535)"
        var host = Substring(value)
        var port: Substring?
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return rule }
            let inner = String(value[value.index(after: value.startIndex)..<close])
            guard EndpointAddress.parseIPv6(inner) != nil else { return "'\(inner)' is not an IPv6 address: \(rule)" }
            let rest = value[value.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return rule }
                port = rest.dropFirst()
            }
        } else {
            if let colon = value.firstIndex(of: ":") {
                host = value[..<colon]
                port = value[value.index(after: colon)...]
            }
            switch canonical(String(host)) {
            case .success(let name) where name.hasPrefix("*."): return "must not be a wildcard: \(rule)"
            case .success: break
            case .failure(let error): return "'\(host)' \(error.message): \(rule)"
            }
        }
        if let port, case .failure = EndpointAddress.parsePort(port) { return "has an invalid port: \(rule)" }
        return nil
    }
}

public struct HostNameError: Error, Sendable, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}

/// Route paths (prefix and exact): start with `/`, no whitespace or control characters.
public enum Paths {
    /// nil when the path is acceptable, else what is wrong.
    public static func problem(_ path: String, match: MatchKind) -> String? {
        if path.isEmpty { return "must not be empty" }
        if path.utf8.count > Route.maxPathLength { return "must be at most \(Route.maxPathLength) bytes" }
        if match != .regex, !path.hasPrefix("/") { return "must start with /" }
        for scalar in path.unicodeScalars {
            if scalar.value < 0x21 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                return "must not contain spaces or control characters"
            }
            if scalar.properties.isWhitespace { return "must not contain spaces or control characters" }
        }
        return nil
    }

    /// A segment_prefix path as stored: without a trailing `/` (except `/` itself), since
    /// `/foo/` and `/foo` both stand for `/foo`, `/foo/` and everything under `/foo/`.
    public static func segmentPrefix(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// nil when a literal route path (exact, prefix, segment_prefix) is in the form the edge
    /// compares: nginx's `$uri` is percent-decoded, has `//` merged and `.`/`..` segments
    /// resolved, so a path with `%XX`, `//`, `/./` or `/../` (or ending in `/.` or `/..`)
    /// could never match as written.
    public static func normalFormProblem(_ path: String) -> String? {
        let hint = "write the path as the edge sees it, decoded and normalized (e.g. /café, not /caf%C3%A9)"
        let bytes = Array(path.utf8)
        func isHex(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }
        for i in bytes.indices where bytes[i] == UInt8(ascii: "%") && i + 2 < bytes.count && isHex(bytes[i + 1]) && isHex(bytes[i + 2]) {
            return "must not be percent-encoded (\(String(decoding: bytes[i...(i + 2)], as: UTF8.self))): \(hint)"
        }
        if path.contains("//") { return "must not contain // (the edge merges slashes): \(hint)" }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if segments.contains(where: { $0 == "." || $0 == ".." }) {
            return "must not contain . or .. segments (the edge resolves them): \(hint)"
        }
        return nil
    }
}
