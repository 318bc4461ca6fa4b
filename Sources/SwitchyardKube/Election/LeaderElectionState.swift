// Leader election on a coordination.k8s.io/v1 Lease, as a pure state machine (client-go's
// rules): a lease held by someone else is respected until it has not changed for its duration
// as measured on OUR clock since we first saw that version (no trust in other machines' clocks);
// a leader renews every retry period and steps down when no renewal succeeded within the renew
// deadline, which is shorter than the lease duration, so it stops before anyone may take over.

public struct LeaderElectionConfig: Sendable {
    public var identity: String
    public var leaseDuration: Duration
    public var renewDeadline: Duration
    public var retryPeriod: Duration
    /// Give the lease up (holder "") when stopped, so a successor need not wait for it to expire.
    public var releaseOnCancel: Bool

    public init(
        identity: String, leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10),
        retryPeriod: Duration = .seconds(2), releaseOnCancel: Bool = true
    ) {
        precondition(
            !identity.isEmpty && leaseDuration > renewDeadline && renewDeadline > retryPeriod && retryPeriod > .zero,
            "leader election needs leaseDuration > renewDeadline > retryPeriod > 0")
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
        self.releaseOnCancel = releaseOnCancel
    }
}

/// The lease fields election reads and writes.
public struct LeaseRecord: Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int

    public init(holderIdentity: String?, leaseDurationSeconds: Int?, acquireTime: String?, renewTime: String?, leaseTransitions: Int) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }

    public init(_ spec: LeaseSpec?) {
        self.init(
            holderIdentity: spec?.holderIdentity, leaseDurationSeconds: spec?.leaseDurationSeconds,
            acquireTime: spec?.acquireTime, renewTime: spec?.renewTime, leaseTransitions: spec?.leaseTransitions ?? 0)
    }

    /// spec with this record's fields (fields the record does not know are kept).
    public func applied(to spec: LeaseSpec?) -> LeaseSpec {
        var spec = spec ?? LeaseSpec()
        spec.holderIdentity = holderIdentity
        spec.leaseDurationSeconds = leaseDurationSeconds
        spec.acquireTime = acquireTime
        spec.renewTime = renewTime
        spec.leaseTransitions = leaseTransitions
        return spec
    }
}

public struct LeaderElectionState: Sendable {
    public enum Decision: Sendable, Equatable {
        /// No lease exists: create this one.
        case create(LeaseRecord)
        /// Write this record (conditionally on the version read).
        case update(LeaseRecord)
        /// Someone else holds a lease that has not expired.
        case wait
    }

    public let config: LeaderElectionConfig
    public private(set) var isLeader = false
    public private(set) var observed: LeaseRecord?
    /// Monotonic time (any fixed origin) when `observed` was first seen in this version.
    public private(set) var observedAt: Duration?
    /// When our last write as leader succeeded.
    public private(set) var lastRenewal: Duration?

    public init(config: LeaderElectionConfig) { self.config = config }

    /// What to do, given the lease as just read (nil: none exists) at monotonic time `now`;
    /// `wallClock` is the MicroTime text written into acquire/renew times.
    public mutating func decide(current: LeaseRecord?, now: Duration, wallClock: String) -> Decision {
        let seconds = Int(config.leaseDuration.components.seconds)
        guard let current else {
            return .create(
                LeaseRecord(
                    holderIdentity: config.identity, leaseDurationSeconds: seconds, acquireTime: wallClock,
                    renewTime: wallClock, leaseTransitions: 0))
        }
        if current != observed {
            observed = current
            observedAt = now
        }
        let holder = current.holderIdentity ?? ""
        let mine = holder == config.identity
        if !holder.isEmpty && !mine {
            let duration = current.leaseDurationSeconds.map { Duration.seconds($0) } ?? config.leaseDuration
            if let observedAt, now - observedAt < duration {
                isLeader = false
                return .wait
            }
        }
        return .update(
            LeaseRecord(
                holderIdentity: config.identity, leaseDurationSeconds: seconds,
                acquireTime: mine ? current.acquireTime : wallClock, renewTime: wallClock,
                leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1))
    }

    /// Our create/update of `record` succeeded at `now`.
    public mutating func succeeded(_ record: LeaseRecord, now: Duration) {
        isLeader = true
        observed = record
        observedAt = now
        lastRenewal = now
    }

    /// A read or write failed (or lost a race) at `now`. A leader keeps leading until the renew
    /// deadline has passed since its last successful renewal; returns whether it still leads.
    @discardableResult
    public mutating func failed(now: Duration) -> Bool {
        if isLeader, let lastRenewal, now - lastRenewal >= config.renewDeadline {
            isLeader = false
        }
        return isLeader
    }

    /// We gave the lease up.
    public mutating func released() {
        isLeader = false
        lastRenewal = nil
    }
}
