import NIOCore
import Testing

@testable import SwitchyardRedis

@Suite("RESP2 codec")
struct RESPTests {
    func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// Every reply in `bytes`, fed one byte at a time (each prefix incomplete until its end).
    func parseFragmented(_ bytes: [UInt8]) throws -> [RedisReply] {
        var buffer = ByteBuffer()
        var out: [RedisReply] = []
        for byte in bytes {
            buffer.writeInteger(byte)
            while let reply = try RESP.parse(&buffer) { out.append(reply) }
        }
        #expect(buffer.readableBytes == 0)
        return out
    }

    @Test func simpleTypes() throws {
        var b = buffer("+OK\r\n-ERR wrong\r\n:-42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n$0\r\n\r\n")
        #expect(try RESP.parse(&b) == .status("OK"))
        #expect(try RESP.parse(&b) == .error("ERR wrong"))
        #expect(try RESP.parse(&b) == .integer(-42))
        #expect(try RESP.parse(&b) == .string(Array("abc".utf8)))
        #expect(try RESP.parse(&b) == .null)
        #expect(try RESP.parse(&b) == .null)
        #expect(try RESP.parse(&b) == .string([]))
        #expect(try RESP.parse(&b) == nil)
    }

    @Test func bulkStringsAreBinarySafe() throws {
        var b = ByteBuffer(bytes: Array("$5\r\n".utf8) + [0, 0x0D, 0x0A, 0xFF, 0x24] + Array("\r\n".utf8))
        #expect(try RESP.parse(&b) == .string([0, 0x0D, 0x0A, 0xFF, 0x24]))
    }

    @Test func nestedArraysWithErrorsAndNils() throws {
        let text = "*3\r\n*2\r\n$7\r\nmessage\r\n*1\r\n:1\r\n-ERR inner\r\n$-1\r\n"
        let expected: RedisReply = .array([
            .array([.string(Array("message".utf8)), .array([.integer(1)])]), .error("ERR inner"), .null,
        ])
        var whole = buffer(text)
        #expect(try RESP.parse(&whole) == expected)
        #expect(try parseFragmented(Array(text.utf8)) == [expected])
    }

    @Test func fragmentedInputWaitsAndLeavesTheBufferAlone() throws {
        var b = buffer("*2\r\n$3\r\nfoo\r\n$3\r\nba")
        let before = b.readerIndex
        #expect(try RESP.parse(&b) == nil)
        #expect(b.readerIndex == before, "an incomplete reply consumes nothing")
        b.writeString("r\r\n+PONG\r\n")
        #expect(try RESP.parse(&b) == .array([.string(Array("foo".utf8)), .string(Array("bar".utf8))]))
        #expect(try RESP.parse(&b) == .status("PONG"))
        // a CR at the end of what arrived so far: wait for the LF
        var cr = buffer(":12\r")
        #expect(try RESP.parse(&cr) == nil)
    }

    @Test func garbageIsAProtocolError() {
        for text in ["?what\r\n", ":12a\r\n", "$-5\r\n", "$3\r\nabcd\r\n", "+OK\rX", "*99999999999\r\n", "\r\n"] {
            var b = buffer(text)
            #expect(throws: RESP.ProtocolError.self, "\(text.debugDescription)") { try RESP.parse(&b) }
        }
        var deep = buffer(String(repeating: "*1\r\n", count: RESP.maxDepth + 2) + ":1\r\n")
        #expect(throws: RESP.ProtocolError.self) { try RESP.parse(&deep) }
    }

    @Test func commandsAreArraysOfBulkStrings() throws {
        var b = ByteBuffer()
        RESP.encode([Array("SET".utf8), [0, 0xFF], []], into: &b)
        #expect(b.readBytes(length: b.readableBytes) == Array("*3\r\n$3\r\nSET\r\n$2\r\n".utf8) + [0, 0xFF] + Array("\r\n$0\r\n\r\n".utf8))
    }
}
