import Testing

@testable import SwitchyardCore

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func problems<T>(_ result: Result<T, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

private func fields<T>(_ result: Result<T, ValidationFailure>) -> Set<String> { Set(problems(result).map(\.field)) }

@Suite("Health check, passive, retries and on_all_down validation")
struct HealthCheckValidationTests {
    let validator = Validator(regex: FakeRegexChecker())

    func upstream(_ body: String) throws -> Result<Upstream, ValidationFailure> {
        validator.upstream(try json(body), name: "web")
    }

    @Test func theIssueExampleIsStoredWithEveryField() throws {
        let body = #"""
            {"endpoints":[{"address":"10.0.0.1:80"}],
             "health_check":{"type":"http","path":"/healthz","host":"Web.Example.com","interval_ms":1000,"timeout_ms":500,
                             "rise":2,"fall":3,"expect_status":["200-399"]},
             "passive":{"max_fails":3,"fail_timeout_ms":10000},"retries":2,"on_all_down":"503"}
            """#
        let u = try upstream(body).get()
        #expect(
            u.healthCheck
                == HealthCheck(
                    type: .http, path: "/healthz", host: "web.example.com", intervalMs: 1000, timeoutMs: 500,
                    rise: 2, fall: 3, expectStatus: [StatusRange(200, 399)]))
        #expect(u.onAllDown == .unavailable)
        #expect(
            u.canonicalDocument == #"{"balance":"round_robin","endpoints":[{"address":"10.0.0.1:80","weight":1}],"#
                + #""health_check":{"expect_status":["200-399"],"fall":3,"host":"web.example.com","interval_ms":1000,"path":"/healthz","#
                + #""rise":2,"timeout_ms":500,"type":"http"},"name":"web","on_all_down":"503","#
                + #""passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}"#)
    }

    @Test func defaultsAreFilledIn() throws {
        let u = try upstream(#"{"health_check":{}}"#).get()
        let check = try #require(u.healthCheck)
        #expect(check.type == .http)
        #expect(check.path == "/")
        #expect(check.host == nil)
        #expect(check.intervalMs == 1000)
        #expect(check.timeoutMs == 500)
        #expect(check.rise == 2 && check.fall == 3)
        #expect(check.expectStatus == [StatusRange(200, 399)])
        #expect(u.passive == PassiveHealth(maxFails: 3, failTimeoutMs: 10_000))
        #expect(u.retries == 2)
        #expect(u.onAllDown == .failOpen)
        // no health_check (or null): no active checks, the other policies still default
        #expect(try upstream("{}").get().healthCheck == nil)
        #expect(try upstream(#"{"health_check":null}"#).get().healthCheck == nil)
        #expect(
            try upstream("{}").get().canonicalDocument
                == #"{"balance":"round_robin","endpoints":[],"name":"web","on_all_down":"fail_open","passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}"#
        )
    }

    @Test func kubernetesPhysicalEndpointMapping() throws {
        // http_detect: /conf/ and interval: 10 (seconds) -> path /conf/, interval_ms 10000
        let check = try #require(try upstream(#"{"health_check":{"type":"http","path":"/conf/","interval_ms":10000}}"#).get().healthCheck)
        #expect(check.path == "/conf/")
        #expect(check.intervalMs == 10_000)
        #expect(check.timeoutMs == 1000)  // half the interval, at most 1 s
    }

    @Test func defaultTimeoutFollowsTheInterval() throws {
        #expect(try upstream(#"{"health_check":{"interval_ms":100}}"#).get().healthCheck?.timeoutMs == 50)
        #expect(try upstream(#"{"health_check":{"interval_ms":300}}"#).get().healthCheck?.timeoutMs == 150)
        #expect(try upstream(#"{"health_check":{"interval_ms":60000}}"#).get().healthCheck?.timeoutMs == 1000)
    }

    @Test func tcpChecksTakeNoHTTPFields() throws {
        let tcp = try upstream(#"{"health_check":{"type":"tcp","interval_ms":2000,"port":9000}}"#).get()
        #expect(
            tcp.healthCheck?.document.canonical == #"{"fall":3,"interval_ms":2000,"port":9000,"rise":2,"timeout_ms":1000,"type":"tcp"}"#)
        let bad = try upstream(#"{"health_check":{"type":"tcp","path":"/x","host":"a.com","expect_status":["200"]}}"#)
        #expect(fields(bad) == ["health_check.path", "health_check.host", "health_check.expect_status"])
        #expect(problems(bad).allSatisfy { $0.message.contains("http and https") })
    }

    @Test func everyProblemIsListedWithItsFieldPath() throws {
        let body = #"""
            {"health_check":{"type":"icmp","path":"healthz","host":"*.a.com","interval_ms":50,"timeout_ms":0,"rise":0,"fall":11,
                             "expect_status":["200-","600","399-200","abc",99,"2000"],"intervall":1},
             "passive":{"max_fails":-1,"fail_timeout_ms":"10s","extra":true},
             "retries":11,"on_all_down":"drop"}
            """#
        let result = try upstream(body)
        #expect(
            fields(result) == [
                "health_check.type", "health_check.path", "health_check.host", "health_check.interval_ms", "health_check.timeout_ms",
                "health_check.rise", "health_check.fall", "health_check.expect_status[0]", "health_check.expect_status[1]",
                "health_check.expect_status[2]", "health_check.expect_status[3]", "health_check.expect_status[4]",
                "health_check.expect_status[5]", "health_check.intervall", "passive.max_fails", "passive.fail_timeout_ms",
                "passive.extra", "retries", "on_all_down",
            ])
        #expect(problems(result).first { $0.field == "health_check.intervall" }?.code == .unknownField)
        #expect(problems(result).first { $0.field == "passive.extra" }?.code == .unknownField)
    }

    @Test(arguments: [(999, 1000, true), (1000, 1000, false), (1500, 1000, false), (10, 100, true), (9, 100, false)])
    func timeoutMustBeBelowTheInterval(_ timeout: Int64, _ interval: Int64, _ valid: Bool) throws {
        let body: JSONValue = ["health_check": ["interval_ms": .integer(interval), "timeout_ms": .integer(timeout)]]
        #expect(fields(validator.upstream(body, name: "web")) == (valid ? [] : ["health_check.timeout_ms"]))
    }

    @Test(arguments: [(99, false), (100, true), (3_600_000, true), (3_600_001, false)])
    func intervalRange(_ interval: Int64, _ valid: Bool) {
        let body: JSONValue = ["health_check": ["interval_ms": .integer(interval), "timeout_ms": 10]]
        #expect(fields(validator.upstream(body, name: "web")) == (valid ? [] : ["health_check.interval_ms"]))
    }

    @Test(arguments: [(1, true), (10, true), (0, false), (11, false)])
    func riseAndFallRange(_ n: Int64, _ valid: Bool) {
        let body: JSONValue = ["health_check": ["rise": .integer(n), "fall": .integer(n)]]
        #expect(fields(validator.upstream(body, name: "web")) == (valid ? [] : ["health_check.rise", "health_check.fall"]))
    }

    @Test func statusRanges() throws {
        #expect(try StatusRange.parse("200").get() == StatusRange(200, 200))
        #expect(try StatusRange.parse("200-399").get() == StatusRange(200, 399))
        #expect(try StatusRange.parse("100-599").get().contains(599))
        for bad in ["", "20", "2000", "abc", "200-", "-200", "099", "600", "399-200", "200-600", "200-300-400", " 200", "2x0"] {
            #expect(throws: StatusRangeError.self, "\(bad)") { try StatusRange.parse(bad).get() }
        }
        let u = try upstream(#"{"health_check":{"expect_status":[200,"204","300-302"]}}"#).get()
        #expect(u.healthCheck?.expectStatus.map(\.description) == ["200", "204", "300-302"])
        #expect(u.healthCheck?.accepts(status: 301) == true)
        #expect(u.healthCheck?.accepts(status: 201) == false)
        #expect(fields(try upstream(#"{"health_check":{"expect_status":[]}}"#)) == ["health_check.expect_status"])
        #expect(fields(try upstream(#"{"health_check":{"expect_status":"200"}}"#)) == ["health_check.expect_status"])
    }

    @Test func policyValues() throws {
        #expect(try upstream(#"{"on_all_down":503}"#).get().onAllDown == .unavailable)
        #expect(try upstream(#"{"on_all_down":"fail_open"}"#).get().onAllDown == .failOpen)
        #expect(try upstream(#"{"retries":0,"passive":{"max_fails":0}}"#).get().passive.maxFails == 0)
        #expect(fields(try upstream(#"{"passive":[]}"#)) == ["passive"])
        #expect(fields(try upstream(#"{"health_check":"http"}"#)) == ["health_check"])
    }

    @Test func batchesReportHealthFieldsWithTheirIndex() throws {
        let body = #"{"upstreams":[{"name":"ok"},{"name":"bad","health_check":{"rise":0}}]}"#
        let (_, found) = validator.batchCollectingProblems(try json(body))
        #expect(found.map(\.field) == ["upstreams[1].health_check.rise"])
    }
}

@Suite("Stored upstream documents with health fields")
struct HealthDocumentTests {
    @Test func roundTrip() throws {
        let upstream = Upstream(
            name: "web", endpoints: [Endpoint(address: try EndpointAddress.parse("10.0.0.1:80").get())],
            healthCheck: HealthCheck(
                type: .https, path: "/h?x=1", host: "a.example", port: 8443, intervalMs: 2000, timeoutMs: 300,
                rise: 1, fall: 5, expectStatus: [StatusRange(200, 200), StatusRange(204, 204)]),
            passive: PassiveHealth(maxFails: 0, failTimeoutMs: 500), retries: 0, onAllDown: .unavailable)
        let stored = Array(("{\"version\":4," + upstream.canonicalDocument.dropFirst()).utf8)
        #expect(try StoredDocument.upstream(stored) == Stored(value: upstream, version: 4))
    }

    @Test func documentsWithoutTheNewFieldsGetDefaults() throws {
        let old = #"{"version":1,"balance":"round_robin","endpoints":[{"address":"10.0.0.1:80","weight":1}],"name":"web"}"#
        let decoded = try StoredDocument.upstream(Array(old.utf8)).value
        #expect(decoded.healthCheck == nil)
        #expect(decoded.passive == PassiveHealth())
        #expect(decoded.retries == 2)
        #expect(decoded.onAllDown == .failOpen)
    }

    @Test func storedDecodingIsLenientAboutUnknownFieldsOnly() throws {
        let newer = #"{"version":1,"name":"web","endpoints":[],"health_check":{"type":"tcp","future":1},"passive":{"x":1}}"#
        #expect(try StoredDocument.upstream(Array(newer.utf8)).value.healthCheck?.type == .tcp)
        let broken = #"{"version":1,"name":"web","endpoints":[],"health_check":{"interval_ms":5}}"#
        #expect(throws: DocumentError("health_check.interval_ms")) { try StoredDocument.upstream(Array(broken.utf8)) }
    }
}

@Suite("Rise/fall hysteresis")
struct HealthHysteresisTests {
    static let ok = ProbeOutcome.success(reason: "status 200")
    static let bad = ProbeOutcome.failure(reason: "status 503")

    /// Feeds outcomes ("+" success, "-" failure) and returns the states after each.
    func run(_ pattern: String, rise: Int = 2, fall: Int = 3, from state: HealthState = .unknown) -> [HealthState] {
        var h = HealthHysteresis(rise: rise, fall: fall, state: state)
        return pattern.map { c in
            _ = h.record(c == "+" ? Self.ok : Self.bad)
            return h.state
        }
    }

    @Test func unknownBecomesUpAfterRiseSuccesses() {
        #expect(run("++") == [.unknown, .up])
        var h = HealthHysteresis(rise: 2, fall: 3)
        #expect(h.record(Self.ok) == nil)
        #expect(h.record(Self.ok) == .init(from: .unknown, to: .up, reason: "status 200"))
        #expect(h.record(Self.ok) == nil)  // no transition while it stays up
    }

    @Test func unknownBecomesDownAfterFallFailures() {
        #expect(run("---") == [.unknown, .unknown, .down])
    }

    @Test func upBecomesDownAfterFallConsecutiveFailures() {
        #expect(run("---", from: .up) == [.up, .up, .down])
        var h = HealthHysteresis(rise: 2, fall: 3, state: .up)
        _ = h.record(.failure(reason: "timeout"))
        _ = h.record(.failure(reason: "refused"))
        #expect(h.record(.failure(reason: "timeout")) == .init(from: .up, to: .down, reason: "timeout"))
    }

    @Test func downBecomesUpAfterRiseConsecutiveSuccesses() {
        #expect(run("+-+++", rise: 3, from: .down) == [.down, .down, .down, .down, .up])
    }

    @Test func flappingNeverChangesState() {
        #expect(run("-+-+-+-+-+-+", from: .up).allSatisfy { $0 == .up })
        #expect(run("+-+-+-+-+-+-", from: .down).allSatisfy { $0 == .down })
        #expect(run("+-+-+-+-", from: .unknown).allSatisfy { $0 == .unknown })
        // two failures, a success, two failures: never three in a row
        #expect(run("--+--+--+", from: .up).allSatisfy { $0 == .up })
    }

    @Test func riseAndFallOfOneFollowEveryProbe() {
        #expect(run("+-+-", rise: 1, fall: 1) == [.up, .down, .up, .down])
    }

    @Test func resetTakesAStateWithFreshCounts() {
        var h = HealthHysteresis(rise: 2, fall: 2, state: .up)
        _ = h.record(Self.bad)
        h.reset(to: .down)
        #expect(h.state == .down && h.failures == 0 && h.successes == 0)
        #expect(h.record(Self.ok) == nil)
        #expect(h.record(Self.ok)?.to == .up)
    }
}

@Suite("Health records, events and Function calls")
struct HealthRecordTests {
    @Test func recordJSON() throws {
        let r = HealthRecord(state: .down, since: 1_700_000_000_000, reason: "status 503", prober: "p1")
        #expect(r.json == #"{"prober":"p1","reason":"status 503","since":1700000000000,"state":"down"}"#)
        #expect(HealthRecord(json: Array(r.json.utf8)) == r)
        #expect(HealthRecord(json: Array(#"{"state":"maybe"}"#.utf8)) == nil)
        #expect(HealthRecord(json: Array("nope".utf8)) == nil)
    }

    @Test func eventMessages() {
        let e = HealthEvent(version: 42, upstream: "web", address: "[::1]:80", state: "down")
        #expect(e.message == "42 web [::1]:80 down")
        #expect(HealthEvent(message: e.message) == e)
        #expect(HealthEvent(message: "x web a down") == nil)
        #expect(HealthEvent(message: "1 web a") == nil)
    }

    @Test func calls() {
        let r = HealthRecord(state: .up, since: 5, reason: "connected", prober: "p1")
        #expect(
            HealthCall.health(
                prober: "p1",
                [
                    .set(upstream: "u", address: "10.0.0.1:80", record: r), .delete(upstream: "u", address: "10.0.0.2:80"),
                    .drop(upstream: "v"),
                ])
                == [
                    "FCALL", "sy_health", "1", "switchyard:{cfg}:health_version", "p1", "set", "u", "10.0.0.1:80", r.json,
                    "del", "u", "10.0.0.2:80", "", "drop", "v", "*", "",
                ])
        #expect(
            HealthCall.lease(prober: "p1", leaseMs: 3000, heartbeatMs: 3000, heartbeat: "{}")
                == ["FCALL", "sy_lease", "1", "switchyard:{cfg}:prober:lease", "p1", "3000", "3000", "{}"])
    }
}
