// Endpoint addresses: `a.b.c.d:port` or `[ipv6]:port`, parsed strictly and printed in one
// canonical form, so that the same machine always has the same address string (endpoint
// de-duplication, the endpoints/{address} API and the edge's balancer all rely on it).
//
// IPv6 text is parsed and printed by the C library's inet_pton/inet_ntop: pure functions
// (no I/O) with exactly the semantics every other tool on the machine uses.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A validated IP endpoint address with port.
public struct EndpointAddress: Sendable, Hashable, CustomStringConvertible, Comparable {
    public enum Host: Sendable, Hashable {
        case ipv4(UInt8, UInt8, UInt8, UInt8)
        /// 16 bytes in network order.
        case ipv6([UInt8])
    }

    public var host: Host
    public var port: UInt16

    /// Parses `a.b.c.d:port` or `[ipv6]:port`; returns nil and a reason when invalid.
    public static func parse(_ text: String) -> Result<EndpointAddress, AddressError> {
        if text.isEmpty { return .failure(.init("must not be empty")) }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.init("IPv6 address is missing ']'")) }
            let inner = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(.init("port is missing (expected [ipv6]:port)")) }
            guard let bytes = parseIPv6(inner) else { return .failure(.init("'\(inner)' is not a valid IPv6 address")) }
            switch parsePort(rest.dropFirst()) {
            case .success(let port): return .success(.init(host: .ipv6(bytes), port: port))
            case .failure(let error): return .failure(error)
            }
        }
        guard let colon = text.lastIndex(of: ":") else {
            return .failure(.init("port is missing (expected ip:port or [ipv6]:port)"))
        }
        let hostPart = text[..<colon]
        if hostPart.contains(":") { return .failure(.init("IPv6 addresses must be written in brackets: [ipv6]:port")) }
        guard let octets = parseIPv4(hostPart) else {
            return .failure(.init("'\(hostPart)' is not an IPv4 address (four decimal octets 0-255, no leading zeros)"))
        }
        switch parsePort(text[text.index(after: colon)...]) {
        case .success(let port): return .success(.init(host: .ipv4(octets.0, octets.1, octets.2, octets.3), port: port))
        case .failure(let error): return .failure(error)
        }
    }

    /// The canonical text form.
    public var description: String {
        switch host {
        case .ipv4(let a, let b, let c, let d): return "\(a).\(b).\(c).\(d):\(port)"
        case .ipv6(let bytes): return "[\(Self.formatIPv6(bytes))]:\(port)"
        }
    }

    public static func < (lhs: EndpointAddress, rhs: EndpointAddress) -> Bool {
        lhs.description.utf8.lexicographicallyPrecedes(rhs.description.utf8)
    }

    static func parsePort(_ text: Substring) -> Result<UInt16, AddressError> {
        guard !text.isEmpty, text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .failure(.init("port must be a number 1-65535"))
        }
        if text.count > 1, text.hasPrefix("0") { return .failure(.init("port must not have leading zeros")) }
        guard let value = Int(text), (1...65535).contains(value) else {
            return .failure(.init("port must be a number 1-65535"))
        }
        return .success(UInt16(value))
    }

    static func parseIPv4(_ text: Substring) -> (UInt8, UInt8, UInt8, UInt8)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            // "010" could mean 8 (octal, inet_aton) or 10: refuse the ambiguity
            if part.utf8.count > 1, part.hasPrefix("0") { return nil }
            guard let v = UInt8(part) else { return nil }
            octets.append(v)
        }
        return (octets[0], octets[1], octets[2], octets[3])
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        // inet_pton rejects zone ids (%eth0), which nginx cannot use in an upstream anyway
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var addr = in6_addr()
        let ok = text.withCString { inet_pton(AF_INET6, $0, &addr) }
        guard ok == 1 else { return nil }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    static func formatIPv6(_ bytes: [UInt8]) -> String {
        var addr = in6_addr()
        withUnsafeMutableBytes(of: &addr) { raw in
            for i in 0..<16 { raw[i] = bytes[i] }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let result = buffer.withUnsafeMutableBufferPointer { buf in
            inet_ntop(AF_INET6, &addr, buf.baseAddress, socklen_t(buf.count))
        }
        precondition(result != nil, "inet_ntop failed on a parsed address")
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension EndpointAddress {
    /// Why a proxy cannot (or should not) send requests to this address; nil when it can.
    /// Unspecified (`0.0.0.0/8`, `::`), broadcast, multicast (`224.0.0.0/4`, `ff00::/8`) and
    /// reserved (`240.0.0.0/4`) addresses, also written IPv4-mapped (`::ffff:0.0.0.0`), are
    /// never endpoints. Link-local ones (`169.254.0.0/16`, `fe80::/10`, and the cloud metadata
    /// address `fd00:ec2::254`) are where metadata services answer: refused unless
    /// `allowLinkLocal` (`switchyard controller --allow-link-local-endpoints`). Loopback is
    /// allowed (sidecars, tests).
    public func usabilityProblem(allowLinkLocal: Bool) -> String? {
        let linkLocal =
            "is link-local, where cloud metadata services answer: start the controller with "
            + "--allow-link-local-endpoints to allow it"
        var v4: [UInt8]?
        switch host {
        case .ipv4(let a, let b, let c, let d):
            v4 = [a, b, c, d]
        case .ipv6(let bytes):
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                v4 = Array(bytes[12..<16])
            } else if bytes.allSatisfy({ $0 == 0 }) {
                return "cannot be an upstream endpoint: :: is the unspecified address"
            } else if bytes[0] == 0xFF {
                return "cannot be an upstream endpoint: ff00::/8 is multicast"
            } else if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 {
                return allowLinkLocal ? nil : "fe80::/10 \(linkLocal)"
            } else if bytes == [0xFD, 0, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] {
                return allowLinkLocal
                    ? nil
                    : "fd00:ec2::254 is a cloud metadata address: start the controller with "
                        + "--allow-link-local-endpoints to allow it"
            }
        }
        guard let v4 else { return nil }
        if v4[0] == 0 { return "cannot be an upstream endpoint: 0.0.0.0/8 is the unspecified network" }
        if v4 == [255, 255, 255, 255] { return "cannot be an upstream endpoint: 255.255.255.255 is the broadcast address" }
        if v4[0] & 0xF0 == 0xE0 { return "cannot be an upstream endpoint: 224.0.0.0/4 is multicast" }
        if v4[0] & 0xF0 == 0xF0 { return "cannot be an upstream endpoint: 240.0.0.0/4 is reserved" }
        if v4[0] == 169 && v4[1] == 254 { return allowLinkLocal ? nil : "169.254.0.0/16 \(linkLocal)" }
        return nil
    }
}

public struct AddressError: Error, Sendable, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}
