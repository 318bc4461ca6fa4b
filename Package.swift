// swift-tools-version:6.0
//
// Switchyard's controller, Redis client and CLI (Linux only: the prober runs on epoll).
// One job per target:
//   SwitchyardCore        pure model, validation, key schema, encoding (no I/O)
//   CPCRE1 / CPCRE2       system libraries, wrapped by exactly one Swift module each
//                         (PCRE1 is what the edges' lua module links for ngx.re; PCRE2 for --regex-engine pcre2)
//   SwitchyardRedis       small RESP2 client on SwiftNIO (pipelined, optional TLS via swift-nio-ssl)
//   SwitchyardController  the Hummingbird 2 admin API
//   SwitchyardObservability  Prometheus metrics for the Swift roles (swift-metrics API, swift-prometheus
//                         registry), the small /metrics listener, JSON log lines (LogFormat)
//   CCurl                 libcurl (https checks) and epoll helpers, wrapped by SwitchyardProber only
//   CSSL                  libcrypto (OpenSSL 3), wrapped by SwitchyardCore/OpenSSL.swift only
//   SwitchyardProber      active health checks (own http/tcp checker + curl for https, one thread), results to Redis
//   SwitchyardCLI         the `switchyard` executable (controller, edge, prober)
//   SwitchyardKube        small Kubernetes client (kubeconfig, list/watch, reflector, leases); no Switchyard types
//   SwitchyardKubeSource  the `switchyard kube` role (cluster -> Redis) and `switchyard apply` (files -> admin API)
//   SwitchyardClient      the CLI client of the admin API (get, apply, diff, delete, history, revert, explain)

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "switchyard",
    products: [
        .executable(name: "switchyard", targets: ["SwitchyardCLI"]),
        .library(name: "SwitchyardCore", targets: ["SwitchyardCore"]),
        .library(name: "SwitchyardRedis", targets: ["SwitchyardRedis"]),
        .library(name: "SwitchyardController", targets: ["SwitchyardController"]),
        .library(name: "SwitchyardProber", targets: ["SwitchyardProber"]),
        .library(name: "SwitchyardKube", targets: ["SwitchyardKube"]),
        .library(name: "SwitchyardKubeSource", targets: ["SwitchyardKubeSource"]),
        .library(name: "SwitchyardClient", targets: ["SwitchyardClient"]),
        .library(name: "SwitchyardStream", targets: ["SwitchyardStream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CPCRE1", pkgConfig: "libpcre", providers: [.apt(["libpcre3-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "SwitchyardCore",
            dependencies: ["CPCRE1", "CPCRE2", "CSSL"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardRedis",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardObservability",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardController",
            dependencies: [
                "SwitchyardCore",
                "SwitchyardObservability",
                "SwitchyardRedis",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),  // explain asks an edge
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),  // SIGHUP reloads the tokens file
                .product(name: "Yams", package: "Yams"),  // the tokens file may be YAML
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardProber",
            dependencies: [
                "CCurl",
                "SwitchyardCore",
                "SwitchyardObservability",
                "SwitchyardRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SwitchyardCLI",
            dependencies: [
                "SwitchyardCore",
                "SwitchyardController",
                "SwitchyardProber",
                "SwitchyardObservability",
                "SwitchyardKubeSource",
                "SwitchyardClient",
                "SwitchyardStream",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardKube",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardKubeSource",
            dependencies: [
                "SwitchyardCore",
                "SwitchyardRedis",
                "SwitchyardController",
                "SwitchyardKube",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchyardClient",
            dependencies: [
                "SwitchyardCore",
                "SwitchyardController",
                "SwitchyardKubeSource",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The TCP/UDP stream role (issue 23, docs/stream.md): NIO listeners and relays that follow Redis.
        .target(
            name: "SwitchyardStream",
            dependencies: [
                "SwitchyardCore",
                "SwitchyardRedis",
                "SwitchyardObservability",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test helpers (withTemporaryRedis, repo paths); used by the test targets only.
        .target(
            name: "SwitchyardTestSupport",
            dependencies: ["SwitchyardRedis"],
            path: "Tests/SwitchyardTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardCoreTests",
            dependencies: ["SwitchyardCore", "SwitchyardTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardProberTests",
            dependencies: ["SwitchyardProber", "SwitchyardCore", "SwitchyardObservability", "SwitchyardRedis", "SwitchyardTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardStreamTests",
            dependencies: [
                "SwitchyardStream", "SwitchyardCore", "SwitchyardRedis", "SwitchyardTestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardObservabilityTests",
            dependencies: ["SwitchyardObservability", "SwitchyardTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardRedisTests",
            dependencies: ["SwitchyardRedis", "SwitchyardTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Runs the built `switchyard` executable (edge rendering/exec, controller lifecycle).
        .testTarget(
            name: "SwitchyardCLITests",
            dependencies: ["SwitchyardTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchyardControllerTests",
            dependencies: [
                "SwitchyardController",
                "SwitchyardCore",
                "SwitchyardObservability",
                "SwitchyardRedis",
                "SwitchyardTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The kube role's pieces: YAML, the apply plan, the writer against a real redis-server.
        .testTarget(
            name: "SwitchyardKubeSourceTests",
            dependencies: ["SwitchyardKubeSource", "SwitchyardCore", "SwitchyardController", "SwitchyardRedis", "SwitchyardTestSupport"],
            swiftSettings: swiftSettings
        ),
        // The CLI client's pure parts: settings, document files, client-side diff, output.
        .testTarget(
            name: "SwitchyardClientTests",
            dependencies: ["SwitchyardClient", "SwitchyardCore"],
            swiftSettings: swiftSettings
        ),
        // Pure unit tests, plus tests against the Kubernetes API-server double (e2e/kubeapi).
        .testTarget(
            name: "SwitchyardKubeTests",
            dependencies: ["SwitchyardKube"],
            swiftSettings: swiftSettings
        ),
    ]
)
