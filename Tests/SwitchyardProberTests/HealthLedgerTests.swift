import Testing

@testable import SwitchyardCore
@testable import SwitchyardProber

private func record(_ state: HealthState, _ since: Int64 = 1, _ reason: String = "r", prober: String = "p1") -> HealthRecord {
    HealthRecord(state: state, since: since, reason: reason, prober: prober)
}

private func describe(_ ops: [HealthCall.Operation]) -> [String] {
    ops.map { op in
        switch op {
        case .set(let u, let a, let r): return "set \(u) \(a) \(r.state.rawValue)"
        case .delete(let u, let a): return "del \(u) \(a)"
        case .drop(let u): return "drop \(u)"
        }
    }
}

@Suite("Health ledger: what the writer sends")
struct HealthLedgerTests {
    @Test func writesNothingUntilActive() {
        var ledger = HealthLedger()
        ledger.check("u")
        ledger.set("u", "10.0.0.1:80", record(.down))
        #expect(ledger.take(limit: 100).operations.isEmpty)
        #expect(!ledger.hasWork)
    }

    @Test func reconcileWithAnIdenticalSnapshotWritesNothing() {
        var ledger = HealthLedger()
        let snapshot: HealthMap = ["u": ["10.0.0.1:80": record(.up), "10.0.0.2:80": record(.down)]]
        ledger.activate(snapshot: snapshot, desired: snapshot, checked: ["u"])
        #expect(ledger.take(limit: 100).operations.isEmpty)
        #expect(!ledger.hasWork)
        #expect(ledger.up == 1 && ledger.down == 1)
    }

    @Test func onlyTransitionsAreWritten() {
        var ledger = HealthLedger()
        ledger.activate(snapshot: ["u": ["a:1": record(.up)]], desired: ["u": ["a:1": record(.up)]], checked: ["u"])
        // a record with the same state but a newer time is not a transition
        ledger.set("u", "a:1", record(.up, 99))
        #expect(ledger.take(limit: 100).operations.isEmpty)
        ledger.set("u", "a:1", record(.down, 100))
        let (epoch, ops) = ledger.take(limit: 100)
        #expect(describe(ops) == ["set u a:1 down"])
        ledger.commit(ops, epoch: epoch)
        #expect(ledger.written["u"]?["a:1"]?.state == .down)
        #expect(ledger.take(limit: 100).operations.isEmpty)
    }

    @Test func removedEndpointsAndUpstreamsAreDeleted() {
        var ledger = HealthLedger()
        let snapshot: HealthMap = ["u": ["a:1": record(.up), "a:2": record(.down)], "gone": ["a:3": record(.down)]]
        // "gone" is in Redis but no longer has a health check; a:2 left upstream u
        ledger.activate(snapshot: snapshot, desired: ["u": ["a:1": record(.up)]], checked: ["u"])
        let (epoch, ops) = ledger.take(limit: 100)
        #expect(Set(describe(ops)) == ["del u a:2", "drop gone"])
        ledger.commit(ops, epoch: epoch)
        #expect(ledger.written == ["u": ["a:1": record(.up)]])
        ledger.uncheck("u")
        #expect(describe(ledger.take(limit: 100).operations) == ["drop u"])
    }

    @Test func unknownEndpointsAreNotWritten() {
        var ledger = HealthLedger()
        ledger.activate(snapshot: [:], desired: [:], checked: ["u"])
        ledger.set("u", "a:1", nil)
        ledger.set("u", "a:2", record(.unknown))
        #expect(ledger.take(limit: 100).operations.isEmpty)
    }

    @Test func failedWritesAreRetriedAndStaleCommitsIgnored() {
        var ledger = HealthLedger()
        ledger.activate(snapshot: [:], desired: [:], checked: ["u"])
        ledger.set("u", "a:1", record(.down))
        let (epoch, ops) = ledger.take(limit: 100)
        #expect(!ledger.hasWork)
        ledger.requeue(ops, epoch: epoch)
        #expect(ledger.hasWork)
        let again = ledger.take(limit: 100)
        #expect(describe(again.operations) == ["set u a:1 down"])
        // a new activation (another reconcile) happened while the write was in flight
        ledger.activate(snapshot: ["u": ["a:1": record(.up)]], desired: ["u": ["a:1": record(.down)]], checked: ["u"])
        ledger.commit(again.operations, epoch: again.epoch)
        #expect(ledger.written["u"]?["a:1"]?.state == .up)  // the snapshot, not the stale commit
        #expect(describe(ledger.take(limit: 100).operations) == ["set u a:1 down"])
    }

    @Test func pauseKeepsDecisionsAndDeactivateForgetsThem() {
        var ledger = HealthLedger()
        ledger.activate(snapshot: [:], desired: [:], checked: ["u"])
        ledger.pause()
        ledger.set("u", "a:1", record(.down))
        #expect(ledger.take(limit: 100).operations.isEmpty)
        // back after an outage: Redis still has nothing, the decision made meanwhile is written
        ledger.activate(snapshot: [:], desired: ledger.desired, checked: ["u"])
        #expect(describe(ledger.take(limit: 100).operations) == ["set u a:1 down"])
        ledger.deactivate()
        #expect(ledger.desired.isEmpty && ledger.written.isEmpty && !ledger.hasWork)
    }

    @Test func counts() {
        var ledger = HealthLedger()
        ledger.set("u", "a:1", record(.down))
        ledger.set("u", "a:2", record(.up))
        ledger.set("v", "a:3", record(.down))
        #expect(ledger.down == 2)
    }
}

@Suite("Probe schedule")
struct ScheduleTests {
    @Test func popsInDueOrderOnlyWhenDue() {
        var s = Schedule()
        for (i, due) in [50, 10, 40, 10, 30, 20].enumerated() { s.push(due: Int64(due), item: (token: i, generation: 0)) }
        #expect(s.popDue(now: 5) == nil)
        var order: [Int64] = []
        while let e = s.popDue(now: 45) { order.append(e.due) }
        #expect(order == [10, 10, 20, 30, 40])
        #expect(s.nextDue == 50)
    }
}
