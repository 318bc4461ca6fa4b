// One process's metrics: instruments are swift-metrics objects (Counter, Gauge, Timer), backed
// by a swift-prometheus registry that renders the text exposition format for GET /metrics.
//
// Every role owns its registry (nothing is bootstrapped globally), so tests can build several
// controllers or probers in one process and read each one's numbers. Instruments are made
// through the registry with their HELP text, then wrapped in the swift-metrics types, so the
// code that counts only sees the swift-metrics API.

import Metrics
import Prometheus
import Synchronization

public final class MetricsRegistry: Sendable {
    /// The swift-prometheus registry holding every family of this process.
    public let prometheus: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    public init() {
        prometheus = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: prometheus)
    }

    /// A counter (`name` should end in `_total`). The same name and labels give the same series.
    public func counter(_ name: String, _ labels: [(String, String)] = [], help: String) -> Metrics.Counter {
        Metrics.Counter(
            label: name, dimensions: labels, handler: prometheus.makeCounter(name: name, labels: labels, help: help), factory: factory)
    }

    /// A gauge: a value that goes up and down (`record` sets it).
    public func gauge(_ name: String, _ labels: [(String, String)] = [], help: String) -> Metrics.Gauge {
        Metrics.Gauge(
            label: name, dimensions: labels, aggregate: false, handler: prometheus.makeGauge(name: name, labels: labels, help: help),
            factory: factory)
    }

    /// A histogram of durations in seconds (`name` should end in `_seconds`); every series of
    /// one name must use the same buckets.
    public func timer(_ name: String, _ labels: [(String, String)] = [], buckets: [Duration], help: String) -> Metrics.Timer {
        let histogram = prometheus.makeDurationHistogram(name: name, labels: labels, buckets: buckets, help: help)
        return Metrics.Timer(label: name, dimensions: labels, handler: histogram, factory: factory)
    }

    /// The text exposition format (version 0.0.4) of every series.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        prometheus.emit(into: &buffer)
        return buffer
    }

    /// Buckets for request and Redis latencies: 0.5 ms to 10 s.
    public static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10),
    ]

    /// The content type of `exposition()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// A labelled family whose series are made on first use and kept: `family("GET", "200")`
/// answers the same instrument every time, without the registry's lookup.
public final class MetricFamily<Instrument: AnyObject & Sendable>: Sendable {
    private let make: @Sendable ([(String, String)]) -> Instrument
    private let labelNames: [String]
    private let series = Mutex([[String]: Instrument]())

    init(labelNames: [String], make: @escaping @Sendable ([(String, String)]) -> Instrument) {
        self.labelNames = labelNames
        self.make = make
    }

    /// The series with these label values, in the order of the family's label names.
    public func callAsFunction(_ values: String...) -> Instrument {
        precondition(values.count == labelNames.count, "label values do not match the label names")
        return series.withLock { cache in
            if let instrument = cache[values] { return instrument }
            let instrument = make(Array(zip(labelNames, values)))
            cache[values] = instrument
            return instrument
        }
    }
}

extension MetricsRegistry {
    public func counters(_ name: String, labels: [String], help: String) -> MetricFamily<Metrics.Counter> {
        MetricFamily(labelNames: labels) { [self] in counter(name, $0, help: help) }
    }

    public func gauges(_ name: String, labels: [String], help: String) -> MetricFamily<Metrics.Gauge> {
        MetricFamily(labelNames: labels) { [self] in gauge(name, $0, help: help) }
    }

    public func timers(_ name: String, labels: [String], buckets: [Duration], help: String) -> MetricFamily<Metrics.Timer> {
        MetricFamily(labelNames: labels) { [self] in timer(name, $0, buckets: buckets, help: help) }
    }
}
