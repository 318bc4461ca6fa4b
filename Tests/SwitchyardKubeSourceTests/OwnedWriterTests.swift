import Foundation
import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardKubeSource
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

/// The kube role's writer against a real redis-server and the real Function library.
@Suite("kube role: writing only differences, through sy_apply")
struct OwnedWriterTests {
    static let owner = "k8s/switchyard"

    func withStore<T>(_ body: (ConfigStore, RedisClient) async throws -> T) async throws -> T {
        try await withTemporaryRedis { server in
            let redis = RedisClient(configuration: server.configuration())
            let library = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
            let store = ConfigStore(redis: redis, library: library, logger: Logger(label: "test"))
            try await store.loadLibrary()
            do {
                let result = try await body(store, redis)
                await redis.close()
                return result
            } catch {
                await redis.close()
                throw error
            }
        }
    }

    /// Ingresses `names`, each with one exact path to Service `svc` (fields today's model takes).
    func desired(_ names: [String], certificate: (String, String)? = nil) -> KubeDesired {
        var state = ClusterState()
        state.insert(
            .ingressClass(
                K8sIngressClass(meta: K8sMeta(namespace: "", name: "switchyard"), controller: KubeTranslationOptions.defaultControllerName))
        )
        state.insert(
            .service(
                K8sService(meta: K8sMeta(namespace: "default", name: "svc"), ports: [K8sServicePort(port: 80, targetPort: .number(8080))])))
        state.insert(
            .endpointSlice(
                K8sEndpointSlice(
                    meta: K8sMeta(namespace: "default", name: "svc-1", labels: [K8sEndpointSlice.serviceNameLabel: "svc"]),
                    addressType: "IPv4",
                    endpoints: [K8sSliceEndpoint(addresses: ["127.0.0.1"], ready: true)], ports: [K8sEndpointPort(port: 8080)])))
        for name in names {
            var ingress = K8sIngress(meta: K8sMeta(namespace: "default", name: name), className: "switchyard")
            let at = "spec.rules[0].http.paths[0]"
            ingress.rules = [
                K8sIngressRule(
                    host: "\(name).example",
                    paths: [
                        K8sIngressPath(
                            path: "/", pathType: .exact, backend: K8sBackend(service: "svc", port: .number(80), field: "\(at).backend"),
                            field: at)
                    ],
                    field: "spec.rules[0]")
            ]
            if certificate != nil { ingress.tls = [K8sIngressTLS(hosts: ["\(name).example"], secretName: "tls", field: "spec.tls[0]")] }
            state.insert(.ingress(ingress))
        }
        if let (cert, key) = certificate {
            state.insert(.secret(K8sTLSSecret(meta: K8sMeta(namespace: "default", name: "tls"), certificate: cert, key: key)))
        }
        var cache = KubeCertificateCache()
        let lowered = KubeLowering(now: Int64(Date().timeIntervalSince1970)).lower(KubeTranslator().translate(state), cache: &cache)
        #expect(lowered.problems.filter { $0.severity == .error } == [])
        return lowered
    }

    func ids(_ redis: RedisClient, _ kind: ObjectKind) async throws -> Set<String> {
        Set((try await redis.send(["SMEMBERS", KeySchema.default.index(kind)])).array?.compactMap(\.text) ?? [])
    }

    @Test func anUnchangedClusterWritesNothingAndARestartWritesNothing() async throws {
        try await withStore { store, redis in
            var writer = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            let wanted = desired(["a", "b"])
            let first = try await writer.sync(wanted)
            #expect(first.puts == 3)  // two routes, one upstream
            #expect(first.calls == 1)
            let version = try await store.version()
            #expect(try await ids(redis, .route) == Set(wanted.routes.map(\.id)))

            let again = try await writer.sync(wanted)
            #expect(again.calls == 0 && again.puts == 0 && again.deletes == 0)
            var restarted = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            let afterRestart = try await restarted.sync(wanted)
            #expect(afterRestart.calls == 0)
            #expect(try await store.version() == version)
        }
    }

