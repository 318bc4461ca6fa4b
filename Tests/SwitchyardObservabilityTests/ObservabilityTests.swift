import Logging
import Metrics
import SwitchyardTestSupport
import Synchronization
import Testing

@testable import SwitchyardObservability

@Suite("metrics registry")
struct MetricsRegistryTests {
    @Test func familiesKeepOneSeriesPerLabelValues() {
        let registry = MetricsRegistry()
        let requests = registry.counters("t_requests_total", labels: ["method", "status"], help: "Requests.")
        requests("GET", "200").increment()
        requests("GET", "200").increment()
        requests("PUT", "422").increment()
        #expect(requests("GET", "200") === requests("GET", "200"))
        let text = String(decoding: registry.exposition(), as: UTF8.self)
        #expect(MetricsText.value(text, "t_requests_total", ["method": "GET", "status": "200"]) == 2)
        #expect(MetricsText.value(text, "t_requests_total", ["method": "PUT", "status": "422"]) == 1)
        #expect(MetricsText.value(text, "t_requests_total", ["method": "DELETE"]) == nil)
        #expect(text.contains("# HELP t_requests_total Requests."))
        #expect(text.contains("# TYPE t_requests_total counter"))
    }

    @Test func timersRecordSecondsIntoTheirBuckets() {
        let registry = MetricsRegistry()
        let timer = registry.timer("t_duration_seconds", [("route", "/a")], buckets: MetricsRegistry.latencyBuckets, help: "Latency.")
        timer.record(duration: .milliseconds(3))
        timer.record(duration: .milliseconds(700))
        let text = String(decoding: registry.exposition(), as: UTF8.self)
        #expect(MetricsText.value(text, "t_duration_seconds_count", ["route": "/a"]) == 2)
        #expect(MetricsText.value(text, "t_duration_seconds_bucket", ["route": "/a", "le": "0.002"]) == 0)
        #expect(MetricsText.value(text, "t_duration_seconds_bucket", ["route": "/a", "le": "0.005"]) == 1)
        #expect(MetricsText.value(text, "t_duration_seconds_bucket", ["route": "/a", "le": "1.0"]) == 2)
        let sum = MetricsText.value(text, "t_duration_seconds_sum", ["route": "/a"]) ?? 0
        #expect(abs(sum - 0.703) < 1e-6)
    }

    @Test func gaugesAreSetNotAdded() {
        let registry = MetricsRegistry()
        let gauge = registry.gauge("t_version", help: "Version.")
        gauge.record(41)
        gauge.record(42)
        #expect(MetricsText.value(String(decoding: registry.exposition(), as: UTF8.self), "t_version") == 42)
    }

    @Test func redisCallsCountFailuresByKind() {
        let registry = MetricsRegistry()
        let calls = RedisCallMetrics(registry: registry, role: "test")
        calls.observe(command: "GET", duration: .milliseconds(1), errorKind: nil)
        calls.observe(command: "GET", duration: .seconds(2), errorKind: "timeout")
        calls.observe(command: "GET", duration: .milliseconds(1), errorKind: "connectionFailed")
        let text = String(decoding: registry.exposition(), as: UTF8.self)
        #expect(MetricsText.value(text, "switchyard_test_redis_command_duration_seconds_count", ["command": "GET"]) == 3)
        #expect(MetricsText.value(text, "switchyard_test_redis_errors_total", ["command": "GET", "kind": "timeout"]) == 1)
        #expect(MetricsText.value(text, "switchyard_test_redis_errors_total", ["command": "GET", "kind": "connection_failed"]) == 1)
    }
}

@Suite("JSON log lines")
struct JSONLogTests {
    @Test func lineHasTimeLevelLabelMessageAndDottedKeys() throws {
        let line = JSONLogHandler.line(
            time: 1_800_000_000_123, level: .notice, label: "switchyard.prober", message: "endpoint \"down\"\n",
            metadata: ["upstream.name": "web", "health": ["reason": "timeout"], "count": .stringConvertible(3)])
        #expect(
            line
                == #"{"time":"2027-01-15T08:00:00.123Z","level":"notice","label":"switchyard.prober","message":"endpoint \"down\"\n","#
                + #""count":"3","health.reason":"timeout","upstream.name":"web"}"# + "\n")
    }

    @Test func secretKeysAreRedacted() {
        let line = JSONLogHandler.line(
            time: 0, level: .info, label: "l", message: "m",
            metadata: ["redis.password": "hunter2", "admin_token": "abc", "auth": ["secret": "s3"], "tls.private_key": "k"])
        #expect(!line.contains("hunter2") && !line.contains("abc") && !line.contains("s3") && !line.contains("\"k\""))
        #expect(line.contains(#""redis.password":"<redacted>""#))
        #expect(line.contains(#""auth.secret":"<redacted>""#))
    }

    @Test func controlCharactersAreEscaped() {
        #expect(JSONLogHandler.quoted("a\u{01}b\u{7F}") == #""a\u0001b\u007f""#)
    }

    @Test func handlerMergesLoggerMetadataAndRespectsItsLevel() {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(label: "t") { line in lines.withLock { $0.append(line) } }
        handler.logLevel = .info
        handler[metadataKey: "prober.id"] = "p1"
        let logger = Logger(label: "t") { _ in handler }
        logger.debug("hidden")
        logger.info("shown", metadata: ["route.id": "r1"])
        let got = lines.withLock { $0 }
        #expect(got.count == 1)
        #expect(got.first?.contains(#""prober.id":"p1","route.id":"r1"}"#) == true)
    }
}
