// The probe engine: one dedicated thread runs every probe of every endpoint on one epoll
// instance (`Probes`: the prober's own http/tcp checker, libcurl for https; no thread per
// endpoint, nothing blocking on Swift's cooperative pool).
//
// Each endpoint of each upstream with a health check is a target with its own schedule:
// the first probe at a random point of its interval (so thousands of endpoints do not
// fire together), then every interval ±5 %. Each outcome goes through the target's
// `HealthHysteresis`; a transition becomes a `HealthRecord` in the shared `HealthBoard`,
// which the writer sends to Redis.
//
// Other tasks talk to the thread through a mailbox (target updates, activation, stop) and
// an eventfd (`Probes.wakeup`), so a change is picked up within milliseconds.
//
// Modes: `idle` (standby: no probing), `active` (probing, writes allowed), `paused`
// (probing goes on but Redis is unreachable or the lease is uncertain: the decided states
// wait in the board until the prober is active again).

import Foundation
import Logging
import SwitchyardCore
import Synchronization

/// One upstream's targets: its health check and endpoint addresses.
public struct UpstreamTargets: Sendable, Equatable {
    public var check: HealthCheck
    public var addresses: [EndpointAddress]

    public init(check: HealthCheck, addresses: [EndpointAddress]) {
        self.check = check
        self.addresses = addresses
    }

    /// What the prober checks of `upstream`: nil without a health check; otherwise every
    /// endpoint except those exempt from the check (`"health_check": false`, k8s-model.md:
    /// pods whose readiness Kubernetes decides, next to machines the prober decides). Their
    /// records are dropped like those of an endpoint that left.
    public init?(_ upstream: Upstream) {
        guard let check = upstream.healthCheck else { return nil }
        self.init(check: check, addresses: upstream.endpoints.filter(\.activeCheck).map(\.address))
    }
}

final class ProbeEngine: @unchecked Sendable {
    // @unchecked: `probes` is touched only by the engine thread, except
    // `probes.wakeup()` (an eventfd write), safe from any thread while the object lives (it
    // lives as long as this object, and the thread holds a reference until it exits).

    enum Command: Sendable {
        /// Probe and allow writes; seed states from `snapshot` unless `keepLocal` and the
        /// engine was probing already (a pause, not a change of prober).
        case activate(snapshot: HealthMap, keepLocal: Bool)
        case pause
        case deactivate
    }

    fileprivate struct Mailbox {
        var updates: [String: UpstreamTargets?] = [:]
        var commands: [Command] = []
        var stop = false
        var started = false
    }

    let board: HealthBoard
    let proberID: String
    let maxInFlight: Int
    let metrics: ProberMetrics
    private let logger: Logger
    private let mailbox = Mutex(Mailbox())
    private let finished = Mutex(false)
    private let probes: Probes

    init(
        proberID: String, board: HealthBoard, reuseConnections: Bool, maxInFlight: Int, metrics: ProberMetrics? = nil, logger: Logger
    ) throws(ProberError) {
        self.proberID = proberID
        self.board = board
        self.metrics = metrics ?? ProberMetrics(proberID: proberID)
        self.maxInFlight = max(1, maxInFlight)
        self.logger = logger
        self.probes = try Probes(reuseConnections: reuseConnections)
    }