    @Test func aVanishedIngressIsDeletedAndItsUpstreamKeptWhileUsed() async throws {
        try await withStore { store, redis in
            var writer = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            _ = try await writer.sync(desired(["a", "b"]))
            let one = desired(["a"])
            let outcome = try await writer.sync(one)
            #expect(outcome.deletes == 1)
            #expect(outcome.puts == 0)
            #expect(try await ids(redis, .route) == Set(one.routes.map(\.id)))
            #expect(try await ids(redis, .upstream) == Set(one.upstreams.map(\.name)))
            let none = try await writer.sync(desired([]))
            #expect(none.deletes == 2)  // the last route, then its upstream
            #expect(try await ids(redis, .route).isEmpty)
            #expect(try await ids(redis, .upstream).isEmpty)
        }
    }

    @Test func onStartWhatItOwnsAndTheClusterLostIsDeletedNothingElse() async throws {
        try await withStore { store, redis in
            var before = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            let both = desired(["a", "b"])
            _ = try await before.sync(both)
            // the owners hash as sy_apply keeps it (k8s-model.md §4); another installation's object
            for route in both.routes {
                _ = try await redis.send(["HSET", KeySchema.default.base + "owners", "route:\(route.id)", Self.owner])
            }
            for upstream in both.upstreams {
                _ = try await redis.send(["HSET", KeySchema.default.base + "owners", "upstream:\(upstream.name)", Self.owner])
            }
            _ = try await store.put(
                Upstream(name: "hand-made", endpoints: [Endpoint(address: try EndpointAddress.parse("127.0.0.9:80").get())]))
            _ = try await store.put(Upstream(name: "theirs", endpoints: []))
            _ = try await redis.send(["HSET", KeySchema.default.base + "owners", "upstream:theirs", "k8s/other"])

            // restarted while Ingress b was deleted
            var after = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            let one = desired(["a"])
            let outcome = try await after.sync(one)
            #expect(outcome.deletes == 1)
            #expect(outcome.puts == 0)
            #expect(try await ids(redis, .route) == Set(one.routes.map(\.id)))
            #expect(try await ids(redis, .upstream) == Set(one.upstreams.map(\.name) + ["hand-made", "theirs"]))
        }
    }

    @Test func bigChangesAreSplitIntoConsistentCalls() async throws {
        try await withStore { store, redis in
            var writer = OwnedWriter(store: store, owner: Self.owner, cipher: nil)
            writer.chunkSize = 2
            let many = desired(["a", "b", "c", "d", "e"])
            let outcome = try await writer.sync(many)
            #expect(outcome.puts == 6)
            #expect(outcome.calls == 3)
            #expect(try await ids(redis, .route).count == 5)
        }
    }

    @Test func certificatesAreEncryptedAndNotRewrittenWhileUnchanged() async throws {
        try await withStore { store, redis in
            let cipher = try CertificateKeyCipher.parse(String(repeating: "ab", count: 32)).get()
            let now = Int64(Date().timeIntervalSince1970)
            let pair = OpenSSL.generate(
                CertificateRequest(
                    commonName: "a", dnsNames: ["a.example"], notBefore: now - 3600, notAfter: now + 86400 * 30, isCA: false, key: .ecP256,
                    issuer: nil))!
            var writer = OwnedWriter(store: store, owner: Self.owner, cipher: cipher)
            let wanted = desired(["a"], certificate: pair)
            #expect(wanted.certificates.count == 1)
            let first = try await writer.sync(wanted)
            #expect(first.puts == 3)  // certificate, route, upstream
            let id = wanted.certificates[0].id
            let stored = try await store.certificate(id)
            #expect(stored?.sealedKey?.hasPrefix("aes-256-gcm:") == true)
            #expect((try await redis.send(["GET", KeySchema.default.certificate(id)])).text?.contains("PRIVATE KEY") == false)
            #expect(try await writer.sync(wanted).calls == 0)
            var restarted = OwnedWriter(store: store, owner: Self.owner, cipher: cipher)
            #expect(try await restarted.sync(wanted).calls == 0)
        }
    }
}
