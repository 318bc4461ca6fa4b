import Foundation
import Hummingbird
import SwitchyardController
import SwitchyardCore
import SwitchyardTestSupport
import Testing

/// /api/v1/certificates against a real Redis, in-process. Certificates are generated with
/// the OpenSSL wrapper (relative to the real clock, which the controller uses).
@Suite("Certificates API")
struct CertificatesAPITests {
    static let key = String(repeating: "5a", count: 32)

    /// The controller under test encrypts keys with `key`.
    static func encryptingKeys(_ configuration: inout Configuration) { configuration.certificateKey = key }

    static func pair(_ names: [String], days: Int64 = 90, fromDays: Int64 = -1) -> (certificate: String, key: String) {
        let now = Int64(Date().timeIntervalSince1970)
        return OpenSSL.generate(
            CertificateRequest(
                commonName: names.first ?? "none", dnsNames: names,
                notBefore: now + fromDays * 86400, notAfter: now + days * 86400))!
    }

    static func body(_ pair: (certificate: String, key: String), extra: String = "") -> String {
        let json: JSONValue = ["cert": .string(pair.certificate), "key": .string(pair.key)]
        var text = json.canonical
        if !extra.isEmpty { text = String(text.dropLast()) + "," + extra + "}" }
        return text
    }

    @Test func storesEncryptedAnswersWithoutTheKeyAndDeletes() async throws {
        try await withController(configure: Self.encryptingKeys) { h async throws in
            let p = Self.pair(["shop.example.com"])
            let created = try await h.request(.put, "/api/v1/certificates/shop", Self.body(p))
            #expect(created.status == 201)
            #expect(created.json["names"] == ["shop.example.com"])
            #expect(created.json["key_encrypted"] == true)
            #expect(created.json["key"] == nil && created.json["key_enc"] == nil)
            #expect(created.version == 1)

            let stored = try await h.redis.send("GET", KeySchema.default.certificate("shop")).text ?? ""
            #expect(stored.contains(#""key_enc":"aes-256-gcm:"#))
            #expect(!stored.contains("PRIVATE KEY"))
            #expect(try await h.redis.send("SISMEMBER", KeySchema.default.certificates, "shop").integer == 1)
            #expect(try await h.redis.send("GET", KeySchema.default.base + "digest").text?.count == 13)

            let same = try await h.request(.put, "/api/v1/certificates/shop", Self.body(p))
            #expect(same.status == 200 && same.version == 1)  // nothing changed: same ciphertext kept
            #expect(try await h.redis.send("GET", KeySchema.default.certificate("shop")).text == stored)

            let got = try await h.request(.get, "/api/v1/certificates/shop")
            #expect(got.status == 200)
            #expect(got.json["cert"] == .string(p.certificate))
            #expect(got.json["key"] == nil && got.json["key_enc"] == nil)

            let list = try await h.request(.get, "/api/v1/certificates")
            #expect(list.json["items"]?.count == 1)
            #expect(list.json["items"]?[0]?["cert"] == nil)
            #expect(list.json["expiring_soon"] == [])

            #expect(try await h.request(.delete, "/api/v1/certificates/shop").status == 200)
            #expect(try await h.request(.get, "/api/v1/certificates/shop").status == 404)
            #expect(try await h.request(.delete, "/api/v1/certificates/shop").status == 404)
        }
    }

    @Test func withoutTheSharedKeyKeysAreStoredInPlaintext() async throws {
        try await withController { h async throws in
            let answer = try await h.request(.put, "/api/v1/certificates/plain", Self.body(Self.pair(["plain.example.com"])))
            #expect(answer.status == 201 && answer.json["key_encrypted"] == false)
            let stored = try await h.redis.send("GET", KeySchema.default.certificate("plain")).text ?? ""
            #expect(stored.contains(#""key":"-----BEGIN PRIVATE KEY-----"#))
        }
    }

    @Test func aMalformedSharedKeyIsAConfigurationError() async throws {
        try await withTemporaryRedis { server async throws in
            var configuration = testConfiguration(server, token: "t")
            configuration.certificateKey = "too short"
            await #expect(throws: ConfigurationError.self) { _ = try await buildApplication(configuration: configuration) }
        }
    }

    @Test func refusalsNameFieldAndCodeAndWriteNothing() async throws {
        try await withController(configure: Self.encryptingKeys) { h async throws in
            let good = Self.pair(["a.example.com"])
            let other = Self.pair(["b.example.com"])
            let cases: [(String, String, String)] = [
                (#"{"cert":"junk","key":"junk"}"#, "cert", "unparsable"),
                (Self.body((good.certificate, other.key)), "key", "key_mismatch"),
                (Self.body(Self.pair(["c.example.com"], days: -1, fromDays: -30)), "cert", "expired"),
                (Self.body(Self.pair(["d.example.com"], days: 60, fromDays: 2)), "cert", "not_yet_valid"),
                (Self.body(Self.pair([])), "cert", "no_names"),
                (Self.body(good, extra: #""defualt":true"#), "defualt", "unknown_field"),
            ]
            for (body, field, code) in cases {
                let answer = try await h.request(.put, "/api/v1/certificates/bad", body)
                #expect(answer.status == 422, "\(code)")
                #expect(answer.json["error"]?["field"] == .string(field), "\(code)")
                #expect(answer.json["error"]?["details"]?[0]?["code"] == .string(code), "\(code)")
            }
            #expect(try await h.storedVersion() == 0)
            #expect(try await h.allKeys().isEmpty)
            // a default certificate may have no names
            let dflt = try await h.request(.put, "/api/v1/certificates/fallback", Self.body(Self.pair([]), extra: #""default":true"#))
            #expect(dflt.status == 201 && dflt.json["default"] == true)
        }
    }

    @Test func sharedNamesShowWhichCertificateWins() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/certificates/old", Self.body(Self.pair(["dup.example.com"], days: 10)))
            let renewed = try await h.request(.put, "/api/v1/certificates/renewed", Self.body(Self.pair(["dup.example.com"], days: 300)))
            #expect(renewed.json["shadowed"] == [])
            let list = try await h.request(.get, "/api/v1/certificates")
            #expect(list.json["items"]?[0]?["id"] == "old")
            #expect(list.json["items"]?[0]?["shadowed"] == [["by": "renewed", "name": "dup.example.com"]])  // parsed back: keys sorted
            #expect(list.json["items"]?[0]?["expiring_soon"] == true)
            #expect(list.json["expiring_soon"] == ["old"])
            let soon = try await h.request(.get, "/api/v1/certificates?expiring_within_days=30")
            #expect(soon.json["items"]?.count == 1)
            #expect(try await h.request(.get, "/api/v1/certificates?expiring_within_days=soon").status == 422)
        }
    }
}
