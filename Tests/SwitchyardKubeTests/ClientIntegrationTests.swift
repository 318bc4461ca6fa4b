// The client, the reflector and the leader elector against the API-server double over HTTPS.

import Foundation
import Synchronization
import Testing

@testable import SwitchyardKube

private func service(_ name: String, labels: [String: String]? = nil) -> Service {
    Service(
        metadata: ObjectMeta(name: name, namespace: "default", labels: labels),
        spec: ServiceSpec(selector: ["app": name], ports: [ServicePort(name: "http", port: 80, targetPort: .int(8080))]))
}

private func apiError(_ body: () async throws -> Void) async -> KubeError? {
    do {
        try await body()
        return nil
    } catch let error as KubeError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

final class Locked<T: Sendable>: Sendable {
    private let state: Mutex<T>
    init(_ value: T) { state = Mutex(value) }
    func withLock<R>(_ body: (inout T) -> R) -> R { state.withLock { body(&$0) } }
}

final class Recorder<Object: KubeObject>: Sendable {
    private let state = Mutex<(cache: ObjectCache<Object>, changes: [String], resyncs: Int)>((ObjectCache(), [], 0))
    var cache: ObjectCache<Object> { state.withLock { $0.cache } }
    var changes: [String] { state.withLock { $0.changes } }
    var resyncs: Int { state.withLock { $0.resyncs } }
    func record(_ cache: ObjectCache<Object>, _ changes: [CacheChange<Object>], resync: Bool) {
        state.withLock {
            $0.cache = cache
            if resync { $0.resyncs += 1 }
            $0.changes += changes.map {
                switch $0 {
                case .added(let o): "+\(o.metadata.name!)"
                case .updated(_, let o): "~\(o.metadata.name!)"
                case .deleted(let o): "-\(o.metadata.name!)"
                }
            }
        }
    }
    func names() -> [String] { cache.objects.keys.map(\.name).sorted() }
}

@Suite(.serialized) struct ClientIntegrationTests {
    @Test(.timeLimit(.minutes(1))) func verbsAgainstTheDouble() async throws {
        try await withTemporaryKubeAPI { api in
            try await withKubeClient(try api.connection()) { client in
                for name in ["s1", "s2", "s3", "s4", "s5"] { _ = try await client.create(service(name)) }
                let created = try await client.get(Service.self, namespace: "default", name: "s3")
                #expect(created.metadata.uid != nil && created.spec?.ports?.first?.targetPort == .int(8080))

                try await api.admin(client, .delete, "requests")
                let all = try await client.listAll(Service.self, namespace: "default", pageSize: 2)
                #expect(all.items.map { $0.metadata.name! } == ["s1", "s2", "s3", "s4", "s5"] && all.failures.isEmpty)
                let lists = try await api.requests(client).filter { $0.path == "/api/v1/namespaces/default/services" }
                #expect(lists.map { $0.query["limit"] } == ["2", "2", "2"])
                #expect(lists.map { $0.query["continue"] != nil } == [false, true, true])
                #expect(Int(all.resourceVersion)! >= Int(created.metadata.resourceVersion!)!)

                let patched = try await client.patch(
                    Service.self, namespace: "default", name: "s1",
                    merge: ["metadata": ["labels": ["tier": "web"]]])
                #expect(patched.metadata.labels?["tier"] == "web")
                #expect(try await client.listAll(Service.self, labelSelector: "tier=web").items.map(\.metadata.name) == ["s1"])

                // Ingress status through the subresource
                let ingress = Ingress(
                    metadata: ObjectMeta(name: "web", namespace: "default"),
                    spec: IngressSpec(
                        ingressClassName: "switchyard",
                        rules: [
                            IngressRule(
                                host: "a.test",
                                http: HTTPIngressRuleValue(paths: [
                                    HTTPIngressPath(
                                        path: "/", pathType: "Prefix",
                                        backend: IngressBackend(
                                            service: IngressServiceBackend(
                                                name: "s1", port: ServiceBackendPort(number: 80))))
                                ]))
                        ]))
                _ = try await client.create(ingress)
                let withStatus = try await client.patch(
                    Ingress.self, namespace: "default", name: "web",
                    merge: [
                        "status": ["loadBalancer": ["ingress": [["ip": "127.0.0.1"]]]]
                    ], subresource: "status")
                #expect(withStatus.status?.loadBalancer?.ingress == [IngressLoadBalancerIngress(ip: "127.0.0.1")])
                #expect(withStatus.metadata.generation == 1)

                // optimistic concurrency on update
                let lease = try await client.create(
                    Lease(
                        metadata: ObjectMeta(name: "l", namespace: "default"),
                        spec: LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 5)))
                var next = lease
                next.spec?.holderIdentity = "b"
                let updated = try await client.update(next)
                #expect(updated.spec?.holderIdentity == "b" && updated.metadata.resourceVersion != lease.metadata.resourceVersion)
                let conflict = await apiError { _ = try await client.update(next) }
                #expect(conflict?.isConflict == true && conflict?.isAlreadyExists == false)
                let exists = await apiError { _ = try await client.create(lease) }
                #expect(exists?.isAlreadyExists == true)

                // an Event on the Ingress
                let event = try await client.create(
                    Event(
                        metadata: ObjectMeta(namespace: "default", generateName: "web."),
                        involvedObject: ObjectReference(Ingress.resource, withStatus.metadata),
                        reason: "UnknownAnnotation", message: "x is not supported", type: "Warning", component: "switchyard-kube",
                        time: "2026-01-01T00:00:00Z"))
                #expect(event.metadata.name?.hasPrefix("web.") == true && event.involvedObject.kind == "Ingress")

                try await client.delete(Service.resource, namespace: "default", name: "s5")
                #expect(await apiError { _ = try await client.get(Service.self, namespace: "default", name: "s5") }?.isNotFound == true)
                let invalid = await apiError {
                    _ = try await client.create(
                        Service(
                            metadata: ObjectMeta(name: "Bad_Name", namespace: "default"),
                            spec: ServiceSpec(ports: [ServicePort(port: 1)])))
                }
                #expect(invalid?.code == 422 && invalid?.description.contains("metadata.name") == true)
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func authenticationAndTLSVerification() async throws {
        try await withTemporaryKubeAPI { api in
            var wrongToken = try api.connection()
            wrongToken.credentials = Credentials(token: "not-the-token")
            let unauthorized = await apiError { _ = try await withKubeClient(wrongToken) { try await $0.list(Service.self) } }
            #expect(unauthorized?.code == 401 && unauthorized?.reason == "Unauthorized")

            var wrongCA = try api.connection()
            wrongCA.certificateAuthority = Array(try Data(contentsOf: URL(fileURLWithPath: api.info.wrongCA)))
            let refused = await apiError {
                _ = try await withKubeClient(wrongCA, connectTimeout: .seconds(2)) { try await $0.list(Service.self) }
            }
            guard case .transport(_, let underlying)? = refused else {
                Issue.record("a server certificate from another CA was accepted: \(String(describing: refused))")
                return
            }
            #expect(underlying.lowercased().contains("certificate") || underlying.contains("handshake"), "\(underlying)")

            var insecure = wrongCA
            insecure.certificateAuthority = nil
            insecure.insecureSkipTLSVerify = true
            #expect(try await withKubeClient(insecure) { try await $0.list(Service.self).items.isEmpty })

            let clientCert = try KubeConnection.kubeconfig(path: api.info.kubeconfigClientCert)
            #expect(clientCert.credentials.token == nil && clientCert.credentials.clientCertificate != nil)
            let namespaces = try await withKubeClient(clientCert) { client in
                try await client.listAll(
                    GenericObject.self,
                    resource: ResourceType(
                        group: "", version: "v1", plural: "namespaces",
                        kind: "Namespace", namespaced: false)
                ).items
            }
            #expect(namespaces.map { $0.metadata.name! }.contains("default"))
        }
    }

    @Test(.timeLimit(.minutes(1))) func aCertificateThatDoesNotNameTheServerIsRefused() async throws {
        // The double's certificate names 127.0.0.1, ::1 and localhost; this one listens on 127.0.0.2.
        try await withTemporaryKubeAPI(host: "127.0.0.2") { api in
            let connection = try api.connection()
            #expect(connection.server.hasPrefix("https://127.0.0.2:"))
            let refused = await apiError {
                _ = try await withKubeClient(connection, connectTimeout: .seconds(2)) { try await $0.list(Service.self) }
            }
            guard case .transport(_, let underlying)? = refused else {
                Issue.record("a certificate for another address was accepted: \(String(describing: refused))")
                return
            }
            #expect(underlying.contains("Hostname") || underlying.contains("hostname") || underlying.contains("127.0.0.2"), "\(underlying)")
        }
    }

    @Test(.timeLimit(.minutes(2))) func reflectorListsWatchesResumesAndRelistsAfter410() async throws {
        try await withTemporaryKubeAPI { api in
            try await withKubeClient(try api.connection()) { client in
                for name in ["a", "b"] { _ = try await client.create(service(name)) }
                let recorder = Recorder<Service>()
                let reflector = Reflector<Service>(
                    client: client,
                    configuration: ReflectorConfiguration(
                        namespace: "default", pageSize: 1, watchTimeoutSeconds: 20...30,
                        backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await Informer(reflector).run { cache, changes in
                            recorder.record(cache, changes, resync: false)
                        }
                    }
                    try await eventually("the first list") { recorder.names() == ["a", "b"] }
                    _ = try await client.create(service("c"))
                    try await eventually("c through the watch") { recorder.names() == ["a", "b", "c"] }

                    // A stream that ends is resumed from the last version seen, without a list.
                    try await Task.sleep(for: .milliseconds(300))  // a bookmark or two
                    try await api.admin(client, .delete, "requests")
                    let seen = recorder.cache.resourceVersion!
                    try await api.admin(client, .post, "drop-watches")
                    try await eventually("a new watch") {
                        try await api.requests(client).contains { $0.query["watch"] == "1" }
                    }
                    let resumed = try await api.requests(client).filter { $0.path == "/api/v1/namespaces/default/services" }
                    #expect(resumed.first?.query["watch"] == "1" && Int(resumed.first!.query["resourceVersion"]!)! >= Int(seen)!)
                    let relisted = resumed.contains { $0.query["watch"] == nil }
                    #expect(!relisted, "no relist after a clean end: \(resumed.map { "\($0.method) \($0.query) \($0.code ?? 0)" })")
                    _ = try await client.patch(Service.self, namespace: "default", name: "a", merge: ["metadata": ["labels": ["x": "1"]]])
                    try await eventually("the change after resuming") {
                        recorder.cache[ObjectKey(namespace: "default", name: "a")]?.metadata.labels?["x"] == "1"
                    }

                    // b is deleted while the reflector cannot watch, and history is compacted:
                    // it gets 410, lists again, and the resync reports b as deleted.
                    try await api.admin(
                        client, .post, "fail",
                        ["count": 1000, "code": 503, "pathPrefix": "/api/v1/namespaces/default/services", "method": "GET"])
                    try await api.admin(client, .post, "drop-watches")
                    try await client.delete(Service.resource, namespace: "default", name: "b")
                    try await api.admin(client, .post, "compact", ["advance": true])
                    try await api.admin(client, .delete, "requests")
                    try await api.admin(client, .post, "fail", ["clear": true])
                    try await eventually("b gone after the relist") { recorder.names() == ["a", "c"] }
                    #expect(recorder.changes.last == "-b")
                    let after = try await api.requests(client).filter { $0.path == "/api/v1/namespaces/default/services" && $0.code == 200 }
                    let firstList = after.firstIndex { $0.query["watch"] == nil }
                    #expect(
                        firstList != nil && after[..<firstList!].contains { $0.query["watch"] == "1" }, "a watch answered 410, then a list")

                    group.cancelAll()
                    let stopped = ContinuousClock.now
                    do { try await group.waitForAll() } catch is CancellationError {}
                    #expect(ContinuousClock.now - stopped < .seconds(5))
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func reflectorBacksOffWhileTheServerFails() async throws {
        try await withTemporaryKubeAPI { api in
            try await withKubeClient(try api.connection()) { client in
                _ = try await client.create(service("a"))
                try await api.admin(client, .delete, "requests")
                try await api.admin(client, .post, "fail", ["count": 5, "code": 503, "pathPrefix": "/api/v1/services", "method": "GET"])
                let recorder = Recorder<Service>()
                let reflector = Reflector<Service>(
                    client: client,
                    configuration: ReflectorConfiguration(
                        backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0.5)))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await Informer(reflector).run { cache, changes in recorder.record(cache, changes, resync: false) } }
                    try await eventually("the list after five failures") { recorder.names() == ["a"] }
                    group.cancelAll()
                    do { try await group.waitForAll() } catch is CancellationError {}
                }
                let attempts = try await api.requests(client).filter { $0.path == "/api/v1/services" && $0.query["watch"] == nil }
                #expect(attempts.map(\.code) == [503, 503, 503, 503, 503, 200])
                // waits of at least 50, 100, 200, 400 and 500 ms (half of each exponential step)
                let gaps = zip(attempts.dropFirst(), attempts).map { $0.at - $1.at }
                for (gap, least) in zip(gaps, [0.05, 0.1, 0.2, 0.4, 0.5]) { #expect(gap >= least * 0.95, "\(gaps)") }
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func leaderElectionBetweenTwoClients() async throws {
        try await withTemporaryKubeAPI { api in
            try await withKubeClient(try api.connection()) { client in
                let log = Locked<[String]>([])
                let leading = Locked<Set<String>>([])
                @Sendable func lead(_ id: String) async throws {
                    leading.withLock { set in
                        if !set.isEmpty { log.withLock { $0.append("OVERLAP \(set) + \(id)") } }
                        set.insert(id)
                    }
                    log.withLock { $0.append("+\(id)") }
                    defer {
                        leading.withLock { _ = $0.remove(id) }
                        log.withLock { $0.append("-\(id)") }
                    }
                    while true { try await Task.sleep(for: .seconds(1)) }
                }
                func elector(_ id: String, release: Bool) -> LeaderElector {
                    LeaderElector(
                        client: client, namespace: "default", name: "switchyard-kube",
                        config: LeaderElectionConfig(
                            identity: id, leaseDuration: .seconds(3), renewDeadline: .seconds(2), retryPeriod: .milliseconds(300),
                            releaseOnCancel: release))
                }
                let a = elector("a", release: false)
                let b = elector("b", release: true)
                let c = elector("c", release: true)
                try await withThrowingTaskGroup(of: Void.self) { outer in
                    // a leads; b waits
                    let taskA = Task { try await a.run { try await lead("a") } }
                    try await eventually("a leads") { leading.withLock { $0 == ["a"] } }
                    outer.addTask { try await b.run { try await lead("b") } }
                    try await Task.sleep(for: .seconds(1))
                    #expect(leading.withLock { $0 } == ["a"] && !b.isLeader)

                    // a dies without releasing: b takes over once a's lease has not moved for 3 s
                    taskA.cancel()
                    _ = await taskA.result
                    let died = ContinuousClock.now
                    try await eventually("b takes over", timeout: .seconds(8)) { leading.withLock { $0 == ["b"] } }
                    let takeover = ContinuousClock.now - died
                    #expect(takeover >= .seconds(1) && takeover < .seconds(5), "took \(takeover)")
                    let lease = try await client.get(Lease.self, namespace: "default", name: "switchyard-kube")
                    #expect(lease.spec?.holderIdentity == "b" && lease.spec?.leaseTransitions == 1)

                    // b loses leadership when it cannot renew within the renew deadline
                    try await api.admin(
                        client, .post, "fail",
                        [
                            "count": 10000, "code": 503, "method": "PUT",
                            "pathPrefix": "/apis/coordination.k8s.io/v1/namespaces/default/leases/",
                        ])
                    let failing = ContinuousClock.now
                    try await eventually("b steps down", timeout: .seconds(6)) { leading.withLock { $0.isEmpty } }
                    #expect(ContinuousClock.now - failing < .seconds(3), "stepped down after \(ContinuousClock.now - failing)")
                    try await api.admin(client, .post, "fail", ["clear": true])
                    try await eventually("b leads again") { leading.withLock { $0 == ["b"] } }

                    // b stops and releases: c, already waiting, takes over at its next try
                    let taskC = Task { try await c.run { try await lead("c") } }
                    try await Task.sleep(for: .milliseconds(500))
                    outer.cancelAll()
                    do { try await outer.waitForAll() } catch is CancellationError {}
                    let released = ContinuousClock.now
                    try await eventually("c takes over the released lease") { leading.withLock { $0 == ["c"] } }
                    #expect(ContinuousClock.now - released < .seconds(2))
                    taskC.cancel()
                    _ = await taskC.result
                }
                let entries = log.withLock { $0 }
                let overlapped = entries.contains { $0.hasPrefix("OVERLAP") }
                #expect(!overlapped, "\(entries)")
                #expect(log.withLock { $0 } == ["+a", "-a", "+b", "-b", "+b", "-b", "+c", "-c"])
            }
        }
    }
}
