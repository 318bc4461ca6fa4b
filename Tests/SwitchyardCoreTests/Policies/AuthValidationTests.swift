import Foundation
import Testing

@testable import SwitchyardCore

// basic_auth, jwt and forward_auth (Policies/Auth.swift; docs/traffic-policies.md "Authentication").

private let rsaPublic =
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAh54ep/mplPOfSW14ze+w\nAG19q1R8qfaCCodGEFwZHV2Xiz7H+lnPfW0P5JaPpp5H0FSdw+7h3YJGOfqQLmFd\ntUZnLvjI8r16coEBRPtiYBc8CvRuhpRejdPzUpznBvRI6LAuxsBHtE5n5AX0edZw\nEU5++h3mnqvsih1FjlKV5lZMQH1pBX9BFWsPpv/gerSp1OV1s2XGUi1iRR0Jq2kh\nWjB6VZpD0g2BCs5yEO4ln/7YzmyHCbTGyY3KKwMRH0lR+QdH3UzAwGiwYAcEDSe3\n9fNqK0Vf591xgrm4Ycn1LbPWkpWwvKseRywW9YIXrB3FvfTtM6EV4EXNK9r6tUKQ\n3QIDAQAB\n-----END PUBLIC KEY-----\n"
private let ecPublic =
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc5rhaoTeKf9BOAXz9R+KdQ9MiklL\nCORvG81yG3V2SaOpV355gXLrkxCmXgKphw4BoRApHSnjw4wECW9iIaWbGw==\n-----END PUBLIC KEY-----\n"
private let rsa1024Public =
    "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQChgr5cZheVi+b7WNgT/CADtSqu\nS3IDsgohTYXAKQXSFeuli9NDZvUNKcvr2yxBdxPv3hjK5j5d7KfYYN7K8OiWQSRd\nOJr5MeRlEmaVhwNse7UjYU4s42tlYcysWTup5g1WL2uJdYhnea5PyOSB3+eBsl7v\ngPfivnu/4BF+5DvVMwIDAQAB\n-----END PUBLIC KEY-----\n"
private let bcrypt = "$2y$05$" + String(repeating: "a", count: 53)
private let sha512 = "$6$saltsalt$" + String(repeating: "b", count: 86)

