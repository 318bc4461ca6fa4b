// Syntax rules for names, host names and paths (pure functions; no I/O).

/// Route ids and upstream names: `^[a-z0-9._-]{1,63}$`. They appear in Redis keys, the
/// change stream and log lines, so the alphabet is deliberately small.
public enum Names {
    public static let maxLength = 63

    public static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard (1...maxLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    public static let rule = "1-63 characters from a-z 0-9 . _ -"
}

/// Host names per RFC 1123, lowercased, with an optional leading `*.` wildcard label; or `*`,
/// the catch-all host (requests for hosts no other route claims; a Kubernetes rule without host).
public enum HostNames {
    public static let maxLength = 253
    public static let maxLabelLength = 63

    /// The canonical (lowercase) host, or a message saying what is wrong.
    public static func canonical(_ host: String) -> Result<String, HostNameError> {
        if host.isEmpty { return .failure(.init("must not be empty")) }
        if host == "*" { return .success(host) }  // the catch-all: every request no other host claims
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
}
