// Client address ranges of a route's `allow` and `deny` lists: `10.0.0.0/8`,
// `2001:db8::/32`, or a bare address (`192.0.2.7`, `::1`) for exactly that address.
//
// Parsed with the same strict rules as endpoint addresses (EndpointAddress.swift: no
// leading zeros in IPv4 octets, IPv6 through inet_pton) and printed canonically (IPv6 by
// inet_ntop), so one range has one spelling in stored documents. A prefix with host bits
// set (`10.0.0.1/8`) is refused: it is almost always a typo, and the hint names the range
// the operator probably meant. An IPv4-mapped range (`::ffff:127.0.0.0/104`, at least /96)
// is stored as the IPv4 range it names (`127.0.0.0/8`): edges match an IPv4-mapped client
// as its IPv4 address, so the IPv6 spelling would never match anything.

/// An IPv4 or IPv6 address range.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// 4 (IPv4) or 16 (IPv6) bytes in network order, host bits zero.
    public var bytes: [UInt8]
    /// 0-32 or 0-128.
    public var prefixLength: Int
    /// Written without `/len` (a single address).
    public var isBareAddress: Bool

    public var isIPv6: Bool { bytes.count == 16 }

    /// The canonical text: the address as printed by EndpointAddress, plus `/len` unless bare.
    public var description: String {
        let address = isIPv6 ? EndpointAddress.formatIPv6(bytes) : bytes.map(String.init).joined(separator: ".")
        return isBareAddress ? address : "\(address)/\(prefixLength)"
    }

    /// Whether `address` (4 or 16 bytes) lies in the range.
    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        return Self.masked(address, prefixLength) == bytes
    }

    /// Parses `address/len` or a bare address; the error message says what is wrong.
    public static func parse(_ text: String) -> Result<CIDR, AddressError> {
        if text.isEmpty { return .failure(.init("must not be empty")) }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = parts[0]
        var bytes: [UInt8]
        if addressText.contains(":") {
            guard let v6 = EndpointAddress.parseIPv6(String(addressText)) else {
                return .failure(.init("'\(addressText)' is not a valid IPv6 address"))
            }
            bytes = v6
        } else {
            guard let v4 = EndpointAddress.parseIPv4(addressText) else {
                return .failure(
                    .init(
                        "'\(addressText)' is not an IPv4 address (four decimal octets 0-255, no leading zeros) "
                            + "or an IPv6 address"))
            }
            bytes = [v4.0, v4.1, v4.2, v4.3]
        }
        let maxLength = bytes.count * 8
        guard parts.count == 2 else {
            return .success(CIDR(bytes: bytes, prefixLength: maxLength, isBareAddress: true).unmapped)
        }
        let lengthText = parts[1]
        guard !lengthText.isEmpty, lengthText.utf8.count <= 3, lengthText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            lengthText == "0" || !lengthText.hasPrefix("0"), let length = Int(lengthText), length <= maxLength
        else {
            return .failure(.init("the prefix length must be a number 0-\(maxLength) without leading zeros"))
        }
        let network = masked(bytes, length)
        if network != bytes {
            let meant = CIDR(bytes: network, prefixLength: length, isBareAddress: false)
            return .failure(.init("host bits are set after the first \(length) bits (did you mean \(meant))"))
        }
        bytes = network
        return .success(CIDR(bytes: bytes, prefixLength: length, isBareAddress: false).unmapped)
    }

    /// An IPv4-mapped range of at least /96 (`::ffff:a.b.c.d/n`) as the IPv4 range it names;
    /// anything else unchanged.
    var unmapped: CIDR {
        guard isIPv6, prefixLength >= 96, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else {
            return self
        }
        return CIDR(bytes: Array(bytes[12..<16]), prefixLength: prefixLength - 96, isBareAddress: isBareAddress)
    }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let bitsHere = max(0, min(8, length - i * 8))
            let mask: UInt8 = bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
            out[i] &= mask
        }
        return out
    }
}
