// The I/O shell around LeaderElectionState: reads and writes the Lease through the client.

import Foundation
import Logging
import Synchronization

public struct LeaderElector: Sendable {
    public let client: KubeClient
    public let namespace: String
    public let name: String
    public let config: LeaderElectionConfig
    let logger: Logger
    private let state: StateBox
    private let origin = ContinuousClock.now

    public init(
        client: KubeClient, namespace: String, name: String, config: LeaderElectionConfig,
        logger: Logger = Logger(label: "switchyard.kube.election")
    ) {
        self.client = client
        self.namespace = namespace
        self.name = name
        self.config = config
        var logger = logger
        logger[metadataKey: "lease"] = "\(namespace)/\(name)"
        logger[metadataKey: "identity"] = "\(config.identity)"
        self.logger = logger
        self.state = StateBox(LeaderElectionState(config: config))
    }

    public var isLeader: Bool { state.value.isLeader }

    /// Campaigns until it leads, then runs `lead` while renewing the lease. When leadership is
    /// lost, `lead` is cancelled and the campaign starts again; when `lead` returns, the lease is
    /// released and run returns. Cancelling the calling task cancels `lead` and releases the
    /// lease (with releaseOnCancel).
    public func run(_ lead: @escaping @Sendable () async throws -> Void) async throws {
        while true {
            do {
                while try await !tryAcquireOrRenew() {
                    try await Task.sleep(for: jittered(config.retryPeriod))
                }
                logger.info("became leader")
                let outcome = try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        try await lead()
                        return true
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: config.retryPeriod)
                            if try await !tryAcquireOrRenew() { return false }
                        }
                    }
                    let finished = try await group.next()!
                    group.cancelAll()
                    return finished
                }
                if outcome {
                    await release()
                    return
                }
                logger.warning("lost leadership")
            } catch {
                if state.value.isLeader || error is CancellationError {
                    await release()
                }
                throw error
            }
        }
    }

    /// One round: read the lease and create, renew or take it when allowed. Returns whether we lead.
    public func tryAcquireOrRenew() async throws -> Bool {
        let now = ContinuousClock.now - origin
        let wall = microTime(Date())
        var lease: Lease?
        do {
            lease = try await client.get(Lease.self, namespace: namespace, name: name)
        } catch let error as KubeError where error.isNotFound {
            lease = nil
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.warning("cannot read the lease", metadata: ["error": "\(error)"])
            return state.update { $0.failed(now: now) }
        }
        let decision = state.update { $0.decide(current: lease.map { LeaseRecord($0.spec) }, now: now, wallClock: wall) }
        do {
            switch decision {
            case .wait:
                return false
            case .create(let record):
                _ = try await client.create(Lease(metadata: ObjectMeta(name: name, namespace: namespace), spec: record.applied(to: nil)))
                state.update { $0.succeeded(record, now: now) }
            case .update(let record):
                var next = lease!
                next.spec = record.applied(to: next.spec)
                _ = try await client.update(next)
                state.update { $0.succeeded(record, now: now) }
            }
            return true
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if let error = error as? KubeError, error.isConflict {
                logger.debug("lost a race for the lease", metadata: ["error": "\(error)"])
            } else {
                logger.warning("cannot write the lease", metadata: ["error": "\(error)"])
            }
            return state.update { $0.failed(now: now) }
        }
    }

    /// Gives the lease up if we hold it (holder "", 1 s), in a task that is not cancelled.
    func release() async {
        guard config.releaseOnCancel, state.value.isLeader else {
            state.update { $0.released() }
            return
        }
        let client = self.client
        let namespace = self.namespace
        let name = self.name
        let identity = config.identity
        let logger = self.logger
        await Task {
            do {
                var lease = try await client.get(Lease.self, namespace: namespace, name: name)
                guard lease.spec?.holderIdentity == identity else { return }
                lease.spec?.holderIdentity = ""
                lease.spec?.leaseDurationSeconds = 1
                lease.spec?.renewTime = microTime(Date())
                _ = try await client.update(lease)
                logger.info("released the lease")
            } catch {
                logger.warning("could not release the lease", metadata: ["error": "\(error)"])
            }
        }.value
        state.update { $0.released() }
    }

    private func jittered(_ d: Duration) -> Duration {
        d
            + .nanoseconds(
                Int64(Double.random(in: 0..<0.2) * Double(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)))
    }
}

final class StateBox: Sendable {
    private let state: Mutex<LeaderElectionState>
    init(_ value: LeaderElectionState) { state = Mutex(value) }
    var value: LeaderElectionState { state.withLock { $0 } }
    func update<R>(_ body: (inout LeaderElectionState) -> R) -> R { state.withLock { body(&$0) } }
}

/// Kubernetes MicroTime: RFC 3339 in UTC with microseconds.
public func microTime(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
    return formatter.string(from: date)
}
