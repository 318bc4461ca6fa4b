// Compiling a route's regex path the way the edge will: with PCRE2 (8-bit code units),
// the library nginx links here, so "compiles" means exactly what nginx would say.
// Compiling a pattern is pure computation; it lives behind a protocol so tests (and other
// platforms) can swap it.

internal import CPCRE2

/// Decides whether a regex route path is acceptable.
public protocol RegexChecker: Sendable {
    /// nil when `pattern` compiles, else the compiler's message.
    func problem(in pattern: String) -> String?
    /// The number of capture groups of a pattern that compiles; nil when unknown.
    func captureCount(in pattern: String) -> Int?
}

extension RegexChecker {
    public func captureCount(in pattern: String) -> Int? { nil }
}

/// Compiles with `pcre2_compile_8` and the default options (what `ngx.re` uses without
/// flags), then frees the code.
public struct PCRE2RegexChecker: RegexChecker {
    public init() {}

    public func problem(in pattern: String) -> String? {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let bytes = Array(pattern.utf8)
        let code = bytes.withUnsafeBufferPointer { buf in
            pcre2_compile_8(buf.baseAddress, buf.count, 0, &errorCode, &errorOffset, nil)
        }
        if let code {
            pcre2_code_free_8(code)
            return nil
        }
        var message = [UInt8](repeating: 0, count: 256)
        let n = message.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(errorCode, $0.baseAddress, $0.count) }
        let text = n > 0 ? String(decoding: message.prefix(Int(n)), as: UTF8.self) : "error \(errorCode)"
        return "does not compile as a PCRE2 regex: \(text) at offset \(errorOffset)"
    }

    public func captureCount(in pattern: String) -> Int? {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let bytes = Array(pattern.utf8)
        let code = bytes.withUnsafeBufferPointer { buf in
            pcre2_compile_8(buf.baseAddress, buf.count, 0, &errorCode, &errorOffset, nil)
        }
        guard let code else { return nil }
        defer { pcre2_code_free_8(code) }
        var count: UInt32 = 0
        guard pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &count) == 0 else { return nil }
        return Int(count)
    }
}
