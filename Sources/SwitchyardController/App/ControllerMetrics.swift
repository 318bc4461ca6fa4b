// The controller's Prometheus metrics (docs/metrics.md, "Controller"): API requests by
// method, route template and status, their latency, Redis calls and failures, and the
// configuration version. Labels are bounded: the route is the template the router matched
// (`/api/v1/routes/{id}`, never the raw path; "unmatched" for anything else), the method one
// of the HTTP methods or "other", the Redis command a fixed word (`RedisClient.commandName`).

import Hummingbird
import Metrics
import SwitchyardObservability
import SwitchyardRedis

public final class ControllerMetrics: Sendable {
    public let registry: MetricsRegistry
    private let configVersion: Gauge
    private let requests: MetricFamily<Counter>
    private let durations: MetricFamily<Metrics.Timer>
    private let redisCalls: RedisCallMetrics
    private let groups: MetricFamily<Gauge>

    public init(registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        configVersion = registry.gauge(
            "switchyard_controller_config_version", help: "Configuration version in Redis, read at the last scrape (-1: not read yet).")
        configVersion.record(-1)
        requests = registry.counters(
            "switchyard_controller_requests_total", labels: ["method", "route", "status"],
            help: "Admin API requests answered, by method, route template and status code.")
        durations = registry.timers(
            "switchyard_controller_request_duration_seconds", labels: ["method", "route"], buckets: MetricsRegistry.latencyBuckets,
            help: "Admin API request latency, by method and route template.")
        redisCalls = RedisCallMetrics(registry: registry, role: "controller")
        groups = registry.gauges(
            "switchyard_controller_group_info", labels: ["group"], help: "1, labelled with the group the controller serves (--group).")
    }

    /// Names the group the controller serves (once, at start).
    public func serving(group: String) { groups(group).record(1) }

    /// Labels of one request: the method (or "other") and the route template (or "unmatched").
    static func labels(method: HTTPRequest.Method, endpointPath: String?) -> (method: String, route: String) {
        let known: Set<String> = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]
        let name = method.rawValue
        let route: String
        if let endpointPath, endpointPath != "NotFound", !endpointPath.isEmpty {
            route = endpointPath
        } else {
            route = "unmatched"
        }
        return (known.contains(name) ? name : "other", route)
    }

    func request(method: String, route: String, status: Int, duration: Duration) {
        requests(method, route, String(status)).increment()
        durations(method, route).record(duration: duration)
    }

    /// The RedisClient observer of the controller's pool.
    public var redisObserver: RedisObserver {
        { [redisCalls] command, duration, error in
            redisCalls.observe(command: command, duration: duration, errorKind: error?.code.rawValue)
        }
    }

    /// The configuration version last read from Redis.
    public func configVersion(_ version: Int64) {
        configVersion.record(version)
    }
}

/// Counts every request the admin listener answers, 404s included: it wraps the router's
/// whole responder (router middleware only sees requests that matched a route).
struct MetricsResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context: RequestContext {
    typealias Context = Inner.Context

    let inner: Inner
    let metrics: ControllerMetrics

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await inner.respond(to: request, context: context)
            let (method, route) = ControllerMetrics.labels(method: request.method, endpointPath: context.endpointPath)
            metrics.request(method: method, route: route, status: response.status.code, duration: ContinuousClock.now - start)
            return response
        } catch {
            let (method, route) = ControllerMetrics.labels(method: request.method, endpointPath: context.endpointPath)
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(method: method, route: route, status: status, duration: ContinuousClock.now - start)
            throw error
        }
    }
}
