// Redis calls of a Swift role: latency by command and failures by command and kind, under
// the role's prefix (`switchyard_controller_redis_...`, `switchyard_prober_redis_...`).

import Metrics

public final class RedisCallMetrics: Sendable {
    private let durations: MetricFamily<Metrics.Timer>
    private let errors: MetricFamily<Counter>

    /// `role`: "controller" or "prober".
    public init(registry: MetricsRegistry, role: String) {
        durations = registry.timers(
            "switchyard_\(role)_redis_command_duration_seconds", labels: ["command"], buckets: MetricsRegistry.latencyBuckets,
            help: "Redis calls of the \(role) (failed ones included), by command.")
        errors = registry.counters(
            "switchyard_\(role)_redis_errors_total", labels: ["command", "kind"],
            help: "Redis calls of the \(role) that got no answer (connection failed or lost, timeout, ...), by command and kind.")
    }

    /// One call ended; `errorKind` is nil when Redis answered (error replies are answers).
    /// Kinds are written in snake case (`connectionFailed` -> `connection_failed`).
    public func observe(command: String, duration: Duration, errorKind: String?) {
        durations(command).record(duration: duration)
        if let errorKind { errors(command, Self.snakeCase(errorKind)).increment() }
    }

    static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                if !out.isEmpty { out.append("_") }
                out += c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }
}
