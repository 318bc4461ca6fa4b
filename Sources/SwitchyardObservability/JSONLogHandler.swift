// `--log-format json`: one JSON object per line on stderr, for log shippers.
//
//   {"time":"2026-12-03T17:30:12.345Z","level":"info","label":"switchyard.controller",
//    "message":"route stored","route.id":"r1","config.version":"42"}
//
// Metadata keys stay flat and dotted ("route.id"); nested metadata becomes dotted keys
// ("a": ["b": "c"] -> "a.b"). A key naming a secret (password, token, secret,
// authorization, cookie) is written as "<redacted>" whatever its value: secrets never
// reach the log, even when a caller slips.

import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the Swift roles write their log lines.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's text lines (the default).
    case text
    /// One JSON object per line (`JSONLogHandler`).
    case json
}

public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: @Sendable (String) -> Void

    /// Writes to stderr.
    public init(label: String) {
        self.init(label: label, output: JSONLogHandler.writeStandardError)
    }

    /// Writes every line (with its newline) to `output` (tests).
    public init(label: String, output: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        output(Self.line(time: Self.now(), level: level, label: label, message: "\(message)", metadata: merged))
    }

    /// One log line (with its newline). `time` is milliseconds since the epoch.
    public static func line(time: Int64, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var flat: [(String, String)] = []
        for (key, value) in metadata { flatten(key, value, into: &flat) }
        flat.sort { $0.0 < $1.0 }
        var out = "{\"time\":\"\(timestamp(time))\",\"level\":\(quoted(level.rawValue)),\"label\":\(quoted(label))"
        out += ",\"message\":\(quoted(message))"
        for (key, value) in flat where !["time", "level", "label", "message"].contains(key) {
            out += ",\(quoted(key)):\(quoted(isSecret(key) ? "<redacted>" : value))"
        }
        out += "}\n"
        return out
    }

    /// Whether a metadata key names a secret (its last dotted part, or the whole key).
    public static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["password", "token", "secret", "authorization", "cookie", "private_key"].contains { lowered.contains($0) }
    }

    private static func flatten(_ key: String, _ value: Logger.Metadata.Value, into flat: inout [(String, String)]) {
        switch value {
        case .string(let s): flat.append((key, s))
        case .stringConvertible(let c): flat.append((key, c.description))
        case .array(let items): flat.append((key, "[" + items.map(\.description).joined(separator: ", ") + "]"))
        case .dictionary(let d):
            if isSecret(key) {
                flat.append((key, "<redacted>"))
            } else {
                for (k, v) in d { flatten("\(key).\(k)", v, into: &flat) }
            }
        }
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    private static let lock = Mutex(())

    /// One write per line, under a lock, so lines of different threads never interleave.
    @Sendable static func writeStandardError(_ line: String) {
        lock.withLock { _ in
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { break }
                offset += n
            }
        }
    }
}
