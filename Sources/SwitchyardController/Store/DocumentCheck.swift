// GET /api/v1/status?check=documents: is every stored document what sy_apply recorded?
// sy_apply keeps, beside each document, the hash it computed when it wrote it
// (<base>hashes; redis/README.md, "The digest"); a document changed behind its
// back (redis-cli SET), written by hand, or half-removed from its index shows here before
// any edge loads it. The hashing is the Function library's (FCALL_RO sy_check, read only),
// in chunks, so no call keeps Redis busy for long and the definition lives in one place.

import SwitchyardCore
import SwitchyardRedis

/// One document that is not what sy_apply recorded.
public struct DocumentProblem: Sendable, Equatable {
    /// `<kind>:<id>`, e.g. `route:bbs-api`.
    public var key: String
    /// `edited`, `unrecorded`, `missing` or `unindexed` (see sy_check in redis/switchyard.lua).
    public var problem: String
    /// The group's version key, named in the advice (`FCALL sy_digest 1 <it>`).
    public var versionKey: String = KeySchema.default.version

    public init(key: String, problem: String, versionKey: String = KeySchema.default.version) {
        self.key = key
        self.problem = problem
        self.versionKey = versionKey
    }

    /// What it means and what to do, for the status's problems.
    public var description: String {
        let adopt = "write it through the API, or adopt what Redis holds with FCALL sy_digest 1 \(versionKey)"
        switch problem {
        case "edited": return "\(key) in Redis differs from what sy_apply wrote (changed by hand): \(adopt)"
        case "unrecorded": return "\(key) was written by hand, not through sy_apply (no recorded hash): \(adopt)"
        case "missing": return "\(key) is listed in its index but has no document: delete it through the API, or adopt with sy_digest"
        case "unindexed": return "\(key) has a recorded hash but is not in its index (removed by hand): adopt with sy_digest"
        default: return "\(key): \(problem)"
        }
    }
}

/// The result of a document check.
public struct DocumentCheck: Sendable {
    /// Objects checked (the index sets and the recorded hashes together).
    public var checked: Int
    public var problems: [DocumentProblem]
    /// false: Redis keeps no recorded hashes yet (written by a library from before them;
    /// the next write records them), so nothing could be checked.
    public var recorded: Bool
}

extension ConfigStore {
    /// Checks every document against its recorded hash (O(objects): the index sets, the
    /// hashes' fields, then FCALL_RO sy_check per chunk of `chunkSize`).
    public func checkDocuments() async throws(StoreError) -> DocumentCheck {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline(
                ObjectKind.allCases.map { ["SMEMBERS", keys.index($0)] } + [
                    ["HKEYS", keys.hashes], ["EXISTS", keys.hashes],
                ])
        } catch {
            throw StoreError.from(error)
        }
        var fields = Set<String>()
        for (kind, reply) in zip(ObjectKind.allCases, replies) {
            guard let ids = reply.array else { throw StoreError(.unexpected, "unexpected SMEMBERS reply") }
            for id in ids.compactMap(\.text) { fields.insert("\(kind.rawValue):\(id)") }
        }
        let indexed = fields.count
        for field in replies[ObjectKind.allCases.count].array?.compactMap(\.text) ?? [] { fields.insert(field) }
        if replies.last?.integer != 1 {
            return DocumentCheck(checked: indexed, problems: [], recorded: indexed == 0)
        }
        let sorted = fields.sorted()
        var problems: [DocumentProblem] = []
        var start = 0
        while start < sorted.count {
            let chunk = Array(sorted[start..<min(start + chunkSize, sorted.count)])
            start += chunk.count
            let command = ["FCALL_RO", "sy_check", "1", keys.version] + chunk
            var reply = try await send(command)
            if case .error(let message) = reply, message.lowercased().contains("function not found") {
                try await loadLibrary()
                reply = try await send(command)
            }
            if case .error(let message) = reply { throw StoreError(.unexpected, "sy_check failed: \(message)") }
            guard let flat = reply.array?.compactMap(\.text) else { throw StoreError(.unexpected, "unexpected reply to sy_check") }
            var i = 0
            while i + 1 < flat.count {
                problems.append(DocumentProblem(key: flat[i], problem: flat[i + 1], versionKey: keys.version))
                i += 2
            }
        }
        return DocumentCheck(checked: sorted.count, problems: problems, recorded: true)
    }
}
