// The prober's Prometheus metrics (docs/metrics.md, "Prober"): probes by type and result,
// probe latency, state transitions, endpoints by state, whether this prober holds the lease,
// the age of its last heartbeat, and its Redis calls. The probe thread only increments
// (series made up front, no lookups per probe); gauges that are read (endpoints by state,
// heartbeat age) are set when /metrics is scraped, on SwiftNIO's threads.

import Metrics
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ProberMetrics: Sendable {
    public let registry: MetricsRegistry
    let proberID: String

    struct KindInstruments: Sendable {
        var success: Counter
        var failure: Counter
        var duration: Metrics.Timer
    }

    private let byKind: [HealthCheck.Kind: KindInstruments]
    private let transitions: [HealthState: Counter]
    private let endpoints: [HealthState: Gauge]
    private let leader: Gauge
    private let heartbeatAge: Gauge
    let redisCalls: RedisCallMetrics
    /// Monotonic ns of the last heartbeat this prober wrote (its start until the first).
    private let lastHeartbeat = Atomic<Int64>(0)

    /// Probe latency: 1 ms to 30 s (timeouts are up to 60 s; the last bucket catches them).
    static let probeBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30),
    ]

    public init(proberID: String, registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        self.proberID = proberID
        let probes = registry.counters(
            "switchyard_prober_probes_total", labels: ["type", "result"],
            help: "Health probes finished, by check type (http, https, tcp) and result (success, failure).")
        let durations = registry.timers(
            "switchyard_prober_probe_duration_seconds", labels: ["type"], buckets: Self.probeBuckets,
            help: "Health probe latency from start to verdict (failures included), by check type.")
        var byKind: [HealthCheck.Kind: KindInstruments] = [:]
        for kind in HealthCheck.Kind.allCases {
            byKind[kind] = KindInstruments(
                success: probes(kind.rawValue, "success"), failure: probes(kind.rawValue, "failure"),
                duration: durations(kind.rawValue))
        }
        self.byKind = byKind
        let transitionFamily = registry.counters(
            "switchyard_prober_transitions_total", labels: ["to"],
            help: "Endpoint health transitions this prober decided, by the new state (up, down).")
        transitions = [.up: transitionFamily("up"), .down: transitionFamily("down")]
        let endpointFamily = registry.gauges(
            "switchyard_prober_endpoints", labels: ["state"],
            help: "Probed endpoints by decided state (up, down, unknown); a standby prober counts all as unknown.")
        endpoints = [.up: endpointFamily("up"), .down: endpointFamily("down"), .unknown: endpointFamily("unknown")]
        leader = registry.gauge(
            "switchyard_prober_leader", [("prober", proberID)], help: "1 while this prober holds the lease (the active prober), else 0.")
        leader.record(0)
        heartbeatAge = registry.gauge(
            "switchyard_prober_heartbeat_age_seconds", [("prober", proberID)],
            help: "Seconds since this prober last wrote the heartbeat (renewed the lease); since its start if never.")
        redisCalls = RedisCallMetrics(registry: registry, role: "prober")
        lastHeartbeat.store(monotonicNanoseconds(), ordering: .relaxed)
    }

    /// One probe finished (probe thread).
    func probe(_ kind: HealthCheck.Kind, success: Bool, nanoseconds: Int64) {
        guard let instruments = byKind[kind] else { return }
        (success ? instruments.success : instruments.failure).increment()
        instruments.duration.recordNanoseconds(max(0, nanoseconds))
    }

    /// An endpoint moved to `state` (probe thread).
    func transition(to state: HealthState) {
        transitions[state]?.increment()
    }

    /// The lease is held (`true`, the heartbeat was just written) or not.
    func lease(held: Bool) {
        leader.record(held ? 1 : 0)
        if held { lastHeartbeat.store(monotonicNanoseconds(), ordering: .relaxed) }
    }

    /// Sets the read gauges (at scrape time).
    func refresh(up: Int, down: Int, targets: Int) {
        endpoints[.up]?.record(up)
        endpoints[.down]?.record(down)
        endpoints[.unknown]?.record(max(0, targets - up - down))
        let age = monotonicNanoseconds() - lastHeartbeat.load(ordering: .relaxed)
        heartbeatAge.record(Double(age) / 1e9)
    }

    /// The RedisClient observer of the prober's pool.
    var redisObserver: RedisObserver {
        { [redisCalls] command, duration, error in
            redisCalls.observe(command: command, duration: duration, errorKind: error?.code.rawValue)
        }
    }
}

func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
