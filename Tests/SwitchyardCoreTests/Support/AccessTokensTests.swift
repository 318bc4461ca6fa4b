import Testing

@testable import SwitchyardCore

@Suite("Access tokens")
struct AccessTokensTests {
    @Test func hashIsSHA256OfTheTokenInHex() {
        // FIPS 180-2 test vector
        #expect(AccessTokens.hash("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(AccessTokens.parseHash(AccessTokens.hash("abc")) == AccessTokens.digest("abc"))
        #expect(
            AccessTokens.parseHash("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD") == AccessTokens.digest("abc"))
        for bad in [
            "ba7816bf", "sha256:xyz", "sha1:ba7816bf8f01cfea414140de5dae2223b00361a3", "sha256:" + String(repeating: "a", count: 63),
        ] {
            #expect(AccessTokens.parseHash(bad) == nil, "\(bad)")
        }
    }

    @Test func newTokensAreRandomBase64URL() {
        #expect(AccessTokens.base64url([0xFB, 0xFF]) == "-_8")
        #expect(AccessTokens.base64url(Array("foobar".utf8)) == "Zm9vYmFy")
        let a = AccessTokens.generate()
        let b = AccessTokens.generate()
        #expect(a != b)
        #expect(a.hasPrefix("sy_") && a.count == 3 + 43)
        #expect(
            a.utf8.dropFirst(3).allSatisfy { b in
                (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2D || b == 0x5F
            })
    }

    @Test func rolesIncludeTheOnesBelow() {
        #expect(Role.admin.allows(.write) && Role.admin.allows(.read) && Role.admin.allows(.admin))
        #expect(Role.write.allows(.read) && Role.write.allows(.write) && !Role.write.allows(.admin))
        #expect(Role.read.allows(.read) && !Role.read.allows(.write) && !Role.read.allows(.admin))
    }

    @Test func parsesTheFileAndAuthenticatesOnlyTheExactToken() throws {
        let file: JSONValue = [
            "tokens": [
                ["name": "ci", "role": "write", "hash": .string(AccessTokens.hash("token-of-ci-0123456789abcdef0123"))],
                ["name": "dash", "role": "read", "hash": .string(AccessTokens.hash("token-of-dash-0123456789abcdef01"))],
            ]
        ]
        let tokens = try AccessTokens.parse(file).get()
        #expect(tokens.tokens.map(\.name) == ["ci", "dash"])
        #expect(tokens.authenticate(Array("token-of-ci-0123456789abcdef0123".utf8))?.name == "ci")
        #expect(tokens.authenticate(Array("token-of-dash-0123456789abcdef01".utf8))?.role == .read)
        #expect(tokens.authenticate(Array("token-of-ci-0123456789abcdef012".utf8)) == nil)
        #expect(tokens.authenticate(Array("token-of-ci-0123456789abcdef01234".utf8)) == nil)
        #expect(tokens.authenticate([]) == nil)
        #expect(AccessTokens().authenticate(Array("x".utf8)) == nil)
    }

    @Test func everyProblemOfTheFileIsNamed() {
        let hash = JSONValue.string(AccessTokens.hash("x"))
        let file: JSONValue = [
            "tokens": [
                ["name": "ci", "role": "writer", "hash": hash],
                ["name": "ci", "role": "read", "hash": "sha256:nope"],
                ["name": "Bad Name", "role": "read", "hash": hash, "token": "secret"],
                ["role": "admin"],
                "just a string",
            ],
            "extra": true,
        ]
        guard case .failure(let failure) = AccessTokens.parse(file) else {
            Issue.record("an invalid file was accepted")
            return
        }
        let fields = Set(failure.problems.map(\.field))
        #expect(
            fields == [
                "extra", "tokens[0].role", "tokens[1].hash", "tokens[1].name", "tokens[2].name", "tokens[2].token", "tokens[2].hash",
                "tokens[3].name", "tokens[3].hash", "tokens[4]",
            ])
        #expect(failure.problems.first { $0.field == "tokens[1].name" }?.code == .duplicate)
        #expect(failure.problems.first { $0.field == "tokens[2].hash" }?.code == .duplicate)
        #expect(failure.problems.first { $0.field == "tokens[3].hash" }?.code == .required)
        #expect(failure.problems.first { $0.field == "tokens[0].role" }?.message.contains("read, write, admin") == true)
        for json: JSONValue in [[], ["tokens": "x"], [:]] {
            guard case .failure = AccessTokens.parse(json) else {
                Issue.record("accepted \(json.canonical)")
                continue
            }
        }
        #expect((try? AccessTokens.parse(["tokens": []]).get())?.isEmpty == true)
    }

    @Test func aTokenCanBeLimitedToGroups() throws {
        let file: JSONValue = [
            "tokens": [
                ["name": "tenant", "role": "write", "hash": .string(AccessTokens.hash("t")), "groups": ["b", "a"]],
                ["name": "all", "role": "read", "hash": .string(AccessTokens.hash("u"))],
            ]
        ]
        let tokens = try AccessTokens.parse(file).get()
        let tenant = try #require(tokens.authenticate(Array("t".utf8)))
        #expect(tenant.groups == ["a", "b"])
        #expect(tenant.allows(group: "a") && tenant.allows(group: "b"))
        #expect(!tenant.allows(group: "cfg") && !tenant.allows(group: "c"))
        let all = try #require(tokens.authenticate(Array("u".utf8)))
        #expect(all.groups == nil && all.allows(group: "cfg") && all.allows(group: "anything"))

        for (groups, says): (JSONValue, String) in [
            ([], "non-empty"), ("a", "non-empty"), ([1], "groups[0] must be a string"), (["Bad"], "groups[0]"),
            (["a", "a"], "twice"), (["a}"], "a-z 0-9"),
        ] {
            let bad: JSONValue = ["tokens": [["name": "x", "role": "read", "hash": .string(AccessTokens.hash("x")), "groups": groups]]]
            guard case .failure(let failure) = AccessTokens.parse(bad) else {
                Issue.record("groups \(groups.canonical) was accepted")
                continue
            }
            #expect(failure.problems.map(\.field) == ["tokens[0].groups"])
            #expect(failure.problems.first?.message.contains(says) == true, "\(failure.problems)")
        }
    }

    @Test func theAdminTokenJoinsAsAdminUnlessItClashes() throws {
        let file = try AccessTokens.parse(["tokens": [["name": "ci", "role": "read", "hash": .string(AccessTokens.hash("ci-token"))]]])
            .get()
        let all = try file.adding(adminToken: "the-admin-token").get()
        #expect(all.authenticate(Array("the-admin-token".utf8)) == AccessToken(name: "admin", role: .admin, token: "the-admin-token"))
        #expect(all.authenticate(Array("ci-token".utf8))?.name == "ci")
        // the same token under a file name, or a file entry named admin: refused
        guard case .failure = file.adding(adminToken: "ci-token") else {
            Issue.record("the admin token equal to a file token was accepted")
            return
        }
        let named = try AccessTokens.parse(["tokens": [["name": "admin", "role": "read", "hash": .string(AccessTokens.hash("y"))]]]).get()
        guard case .failure(let problem) = named.adding(adminToken: "z") else {
            Issue.record("a file entry named admin was accepted beside SWITCHYARD_ADMIN_TOKEN")
            return
        }
        #expect(problem.message.contains("SWITCHYARD_ADMIN_TOKEN"))
    }

    @Test func fileLineIsValidYAMLForTheFile() throws {
        let line = AccessTokens.fileLine(name: "ci-bot", role: .write, token: "abc")
        #expect(
            line == #"  - {name: ci-bot, role: write, hash: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#)
    }

    @Test func constantTimeEqualityComparesLengthsAndBytes() {
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2]))
        #expect(!ConstantTime.equal([], [0]))
        #expect(ConstantTime.equal([], []))
    }
}
