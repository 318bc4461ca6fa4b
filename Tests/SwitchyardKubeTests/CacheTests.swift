// The reflector's cache, backoff and the leader-election state machine: pure, no server.

import Testing

@testable import SwitchyardKube

private func svc(_ name: String, _ rv: String, namespace: String = "n") -> Service {
    Service(metadata: ObjectMeta(name: name, namespace: namespace, resourceVersion: rv))
}

private func describe(_ changes: [CacheChange<Service>]) -> [String] {
    changes.map {
        switch $0 {
        case .added(let o): return "+\(o.metadata.name!)@\(o.metadata.resourceVersion!)"
        case .updated(let old, let new): return "~\(new.metadata.name!)@\(old.metadata.resourceVersion!)>\(new.metadata.resourceVersion!)"
        case .deleted(let o): return "-\(o.metadata.name!)"
        }
    }
}

@Suite struct ObjectCacheTests {
    @Test func resyncReportsAddsUpdatesAndWhatVanished() {
        var cache = ObjectCache<Service>()
        #expect(!cache.synced)
        #expect(
            describe(cache.apply(.resync([svc("a", "1"), svc("b", "2"), svc("c", "3")], resourceVersion: "3"))) == ["+a@1", "+b@2", "+c@3"])
        #expect(cache.synced && cache.resourceVersion == "3" && cache.count == 3)
        // after a 410: the relist no longer has b, a is unchanged, c changed, d is new
        let changes = cache.apply(.resync([svc("a", "1"), svc("c", "9"), svc("d", "8")], resourceVersion: "9"))
        #expect(describe(changes).sorted() == ["+d@8", "-b", "~c@3>9"])
        #expect(cache[ObjectKey(namespace: "n", name: "b")] == nil && cache.resourceVersion == "9")
    }

    @Test func eventsChangeOneObject() {
        var cache = ObjectCache<Service>()
        cache.apply(.resync([svc("a", "1")], resourceVersion: "1"))
        #expect(describe(cache.apply(.modified(svc("a", "2")))) == ["~a@1>2"])
        #expect(describe(cache.apply(.modified(svc("a", "2")))) == [])  // same version: nothing changed
        #expect(describe(cache.apply(.added(svc("b", "3")))) == ["+b@3"])
        #expect(describe(cache.apply(.modified(svc("c", "4")))) == ["+c@4"])  // unknown: an add
        #expect(describe(cache.apply(.deleted(svc("a", "5")))) == ["-a"])
        #expect(describe(cache.apply(.deleted(svc("zz", "6")))) == [])
        #expect(cache.resourceVersion == "6")
        let failure = DecodeFailure(key: ObjectKey(namespace: "n", name: "b"), resourceVersion: "7", message: "bad")
        #expect(describe(cache.apply(.undecodable(failure))) == ["-b"])
        #expect(cache.objects.keys.map(\.name) == ["c"] && cache.resourceVersion == "7")
    }

    @Test func applyingLeavesTheOriginalAlone() {
        let empty = ObjectCache<Service>()
        let (next, changes) = empty.applying(.added(svc("a", "1")))
        #expect(empty.count == 0 && next.count == 1 && changes.count == 1)
        #expect(next[ObjectKey(namespace: "n", name: "a")]?.metadata.resourceVersion == "1")
    }

    @Test func namespacesKeepObjectsApart() {
        var cache = ObjectCache<Service>()
        cache.apply(.resync([svc("a", "1", namespace: "x"), svc("a", "2", namespace: "y")], resourceVersion: "2"))
        #expect(cache.count == 2)
        #expect(describe(cache.apply(.deleted(svc("a", "3", namespace: "x")))) == ["-a"])
        #expect(cache[ObjectKey(namespace: "y", name: "a")] != nil)
    }
}

/// A deterministic "random" source for backoff tests: cycles through fixed values spread over
/// the whole range.
struct CyclingRandom: RandomNumberGenerator {
    var values: [UInt64] = [0, .max / 4, .max / 2, .max / 4 * 3, .max, .max / 3, .max / 5 * 4]
    var index = 0
    mutating func next() -> UInt64 {
        defer { index = (index + 1) % values.count }
        return values[index]
    }
}

