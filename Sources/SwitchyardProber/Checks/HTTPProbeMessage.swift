// The two pure halves of the prober's own HTTP/1.1 check (PlainProbes.swift does the I/O):
// the request bytes, built once per target, and the reading of an answer. Only the status
// line decides the verdict; the headers are scanned only to know whether the connection
// can carry the next probe (the whole answer already read, framed by Content-Length, and
// neither side asked to close). Anything else is answered by closing the connection.

/// The GET a health check sends, as bytes. Nil when the path or host could not be sent
/// verbatim (control characters or spaces: the controller validates both, this is a
/// second fence so a bad stored value can never inject a header).
func httpProbeRequest(path: String, host: String, keepAlive: Bool) -> [UInt8]? {
    func safe(_ text: String) -> Bool { !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F } }
    guard safe(path), safe(host), path.utf8.first == UInt8(ascii: "/") else { return nil }
    let text =
        "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: switchyard-prober/1\r\nAccept: */*\r\n"
        + "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
    return Array(text.utf8)
}

/// What the bytes read so far say.
enum HTTPAnswer: Equatable {
    /// More bytes are needed to see a status line.
    case incomplete
    /// Not an HTTP/1.x answer (or a status line longer than allowed).
    case invalid
    /// The final status code; `reusable` when the answer is complete in the bytes given
    /// (exactly, nothing after it), HTTP/1.1, Content-Length framed (or a status without
    /// a body) and without `Connection: close`.
    case status(Int, reusable: Bool)
}

enum HTTPAnswerReader {
    /// A status line longer than this is not a health answer.
    static let maxStatusLine = 1024

    /// Reads `bytes` (everything received so far on this probe). Interim 1xx answers
    /// (not 101) are skipped once their headers are complete.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> HTTPAnswer {
        var start = 0
        while true {
            let (answer, next) = readOne(bytes, from: start)
            guard let next else { return answer }
            start = next  // an interim answer ended here; the final one follows
        }
    }

    static func read(_ bytes: [UInt8]) -> HTTPAnswer {
        bytes.withUnsafeBufferPointer { read($0) }
    }

    /// One answer from `from`; the second value is where the next answer starts when this
    /// one was an interim 1xx with complete headers.
    private static func readOne(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> (HTTPAnswer, Int?) {
        let count = b.count
        // "HTTP/1.x " then three digits; check as far as we have, so garbage fails at once
        let prefix: StaticString = "HTTP/1."
        for i in 0..<min(prefix.utf8CodeUnitCount, count - start) where b[start + i] != prefix.utf8Start[i] {
            return (.invalid, nil)
        }
        guard count - start >= 13 else {
            return (lineEnd(b, from: start, to: count) == nil ? .incomplete : .invalid, nil)
        }
        let minor = b[start + 7]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1"), b[start + 8] == UInt8(ascii: " ") else {
            return (.invalid, nil)
        }
        var code = 0
        for i in 9..<12 {
            let d = b[start + i]
            guard d >= 0x30, d <= 0x39 else { return (.invalid, nil) }
            code = code * 10 + Int(d - 0x30)
        }
        let after = b[start + 12]
        guard after == UInt8(ascii: " ") || after == UInt8(ascii: "\r") || after == UInt8(ascii: "\n"),
            (100...599).contains(code)
        else { return (.invalid, nil) }
        guard let lineStop = lineEnd(b, from: start, to: min(count, start + maxStatusLine)) else {
            return (count - start >= maxStatusLine ? .invalid : .incomplete, nil)
        }
        guard let (headersEnd, framing) = scanHeaders(b, from: lineStop) else {
            // status known, headers still arriving: the verdict stands, the connection does not
            return (code >= 200 || code == 101 ? .status(code, reusable: false) : .incomplete, nil)
        }
        if code < 200, code != 101 { return (.incomplete, headersEnd) }
        let bodyless = code == 204 || code == 304
        var reusable = minor == UInt8(ascii: "1") && !framing.close && !framing.chunked && code != 101
        if bodyless {
            reusable = reusable && headersEnd == count
        } else if let length = framing.contentLength {
            reusable = reusable && headersEnd + length == count
        } else {
            reusable = false
        }
        return (.status(code, reusable: reusable), nil)
    }

    /// Index just after the first LF in [from, to), or nil.
    private static func lineEnd(_ b: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        var i = from
        while i < to {
            if b[i] == UInt8(ascii: "\n") { return i + 1 }
            i += 1
        }
        return nil
    }

    struct Framing {
        var contentLength: Int?
        var chunked = false
        var close = false
    }

    /// Header lines from `from` (just after the status line) to the empty line; returns
    /// where the body starts and what the headers say about framing, or nil when the empty
    /// line has not arrived yet. Malformed framing headers make the answer unreusable.
    private static func scanHeaders(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> (Int, Framing)? {
        var framing = Framing()
        var lengths = 0
        var i = from
        while true {
            guard let next = lineEnd(b, from: i, to: b.count) else { return nil }
            var stop = next - 1
            if stop > i, b[stop - 1] == UInt8(ascii: "\r") { stop -= 1 }
            if stop == i { break }  // the empty line
            if let colon = (i..<stop).first(where: { b[$0] == UInt8(ascii: ":") }) {
                let value = trimmed(b, colon + 1, stop)
                if nameIs(b, i, colon, "content-length") {
                    lengths += 1
                    framing.contentLength = decimal(b, value)
                    if framing.contentLength == nil || lengths > 1 { framing.close = true }
                } else if nameIs(b, i, colon, "transfer-encoding") {
                    framing.chunked = true  // any transfer coding: framed by chunks we do not read
                } else if nameIs(b, i, colon, "connection"), contains(b, value, "close") {
                    framing.close = true
                }
            }
            i = next
        }
        return (lineEnd(b, from: i, to: b.count)!, framing)
    }

    private static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    private static func nameIs(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ name: StaticString) -> Bool {
        guard to - from == name.utf8CodeUnitCount else { return false }
        let p = name.utf8Start
        for k in 0..<(to - from) where lower(b[from + k]) != p[k] { return false }
        return true
    }

    private static func trimmed(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Range<Int> {
        var s = from
        var e = to
        while s < e, b[s] == 0x20 || b[s] == 0x09 { s += 1 }
        while e > s, b[e - 1] == 0x20 || b[e - 1] == 0x09 { e -= 1 }
        return s..<e
    }

    private static func decimal(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        guard !r.isEmpty, r.count <= 12 else { return nil }
        var v = 0
        for i in r {
            guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            v = v * 10 + Int(b[i] - 0x30)
        }
        return v
    }

    /// Whether the (lowercase) token occurs in the value, case-insensitively.
    private static func contains(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ token: StaticString) -> Bool {
        let n = token.utf8CodeUnitCount
        guard r.count >= n else { return false }
        let p = token.utf8Start
        outer: for s in r.lowerBound...(r.upperBound - n) {
            for k in 0..<n where lower(b[s + k]) != p[k] { continue outer }
            return true
        }
        return false
    }
}
