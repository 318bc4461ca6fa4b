import Testing

@testable import SwitchyardCore

/// The OpenSSL wrapper and the certificate rules, with certificates generated here by the
/// same wrapper (no files, no openssl CLI).
@Suite("Certificates: OpenSSL wrapper, validation, documents, keys at rest")
struct CertificateTests {
    static let now: Int64 = 1_800_000_000  // 2027-01-15
    static let day: Int64 = 86400

    static func make(
        _ names: [String], cn: String = "leaf", from: Int64 = now - day, until: Int64 = now + 90 * day,
        isCA: Bool = false, key: CertificateRequest.KeyKind = .ecP256,
        issuer: (certificate: String, key: String)? = nil
    ) -> (certificate: String, key: String) {
        OpenSSL.generate(
            CertificateRequest(
                commonName: cn, dnsNames: names, notBefore: from, notAfter: until, isCA: isCA,
                key: key, issuer: issuer))!
    }

    static let ca = make([], cn: "Test CA", from: now - 10 * day, until: now + 3650 * day, isCA: true)

    func body(_ cert: String, _ key: String, extra: String = "") -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [("cert", .string(cert)), ("key", .string(key))]
        if !extra.isEmpty, case .object(let more) = try! JSONValue.parse(extra) { members += more }
        return .object(members)
    }

    func validate(_ json: JSONValue, id: String = "site", now: Int64 = CertificateTests.now) -> Result<
        Certificate, CertificateValidator.Failure
    > {
        CertificateValidator().certificate(json, id: id, now: now)
    }

    func codes(_ result: Result<Certificate, CertificateValidator.Failure>) -> [String] {
        if case .failure(let f) = result { return f.problems.map { "\($0.field):\($0.code)" } }
        return []
    }

    @Test func readsALeafIssuedByACA() throws {
        let leaf = Self.make(["Shop.Example.com", "*.example.com", "shop.example.com", "bad*.example.com"], issuer: Self.ca)
        let c = try validate(body(leaf.certificate + Self.ca.certificate, leaf.key)).get()
        #expect(c.names == ["shop.example.com", "*.example.com"])  // lowercased, deduplicated, partial wildcard dropped
        #expect(c.subject == "CN=leaf")
        #expect(c.issuer == "CN=Test CA")
        #expect(c.notBefore == Self.now - Self.day)
        #expect(c.notAfter == Self.now + 90 * Self.day)
        #expect(c.keyType == "EC P-256")
        #expect(c.fingerprintSHA256.split(separator: ":").count == 32)
        #expect(!c.serial.isEmpty)
        #expect(c.chainPEM.ranges(of: "-----BEGIN CERTIFICATE-----").count == 2)
        #expect(c.keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(!c.isDefault)
    }

    @Test func readsRSAKeysAndDropsTextAroundPEMBlocks() throws {
        let leaf = Self.make(["rsa.example.com"], key: .rsa(bits: 2048))
        let noisy = "Bag Attributes\n    friendlyName: x\n" + leaf.certificate + "\ntrailing words\n"
        let c = try validate(body(noisy, leaf.key)).get()
        #expect(c.keyType == "RSA 2048")
        #expect(!c.chainPEM.contains("Bag Attributes"))
        #expect(c.chainPEM == leaf.certificate)
    }

    @Test func rejectsWhatCannotBeParsed() {
        let leaf = Self.make(["a.example.com"])
        #expect(codes(validate(body("hello", leaf.key))) == ["cert:unparsable"])
        #expect(codes(validate(body(leaf.key, leaf.key))) == ["cert:unparsable"])
        let truncated = String(leaf.certificate.prefix(120)) + "\n-----END CERTIFICATE-----\n"
        #expect(codes(validate(body(truncated, leaf.key))) == ["cert:unparsable"])
        #expect(codes(validate(body(leaf.certificate, "not a key"))) == ["key:unparsable"])
        #expect(codes(validate(body(leaf.certificate, leaf.certificate))) == ["key:unparsable"])
        let damaged = leaf.key.replacing("\n", with: "\nAAAA")
        #expect(codes(validate(body(leaf.certificate, damaged))) == ["key:unparsable"])
    }

    @Test func rejectsAPassphraseProtectedKey() {
        let leaf = Self.make(["a.example.com"])
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
        #expect(codes(validate(body(leaf.certificate, encrypted))) == ["key:encrypted_key"])
    }

    @Test func rejectsAKeyOfAnotherCertificate() {
        let a = Self.make(["a.example.com"])
        let b = Self.make(["b.example.com"])
        #expect(codes(validate(body(a.certificate, b.key))) == ["key:key_mismatch"])
    }

    @Test func rejectsAChainInTheWrongOrder() {
        let leaf = Self.make(["a.example.com"], issuer: Self.ca)
        // the issuer first: the key belongs to the second certificate
        #expect(codes(validate(body(Self.ca.certificate + leaf.certificate, leaf.key))) == ["cert:chain_order"])
        // an unrelated certificate after the leaf
        let stranger = Self.make(["x.example.com"])
        #expect(codes(validate(body(leaf.certificate + stranger.certificate, leaf.key))) == ["cert:chain_order"])
    }

    @Test func rejectsCertificatesOutsideTheirValidity() {
        let expired = Self.make(["a.example.com"], from: Self.now - 100 * Self.day, until: Self.now - Self.day)
        #expect(codes(validate(body(expired.certificate, expired.key))) == ["cert:expired"])
        let future = Self.make(["a.example.com"], from: Self.now + Self.day, until: Self.now + 100 * Self.day)
        #expect(codes(validate(body(future.certificate, future.key))) == ["cert:not_yet_valid"])
        // the same certificate is fine a little later
        #expect(codes(validate(body(future.certificate, future.key), now: Self.now + 2 * Self.day)) == [])
    }

    @Test func namesComeFromTheSubjectAltNameOnly() throws {
        let cnOnly = Self.make([], cn: "legacy.example.com")
        let result = validate(body(cnOnly.certificate, cnOnly.key))
        #expect(codes(result) == ["cert:no_names"])
        if case .failure(let f) = result { #expect(f.problems[0].message.contains("legacy.example.com")) }
        // a default certificate may have no names
        let c = try validate(body(cnOnly.certificate, cnOnly.key, extra: #"{"default":true}"#)).get()
        #expect(c.isDefault && c.names.isEmpty)
    }

    @Test func checksTheBodyItself() {
        let leaf = Self.make(["a.example.com"])
        #expect(codes(validate(["cert": .string(leaf.certificate)])) == ["key:required"])
        #expect(codes(validate(body(leaf.certificate, leaf.key, extra: #"{"defualt":true}"#))) == ["defualt:unknown_field"])
        #expect(codes(validate(body(leaf.certificate, leaf.key, extra: #"{"default":"yes"}"#))) == ["default:invalid"])
        #expect(codes(validate(body(leaf.certificate, leaf.key, extra: #"{"id":"other"}"#))) == ["id:mismatch"])
        #expect(codes(validate(body(leaf.certificate, leaf.key), id: "Bad Id")) == ["id:invalid"])
        #expect(codes(validate(["cert": 1, "key": .string(leaf.key)])) == ["cert:invalid"])
    }

    @Test func documentsRoundTripWithoutLosingAnything() throws {
        let leaf = Self.make(["a.example.com", "*.a.example.com"])
        let c = try validate(body(leaf.certificate, leaf.key, extra: #"{"default":true}"#)).get()
        let plain = c.canonicalDocument(sealedKey: nil)
        #expect(plain.contains("\"key\":\"-----BEGIN PRIVATE KEY-----"))
        let stored = try StoredCertificate(bytes: Array(("{\"version\":9," + plain.dropFirst()).utf8))
        #expect(stored.version == 9)
        #expect(stored.sealedKey == nil)
        #expect(stored.certificate == c)
        #expect(StoredDocument.holds(Array(("{\"version\":9," + plain.dropFirst()).utf8), canonicalDocument: plain))

        let sealedDoc = c.canonicalDocument(sealedKey: "aes-256-gcm:x:y")
        #expect(!sealedDoc.contains("PRIVATE KEY"))
        let sealed = try StoredCertificate(bytes: Array(("{\"version\":10," + sealedDoc.dropFirst()).utf8))
        #expect(sealed.sealedKey == "aes-256-gcm:x:y")
        #expect(sealed.certificate.keyPEM == "")

    }

    @Test func timestampsParseBack() {
        for t: Int64 in [0, 951_782_400, 1_800_000_000, 4_102_444_799, 1_709_164_800] {
            #expect(StoredCertificate.seconds(Certificate.timestamp(t)) == t)
        }
        #expect(StoredCertificate.seconds("2027-13-01T00:00:00.000Z") == nil)
        #expect(StoredCertificate.seconds("yesterday") == nil)
    }

    @Test func keysAreEncryptedBoundToTheirId() throws {
        let hex = String(repeating: "0f", count: 32)
        let cipher = try CertificateKeyCipher.parse(hex).get()
        let sealed = cipher.seal("-----BEGIN PRIVATE KEY-----\nabc\n", id: "site")
        #expect(sealed.hasPrefix("aes-256-gcm:"))
        #expect(sealed.split(separator: ":").count == 3)
        #expect(!sealed.contains("PRIVATE"))
        #expect(cipher.open(sealed, id: "site") == "-----BEGIN PRIVATE KEY-----\nabc\n")
        #expect(cipher.open(sealed, id: "other") == nil)  // AAD: copied to another id, it does not decrypt
        #expect(cipher.seal("same", id: "site") != cipher.seal("same", id: "site"))  // fresh nonce each time
        let other = try CertificateKeyCipher.parse(Base64.encode([UInt8](repeating: 7, count: 32))).get()
        #expect(other.open(sealed, id: "site") == nil)
        var tampered = Array(sealed.utf8)
        tampered[tampered.count - 3] = tampered[tampered.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(cipher.open(String(decoding: tampered, as: UTF8.self), id: "site") == nil)
    }

    @Test func theSharedKeyMustBe32Bytes() {
        #expect((try? CertificateKeyCipher.parse(String(repeating: "ab", count: 32)).get()) != nil)
        #expect((try? CertificateKeyCipher.parse(" " + Base64.encode([UInt8](repeating: 1, count: 32)) + "\n").get()) != nil)
        #expect((try? CertificateKeyCipher.parse(String(repeating: "ab", count: 16)).get()) == nil)
        #expect((try? CertificateKeyCipher.parse(Base64.encode([UInt8](repeating: 1, count: 16))).get()) == nil)
        #expect((try? CertificateKeyCipher.parse("correct horse battery staple").get()) == nil)
    }

    @Test func base64MatchesTheRFCVectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Zm9") == nil)
    }

    @Test func theLaterNotAfterWinsASharedName() throws {
        func cert(_ id: String, _ names: [String], until: Int64, isDefault: Bool = false) -> Certificate {
            Certificate(id: id, chainPEM: "", keyPEM: "", names: names, isDefault: isDefault, notBefore: 0, notAfter: until)
        }
        let old = cert("old", ["a.example.com", "b.example.com"], until: 100)
        let renewed = cert("renewed", ["a.example.com"], until: 200)
        let twin = cert("twin", ["b.example.com"], until: 100)  // same not_after as old: the smaller id wins
        let d1 = cert("d1", [], until: 50, isDefault: true)
        let d2 = cert("d2", [], until: 60, isDefault: true)
        let shadowed = CertificateSelection.shadowed([old, renewed, twin, d1, d2])
        #expect(shadowed["old"]?.map { "\($0.name)>\($0.by)" } == ["a.example.com>renewed"])
        #expect(shadowed["twin"]?.map { "\($0.name)>\($0.by)" } == ["b.example.com>old"])
        #expect(shadowed["d1"]?.map { "\($0.name)>\($0.by)" } == ["*default*>d2"])
        #expect(shadowed["renewed"] == nil && shadowed["d2"] == nil)
    }

    @Test func generatedPlaceholderIsSelfSigned() throws {
        let p = Self.make([], cn: "switchyard placeholder", until: Self.now + 3650 * Self.day)
        let m = try OpenSSL.readCertificate(chain: p.certificate, key: p.key).get()
        #expect(m.subject == m.issuer)
        #expect(m.dnsNames.isEmpty)
    }
}
