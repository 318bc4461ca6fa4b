// Which configuration history this controller writes: Redis's epoch (redis/README.md, "When
// Redis lost its data"). The controller remembers the epoch it saw last and passes it to
// every sy_apply, so a Redis that lost its data (no epoch, or another one) refuses the write
// instead of starting a new history at version 1 that edges would follow into an empty
// configuration.

import SwitchyardCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The epoch (and the version it was last seen at), shared by every copy of a ConfigStore.
final class HistoryMemory: Sendable {
    private struct State {
        var epoch: String?
        var version: Int64 = 0
    }

    private let state = Mutex(State())

    var epoch: String? { state.withLock { $0.epoch } }

    var version: Int64 { state.withLock { $0.version } }

    func remember(_ epoch: String, version: Int64) {
        state.withLock { state in
            state.epoch = epoch
            state.version = version
        }
    }

    /// Why a write into Redis without this history is refused, and what the operator does.
    func lostMessage(known: String, redis: RedisHistory) -> String {
        let confirm = redis.epoch ?? "none"
        return "Redis no longer holds the configuration this controller wrote (epoch \(known), last seen at version \(version)); "
            + "Redis has \(redis.epoch.map { "epoch \($0)" } ?? "no epoch") at version \(redis.version). The edges keep serving "
            + "what they have. Restore Redis's data, or re-seed it explicitly: POST /api/v1/reseed {\"confirm\":\"\(confirm)\"} "
            + "(switchyard reseed --confirm \(confirm))"
    }

    /// A new epoch: 32 random hex digits.
    static func newEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// Redis's epoch, adopt key and version as read at one moment.
struct RedisHistory: Sendable {
    var epoch: String?
    var adopt: String?
    var version: Int64
}

extension ConfigStore {
    /// `FCALL sy_apply 1 <version key> [epoch E] [owner O] op kind id doc refs expect ...`.
    static func applyCommand(
        _ operations: [ApplyOperation], epoch: String?, owner: String?, options: ApplyOptions = ApplyOptions(),
        keys: KeySchema = .default
    ) -> [String] {
        var command = ["FCALL", ApplyCall.functionName, "1", keys.version]
        if let epoch { command += ["epoch", epoch] }
        if let owner, !owner.isEmpty { command += ["owner", owner] }
        if let who = options.who { command += ["who", who] }
        if let note = options.note { command += ["note", note] }
        if let version = options.ifVersion { command += ["if_version", String(version)] }
        if options.dryRun { command += ["dry", "1"] }
        if let keep = options.keep { command += ["keep", "\(keep.maxChanges):\(keep.maxBytes)"] }
        if options.force { command += ["force", "1"] }
        if options.report && !options.dryRun { command += ["report", "1"] }
        return command + operations.flatMap(\.arguments)
    }
}

/// sy_apply's options beyond epoch and owner (redis/switchyard.lua's header).
struct ApplyOptions: Sendable {
    var who: String?
    var note: String?
    var ifVersion: Int64?
    var dryRun = false
    var keep: HistoryLimits?
    var force = false
    /// Ask for the per-operation outcome (sy_apply's `report`; ignored with dryRun).
    var report = false
}

/// How much change history Redis keeps: the oldest entries go beyond either bound (the
/// newest always stays). `SWITCHYARD_HISTORY_MAX_CHANGES` (default 1000) and
/// `SWITCHYARD_HISTORY_MAX_BYTES` (default 33554432, 32 MiB) override the defaults.
public struct HistoryLimits: Sendable, Equatable {
    public var maxChanges: Int
    public var maxBytes: Int

    public static let defaults = HistoryLimits(maxChanges: 1000, maxBytes: 32 << 20)

    public init(maxChanges: Int, maxBytes: Int) {
        self.maxChanges = max(1, maxChanges)
        self.maxBytes = max(1, maxBytes)
    }

    public static func fromEnvironment() -> HistoryLimits {
        func value(_ name: String) -> Int? {
            guard let raw = getenv(name) else { return nil }
            return Int(String(cString: raw)).flatMap { $0 > 0 ? $0 : nil }
        }
        return HistoryLimits(
            maxChanges: value("SWITCHYARD_HISTORY_MAX_CHANGES") ?? defaults.maxChanges,
            maxBytes: value("SWITCHYARD_HISTORY_MAX_BYTES") ?? defaults.maxBytes)
    }
}
