// The stream role's Prometheus metrics (docs/stream.md, "Metrics"): connections and UDP
// sessions by stream and outcome, open connections and sessions, bytes each way, endpoint connect failures, and
// the versions of the configuration it runs. The per-stream instruments are made once when a
// stream is applied and handed to its connections, so counting is an atomic add, with no
// lookup per connection or per read.

import Metrics
import SwitchyardObservability
import Synchronization

public final class StreamMetrics: Sendable {
    public let registry: MetricsRegistry
    private let connections: MetricFamily<Metrics.Counter>
    private let active: MetricFamily<Metrics.Gauge>
    private let bytes: MetricFamily<Metrics.Counter>
    private let connectFailures: MetricFamily<Metrics.Counter>
    private let sessionsActive: MetricFamily<Metrics.Gauge>
    private let applied: MetricFamily<Metrics.Gauge>
    private let listeners: MetricFamily<Metrics.Gauge>
    private let perStream = Mutex([String: StreamInstruments]())

    public init(registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        connections = registry.counters(
            "switchyard_stream_connections_total", labels: ["stream", "protocol", "result"],
            help:
                "New TCP connections and UDP sessions (a new client address) by stream and result: accepted, refused (allow/deny), unavailable (no endpoint in rotation)."
        )
        active = registry.gauges(
            "switchyard_stream_connections_active", labels: ["stream"], help: "Open relayed TCP connections by stream.")
        bytes = registry.counters(
            "switchyard_stream_bytes_total", labels: ["stream", "direction"],
            help: "Bytes relayed by stream: in = from clients to endpoints, out = from endpoints to clients.")
        connectFailures = registry.counters(
            "switchyard_stream_connect_failures_total", labels: ["stream", "endpoint"],
            help: "Connections to an endpoint that failed (refused, timed out), by stream and endpoint; the client's connection is closed.")
        sessionsActive = registry.gauges(
            "switchyard_stream_udp_sessions_active", labels: ["stream"], help: "Open UDP sessions by stream.")
        applied = registry.gauges(
            "switchyard_stream_applied_version", labels: ["kind"],
            help:
                "The versions the running configuration was loaded at: config (version: streams and upstreams), health (health_version)."
        )
        listeners = registry.gauges(
            "switchyard_stream_listeners", labels: ["protocol"], help: "Open listen ports by protocol.")
    }

    /// The instruments of one stream (made on first use, then the same object).
    func instruments(_ id: String, _ proto: String) -> StreamInstruments {
        perStream.withLock { cache in
            if let i = cache[id + "/" + proto] { return i }
            let i = StreamInstruments(
                accepted: connections(id, proto, "accepted"), refused: connections(id, proto, "refused"),
                unavailable: connections(id, proto, "unavailable"), active: active(id), bytesIn: bytes(id, "in"),
                bytesOut: bytes(id, "out"), sessionsActive: sessionsActive(id),
                connectFailures: { [connectFailures] endpoint in connectFailures(id, endpoint) })
            cache[id + "/" + proto] = i
            return i
        }
    }

    /// After each reload: the configuration and health versions it reflects.
    public func applied(config: Int64, health: Int64) {
        applied("config").record(config)
        applied("health").record(health)
    }

    func listening(tcp: Int, udp: Int) {
        listeners("tcp").record(tcp)
        listeners("udp").record(udp)
    }
}

/// One stream's instruments. `open`/`close` keep the gauges of open connections and sessions.
final class StreamInstruments: Sendable {
    let accepted: Metrics.Counter
    let refused: Metrics.Counter
    let unavailable: Metrics.Counter
    let bytesIn: Metrics.Counter
    let bytesOut: Metrics.Counter
    private let active: Metrics.Gauge
    private let sessionsActive: Metrics.Gauge
    private let openConnections = Atomic<Int>(0)
    private let openSessions = Atomic<Int>(0)
    let connectFailures: @Sendable (String) -> Metrics.Counter

    init(
        accepted: Metrics.Counter, refused: Metrics.Counter, unavailable: Metrics.Counter, active: Metrics.Gauge,
        bytesIn: Metrics.Counter, bytesOut: Metrics.Counter, sessionsActive: Metrics.Gauge,
        connectFailures: @escaping @Sendable (String) -> Metrics.Counter
    ) {
        self.accepted = accepted
        self.refused = refused
        self.unavailable = unavailable
        self.active = active
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.sessionsActive = sessionsActive
        self.connectFailures = connectFailures
    }

    func connectionOpened() { active.record(openConnections.add(1, ordering: .relaxed).newValue) }
    func connectionClosed() { active.record(openConnections.subtract(1, ordering: .relaxed).newValue) }
    func sessionOpened() { sessionsActive.record(openSessions.add(1, ordering: .relaxed).newValue) }
    func sessionClosed() { sessionsActive.record(openSessions.subtract(1, ordering: .relaxed).newValue) }
}
