import Hummingbird
import HummingbirdTesting
import SwitchyardObservability
import SwitchyardTestSupport
import Testing

@testable import SwitchyardController

/// The admin API's request metrics, through the real router and a temporary Redis: labels
/// are the route template (never the raw path), 4xx answers and unmatched paths count too.
@Suite("controller metrics")
struct ControllerMetricsTests {
    @Test func labelsUseTheTemplateAndBoundTheMethod() {
        #expect(ControllerMetrics.labels(method: .get, endpointPath: "/api/v1/routes/{id}") == ("GET", "/api/v1/routes/{id}"))
        #expect(ControllerMetrics.labels(method: .get, endpointPath: "NotFound") == ("GET", "unmatched"))
        #expect(ControllerMetrics.labels(method: .get, endpointPath: nil) == ("GET", "unmatched"))
        #expect(ControllerMetrics.labels(method: HTTPRequest.Method("BREW")!, endpointPath: "/healthz") == ("other", "/healthz"))
    }

    @Test func requestsAreCountedByTemplateAndStatus() async throws {
        let metrics = ControllerMetrics()
        try await withTemporaryRedis { server async throws in
            let configuration = testConfiguration(server, token: "t")
            let app = try await buildApplication(configuration: configuration, metrics: metrics)
            try await app.test(.router) { client in
                var headers = HTTPFields()
                headers[.authorization] = "Bearer t"
                headers[.contentType] = "application/json"
                for name in ["a", "b"] {
                    try await client.execute(uri: "/api/v1/routes/\(name)", method: .get, headers: headers) {
                        #expect($0.status == .notFound)
                    }
                }
                try await client.execute(
                    uri: "/api/v1/routes/bad", method: .put, headers: headers, body: ByteBuffer(string: #"{"host":"x.test"}"#)
                ) { #expect($0.status == .unprocessableContent) }
                try await client.execute(uri: "/no/such/path/42", method: .get, headers: headers) { #expect($0.status == .notFound) }
                try await client.execute(uri: "/api/v1/routes", method: .get) { #expect($0.status == .unauthorized) }
            }
        }
        let text = String(decoding: metrics.registry.exposition(), as: UTF8.self)
        let total = "switchyard_controller_requests_total"
        #expect(MetricsText.value(text, total, ["method": "GET", "route": "/api/v1/routes/{id}", "status": "404"]) == 2)
        #expect(MetricsText.value(text, total, ["method": "PUT", "route": "/api/v1/routes/{id}", "status": "422"]) == 1)
        #expect(MetricsText.value(text, total, ["method": "GET", "route": "unmatched", "status": "404"]) == 1)
        #expect(MetricsText.value(text, total, ["method": "GET", "route": "/api/v1/routes", "status": "401"]) == 1)
        #expect(!text.contains("/api/v1/routes/a") && !text.contains("/no/such/path"))
        #expect(
            MetricsText.value(
                text, "switchyard_controller_request_duration_seconds_count", ["method": "GET", "route": "/api/v1/routes/{id}"]) == 2)
        // GET /api/v1/routes/{id} reads Redis: those calls are timed by command
        #expect((MetricsText.value(text, "switchyard_controller_redis_command_duration_seconds_count", ["command": "GET"]) ?? 0) >= 2)
    }

    @Test func redisFailuresAreCountedByKind() async throws {
        let metrics = ControllerMetrics()
        // nothing listens on this port: every call fails to connect
        var configuration = Configuration(
            redisPort: 1, adminToken: "t", requestTimeout: .seconds(2), redisTimeout: .milliseconds(500),
            functionsPath: repositoryRoot().appendingPathComponent("redis/switchyard.lua").path, logLevel: .critical)
        configuration.redisConnectTimeout = .milliseconds(200)
        let app = try await buildApplication(configuration: configuration, metrics: metrics)
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.authorization] = "Bearer t"
            try await client.execute(uri: "/api/v1/routes/x", method: .get, headers: headers) { #expect($0.status == .serviceUnavailable) }
        }
        let text = String(decoding: metrics.registry.exposition(), as: UTF8.self)
        let failures = MetricsText.samples(text).filter {
            $0.name == "switchyard_controller_redis_errors_total" && $0.labels["command"] == "GET"
        }
        #expect(failures.reduce(0) { $0 + $1.value } >= 1)
        #expect(MetricsText.value(text, "switchyard_controller_requests_total", ["route": "/api/v1/routes/{id}", "status": "503"]) == 1)
    }
}
