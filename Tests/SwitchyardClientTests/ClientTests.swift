import SwitchyardCore
import Testing

@testable import SwitchyardClient

@Suite("CLI client")
struct ClientTests {
    static let files: [String: String] = [
        "/home/u/.config/switchyard/config.yaml": "url: http://127.0.0.1:1111\ntoken: from-default-file\n",
        "/etc/sy.yaml": "url: http://127.0.0.1:2222\ntoken_file: /etc/sy.token\n",
        "/etc/sy.token": "from-token-file\nignored\n",
        "/etc/bad.yaml": "url: http://x\npassword: y\n",
    ]

    static func read(_ path: String) -> String? { files[path] }

    @Test func settingsPrecedence() throws {
        let home = ["HOME": "/home/u"]
        // the default file fills in what nothing else says
        #expect(
            try ClientSettings.resolve(url: nil, config: nil, environment: home, read: Self.read)
                == ClientSettings(url: "http://127.0.0.1:1111", token: "from-default-file"))
        // the environment beats the default file
        let env = home.merging(["SWITCHYARD_URL": "http://127.0.0.1:3333/", "SWITCHYARD_TOKEN": "from-env"]) { $1 }
        #expect(
            try ClientSettings.resolve(url: nil, config: nil, environment: env, read: Self.read)
                == ClientSettings(url: "http://127.0.0.1:3333", token: "from-env"))
        // an explicit --config beats the environment; --url beats everything
        #expect(
            try ClientSettings.resolve(url: nil, config: "/etc/sy.yaml", environment: env, read: Self.read)
                == ClientSettings(url: "http://127.0.0.1:2222", token: "from-token-file"))
        #expect(
            try ClientSettings.resolve(url: "http://127.0.0.1:4444", config: "/etc/sy.yaml", environment: env, read: Self.read).url
                == "http://127.0.0.1:4444")
        // the older names still work; nothing at all is the default address without a token
        let legacy = ["SWITCHYARD_CONTROLLER": "http://127.0.0.1:5555", "SWITCHYARD_ADMIN_TOKEN": "legacy"]
        #expect(
            try ClientSettings.resolve(url: nil, config: nil, environment: legacy, read: Self.read)
                == ClientSettings(url: "http://127.0.0.1:5555", token: "legacy"))
        #expect(try ClientSettings.resolve(url: nil, config: nil, environment: [:], read: Self.read) == ClientSettings())
        #expect(throws: ClientSettings.SettingsError.self) {
            try ClientSettings.resolve(url: nil, config: "/etc/bad.yaml", environment: [:], read: Self.read)
        }
        #expect(throws: ClientSettings.SettingsError.self) {
            try ClientSettings.resolve(url: nil, config: "/nope.yaml", environment: [:], read: Self.read)
        }
        #expect(throws: ClientSettings.SettingsError.self) {
            try ClientSettings.resolve(url: "127.0.0.1:9180", config: nil, environment: [:], read: Self.read)
        }
        #expect(ClientSettings.defaultConfigPath(environment: ["XDG_CONFIG_HOME": "/x", "HOME": "/h"]) == "/x/switchyard/config.yaml")
    }

    @Test func documentsAreSwitchyardOrKubernetesNeverBoth() throws {
        let a =
            "upstreams:\n  - {name: u1, endpoints: [{address: '127.0.0.1:9'}]}\n---\nroutes:\n  - {id: r1, host: a.test, path: /, upstream: u1}\n"
        let b = #"{"delete": {"routes": ["old"]}, "routes": [{"id": "r2", "host": "b.test", "path": "/", "upstream": "u1"}]}"#
        guard case .switchyard(let body) = try DocumentFiles.classify([("a.yaml", a), ("b.json", b)]) else {
            Issue.record("not Switchyard documents")
            return
        }
        func count(_ v: JSONValue?) -> Int { if case .array(let items)? = v { items.count } else { -1 } }
        #expect(count(body["upstreams"]) == 1)
        #expect(count(body["routes"]) == 2)
        #expect(body["delete"]?["routes"] == ["old"])
        let kube = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        #expect(try DocumentFiles.classify([("k.yaml", kube)]) == .kubernetes)
        #expect(throws: DocumentFiles.ReadError.self) { try DocumentFiles.classify([("k.yaml", kube), ("a.yaml", a)]) }
        #expect(throws: DocumentFiles.ReadError.self) { try DocumentFiles.classify([("x.yaml", "rutes: []\n")]) }
        #expect(throws: DocumentFiles.ReadError.self) { try DocumentFiles.classify([("x.yaml", "")]) }
        #expect(throws: DocumentFiles.ReadError.self) { try DocumentFiles.classify([("x.yaml", "routes: [")]) }
    }

    @Test func clientDiffComparesWhatTheStoreWouldHold() throws {
        let body: JSONValue = try JSONValue.parse(
            #"{"upstreams":[{"name":"u1","endpoints":[{"address":"127.0.0.1:9"}]},{"name":"u2","endpoints":[{"address":"127.0.0.1:10"}]}],"#
                + #""routes":[{"id":"r1","host":"a.test","path":"/","upstream":"u1"},{"id":"r2","host":"b.test","path":"/","upstream":"u2"}],"#
                + #""delete":{"routes":["gone","never"],"certificates":["old-cert"]}}"#)
        let u1 = try #require(try? Upstream(document: try JSONValue.parse(#"{"name":"u1","endpoints":[{"address":"127.0.0.1:9"}]}"#)))
        let r1 = try #require(
            try? Route(
                document: try JSONValue.parse(#"{"id":"r1","host":"a.test","path":"/","match":"prefix","upstream":"u1","priority":5}"#)))
        let gone = try #require(
            try? Route(document: try JSONValue.parse(#"{"id":"gone","host":"g.test","path":"/","match":"prefix","upstream":"u1"}"#)))
        func withVersion(_ doc: JSONValue) -> JSONValue {
            guard case .object(let m) = doc else { return doc }
            return .object(m + [("version", .integer(3))])
        }
        let diff = try ClientDiff.compute(
            body: body, routes: ["items": [withVersion(r1.document), withVersion(gone.document)]],
            upstreams: ["items": [withVersion(u1.document)]],
            certificates: ["items": [["id": "old-cert", "fingerprint_sha256": "AA"]]], now: 1_700_000_000)
        #expect(
            diff.changes.map(\.description) == [
                "create upstream u2", "update route r1: priority", "create route r2", "delete route gone", "delete certificate old-cert",
            ])
        // the same state again: nothing
        let same = try ClientDiff.compute(
            body: ["upstreams": [u1.document]], routes: ["items": []], upstreams: ["items": [withVersion(u1.document)]],
            certificates: ["items": []], now: 0)
        #expect(same.isEmpty)
        #expect(throws: ClientDiff.DiffError.self) {
            try ClientDiff.compute(body: ["routes": [["id": "bad"]]], routes: [:], upstreams: [:], certificates: [:], now: 0)
        }
    }

    @Test func dryRunAnswerCountsChanges() {
        #expect(!ClientDiff.serverAnswerHasChanges(["dry_run": true, "changed": 0, "changes": ["created": []]]))
        #expect(ClientDiff.serverAnswerHasChanges(["dry_run": true, "changed": 2, "changes": ["created": [["id": "r1"]]]]))
        #expect(!ClientDiff.serverAnswerHasChanges(["dry_run": true]))
    }

    @Test func outputFormats() {
        let answer: JSONValue = [
            "items": [["id": "r1", "host": "a.test", "path": "/", "match": "prefix", "upstream": "u1", "priority": 0, "version": 4]],
            "version": 4,
        ]
        let table = Output.objectsTable(.route, answer)
        #expect(table.split(separator: "\n").count == 2)
        #expect(table.hasPrefix("ID  HOST    PATH  MATCH   UPSTREAM  PRIORITY  VERSION"))
        #expect(table.contains("r1  a.test  /     prefix  u1        0         4"))
        let yaml = Output.yaml(["a": "true", "b": true, "c": "007", "d": "plain", "e": [1, 2], "f": .null])
        #expect(yaml.contains("a: \"true\""))
        #expect(yaml.contains("b: true"))
        #expect(yaml.contains("c: \"007\""))
        #expect(yaml.contains("d: plain"))
        #expect(Output.pretty(["a": [1, ["b": .null]]]) == "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}")
        let history: JSONValue = [
            "changes": [
                [
                    "version": 7, "time": "t", "who": "ci", "note": "n",
                    "objects": [
                        ["kind": "route", "id": "r1", "before": .null, "after": ["id": "r1"]],
                        ["kind": "upstream", "id": "u1", "before": ["a": 1], "after": .null],
                    ],
                ]
            ]
        ]
        #expect(Output.historyTable(history).contains("7        t     ci   n     +route/r1 -upstream/u1"))
    }
}