@Suite struct BackoffTests {
    @Test func growsWithJitterWithinBoundsAndResets() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2, jitter: 0.5)
        var rng = CyclingRandom()
        var delays: [Duration] = []
        for _ in 0..<10 { delays.append(backoff.next(using: &rng)) }
        let bases: [Duration] = [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
            .milliseconds(1600), .seconds(2), .seconds(2), .seconds(2), .seconds(2), .seconds(2),
        ]
        for (delay, base) in zip(delays, bases) {
            #expect(delay >= base / 2 && delay <= base, "\(delay) outside [\(base / 2), \(base)]")
        }
        #expect(Set(delays.suffix(5)).count > 1, "jitter makes equal bases differ")
        backoff.reset()
        let first = backoff.next(using: &rng)
        #expect(first >= .milliseconds(50) && first <= .milliseconds(100))
    }

    @Test func neverZero() {
        var backoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(10), jitter: 0.9)
        var rng = CyclingRandom()
        for _ in 0..<1000 { #expect(backoff.next(using: &rng) >= .milliseconds(1)) }
    }
}

@Suite struct LeaderElectionStateTests {
    let config = LeaderElectionConfig(identity: "me", leaseDuration: .seconds(15), renewDeadline: .seconds(10), retryPeriod: .seconds(2))

    private func record(_ holder: String?, transitions: Int = 0, renew: String = "r0") -> LeaseRecord {
        LeaseRecord(holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: "a0", renewTime: renew, leaseTransitions: transitions)
    }

    @Test func createsAMissingLease() {
        var state = LeaderElectionState(config: config)
        let decision = state.decide(current: nil, now: .zero, wallClock: "t1")
        #expect(
            decision
                == .create(
                    LeaseRecord(holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: "t1", renewTime: "t1", leaseTransitions: 0)))
        #expect(!state.isLeader)
        if case .create(let r) = decision { state.succeeded(r, now: .zero) }
        #expect(state.isLeader)
    }

    @Test func waitsForAnotherHoldersLeaseToExpireOnItsOwnClock() {
        var state = LeaderElectionState(config: config)
        #expect(state.decide(current: record("other"), now: .seconds(100), wallClock: "t") == .wait)
        #expect(state.decide(current: record("other"), now: .seconds(114), wallClock: "t") == .wait)
        // the holder renewed: the 15 s start again from when we saw it
        #expect(state.decide(current: record("other", renew: "r1"), now: .seconds(114), wallClock: "t") == .wait)
        #expect(state.decide(current: record("other", renew: "r1"), now: .seconds(128), wallClock: "t") == .wait)
        let takeover = state.decide(current: record("other", transitions: 3, renew: "r1"), now: .seconds(130), wallClock: "t9")
        // (a changed transitions count is a new version: the clock restarted at 130)
        #expect(takeover == .wait)
        #expect(
            state.decide(current: record("other", transitions: 3, renew: "r1"), now: .seconds(145), wallClock: "t9")
                == .update(
                    LeaseRecord(holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: "t9", renewTime: "t9", leaseTransitions: 4)))
    }

    @Test func aReleasedLeaseIsTakenAtOnce() {
        var state = LeaderElectionState(config: config)
        if case .update(let r) = state.decide(current: record(""), now: .seconds(1), wallClock: "t") {
            #expect(r.holderIdentity == "me" && r.leaseTransitions == 1)
        } else {
            Issue.record("a lease without holder must be taken")
        }
    }

    @Test func renewalKeepsAcquireTimeAndTransitions() {
        var state = LeaderElectionState(config: config)
        let mine = LeaseRecord(holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: "a0", renewTime: "r0", leaseTransitions: 2)
        state.succeeded(mine, now: .seconds(5))
        #expect(
            state.decide(current: mine, now: .seconds(7), wallClock: "r1")
                == .update(
                    LeaseRecord(holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: "a0", renewTime: "r1", leaseTransitions: 2)))
    }

    @Test func losesLeadershipWhenRenewalFailsPastTheDeadline() {
        var state = LeaderElectionState(config: config)
        state.succeeded(record("me"), now: .seconds(10))
        let at12 = state.failed(now: .seconds(12))
        let at19 = state.failed(now: .seconds(19))
        let at20 = state.failed(now: .seconds(20))
        #expect(at12 && at19 && !at20)
        #expect(!state.isLeader)
    }

    @Test func seeingAnotherHolderEndsLeadership() {
        var state = LeaderElectionState(config: config)
        state.succeeded(record("me"), now: .seconds(10))
        #expect(state.decide(current: record("thief", renew: "x"), now: .seconds(11), wallClock: "t") == .wait)
        #expect(!state.isLeader)
    }
}
