import SwitchyardCore
import SwitchyardObservability
import SwitchyardTestSupport
import Testing

@testable import SwitchyardProber

@Suite("prober metrics")
struct ProberMetricsTests {
    func text(_ metrics: ProberMetrics) -> String { String(decoding: metrics.registry.exposition(), as: UTF8.self) }

    @Test func probesAreCountedByTypeAndResult() {
        let metrics = ProberMetrics(proberID: "p1")
        metrics.probe(.http, success: true, nanoseconds: 3_000_000)
        metrics.probe(.http, success: false, nanoseconds: 100_000_000)
        metrics.probe(.tcp, success: true, nanoseconds: 1_000_000)
        let t = text(metrics)
        #expect(MetricsText.value(t, "switchyard_prober_probes_total", ["type": "http", "result": "success"]) == 1)
        #expect(MetricsText.value(t, "switchyard_prober_probes_total", ["type": "http", "result": "failure"]) == 1)
        #expect(MetricsText.value(t, "switchyard_prober_probes_total", ["type": "https", "result": "success"]) == 0)
        #expect(MetricsText.value(t, "switchyard_prober_probe_duration_seconds_count", ["type": "http"]) == 2)
        #expect(MetricsText.value(t, "switchyard_prober_probe_duration_seconds_bucket", ["type": "http", "le": "0.005"]) == 1)
    }

    @Test func leaseAndEndpointGauges() {
        let metrics = ProberMetrics(proberID: "p1")
        #expect(MetricsText.value(text(metrics), "switchyard_prober_leader", ["prober": "p1"]) == 0)
        metrics.lease(held: true)
        metrics.refresh(up: 3, down: 1, targets: 6)
        let t = text(metrics)
        #expect(MetricsText.value(t, "switchyard_prober_leader", ["prober": "p1"]) == 1)
        #expect(MetricsText.value(t, "switchyard_prober_endpoints", ["state": "up"]) == 3)
        #expect(MetricsText.value(t, "switchyard_prober_endpoints", ["state": "down"]) == 1)
        #expect(MetricsText.value(t, "switchyard_prober_endpoints", ["state": "unknown"]) == 2)
        let age = MetricsText.value(t, "switchyard_prober_heartbeat_age_seconds", ["prober": "p1"]) ?? -1
        #expect(age >= 0 && age < 5)
        metrics.lease(held: false)
        #expect(MetricsText.value(text(metrics), "switchyard_prober_leader", ["prober": "p1"]) == 0)
    }
}
