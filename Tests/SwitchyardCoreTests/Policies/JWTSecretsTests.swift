import Testing

@testable import SwitchyardCore

// HS256 secrets (Policies/JWTSecrets.swift; docs/traffic-policies.md "HS256 secrets"):
// validation, the stored and answered forms, the GET-then-PUT rule, sealing.

private let secret = "0123456789abcdef0123456789abcdef-first"
private let other = "0123456789abcdef0123456789abcdef-other"

private func problems(_ result: Result<Route, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

@Suite("HS256 secrets")
struct JWTSecretsTests {
    let validator = Validator()
    let cipher = try! CertificateKeyCipher.parse(String(repeating: "ab", count: 32)).get()

    private func route(_ key: String, id: String = "r") throws -> Result<Route, ValidationFailure> {
        validator.route(try JSONValue.parse(#"{"host":"a.test","path":"/","upstream":"b","jwt":{"keys":[{"# + key + "}]}}"), id: id)
    }

    private func stored(_ route: Route) throws -> Route {
        try StoredDocument.route(Array(("{\"version\":3," + route.canonicalDocument.dropFirst()).utf8)).value
    }

    @Test func answersShowTheFingerprintOnly() throws {
        let r = try route(#""alg":"HS256","kid":"h","secret":""# + secret + "\"").get()
        let fingerprint = HMACSecret.fingerprint(secret)
        #expect(fingerprint.utf8.count == 16)
        #expect(r.document.canonical.contains(#"{"alg":"HS256","kid":"h","secret_sha256":""# + fingerprint + #""}"#))
        #expect(!r.document.canonical.contains(secret))
        // never in a description either (logs, test failures)
        #expect(!"\(r)".contains(secret))
        #expect(!String(reflecting: r).contains(secret))
    }

    @Test(arguments: [
        (#""alg":"HS256""#, "jwt.keys[0].secret"),
        (#""alg":"HS256","secret":"short""#, "jwt.keys[0].secret"),
        (#""alg":"HS256","secret":7"#, "jwt.keys[0].secret"),
        (#""alg":"HS256","secret":""# + String(repeating: "x", count: 513) + "\"", "jwt.keys[0].secret"),
        (#""alg":"HS256","secret_sha256":"XYZ""#, "jwt.keys[0].secret_sha256"),
        (#""alg":"HS256","secret":""# + secret + #"","secret_sha256":"0123456789abcdef""#, "jwt.keys[0].secret_sha256"),
        (#""alg":"HS256","secret_enc":"aes-256-gcm:AAAA:AAAA","secret_sha256":"0123456789abcdef""#, "jwt.keys[0].secret_enc"),
        (#""alg":"HS256","secret":""# + secret + #"","pem":"x""#, "jwt.keys[0].pem"),
        (#""alg":"RS256","secret":""# + secret + "\"", "jwt.keys[0].secret"),
        (#""alg":"ES256","secret_sha256":"0123456789abcdef""#, "jwt.keys[0].secret_sha256"),
        (#""alg":"HS384","secret":""# + secret + "\"", "jwt.keys[0].alg"),
        (#""alg":"none""#, "jwt.keys[0].alg"),
    ])
    func badKeysNameTheField(_ key: String, _ field: String) throws {
        let found = try problems(route(key))
        #expect(found.first?.field == field, "\(found)")
        #expect(!found.contains { $0.message.contains(secret) })
    }

    @Test func sealedAtRestBoundToTheRoute() throws {
        let given = try route(#""alg":"HS256","secret":""# + secret + "\"", id: "api").get()
        let sealed = try JWTSecrets.prepare(given, previous: nil, cipher: cipher, at: "").get()
        let doc = sealed.canonicalDocument
        #expect(doc.contains(#""secret_enc":"aes-256-gcm:"#))
        #expect(!doc.contains(secret))
        let enc = try #require(sealed.policies.jwt?.keys[0].secret?.sealed)
        #expect(cipher.open(enc, aad: JWTSecrets.aad(route: "api")) == secret)
        #expect(cipher.open(enc, aad: JWTSecrets.aad(route: "other")) == nil)
        // the stored form reads back with its ciphertext, and answers without it
        let back = try stored(sealed)
        #expect(back.canonicalDocument == doc)
        #expect(!back.document.canonical.contains("secret_enc"))
        // the same secret again keeps the ciphertext (no change); another one is sealed anew
        #expect(try JWTSecrets.prepare(given, previous: back, cipher: cipher, at: "").get().canonicalDocument == doc)
        let changed = try route(#""alg":"HS256","secret":""# + other + "\"", id: "api").get()
        let resealed = try JWTSecrets.prepare(changed, previous: back, cipher: cipher, at: "").get()
        #expect(resealed.canonicalDocument != doc)
        #expect(resealed.policies.jwt?.keys[0].secret?.sha256 == HMACSecret.fingerprint(other))
    }

    @Test func withoutAKeyTheSecretIsStoredInPlaintext() throws {
        let given = try route(#""alg":"HS256","secret":""# + secret + "\"").get()
        let prepared = try JWTSecrets.prepare(given, previous: nil, cipher: nil, at: "").get()
        #expect(prepared.canonicalDocument.contains(#""secret":""# + secret + "\""))
        #expect(!prepared.document.canonical.contains(secret))
        #expect(try stored(prepared).policies.jwt?.keys[0].secret?.plain == secret)
    }

    @Test func aGetAnswerPutBackKeepsTheSecret() throws {
        let first = try JWTSecrets.prepare(
            try route(#""alg":"HS256","kid":"h","secret":""# + secret + "\"").get(), previous: nil, cipher: cipher, at: ""
        ).get()
        let previous = try stored(first)
        // what GET answers, as a request body again
        var body = previous.document
        if case .object(let members) = body { body = .object(members.filter { $0.key != "version" }) }
        let again = try validator.route(body, id: "r").get()
        #expect(again.policies.jwt?.keys[0].secret?.isReference == true)
        let kept = try JWTSecrets.prepare(again, previous: previous, cipher: cipher, at: "").get()
        #expect(kept.canonicalDocument == previous.canonicalDocument)
        // a fingerprint the route has not stored: 422 naming the field, in a batch too
        let unknown = try route(#""alg":"HS256","secret_sha256":"0000000000000000""#).get()
        let refused = JWTSecrets.prepare(unknown, previous: previous, cipher: cipher, at: "routes[3]")
        guard case .failure(let failure) = refused else {
            Issue.record("a reference to no stored secret was accepted")
            return
        }
        #expect(failure.problems.map(\.field) == ["routes[3].jwt.keys[0].secret_sha256"])
        #expect(throws: (any Error).self) { try JWTSecrets.prepare(unknown, previous: nil, cipher: nil, at: "").get() }
    }

    @Test func historyAndDryRunsAreRedacted() throws {
        let sealed = try JWTSecrets.prepare(
            try route(#""alg":"HS256","secret":""# + secret + "\"").get(), previous: nil, cipher: nil, at: ""
        ).get()
        let doc = try JSONValue.parse(sealed.canonicalDocument)
        #expect(doc.canonical.contains(secret))
        let shown = JWTSecrets.redacted(doc).canonical
        #expect(!shown.contains(secret))
        #expect(shown.contains("secret_sha256"))
        #expect(JWTSecrets.redacted(.string("x")) == .string("x"))
    }
}
