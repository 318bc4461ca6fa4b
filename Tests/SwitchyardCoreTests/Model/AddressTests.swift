import Testing

@testable import SwitchyardCore

@Suite("Endpoint addresses and host names")
struct AddressTests {
    @Test(arguments: [
        ("10.0.0.1:10001", "10.0.0.1:10001"),
        ("0.0.0.0:1", "0.0.0.0:1"),
        ("255.255.255.255:65535", "255.255.255.255:65535"),
        ("[::1]:8080", "[::1]:8080"),
        ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
        ("[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"),
        ("[2001:db8::]:1", "[2001:db8::]:1"),
        ("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80"),
    ])
    func acceptsAndCanonicalises(_ input: String, _ canonical: String) throws {
        let address = try EndpointAddress.parse(input).get()
        #expect(address.description == canonical)
    }

    @Test(arguments: [
        "", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:080", "10.0.0.1:http",
        "256.0.0.1:80", "10.0.0:80", "10.0.0.1.1:80", "010.0.0.1:80", "10.00.0.1:80", "1e.0.0.1:80",
        "localhost:80", "example.com:80", "::1:80", "[::1]", "[::1]80", "[::1:80", "[fe80::1%eth0]:80",
        "[1:2:3:4:5:6:7:8:9]:80", "[12345::]:80", "[::g]:80", " 10.0.0.1:80", "10.0.0.1:80 ", "-1.0.0.1:80",
    ])
    func rejects(_ input: String) {
        #expect(throws: AddressError.self) { try EndpointAddress.parse(input).get() }
    }

    @Test func equalAddressesWrittenDifferentlyAreEqual() throws {
        let a = try EndpointAddress.parse("[2001:db8:0::1]:80").get()
        let b = try EndpointAddress.parse("[2001:DB8::1]:80").get()
        #expect(a == b)
    }

    @Test(arguments: [
        ("bbs.test.com", "bbs.test.com"), ("BBS.Test.COM", "bbs.test.com"), ("*.example.com", "*.example.com"),
        ("a", "a"), ("x-1.y2", "x-1.y2"), ("10.0.0.1", "10.0.0.1"),
        (String(repeating: "a", count: 63) + ".com", String(repeating: "a", count: 63) + ".com"),
    ])
    func acceptsHostNames(_ input: String, _ canonical: String) throws {
        #expect(try HostNames.canonical(input).get() == canonical)
    }

    @Test(arguments: [
        "", "**", "*.", "a.*.b", "*.*.com", "a*.com", "-a.com", "a-.com", "a..b", ".a", "a.", "a_b.com", "a b.com",
        "exämple.com", String(repeating: "a", count: 64) + ".com",
        Array(repeating: String(repeating: "a", count: 60), count: 5).joined(separator: "."),
    ])
    func rejectsHostNames(_ input: String) {
        #expect(throws: HostNameError.self) { try HostNames.canonical(input).get() }
    }

    @Test func totalHostLengthLimitIs253() throws {
        let label = String(repeating: "a", count: 63)
        let ok = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")  // 253
        #expect(ok.count == 253)
        _ = try HostNames.canonical(ok).get()
        #expect(throws: HostNameError.self) { try HostNames.canonical(ok + "b").get() }
    }

    @Test(arguments: [
        ("backend", true), ("a.b_c-d9", true), (String(repeating: "x", count: 63), true),
        ("", false), ("Backend", false), ("a/b", false), ("a b", false), (String(repeating: "x", count: 64), false),
        ("ünï", false), ("a:b", false),
    ])
    func names(_ name: String, _ valid: Bool) {
        #expect(Names.isValid(name) == valid)
    }
}
