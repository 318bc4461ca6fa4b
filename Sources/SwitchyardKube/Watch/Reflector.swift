// List, then watch from the list's resourceVersion with bookmarks; resume from the last seen
// version when a stream ends; on 410 Gone list again and deliver a full resync; back off with
// jitter on errors (never a busy loop); stop when the task is cancelled.

import Logging
import Synchronization

public struct ReflectorConfiguration: Sendable {
    public var namespace: String?
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Items per list request (nil: one unpaged list).
    public var pageSize: Int?
    /// Each watch asks the server to end it after a random number of seconds in this range
    /// (client-go uses 5 to 10 minutes), spreading reconnections out.
    public var watchTimeoutSeconds: ClosedRange<Int>
    /// How long past its timeout a silent stream is given before it is abandoned.
    public var watchGrace: Duration
    /// A watch that ends sooner than this with no event counts as a failure (backoff).
    public var minimumWatchDuration: Duration
    public var backoff: Backoff

    public init(
        namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
        pageSize: Int? = 500, watchTimeoutSeconds: ClosedRange<Int> = 300...600,
        watchGrace: Duration = .seconds(30), minimumWatchDuration: Duration = .seconds(1),
        backoff: Backoff = Backoff()
    ) {
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.pageSize = pageSize
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.watchGrace = watchGrace
        self.minimumWatchDuration = minimumWatchDuration
        self.backoff = backoff
    }
}

public struct Reflector<Object: KubeObject>: Sendable {
    public let client: KubeClient
    public let resource: ResourceType
    public let configuration: ReflectorConfiguration
    let logger: Logger

