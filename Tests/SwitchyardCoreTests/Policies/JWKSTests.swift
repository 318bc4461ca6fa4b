import Foundation
import Testing

@testable import SwitchyardCore

// jwt keys as a JWKS document (Policies/JWKS.swift; docs/traffic-policies.md "JWKS documents").

private let rsaPublic =
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAh54ep/mplPOfSW14ze+w\nAG19q1R8qfaCCodGEFwZHV2Xiz7H+lnPfW0P5JaPpp5H0FSdw+7h3YJGOfqQLmFd\ntUZnLvjI8r16coEBRPtiYBc8CvRuhpRejdPzUpznBvRI6LAuxsBHtE5n5AX0edZw\nEU5++h3mnqvsih1FjlKV5lZMQH1pBX9BFWsPpv/gerSp1OV1s2XGUi1iRR0Jq2kh\nWjB6VZpD0g2BCs5yEO4ln/7YzmyHCbTGyY3KKwMRH0lR+QdH3UzAwGiwYAcEDSe3\n9fNqK0Vf591xgrm4Ycn1LbPWkpWwvKseRywW9YIXrB3FvfTtM6EV4EXNK9r6tUKQ\n3QIDAQAB\n-----END PUBLIC KEY-----\n"
private let ecPublic =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc5rhaoTeKf9BOAXz9R+KdQ9MiklL\nCORvG81yG3V2SaOpV355gXLrkxCmXgKphw4BoRApHSnjw4wECW9iIaWbGw==\n-----END PUBLIC KEY-----\n"

private func der(_ pem: String) -> [UInt8] {
    let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    return Base64.decode(body)!
}

private func b64url(_ bytes: some Collection<UInt8>) -> String {
    var s = Base64.encode(Array(bytes))
    while s.hasSuffix("=") { s.removeLast() }
    return String(s.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
}

/// The JWK members of the test keys, taken from their DER.
private let ecXY: (x: String, y: String) = {
    let point = der(ecPublic).suffix(64)
    return (b64url(point.prefix(32)), b64url(point.suffix(32)))
}()
private let rsaNE: (n: String, e: String) = {
    let d = der(rsaPublic)
    // 30 82 01 22, 30 0d (OID, NULL), 03 82 01 0f 00, 30 82 01 0a, 02 82 01 01 00 <n: 256> 02 03 <e: 3>
    return (b64url(d[33..<289]), b64url(d.suffix(3)))
}()

@Suite("JWKS documents")
struct JWKSTests {
    let validator = Validator()

    private func route(_ jwks: String) throws -> Result<Route, ValidationFailure> {
        validator.route(try JSONValue.parse(#"{"host":"a.test","path":"/","upstream":"b","jwt":{"jwks":"# + jwks + "}}"), id: "r")
    }

    private func field(_ jwks: String) throws -> String? {
        if case .failure(let failure) = try route(jwks) { return failure.problems.first?.field }
        return nil
    }

    private var ec: String { #"{"kty":"EC","crv":"P-256","kid":"e","x":""# + ecXY.x + #"","y":""# + ecXY.y + #""}"# }
    private var rsa: String { #"{"kty":"RSA","kid":"r","n":""# + rsaNE.n + #"","e":""# + rsaNE.e + #"","x5t":"z","use":"sig"}"# }

    @Test func jwksBecomeTheKeysTheirPEMsWouldBe() throws {
        let r = try route(#"{"keys":["# + rsa + "," + ec + "]}").get()
        let keys = try #require(r.policies.jwt?.keys)
        #expect(keys.map(\.alg) == ["RS256", "ES256"])
        #expect(keys[0].pem == rsaPublic)
        #expect(keys[1].pem == ecPublic)
        // answers: the JWKs with alg, without the derived pem and the dropped members
        let shown = r.document.canonical
        #expect(!shown.contains("PUBLIC KEY") && !shown.contains("x5t") && !shown.contains("\"use\""))
        #expect(shown.contains(#""jwks":{"keys":[{"alg":"RS256","e":"AQAB","kid":"r","kty":"RSA","n":""#))
        // stored: with the pem; read back the same, and redacted for history like GET
        let stored = try StoredDocument.route(Array(("{\"version\":1," + r.canonicalDocument.dropFirst()).utf8)).value
        #expect(r.canonicalDocument.contains("PUBLIC KEY"))
        #expect(stored.canonicalDocument == r.canonicalDocument)
        #expect(JWTSecrets.redacted(try JSONValue.parse(r.canonicalDocument)).canonical == shown)
    }

    @Test func badJWKsNameTheMember() throws {
        #expect(try field(#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA==","y":"AA"}]}"#) == "jwt.jwks.keys[0].x")
        let offCurve = b64url([UInt8](repeating: 1, count: 32))
        #expect(
            try field(#"{"keys":[{"kty":"EC","crv":"P-256","x":""# + offCurve + #"","y":""# + ecXY.y + #""}]}"#) == "jwt.jwks.keys[0].x")
        #expect(try field(#"{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#) == "jwt.jwks.keys[0].crv")
        #expect(try field(#"{"keys":[{"kty":"RSA","n":""# + rsaNE.n + #"","e":"AQAB","d":"AQAB"}]}"#) == "jwt.jwks.keys[0].d")
        #expect(try field(#"{"keys":[{"kty":"RSA","n":""# + rsaNE.n + #"","e":"Ag"}]}"#) == "jwt.jwks.keys[0].e")
        let short = b64url([UInt8](repeating: 0xC1, count: 128))
        #expect(try field(#"{"keys":[{"kty":"RSA","n":""# + short + #"","e":"AQAB"}]}"#) == "jwt.jwks.keys[0].n")
        #expect(try field(#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#) == "jwt.jwks.keys[0].k")
        #expect(try field(#"{"keys":[{"kty":"oct"}]}"#) == "jwt.jwks.keys[0].kty")
        #expect(
            try field(#"{"keys":["# + ec.replacingOccurrences(of: "\"kty\"", with: "\"alg\":\"RS256\",\"kty\"") + "]}")
                == "jwt.jwks.keys[0].alg")
        #expect(try field(#"{"keys":["# + ec + "," + ec + "]}") == "jwt.jwks.keys[1].kid")
        #expect(try field(#"{"keys":[]}"#) == "jwt.jwks.keys")
        #expect(try field(#"[]"#) == "jwt.jwks")
        #expect(try field(#"{"keys":["# + ec + #"],"extra":1}"#) == "jwt.jwks.extra")
        let both = validator.route(
            try JSONValue.parse(
                #"{"host":"a.test","path":"/","upstream":"b","jwt":{"jwks":{"keys":["# + ec + #"]},"keys":[{"alg":"ES256","pem":"x"}]}}"#),
            id: "r")
        if case .failure(let failure) = both { #expect(failure.problems.first?.field == "jwt.jwks") } else { Issue.record("both accepted") }
    }
}
