// Endpoint health as the prober decides it and Redis stores it (redis/README.md, "Health").
//
// `HealthHysteresis` is the rise/fall state machine: a pure value that takes probe
// outcomes and answers the transition to make, if any. The prober's I/O shell applies it;
// tests drive it without sockets. `HealthRecord` is the JSON value of one endpoint in the
// health hash; `HealthCall` builds the `sy_health` and `sy_lease` Function calls.

/// What is known about one endpoint.
public enum HealthState: String, Sendable, CaseIterable {
    case up
    case down
    /// Not (yet) decided: new endpoints, or no record in Redis.
    case unknown
}

/// The result of one probe. `reason` is short and operator-readable: `status 200`,
/// `status 503`, `timeout`, `refused`, `connected`, ...
public enum ProbeOutcome: Sendable, Equatable {
    case success(reason: String)
    case failure(reason: String)

    public var reason: String {
        switch self {
        case .success(let r), .failure(let r): return r
        }
    }

    public var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

/// Rise/fall hysteresis for one endpoint.
///
/// - `rise` consecutive successes make an endpoint `up` (from `unknown` or `down`);
/// - `fall` consecutive failures make it `down` (from `unknown` or `up`);
/// - a success resets the failure count and a failure resets the success count, so an
///   endpoint that alternates never changes state (flapping is absorbed);
/// - a probe that agrees with the current state only resets the opposite count.
public struct HealthHysteresis: Sendable, Equatable {
    public private(set) var state: HealthState
    public private(set) var successes = 0
    public private(set) var failures = 0
    public var rise: Int
    public var fall: Int

    public init(rise: Int, fall: Int, state: HealthState = .unknown) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.state = state
    }

    /// A state change to record, with the probe's reason.
    public struct Transition: Sendable, Equatable {
        public var from: HealthState
        public var to: HealthState
        public var reason: String
    }

    /// Feeds one probe outcome; returns the transition it causes, if any.
    public mutating func record(_ outcome: ProbeOutcome) -> Transition? {
        switch outcome {
        case .success(let reason):
            failures = 0
            if state == .up { successes = 0; return nil }
            successes += 1
            guard successes >= rise else { return nil }
            return move(to: .up, reason)
        case .failure(let reason):
            successes = 0
            if state == .down { failures = 0; return nil }
            failures += 1
            guard failures >= fall else { return nil }
            return move(to: .down, reason)
        }
    }

    /// Takes a state from elsewhere (Redis, when a prober becomes active) with fresh counts,
    /// so the next `fall` failures or `rise` successes decide, not the first probe.
    public mutating func reset(to state: HealthState) {
        self.state = state
        successes = 0
        failures = 0
    }

    private mutating func move(to new: HealthState, _ reason: String) -> Transition {
        let transition = Transition(from: state, to: new, reason: reason)
        state = new
        successes = 0
        failures = 0
        return transition
    }
}

/// One endpoint's entry in the health hash:
/// `{"prober":"p1","reason":"status 503","since":1700000000000,"state":"down"}`.
public struct HealthRecord: Sendable, Hashable {
    public var state: HealthState
    /// When the endpoint entered `state`, ms since the epoch (the prober's clock).
    public var since: Int64
    public var reason: String
    /// Id of the prober that wrote it.
    public var prober: String

    public init(state: HealthState, since: Int64, reason: String, prober: String) {
        self.state = state
        self.since = since
        self.reason = reason
        self.prober = prober
    }

    public var document: JSONValue {
        ["state": .string(state.rawValue), "since": .integer(since), "reason": .string(reason), "prober": .string(prober)]
    }

    /// The canonical JSON stored in the hash.
    public var json: String { document.canonical }

    /// Decodes a hash value; nil for anything malformed (typed in by hand).
    public init?(json bytes: [UInt8]) {
        guard let value = try? JSONValue.parse(bytes), case .string(let s)? = value["state"], let state = HealthState(rawValue: s) else {
            return nil
        }
        var since: Int64 = 0
        if case .integer(let v)? = value["since"] { since = v }
        var reason = ""
        if case .string(let r)? = value["reason"] { reason = r }
        var prober = ""
        if case .string(let p)? = value["prober"] { prober = p }
        self.init(state: state, since: since, reason: reason, prober: prober)
    }
}

/// One message on the health events channel: `<health_version> <upstream> <address> <state>`,
/// where state is `up`, `down`, `unknown`, or `removed` (the field was deleted; address `*`
/// when the whole upstream's hash was).
public struct HealthEvent: Sendable, Equatable {
    public var version: Int64
    public var upstream: String
    public var address: String
    public var state: String

    public init(version: Int64, upstream: String, address: String, state: String) {
        self.version = version
        self.upstream = upstream
        self.address = address
        self.state = state
    }

    public var message: String { "\(version) \(upstream) \(address) \(state)" }

    public init?(message: String) {
        let parts = message.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, let version = Int64(parts[0]) else { return nil }
        self.init(version: version, upstream: String(parts[1]), address: String(parts[2]), state: String(parts[3]))
    }
}

/// Building calls of the health Functions in redis/switchyard.lua.
public enum HealthCall {
    /// One change of the health hashes.
    public enum Operation: Sendable, Equatable {
        /// HSET the endpoint's record.
        case set(upstream: String, address: String, record: HealthRecord)
        /// HDEL the endpoint (no longer checked).
        case delete(upstream: String, address: String)
        /// DEL the upstream's whole hash (upstream gone or no longer checked).
        case drop(upstream: String)

        public var arguments: [String] {
            switch self {
            case .set(let u, let a, let r): return ["set", u, a, r.json]
            case .delete(let u, let a): return ["del", u, a, ""]
            case .drop(let u): return ["drop", u, "*", ""]
            }
        }

        public var upstream: String {
            switch self {
            case .set(let u, _, _), .delete(let u, _), .drop(let u): return u
            }
        }
    }

    /// `FCALL sy_health 1 <health_version key> <prober id> op upstream address value ...`.
    /// Refused (`SYERR {"code":"not_leader",...}`) unless `prober` holds the lease.
    public static func health(prober: String, _ operations: [Operation], keys: KeySchema = .default) -> [String] {
        ["FCALL", "sy_health", "1", keys.healthVersion, prober] + operations.flatMap(\.arguments)
    }

    /// `FCALL sy_lease 1 <lease key> <prober id> <lease ms> <heartbeat ms> <heartbeat value>`:
    /// acquire or renew the lease (and refresh the heartbeat); `leaseMs` 0 releases both.
    public static func lease(prober: String, leaseMs: Int, heartbeatMs: Int, heartbeat: String, keys: KeySchema = .default)
        -> [String]
    {
        ["FCALL", "sy_lease", "1", keys.proberLease, prober, String(leaseMs), String(heartbeatMs), heartbeat]
    }
}
