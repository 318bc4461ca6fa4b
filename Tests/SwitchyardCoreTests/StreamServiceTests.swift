// Stream services (issue 23): validation names the field and the reason; the balancer's
// rotation and choices.

import Testing

@testable import SwitchyardCore

private func json(_ text: String) -> JSONValue { try! JSONValue.parse(text) }

private func problems(_ text: String, id: String = "db") -> [FieldError] {
    switch StreamService.validate(json(text), id: id) {
    case .success: return []
    case .failure(let f): return f.problems
    }
}

@Test func validStreamGetsDefaultsAndCanonicalDocument() throws {
    let s = try StreamService.validate(json(#"{"listen":5432,"upstream":"pg","allow":["10.0.0.0/8"]}"#), id: "db").get()
    #expect(s.proto == .tcp && s.balance == .roundRobin)
    #expect(s.connectTimeoutMs == StreamService.defaultConnectTimeoutMs && s.idleTimeoutS == StreamService.defaultIdleTimeoutS)
    #expect(
        s.document.canonical
            == #"{"allow":["10.0.0.0/8"],"balance":"round_robin","connect_timeout_ms":5000,"deny":[],"id":"db","idle_timeout_s":600,"listen":5432,"protocol":"tcp","upstream":"pg"}"#
    )
    // a stored document (with its version) reads back as the same service
    let stored = try StreamService.validate(json(#"{"version":3,"# + s.document.canonical.dropFirst()), id: "db").get()
    #expect(stored == s)
}

@Test func everyBadFieldIsNamed() {
    let p = problems(
        #"{"listen":70000,"protocol":"sctp","upstream":"Bad Name","balance":"random","connect_timeout_ms":0,"idle_timeout_s":"x","proxy_protocol":"yes","allow":["10.0.0.0/33"],"deny":"1.2.3.4","colour":"red"}"#
    )
    let fields = Set(p.map(\.field))
    #expect(
        fields == [
            "listen", "protocol", "upstream", "balance", "connect_timeout_ms", "idle_timeout_s", "proxy_protocol", "allow[0]", "deny",
            "colour",
        ])
    #expect(p.first { $0.field == "colour" }?.code == .unknownField)
    #expect(p.first { $0.field == "listen" }?.message == "must be an integer in 1-65535")
}

@Test func requiredFieldsAndUDPRules() {
    #expect(Set(problems("{}").map(\.field)) == ["listen", "upstream"])
    #expect(problems("{}").allSatisfy { $0.code == .required })
    let udp = problems(#"{"listen":53,"upstream":"dns","protocol":"udp","balance":"least_conn","proxy_protocol":true}"#)
    #expect(Set(udp.map(\.field)) == ["balance", "proxy_protocol"])
    #expect(problems(#"{"listen":53,"upstream":"dns","protocol":"udp","balance":"hash"}"#).isEmpty)
    #expect(problems(#"{"listen":1,"upstream":"u","id":"other"}"#).map(\.code) == [.mismatch])
    #expect(problems("[]").map(\.field) == [""])
}

@Test func allowAndDeny() throws {
    let s = try StreamService.validate(json(#"{"listen":1,"upstream":"u","allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}"#), id: "x").get()
    #expect(s.admits([10, 2, 3, 4]))
    #expect(!s.admits([10, 1, 3, 4]))
    #expect(!s.admits([192, 168, 0, 1]))
    let open = try StreamService.validate(json(#"{"listen":1,"upstream":"u","deny":["127.0.0.1"]}"#), id: "x").get()
    #expect(!open.admits([127, 0, 0, 1]) && open.admits([127, 0, 0, 2]))
}

private func upstream(_ addresses: [String], weights: [Int]? = nil, checked: Bool = true) -> Upstream {
    var u = Upstream(name: "u")
    u.endpoints = addresses.enumerated().map { i, a in
        Endpoint(address: try! EndpointAddress.parse(a).get(), weight: weights?[i] ?? 1)
    }
    if checked { u.healthCheck = HealthCheck() }
    return u
}

@Test func rotationDropsDownEndpointsButFailsOpen() {
    let u = upstream(["10.0.0.1:1", "10.0.0.2:1"])
    #expect(StreamBalancer.rotation(u, down: ["10.0.0.2:1"]).map(\.address.description) == ["10.0.0.1:1"])
    #expect(StreamBalancer.rotation(u, down: ["10.0.0.1:1", "10.0.0.2:1"]).count == 2)
    // without a health check, verdicts do not apply (as on the HTTP edges)
    #expect(StreamBalancer.rotation(upstream(["10.0.0.1:1", "10.0.0.2:1"], checked: false), down: ["10.0.0.2:1"]).count == 2)
}

@Test func roundRobinFollowsWeights() {
    let t = StreamBalancer.rotation(upstream(["10.0.0.1:1", "10.0.0.2:1"], weights: [3, 1]), down: [])
    let picks = (0..<8).map { StreamBalancer.pick(t, balance: .roundRobin, counter: UInt64($0), client: [], open: { _ in 0 })! }
    #expect(picks.filter { $0 == 0 }.count == 6 && picks.filter { $0 == 1 }.count == 2)
    #expect(StreamBalancer.pick([], balance: .roundRobin, counter: 0, client: [], open: { _ in 0 }) == nil)
}

@Test func hashIsStablePerClientAndSpreads() {
    let t = StreamBalancer.rotation(upstream(["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]), down: [])
    let first = StreamBalancer.pick(t, balance: .hash, counter: 0, client: [192, 168, 1, 7], open: { _ in 0 })
    for n in 1..<5 {
        #expect(StreamBalancer.pick(t, balance: .hash, counter: UInt64(n), client: [192, 168, 1, 7], open: { _ in 0 }) == first)
    }
    let spread = Set((0..<64).map { StreamBalancer.pick(t, balance: .hash, counter: 0, client: [10, 0, 0, UInt8($0)], open: { _ in 0 })! })
    #expect(spread.count == 3)
}

@Test func leastConnPicksFewestPerWeight() {
    let t = StreamBalancer.rotation(upstream(["10.0.0.1:1", "10.0.0.2:1"], weights: [1, 4]), down: [])
    let open: [String: Int] = ["10.0.0.1:1": 1, "10.0.0.2:1": 3]
    // 1/1 = 1.0 against 3/4 = 0.75
    #expect(StreamBalancer.pick(t, balance: .leastConn, counter: 0, client: [], open: { open[$0.description] ?? 0 }) == 1)
    #expect(StreamBalancer.pick(t, balance: .leastConn, counter: 0, client: [], open: { _ in 0 }) == 0)
}