private func problems<T>(_ result: Result<T, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

/// A JSON string literal of `s`.
private func quoted(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\n": out += "\\n"
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

@Suite("Authentication fields")
struct AuthValidationTests {
    let validator = Validator()

    private func route(_ extra: String) throws -> Result<Route, ValidationFailure> {
        validator.route(try JSONValue.parse(#"{"host":"a.test","path":"/","upstream":"b","# + extra + "}"), id: "r")
    }

    @Test func basicAuthIsStoredWithItsRealm() throws {
        let stored = try route(#""basic_auth":{"users":[{"name":"ann","hash":"# + quoted(bcrypt) + "}]}").get()
        #expect(
            stored.canonicalDocument.contains(
                #""basic_auth":{"realm":"restricted","users":[{"hash":"# + quoted(bcrypt) + #","name":"ann"}]}"#))
        #expect(stored.policies.basicAuth?.users.count == 1)
    }

    @Test func jwtIsStoredWithItsDefaults() throws {
        let stored = try route(#""jwt":{"keys":[{"alg":"ES256","pem":"# + quoted(ecPublic) + "}]}").get()
        #expect(stored.canonicalDocument.contains(#""jwt":{"claims_to_headers":{},"keys":[{"alg":"ES256","pem":"#))
        #expect(stored.canonicalDocument.contains(#""leeway_s":30}"#))
        let rs = try route(
            #""jwt":{"keys":[{"alg":"RS256","kid":"k1","pem":"# + quoted(rsaPublic) + #"},{"alg":"ES256","kid":"k2","pem":"#
                + quoted(ecPublic) + #"}],"issuer":"https://id.test","audience":"api","claims_to_headers":{"sub":"X-User"},"cookie":"t"}"#
        ).get()
        #expect(rs.policies.jwt?.keys.map(\.kid) == ["k1", "k2"])
        #expect(rs.policies.jwt?.claimsToHeaders == [JWTAuth.ClaimHeader(claim: "sub", header: "X-User")])
    }

    @Test(arguments: [
        (#"{"users":[{"name":"a","hash":"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}]}"#, "basic_auth.users[0].hash"),
        (#"{"users":[{"name":"a","hash":"$apr1$salt$abc"}]}"#, "basic_auth.users[0].hash"),
        (#"{"users":[{"name":"a","hash":"$1$salt$abcdefghijklmnopqrstuv"}]}"#, "basic_auth.users[0].hash"),
        (#"{"users":[{"name":"a","hash":"plain"}]}"#, "basic_auth.users[0].hash"),
        (#"{"users":[{"name":"a","hash":"$2y$13$"#, "basic_auth.users[0].hash"),
        (#"{"users":[{"name":"a:b","hash":"$2y$13$"#, "basic_auth.users[0].name"),
        (#"{"users":[]}"#, "basic_auth.users"),
        (#"{"users":"*"}"#, "basic_auth.users"),
        (#"{"realm":"x"}"#, "basic_auth.users"),
        (#"{"realm":"a\"b","users":[{"name":"a","hash":"$6$s$"#, "basic_auth.realm"),
        (#"{"users":[{"name":"a","hash":"$6$s$","extra":1}]}"#, "basic_auth.users[0].extra"),
    ])
    func basicAuthProblemsNameTheField(_ body: String, _ field: String) throws {
        // complete the hashes cut short above, so the problem is the one the case is about
        var text = body
        text = text.replacingOccurrences(of: #""$2y$13$"#, with: #""$2y$13$"# + String(repeating: "a", count: 53))
        text = text.replacingOccurrences(of: #""$6$s$"#, with: #""$6$s$"# + String(repeating: "b", count: 86))
        if !text.hasSuffix("}") { text += #""}]}"# }
        let found = try problems(route(#""basic_auth":"# + text))
        #expect(found.first?.field == field, "\(found)")
    }

    @Test func basicAuthDuplicatesAndCosts() throws {
        let twice = try problems(
            route(#""basic_auth":{"users":[{"name":"a","hash":"# + quoted(bcrypt) + #"},{"name":"a","hash":"# + quoted(sha512) + "}]}"))
        #expect(twice.first?.field == "basic_auth.users[1].name")
        #expect(twice.first?.code == .duplicate)
        let costly = "$2b$13$" + String(repeating: "a", count: 53)
        let slow = try problems(route(#""basic_auth":{"users":[{"name":"a","hash":"# + quoted(costly) + "}]}"))
        #expect(slow.first?.message.contains("cost 13") == true)
        // a message never quotes the hash
        #expect(slow.first?.message.contains(costly) == false)
    }

    @Test(arguments: [
        (#"{"keys":[{"alg":"HS256","pem":"c2VjcmV0"}]}"#, "jwt.keys[0].pem"),
        (#"{"keys":[{"alg":"none","pem":"x"}]}"#, "jwt.keys[0].alg"),
        (#"{"keys":[{"alg":"rs256","pem":"x"}]}"#, "jwt.keys[0].alg"),
        (#"{"keys":[{"alg":"RS256","pem":"x"}]}"#, "jwt.keys[0].pem"),
        (#"{"keys":[{"alg":"RS256"}]}"#, "jwt.keys[0].pem"),
        (#"{"keys":[]}"#, "jwt.keys"),
        (#"{"keys":"*"}"#, "jwt.keys"),
        (#"{}"#, "jwt.keys"),
        (#"{"keys":[{"alg":"RS256","pem":"x"}],"leeway_s":301}"#, "jwt.keys[0].pem"),
    ])
    func jwtProblemsNameTheField(_ body: String, _ field: String) throws {
        let found = try problems(route(#""jwt":"# + body))
        #expect(found.first?.field == field, "\(found)")
    }

    @Test func keysMustFitTheirAlgorithm() throws {
        let wrongType = try problems(route(#""jwt":{"keys":[{"alg":"RS256","pem":"# + quoted(ecPublic) + "}]}"))
        #expect(wrongType.first?.field == "jwt.keys[0].pem")
        #expect(wrongType.first?.message.contains("EC P-256") == true)
        let small = try problems(route(#""jwt":{"keys":[{"alg":"RS256","pem":"# + quoted(rsa1024Public) + "}]}"))
        #expect(small.first?.message.contains("RSA 1024") == true)
        let es = try problems(route(#""jwt":{"keys":[{"alg":"ES256","pem":"# + quoted(rsaPublic) + "}]}"))
        #expect(es.first?.field == "jwt.keys[0].pem")
    }

    @Test(arguments: [
        (#""leeway_s":301"#, "jwt.leeway_s"),
        (#""issuer":"""#, "jwt.issuer"),
        (#""audience":7"#, "jwt.audience"),
        (#""claims_to_headers":{"sub":"Authorization"}"#, "jwt.claims_to_headers.sub"),
        (#""claims_to_headers":{"sub":"X-Forwarded-For"}"#, "jwt.claims_to_headers.sub"),
        (#""claims_to_headers":{"sub":"X-A","email":"x-a"}"#, "jwt.claims_to_headers.sub"),
        (#""claims_to_headers":{"a b":"X-A"}"#, "jwt.claims_to_headers.a b"),
        (#""header":"X-T","cookie":"t""#, "jwt.cookie"),
        (#""header":"a b""#, "jwt.header"),
        (#""cookie":"""#, "jwt.cookie"),
    ])
    func jwtMembersNameTheField(_ member: String, _ field: String) throws {
        let found = try problems(route(#""jwt":{"keys":[{"alg":"ES256","pem":"# + quoted(ecPublic) + "}]," + member + "}"))
        #expect(found.first?.field == field, "\(found)")
    }

    @Test func severalKeysNeedDistinctKids() throws {
        let key = #"{"alg":"ES256","pem":"# + quoted(ecPublic) + "}"
        let noKid = try problems(route(#""jwt":{"keys":["# + key + "," + key + "]}"))
        #expect(noKid.first?.field == "jwt.keys")
        let kid = #"{"alg":"ES256","kid":"a","pem":"# + quoted(ecPublic) + "}"
        let same = try problems(route(#""jwt":{"keys":["# + kid + "," + kid + "]}"))
        #expect(same.first?.field == "jwt.keys[1].kid")
    }

    @Test func oneAuthenticationPerRoute() throws {
        let found = try problems(
            route(
                #""basic_auth":{"users":[{"name":"a","hash":"# + quoted(bcrypt) + #"}]},"jwt":{"keys":[{"alg":"ES256","pem":"#
                    + quoted(ecPublic)
                    + "}]}"))
        #expect(found.first?.field == "jwt")
    }

    @Test func forwardAuthIsStoredWithItsDefaults() throws {
        let stored = try route(#""forward_auth":{"url":"http://127.0.0.1:9000/auth?x=1"}"#).get()
        #expect(
            stored.canonicalDocument.contains(
                #""forward_auth":{"cache_s":0,"fail_open":false,"request_headers":["Authorization","Cookie"],"response_headers":[],"#
                    + #""timeout_ms":1000,"url":"http://127.0.0.1:9000/auth?x=1"}"#))
        #expect(try route(#""forward_auth":{"url":"http://[::1]:80/"}"#).get().policies.forwardAuth?.url == "http://[::1]:80/")
    }

    @Test(arguments: [
        (#"{"url":"https://127.0.0.1:1/x"}"#, "forward_auth.url"),
        (#"{"url":"http://auth.example:80/x"}"#, "forward_auth.url"),
        (#"{"url":"http://127.0.0.1/x"}"#, "forward_auth.url"),
        (#"{"url":"http://127.0.0.1:80"}"#, "forward_auth.url"),
        (#"{"url":"http://127.0.0.1:80/a b"}"#, "forward_auth.url"),
        (#"{}"#, "forward_auth.url"),
        (#"{"url":"http://127.0.0.1:80/","response_headers":["Host"]}"#, "forward_auth.response_headers[0]"),
        (#"{"url":"http://127.0.0.1:80/","response_headers":["X-A","x-a"]}"#, "forward_auth.response_headers[1]"),
        (#"{"url":"http://127.0.0.1:80/","request_headers":["a b"]}"#, "forward_auth.request_headers[0]"),
        (#"{"url":"http://127.0.0.1:80/","request_headers":"*"}"#, "forward_auth.request_headers"),
        (#"{"url":"http://127.0.0.1:80/","request_headers":["Authorization","Content-Length"]}"#, "forward_auth.request_headers[1]"),
        (#"{"url":"http://127.0.0.1:80/","request_headers":["X-Forwarded-Uri"]}"#, "forward_auth.request_headers[0]"),
        (#"{"url":"http://127.0.0.1:80/","cache_s":301}"#, "forward_auth.cache_s"),
        (#"{"url":"http://127.0.0.1:80/","timeout_ms":0}"#, "forward_auth.timeout_ms"),
        (#"{"url":"http://127.0.0.1:80/","fail_open":"yes"}"#, "forward_auth.fail_open"),
    ])
    func forwardAuthProblemsNameTheField(_ body: String, _ field: String) throws {
        let found = try problems(route(#""forward_auth":"# + body))
        #expect(found.first?.field == field, "\(found)")
    }
}
