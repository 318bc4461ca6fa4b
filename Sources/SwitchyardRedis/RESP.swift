// RESP2, the Redis wire protocol: commands out (arrays of bulk strings), replies in. Pure:
// no I/O, so the parser is tested byte by byte (fragmented input, nesting, errors, nil).

import NIOCore

public enum RESP {
    /// Replies nest at most this deep (Redis's own replies nest 2-3 levels); deeper input is
    /// a protocol error rather than unbounded recursion.
    public static let maxDepth = 32
    /// Redis's own limit for one bulk string (proto-max-bulk-len).
    public static let maxBulkLength = 512 * 1024 * 1024
    /// More elements than this in one array is a protocol error.
    public static let maxArrayCount = 64 * 1024 * 1024

    /// Appends one command (`*<n>\r\n` and `$<len>\r\n<arg>\r\n` per argument) to `buffer`.
    public static func encode(_ args: [[UInt8]], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(args.count))
        buffer.writeStaticString("\r\n")
        for arg in args {
            buffer.writeStaticString("$")
            buffer.writeString(String(arg.count))
            buffer.writeStaticString("\r\n")
            buffer.writeBytes(arg)
            buffer.writeStaticString("\r\n")
        }
    }

    private static let typeBytes: Set<UInt8> = Set("+-:$*".utf8)

    public struct ProtocolError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses one complete reply from the front of `buffer` and moves its reader index past
    /// it; returns nil (and leaves the buffer as it was) while the reply is incomplete.
    /// Throws on bytes that are not RESP2.
    public static func parse(_ buffer: inout ByteBuffer) throws(ProtocolError) -> RedisReply? {
        var view = buffer
        guard let reply = try parseValue(&view, depth: 0) else { return nil }
        buffer = view
        return reply
    }

    private static func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws(ProtocolError) -> RedisReply? {
        guard depth <= maxDepth else { throw ProtocolError(description: "replies nested deeper than \(maxDepth)") }
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        guard Self.typeBytes.contains(type) else { throw ProtocolError(description: "unknown reply type byte \(type)") }
        guard let line = try readLine(&buffer, after: 1) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return .status(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"):
            return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"):
            guard let value = integer(line) else { throw ProtocolError(description: "bad integer reply") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = integer(line), length >= -1, length <= Int64(maxBulkLength) else {
                throw ProtocolError(description: "bad bulk length")
            }
            if length == -1 { return .null }
            let count = Int(length)
            guard buffer.readableBytes >= count + 2 else { return nil }
            let bytes = buffer.readBytes(length: count) ?? []
            guard buffer.readInteger(as: UInt8.self) == 0x0D, buffer.readInteger(as: UInt8.self) == 0x0A else {
                throw ProtocolError(description: "bulk string not terminated by CRLF")
            }
            return .string(bytes)
        case UInt8(ascii: "*"):
            guard let count = integer(line), count >= -1, count <= Int64(maxArrayCount) else {
                throw ProtocolError(description: "bad array length")
            }
            if count == -1 { return .null }
            var items: [RedisReply] = []
            items.reserveCapacity(Int(min(count, 1024)))
            for _ in 0..<count {
                guard let item = try parseValue(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw ProtocolError(description: "unknown reply type byte \(type)")
        }
    }

    /// The bytes from `after` to the next CRLF (consumed with it); nil if no CRLF yet.
    /// A line is bounded: 64 KiB without CRLF is a protocol error, not a reason to wait.
    private static func readLine(_ buffer: inout ByteBuffer, after skip: Int) throws(ProtocolError) -> ArraySlice<UInt8>? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 0x0D) else {
            if view.count > 65_536 { throw ProtocolError(description: "reply line longer than 64 KiB") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[cr + 1] == 0x0A else { throw ProtocolError(description: "CR without LF") }
        let line = Array(view[(view.startIndex + skip)..<cr])[...]
        buffer.moveReaderIndex(forwardBy: cr + 2 - view.startIndex)
        return line
    }

    private static func integer(_ line: ArraySlice<UInt8>) -> Int64? {
        guard !line.isEmpty, line.count <= 20 else { return nil }
        return Int64(String(decoding: line, as: UTF8.self))
    }
}
