// `switchyard kube`: follows a cluster and writes its Ingresses, Services, endpoints,
// PhysicalEndpoints and TLS Secrets into Redis as routes, upstreams and certificates.
//
// One active process per installation (ingress class): a coordination.k8s.io Lease elects it
// (LeaderElector); the others wait and take over when it stops renewing. The leader:
//   1. lists and watches every kind (Reflector: list, watch from the list's version with
//      bookmarks, resume, relist on 410, backoff) into a ClusterCache;
//   2. once every kind is listed, reconciles: translate the whole picture, validate, and
//      write only the differences (OwnedWriter) - on start this deletes what it owns and the
//      cluster no longer has, and writes nothing when nothing differs; later reconciles
//      reuse what did not change (KubeTranslationMemo, KubeLoweringMemo, the writer's
//      encoded documents), so a change costs what it touches, not the cluster's size;
//   3. then waits for the cache to change, lets a burst settle for `debounce` (tens of ms),
//      and reconciles again: a rollout of many pods becomes a few atomic writes;
//   4. reports: Ingress status, PhysicalEndpoint status, Events (StatusReporter).
// Losing the lease cancels all of it; winning it again starts from a fresh list.

import Foundation
import Logging
import ServiceLifecycle
import SwitchyardController
import SwitchyardCore
import SwitchyardKube
import Synchronization

public struct KubeSourceConfiguration: Sendable {
    public var translation = KubeTranslationOptions()
    /// Namespace watched (namespaced kinds); nil = all.
    public var namespace: String?
    /// --publish-address values: IPs or host names written into Ingress status.
    public var publishAddresses: [String] = []
    public var physicalEndpointGroup = "test.api.io"
    public var physicalEndpointVersion = "v1beta1"
    /// How long a burst of changes may settle before one write.
    public var debounce: Duration = .milliseconds(30)
    /// How often PhysicalEndpoint status is refreshed from the prober's records.
    public var statusInterval: Duration = .seconds(5)
    /// How often a missing PhysicalEndpoint resource is looked for again.
    public var discoveryInterval: Duration = .seconds(30)
    public var identity = "switchyard-kube"
    public var leaseNamespace = "default"
    public var leaseName = "switchyard-kube-switchyard"
    public var leaseDuration: Duration = .seconds(8)
    public var renewDeadline: Duration = .seconds(6)
    public var retryPeriod: Duration = .seconds(2)

    public init() {}

    public var owner: String { KubeIdentity.owner(installation: translation.ingressClass) }
    public var parser: KubeObjectParser {
        KubeObjectParser(physicalEndpointAPIVersion: "\(physicalEndpointGroup)/\(physicalEndpointVersion)")
    }
}

public struct KubeSourceService: ServiceLifecycle.Service, CustomStringConvertible {
    public var description: String { "KubeSource" }

    let configuration: KubeSourceConfiguration
    let client: KubeClient
    let store: ConfigStore
    let cipher: CertificateKeyCipher?
    let logger: Logger

    public init(
        configuration: KubeSourceConfiguration, client: KubeClient, store: ConfigStore, cipher: CertificateKeyCipher?, logger: Logger
    ) {
        self.configuration = configuration
        self.client = client
        self.store = store
        self.cipher = cipher
        self.logger = logger
    }

    public func run() async throws {
        let elector = LeaderElector(
            client: client, namespace: configuration.leaseNamespace, name: configuration.leaseName,
            config: LeaderElectionConfig(
                identity: configuration.identity, leaseDuration: configuration.leaseDuration, renewDeadline: configuration.renewDeadline,
                retryPeriod: configuration.retryPeriod),
            logger: logger)
        do {
            try await cancelWhenGracefulShutdown {
                try await elector.run { try await lead() }
            }
        } catch is CancellationError {
            // graceful shutdown: the elector released the lease
        }
        try await client.shutdown()
    }

