// Compiling a route's regex path (and a rewrite's regex) the way the edges will. Edges
// compile with `ngx.re` (flags "jo"), and Debian's lua-nginx-module links PCRE 8.x
// (libpcre.so.3), not the PCRE2 nginx core links: so the default checker compiles with
// PCRE1 and the options "jo" amounts to (none: no UTF-8, "j" only studies with the JIT,
// "o" only caches). Edges built against PCRE2 (OpenResty, Debian 13) need the PCRE2
// checker (`switchyard controller --regex-engine pcre2`). Compiling a pattern is pure
// computation; it lives behind a protocol so tests (and other platforms) can swap it.

internal import CPCRE1
internal import CPCRE2

/// The regex library the edges' `ngx.re` runs, which the controller compiles with.
public enum RegexEngine: String, Sendable, CaseIterable {
    /// PCRE 8.x: Debian 12's nginx lua module (the default).
    case pcre1
    /// PCRE2 10.x: OpenResty, Debian 13.
    case pcre2

    public var checker: any RegexChecker {
        switch self {
        case .pcre1: return PCRE1RegexChecker()
        case .pcre2: return PCRE2RegexChecker()
        }
    }
}

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

/// Compiles with PCRE 8.x `pcre_compile` and no options: exactly what `ngx.re.find(s, re,
/// "jo")` does on an edge whose lua module links libpcre.so.3. PCRE1 takes a NUL-terminated
/// pattern, so a pattern containing NUL is refused here (the edge would compile a shorter
/// one).
public struct PCRE1RegexChecker: RegexChecker {
    public init() {}

    /// The compiled pattern handed to `body`, or the compiler's message.
    private func compiled<T>(_ pattern: String, _ body: (OpaquePointer) -> T) -> Result<T, RegexProblem> {
        if pattern.utf8.contains(0) { return .failure(RegexProblem("must not contain NUL")) }
        var message: UnsafePointer<CChar>?
        var offset: Int32 = 0
        guard let code = pattern.withCString({ pcre_compile($0, 0, &message, &offset, nil) }) else {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            return .failure(RegexProblem("does not compile as PCRE (the edges' regex engine): \(text) at offset \(offset)"))
        }
        defer { sy_pcre_free(UnsafeMutableRawPointer(code)) }
        return .success(body(code))
    }

    public func problem(in pattern: String) -> String? {
        switch compiled(pattern, { _ in () }) {
        case .success: return nil
        case .failure(let problem): return problem.message
        }
    }

    public func captureCount(in pattern: String) -> Int? {
        let result = compiled(pattern) { code -> Int? in
            var count: Int32 = 0
            guard pcre_fullinfo(code, nil, PCRE_INFO_CAPTURECOUNT, &count) == 0 else { return nil }
            return Int(count)
        }
        guard case .success(let count) = result else { return nil }
        return count
    }
}

struct RegexProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
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