    public init(
        client: KubeClient, resource: ResourceType = Object.resource,
        configuration: ReflectorConfiguration = ReflectorConfiguration(),
        logger: Logger = Logger(label: "switchyard.kube.reflector")
    ) {
        self.client = client
        self.resource = resource
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "resource"] = "\(resource)"
        self.logger = logger
    }

    /// Runs until the task is cancelled (throws CancellationError) or `handler` throws (that
    /// error is rethrown). Events are delivered one at a time, in order.
    public func run(_ handler: @escaping @Sendable (ReflectorEvent<Object>) async throws -> Void) async throws {
        var backoff = configuration.backoff
        var resourceVersion: String?
        var consecutiveGone = 0
        while true {
            try Task.checkCancellation()
            if resourceVersion == nil {
                do {
                    let page = try await client.listAll(
                        Object.self, namespace: configuration.namespace,
                        labelSelector: configuration.labelSelector,
                        fieldSelector: configuration.fieldSelector,
                        pageSize: configuration.pageSize, resource: resource)
                    for failure in page.failures {
                        logger.warning("skipping an object that does not decode", metadata: ["object": "\(failure)"])
                    }
                    try await deliver(handler, .resync(page.items, resourceVersion: page.resourceVersion))
                    resourceVersion = page.resourceVersion
                    logger.debug("listed", metadata: ["count": "\(page.items.count)", "resourceVersion": "\(page.resourceVersion)"])
                } catch let error as HandlerFailure {
                    throw error.underlying
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    let delay = backoff.next()
                    logger.warning("list failed; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                    try await Task.sleep(for: delay)
                    continue
                }
            }
            let started = ContinuousClock.now
            let latest = LatestVersion(resourceVersion!)
            do {
                let events = try await watchOnce(from: resourceVersion!, latest: latest, handler)
                resourceVersion = latest.value
                consecutiveGone = 0
                if events == 0 && ContinuousClock.now - started < configuration.minimumWatchDuration {
                    let delay = backoff.next()
                    logger.info("watch ended at once; waiting", metadata: ["delay": "\(delay)"])
                    try await Task.sleep(for: delay)
                } else {
                    backoff.reset()
                }
            } catch let error as HandlerFailure {
                throw error.underlying
            } catch is CancellationError {
                throw CancellationError()
            } catch let error where Self.isGone(error) {
                // Too old: list again. The first relist is immediate; repeated ones back off.
                logger.info("resourceVersion expired (410); listing again", metadata: ["resourceVersion": "\(latest.value)"])
                resourceVersion = nil
                consecutiveGone += 1
                if consecutiveGone > 1 { try await Task.sleep(for: backoff.next()) }
            } catch {
                resourceVersion = latest.value
                let delay = backoff.next()
                logger.warning(
                    "watch failed; resuming",
                    metadata: [
                        "error": "\(error)", "delay": "\(delay)",
                        "resourceVersion": "\(latest.value)",
                    ])
                try await Task.sleep(for: delay)
            }
        }
    }

    static func isGone(_ error: any Error) -> Bool {
        if error is WatchExpired { return true }
        if let error = error as? KubeError, error.isGone { return true }
        return false
    }

    /// One watch stream; returns how many events it delivered.
    func watchOnce(
        from version: String, latest: LatestVersion,
        _ handler: @escaping @Sendable (ReflectorEvent<Object>) async throws -> Void
    ) async throws -> Int {
        let timeout = Int.random(in: configuration.watchTimeoutSeconds)
        let stream = try await client.watch(
            Object.self, namespace: configuration.namespace,
            options: WatchOptions(
                resourceVersion: version, labelSelector: configuration.labelSelector, fieldSelector: configuration.fieldSelector,
                timeoutSeconds: timeout, allowWatchBookmarks: true), resource: resource)
        let logger = self.logger
        let limit = Duration.seconds(timeout) + configuration.watchGrace
        return try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                var count = 0
                for try await event in stream {
                    switch event {
                    case .bookmark(let rv):
                        if !rv.isEmpty { latest.set(rv) }
                        continue
                    case .error(let status):
                        if status.code == 410 { throw WatchExpired() }
                        throw KubeError.api(code: status.code ?? 500, status: status, request: "watch \(resource)")
                    case .added(let o): try await deliver(handler, .added(o))
                    case .modified(let o): try await deliver(handler, .modified(o))
                    case .deleted(let o): try await deliver(handler, .deleted(o))
                    case .undecodable(let type, let failure):
                        logger.warning("an object does not decode; dropping it", metadata: ["event": "\(type)", "object": "\(failure)"])
                        try await deliver(handler, .undecodable(failure))
                    }
                    if let rv = event.resourceVersion, !rv.isEmpty { latest.set(rv) }
                    count += 1
                }
                return count
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let count = first else {
                throw KubeError.transport(request: "watch \(resource)", underlying: "the stream did not end by its timeout")
            }
            return count
        }
    }
}

private func deliver<Object>(
    _ handler: @Sendable (ReflectorEvent<Object>) async throws -> Void,
    _ event: ReflectorEvent<Object>
) async throws {
    do {
        try await handler(event)
    } catch is CancellationError {
        throw CancellationError()
    } catch {
        throw HandlerFailure(underlying: error)
    }
}

struct HandlerFailure: Error { var underlying: any Error }
struct WatchExpired: Error {}

final class LatestVersion: Sendable {
    private let state: Mutex<String>
    init(_ value: String) { state = Mutex(value) }
    var value: String { state.withLock { $0 } }
    func set(_ value: String) { state.withLock { $0 = value } }
}

/// A reflector feeding an ObjectCache: the handler sees the cache after each event and the
/// changes the event made (none are reported for an event that changes nothing).
public struct Informer<Object: KubeObject>: Sendable {
    public let reflector: Reflector<Object>
    public init(_ reflector: Reflector<Object>) { self.reflector = reflector }

    public func run(_ onChange: @escaping @Sendable (ObjectCache<Object>, [CacheChange<Object>]) async throws -> Void) async throws {
        let cache = Mutex(ObjectCache<Object>())
        try await reflector.run { event in
            let (snapshot, changes) = cache.withLock { cache -> (ObjectCache<Object>, [CacheChange<Object>]) in
                let changes = cache.apply(event)
                return (cache, changes)
            }
            if !changes.isEmpty
                || {
                    if case .resync = event { return true }; return false
                }()
            {
                try await onChange(snapshot, changes)
            }
        }
    }
}
