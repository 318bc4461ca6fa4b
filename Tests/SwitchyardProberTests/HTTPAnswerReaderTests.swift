import Testing

@testable import SwitchyardProber

private func read(_ text: String) -> HTTPAnswer { HTTPAnswerReader.read(Array(text.utf8)) }

@Suite("HTTP answers: status line and framing")
struct HTTPAnswerReaderTests {
    @Test func completeContentLengthAnswerIsReusable() {
        #expect(read("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n\r\nok\n") == .status(200, reusable: true))
        #expect(read("HTTP/1.1 503 Service Unavailable\r\ncontent-length:0\r\n\r\n") == .status(503, reusable: true))
        #expect(read("HTTP/1.1 204 No Content\r\n\r\n") == .status(204, reusable: true))
        #expect(read("HTTP/1.1 200 OK\nContent-Length: 2\n\nok") == .status(200, reusable: true))  // bare LF
        #expect(read("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") == .status(200, reusable: true))  // no reason phrase
    }

    @Test func anythingButAnExactlyFramedAnswerClosesTheConnection() {
        // body still arriving, or more than the body
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok") == .status(200, reusable: false))
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA") == .status(200, reusable: false))
        // no length, chunked, close, HTTP/1.0, bad or repeated lengths
        #expect(read("HTTP/1.1 200 OK\r\n\r\nok") == .status(200, reusable: false))
        #expect(read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n") == .status(200, reusable: false))
        #expect(read("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n") == .status(200, reusable: false))
        #expect(read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == .status(200, reusable: false))
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n") == .status(200, reusable: false))
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n") == .status(200, reusable: false))
        // headers not complete yet: the verdict is there, the framing is not
        #expect(read("HTTP/1.1 200 OK\r\nContent-Len") == .status(200, reusable: false))
    }

    @Test func partialStatusLinesWaitForMore() {
        #expect(read("") == .incomplete)
        #expect(read("HTT") == .incomplete)
        #expect(read("HTTP/1.1 20") == .incomplete)
        #expect(read("HTTP/1.1 200 O") == .incomplete)
    }

    @Test func garbageIsInvalidAsSoonAsItShows() {
        #expect(read("hello\r\n") == .invalid)
        #expect(read("X") == .invalid)
        #expect(read("HTTP/2 200\r\n\r\n") == .invalid)
        #expect(read("HTTP/1.1 2x0 OK\r\n\r\n") == .invalid)
        #expect(read("HTTP/1.1 200OK\r\n\r\n") == .invalid)
        #expect(read("HTTP/1.1 999 What\r\n\r\n") == .invalid)
        #expect(read("HTTP/1.\n") == .invalid)
        // a status line that never ends
        #expect(read("HTTP/1.1 200 " + String(repeating: "x", count: 2000)) == .invalid)
    }

    @Test func interimAnswersAreSkipped() {
        #expect(read("HTTP/1.1 100 Continue\r\n\r\n") == .incomplete)
        #expect(read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n") == .status(503, reusable: true))
        #expect(read("HTTP/1.1 100 Continue\r\nX: y") == .incomplete)
        #expect(read("HTTP/1.1 101 Switching Protocols\r\n\r\n") == .status(101, reusable: false))
    }

    @Test func requestBytesCarryHostAndConnectionAndRefuseInjection() throws {
        let keep = try #require(httpProbeRequest(path: "/healthz?x=1", host: "10.0.0.1:8080", keepAlive: true))
        #expect(
            String(decoding: keep, as: UTF8.self) == "GET /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"
                + "User-Agent: switchyard-prober/1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")
        let close = try #require(httpProbeRequest(path: "/", host: "svc.example", keepAlive: false))
        #expect(String(decoding: close, as: UTF8.self).contains("\r\nConnection: close\r\n\r\n"))
        #expect(httpProbeRequest(path: "/a b", host: "h", keepAlive: true) == nil)
        #expect(httpProbeRequest(path: "/", host: "h\r\nX-Evil: 1", keepAlive: true) == nil)
        #expect(httpProbeRequest(path: "nope", host: "h", keepAlive: true) == nil)
    }
}