    /// Everything the leader does, until cancelled.
    func lead() async throws {
        let cache = ClusterCache(parser: configuration.parser, logger: logger)
        let kinds = WatchedKind.standard(
            physicalEndpointGroup: configuration.physicalEndpointGroup, physicalEndpointVersion: configuration.physicalEndpointVersion)
        let physical = kinds.first { $0.kind == "PhysicalEndpoint" }!
        let (served, hasStatus) = await discover(physical.resource)
        if !served {
            logger.warning(
                "the PhysicalEndpoint resource is not served (CRD not installed?); physical endpoints are off until it is",
                metadata: ["resource": "\(physical.resource)"])
            cache.markSyncedEmpty(physical.kind)
        }
        let reporter = StatusReporter(
            client: client, publish: configuration.publishAddresses, physicalResource: physical.resource, physicalHasStatus: hasStatus,
            logger: logger)
        let latest = LatestUpstreams()
        let (work, workQueue) = AsyncStream.makeStream(of: StatusWork.self, bufferingPolicy: .bufferingNewest(1))

        try await withThrowingTaskGroup(of: Void.self) { group in
            for kind in kinds {
                if kind.kind == physical.kind && !served {
                    group.addTask {
                        while true {
                            try await Task.sleep(for: configuration.discoveryInterval)
                            if await discover(kind.resource).served { break }
                        }
                        logger.info("the PhysicalEndpoint resource is served now; watching it")
                        try await reflector(kind, cache: cache)
                    }
                } else {
                    group.addTask { try await reflector(kind, cache: cache) }
                }
            }
            group.addTask {
                try await reconcile(cache: cache, kinds: kinds.map(\.kind), latest: latest, statusQueue: workQueue)
            }
            group.addTask {
                for await item in work {
                    await reporter.ingresses(item.ingresses, current: item.ingressStatus)
                    await reporter.events(item.problems, state: item.state)
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: configuration.statusInterval)
                    let upstreams = latest.value
                    await reporter.physical(upstreams, current: cache.snapshot().physicalStatus, redis: store.redis, keys: store.keys)
                }
            }
            defer { workQueue.finish() }
            try await group.next()
            group.cancelAll()
        }
    }

    struct StatusWork: Sendable {
        var ingresses: [K8sKey]
        var ingressStatus: [K8sKey: [String]]
        var problems: [KubeProblem]
        var state: ClusterState
    }

    func reflector(_ kind: WatchedKind, cache: ClusterCache) async throws {
        var logger = self.logger
        logger[metadataKey: "kind"] = "\(kind.kind)"
        let reflector = Reflector<GenericObject>(
            client: client, resource: kind.resource,
            configuration: ReflectorConfiguration(
                namespace: kind.clusterScoped ? nil : configuration.namespace, fieldSelector: kind.fieldSelector),
            logger: logger)
        try await reflector.run { event in cache.apply(event, kind: kind) }
    }

    /// Whether the cluster serves `resource`, and with a status subresource.
    func discover(_ resource: ResourceType) async -> (served: Bool, hasStatus: Bool) {
        let path = resource.group.isEmpty ? "/api/\(resource.version)" : "/apis/\(resource.group)/\(resource.version)"
        guard let response = try? await client.request(.GET, path),
            let list = try? JSONDecoder().decode(SwitchyardKube.JSONValue.self, from: response.body),
            let resources = list["resources"]?.arrayValue
        else { return (false, false) }
        let names = Set(resources.compactMap { $0["name"]?.stringValue })
        return (names.contains(resource.plural), names.contains(resource.plural + "/status"))
    }

    func reconcile(
        cache: ClusterCache, kinds: [String], latest: LatestUpstreams, statusQueue: AsyncStream<StatusWork>.Continuation
    ) async throws {
        // nothing is written before every kind is listed: a partial picture would delete
        var seen = 0
        while !cache.isSynced(kinds) {
            await cache.waitForChange(after: seen)
            try Task.checkCancellation()
            seen = cache.snapshot().generation
        }
        logger.info("cluster listed; reconciling", metadata: ["owner": "\(configuration.owner)"])
        let translator = KubeTranslator(options: configuration.translation)
        var writer = OwnedWriter(store: store, owner: configuration.owner, cipher: cipher)
        var certificates = KubeCertificateCache()
        // what the last reconcile translated and validated: a change redoes what it touches
        var memo = KubeTranslationMemo()
        var validated = KubeLoweringMemo()
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(10))
        var done = -1
        var logged: Set<KubeProblem> = []
        while true {
            try Task.checkCancellation()
            let snapshot = cache.snapshot()
            if snapshot.generation != done {
                let started = ContinuousClock.now
                let translation = translator.translate(snapshot.state, memo: &memo)
                let desired = KubeLowering(now: Int64(Date().timeIntervalSince1970)).lower(
                    translation, cache: &certificates, memo: &validated)
                do {
                    let outcome = try await writer.sync(desired)
                    done = snapshot.generation
                    backoff.reset()
                    let elapsed = ContinuousClock.now - started
                    let metadata: Logger.Metadata = [
                        "routes": "\(desired.routes.count)", "upstreams": "\(desired.upstreams.count)",
                        "certificates": "\(desired.certificates.count)", "puts": "\(outcome.puts)", "deletes": "\(outcome.deletes)",
                        "calls": "\(outcome.calls)", "config.version": "\(outcome.version.map(String.init) ?? "unchanged")",
                        "problems": "\(desired.problems.count + snapshot.problems.count)", "elapsed_ms": "\(elapsed.milliseconds)",
                    ]
                    if outcome.calls > 0 {
                        logger.info("cluster written", metadata: metadata)
                    } else {
                        logger.debug("nothing to write", metadata: metadata)
                    }
                } catch {
                    let delay = backoff.next()
                    logger.error(
                        "cannot write the cluster's configuration; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                    try await Task.sleep(for: delay)
                    continue
                }
                let problems = Set(snapshot.problems + desired.problems)
                for problem in problems.subtracting(logged).sorted() {
                    logger.warning("\(problem.description)", metadata: ["object": "\(problem.object)", "reason": "\(problem.reason)"])
                }
                logged = problems
                let served = Set(desired.upstreams.map(\.name))
                latest.set(translation.upstreams.filter { served.contains($0.id) })
                statusQueue.yield(
                    StatusWork(
                        ingresses: translation.ingresses, ingressStatus: snapshot.ingressStatus,
                        problems: snapshot.problems + desired.problems,
                        state: snapshot.state))
            }
            await cache.waitForChange(after: snapshot.generation)
            try await Task.sleep(for: configuration.debounce)
        }
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The upstreams of the last translation written (for PhysicalEndpoint status).
final class LatestUpstreams: Sendable {
    private let box = Mutex<[KubeUpstreamDraft]>([])
    var value: [KubeUpstreamDraft] { box.withLock { $0 } }
    func set(_ upstreams: [KubeUpstreamDraft]) { box.withLock { $0 = upstreams } }
}
