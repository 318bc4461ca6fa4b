// What Redis should say about endpoint health, and what it is believed to say.
//
// The probe engine records every state it decides in `desired`; the writer turns the
// difference between `desired` and `written` into `sy_health` operations, and moves them
// into `written` once Redis accepted them. Writes are therefore only ever transitions, a
// failed write is simply retried (the difference is still there), and after an outage
// the writer catches Redis up with one diff instead of replaying a queue.
//
// `HealthLedger` is a pure value (tested without Redis); `HealthBoard` shares one between
// the prober thread and the async writer under a lock.

import SwitchyardCore
import Synchronization

/// Endpoint health per upstream: upstream name -> address -> record.
public typealias HealthMap = [String: [String: HealthRecord]]

struct HealthLedger: Sendable {
    /// Writes are allowed (this prober holds the lease and has reconciled with Redis).
    var active = false
    /// Bumped by every activation, so a write taken before it is not committed after it.
    var epoch = 0
    /// Decided states; `unknown` endpoints have no entry.
    var desired: HealthMap = [:]
    /// Upstreams with a health check (their hashes are kept; others are dropped).
    var checked: Set<String> = []
    /// What Redis holds, as far as this prober knows.
    var written: HealthMap = [:]
    /// Upstreams whose desired and written may differ.
    var dirty: Set<String> = []
    /// Counts for the heartbeat.
    var targets = 0

    mutating func set(_ upstream: String, _ address: String, _ record: HealthRecord?) {
        if let record, record.state != .unknown {
            desired[upstream, default: [:]][address] = record
        } else {
            desired[upstream]?[address] = nil
            if desired[upstream]?.isEmpty == true { desired[upstream] = nil }
        }
        dirty.insert(upstream)
    }

    mutating func check(_ upstream: String) {
        checked.insert(upstream)
    }

    mutating func uncheck(_ upstream: String) {
        checked.remove(upstream)
        desired[upstream] = nil
        dirty.insert(upstream)
    }

    /// Starts writing after a reconcile: `snapshot` is what Redis holds now.
    mutating func activate(snapshot: HealthMap, desired: HealthMap, checked: Set<String>) {
        active = true
        epoch += 1
        written = snapshot
        self.desired = desired.filter { !$0.value.isEmpty }
        self.checked = checked
        dirty = checked.union(snapshot.keys)
    }

    /// Stops writing but keeps the decided states (Redis trouble: probing goes on).
    mutating func pause() {
        active = false
    }

    /// Stops writing and forgets everything (another prober is active).
    mutating func deactivate() {
        active = false
        epoch += 1
        desired = [:]
        written = [:]
        dirty = []
    }

    var down: Int { count(.down) }

    var up: Int { count(.up) }

    /// Decided endpoints in `state` (for the heartbeat and the metrics).
    func count(_ state: HealthState) -> Int {
        desired.values.reduce(0) { $0 + $1.values.filter { $0.state == state }.count }
    }

    /// Takes up to about `limit` operations that bring Redis to `desired`. The upstreams
    /// they cover leave `dirty`; `requeue` puts them back if the write fails.
    mutating func take(limit: Int) -> (epoch: Int, operations: [HealthCall.Operation]) {
        guard active else { return (epoch, []) }
        var operations: [HealthCall.Operation] = []
        for upstream in dirty.sorted() {
            if operations.count >= limit { break }
            dirty.remove(upstream)
            operations += diff(upstream)
        }
        return (epoch, operations)
    }

    func diff(_ upstream: String) -> [HealthCall.Operation] {
        let have = written[upstream] ?? [:]
        guard checked.contains(upstream) else {
            return have.isEmpty ? [] : [.drop(upstream: upstream)]
        }
        let want = desired[upstream] ?? [:]
        var operations: [HealthCall.Operation] = []
        for address in want.keys.sorted() where have[address]?.state != want[address]!.state {
            operations.append(.set(upstream: upstream, address: address, record: want[address]!))
        }
        for address in have.keys.sorted() where want[address] == nil {
            operations.append(.delete(upstream: upstream, address: address))
        }
        return operations
    }

    /// Redis accepted `operations` (taken at `epoch`).
    mutating func commit(_ operations: [HealthCall.Operation], epoch: Int) {
        guard epoch == self.epoch else { return }
        for operation in operations {
            switch operation {
            case .set(let u, let a, let record):
                written[u, default: [:]][a] = record
            case .delete(let u, let a):
                written[u]?[a] = nil
                if written[u]?.isEmpty == true { written[u] = nil }
            case .drop(let u):
                written[u] = nil
            }
        }
    }

    /// The write of `operations` failed: their upstreams need another try.
    mutating func requeue(_ operations: [HealthCall.Operation], epoch: Int) {
        guard epoch == self.epoch else { return }
        for operation in operations { dirty.insert(operation.upstream) }
    }

    var hasWork: Bool { active && !dirty.isEmpty }
}

/// A `HealthLedger` shared by the prober thread and the writer, plus the writer's wake-up.
final class HealthBoard: Sendable {
    private let ledger = Mutex(HealthLedger())
    /// Ticks whenever there may be something to write.
    let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func withLedger<T>(_ body: (inout HealthLedger) -> T) -> T {
        let (result, wake) = ledger.withLock { ledger -> (T, Bool) in
            let result = body(&ledger)
            return (result, ledger.hasWork)
        }
        if wake { continuation.yield() }
        return result
    }

    func finish() { continuation.finish() }
}