    /// Starts the thread (once).
    func start() {
        let first = mailbox.withLock { m -> Bool in
            defer { m.started = true }
            return !m.started
        }
        guard first else { return }
        raiseFileLimit()
        let thread = Thread { [self] in
            EngineLoop(engine: self, probes: probes, logger: logger).run()
            finished.withLock { $0 = true }
            _ = self  // keeps the engine (and its sockets) alive until the loop is done
        }
        thread.name = "switchyard.prober.engine"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Replaces one upstream's targets; nil removes them (no health check, or deleted).
    func update(_ upstream: String, _ targets: UpstreamTargets?) {
        mailbox.withLock { $0.updates[upstream] = .some(targets) }
        probes.wakeup()
    }

    func send(_ command: Command) {
        mailbox.withLock { $0.commands.append(command) }
        probes.wakeup()
    }

    /// Asks the thread to stop and waits (bounded) until it has.
    func stop() async {
        mailbox.withLock { $0.stop = true }
        probes.wakeup()
        let deadline = ContinuousClock.now + .seconds(5)
        while !finished.withLock({ $0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    fileprivate func drain() -> Mailbox {
        mailbox.withLock { m in
            let taken = m
            m.updates = [:]
            m.commands = []
            return taken
        }
    }

    /// Many endpoints need many sockets: use the hard limit of open files.
    private func raiseFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// A target's identity: upstream name and endpoint address (canonical text).
struct TargetKey: Hashable, Sendable {
    var upstream: String
    var address: String
}

/// Everything the engine thread owns.
private final class EngineLoop {
    enum Mode { case idle, active, paused }

    struct Target {
        var key: TargetKey
        var check: HealthCheck
        var request: ProbeRequest
        var health: HealthHysteresis
        /// The record for the current state (nil while unknown).
        var record: HealthRecord?
        var due: Int64 = 0
        var generation = 0
        var inFlight = false
        /// Monotonic ns when the running probe started (for its latency).
        var startedAt: Int64 = 0
    }

    unowned let engine: ProbeEngine
    let probes: Probes
    let logger: Logger
    var mode = Mode.idle
    var targets: [Int: Target] = [:]  // by token
    var tokens: [TargetKey: Int] = [:]
    var byUpstream: [String: Set<Int>] = [:]
    var schedule = Schedule()  // stale entries: an older generation of the target
    var nextToken = 0
    /// Spreads probes over time; not a secret, so a cheap generator (the system one is a
    /// getrandom call per probe, visible in a profile at 10,000 probes a second).
    var jitter = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))

    init(engine: ProbeEngine, probes: Probes, logger: Logger) {
        self.engine = engine
        self.probes = probes
        self.logger = logger
    }

    /// Probes due within this many ms are started together, and one pass of the loop takes
    /// at least `minimumCycleMs`: thousands of probes a second then cost a few hundred
    /// wake-ups, not one each (a few ms of jitter is nothing against a 100 ms+ interval).
    let coalesceMs: Int64 = 5
    let minimumCycleMs: Int64 = 2

    func run() {
        logger.debug("probe engine started")
        while true {
            let cycleStart = monotonicMilliseconds()
            let mail = engine.drain()
            if mail.stop { break }
            for (upstream, targets) in mail.updates { apply(upstream, targets) }
            for command in mail.commands { handle(command) }
            if mail.updates.count > 0 { probes.setConnectionCache(targets.count + 16) }

            let now = monotonicMilliseconds()
            if mode != .idle { startDueProbes(now: now + coalesceMs) }
            for (token, outcome) in probes.perform() { finish(token, outcome) }

            var wait = 1000
            if mode != .idle, probes.inFlight < engine.maxInFlight, let next = schedule.nextDue {
                wait = Int(max(0, min(Int64(wait), next - coalesceMs - monotonicMilliseconds())))
            }
            probes.wait(upTo: wait)
            let spent = monotonicMilliseconds() - cycleStart
            if spent < minimumCycleMs { usleep(useconds_t((minimumCycleMs - spent) * 1000)) }
        }
        logger.debug("probe engine stopped")
    }

    // MARK: Targets

    func apply(_ upstream: String, _ update: UpstreamTargets?) {
        let existing = byUpstream[upstream] ?? []
        guard let update else {
            for token in existing { remove(token) }
            byUpstream[upstream] = nil
            engine.board.withLedger {
                $0.uncheck(upstream); $0.targets = targets.count
            }
            return
        }
        let wanted = Dictionary(update.addresses.map { ($0.description, $0) }, uniquingKeysWith: { a, _ in a })
        var kept = Set<Int>()
        for token in existing {
            guard var target = targets[token] else { continue }
            guard let address = wanted[target.key.address] else {
                remove(token)
                engine.board.withLedger { $0.set(upstream, target.key.address, nil) }
                continue
            }
            if target.check != update.check {
                let intervalChanged = target.check.intervalMs != update.check.intervalMs
                target.check = update.check
                target.request = ProbeRequest(target: address, check: update.check)
                target.health.rise = update.check.rise
                target.health.fall = update.check.fall
                targets[token] = target
                if intervalChanged, mode != .idle { reschedule(token, randomPhase: true) }
            }
            kept.insert(token)
        }
        let have = Set(kept.compactMap { targets[$0]?.key.address })
        for (text, address) in wanted where !have.contains(text) {
            let key = TargetKey(upstream: upstream, address: text)
            let token = nextToken
            nextToken += 1
            targets[token] = Target(
                key: key, check: update.check, request: ProbeRequest(target: address, check: update.check),
                health: HealthHysteresis(rise: update.check.rise, fall: update.check.fall))
            tokens[key] = token
            kept.insert(token)
            if mode != .idle { reschedule(token, randomPhase: true) }
        }
        byUpstream[upstream] = kept
        engine.board.withLedger {
            $0.check(upstream); $0.targets = targets.count
        }
    }

    func remove(_ token: Int) {
        guard let target = targets.removeValue(forKey: token) else { return }
        tokens[target.key] = nil
        probes.forget(token)
    }

    // MARK: Modes

    func handle(_ command: ProbeEngine.Command) {
        switch command {
        case .activate(let snapshot, let keepLocal):
            if !(keepLocal && mode == .paused) {
                for (token, var target) in targets {
                    let stored = snapshot[target.key.upstream]?[target.key.address]
                    if let stored, stored.state != .unknown {
                        target.health.reset(to: stored.state)
                        target.record = stored
                    } else {
                        target.health.reset(to: .unknown)
                        target.record = nil
                    }
                    targets[token] = target
                }
            }
            if mode == .idle {
                for token in targets.keys { reschedule(token, randomPhase: true) }
            }
            mode = .active
            var desired: HealthMap = [:]
            for target in targets.values {
                if let record = target.record, record.state != .unknown {
                    desired[target.key.upstream, default: [:]][target.key.address] = record
                }
            }
            let checked = Set(byUpstream.keys)
            engine.board.withLedger { $0.activate(snapshot: snapshot, desired: desired, checked: checked) }
            logger.info(
                "probing as the active prober",
                metadata: [
                    "prober.targets": "\(targets.count)", "prober.kept_local_state": "\(keepLocal)",
                ])
        case .pause:
            if mode == .active { mode = .paused }
            engine.board.withLedger { $0.pause() }
        case .deactivate:
            mode = .idle
            schedule = Schedule()
            probes.closeIdle()
            for (token, var target) in targets {
                target.generation += 1
                target.health.reset(to: .unknown)
                target.record = nil
                targets[token] = target
            }
            engine.board.withLedger { $0.deactivate() }
        }
    }

    // MARK: Probing

    func reschedule(_ token: Int, randomPhase: Bool) {
        guard var target = targets[token] else { return }
        target.generation += 1
        let interval = Int64(target.check.intervalMs)
        let now = monotonicMilliseconds()
        target.due = randomPhase ? now + Int64.random(in: 0..<max(1, interval), using: &jitter) : now + interval
        targets[token] = target
        schedule.push(due: target.due, item: (token: token, generation: target.generation))
    }

    func startDueProbes(now: Int64) {
        while probes.inFlight < engine.maxInFlight, let (_, entry) = schedule.popDue(now: now) {
            guard var target = targets[entry.token], target.generation == entry.generation else { continue }
            // next round relative to the planned time (no drift), ±5 % so rounds spread out
            let interval = Double(target.check.intervalMs)
            let next = target.due + Int64(interval * Double.random(in: 0.95...1.05, using: &jitter))
            target.due = max(next, now + 1)
            schedule.push(due: target.due, item: (token: entry.token, generation: target.generation))
            if target.inFlight {
                targets[entry.token] = target  // the last probe is still running: skip a round
                continue
            }
            target.startedAt = monotonicNanoseconds()
            if let immediate = probes.start(target.request, token: entry.token) {
                targets[entry.token] = target
                finish(entry.token, immediate)
                continue
            }
            target.inFlight = true
            targets[entry.token] = target
        }
    }

    func finish(_ token: Int, _ outcome: ProbeOutcome) {
        guard var target = targets[token] else { return }
        target.inFlight = false
        engine.metrics.probe(target.request.kind, success: outcome.isSuccess, nanoseconds: monotonicNanoseconds() - target.startedAt)
        guard mode != .idle, let transition = target.health.record(outcome) else {
            targets[token] = target
            return
        }
        let record = HealthRecord(state: transition.to, since: wallMilliseconds(), reason: transition.reason, prober: engine.proberID)
        target.record = record
        targets[token] = target
        engine.board.withLedger { $0.set(target.key.upstream, target.key.address, record) }
        engine.metrics.transition(to: transition.to)
        let level: Logger.Level = transition.to == .down || transition.from == .down ? .notice : .info
        logger.log(
            level: level, "endpoint \(transition.to.rawValue)",
            metadata: [
                "upstream.name": "\(target.key.upstream)", "endpoint.address": "\(target.key.address)",
                "health.from": "\(transition.from.rawValue)", "health.reason": "\(transition.reason)",
            ])
    }
}

/// SplitMix64: a tiny, fast generator for scheduling jitter (not for anything secret).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

func wallMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The probe rounds: (token, generation) by due time.
typealias Schedule = DeadlineHeap<(token: Int, generation: Int)>
