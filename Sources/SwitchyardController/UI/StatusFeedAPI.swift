// Read-only feeds for the status page (/ui), beside the admin API under /api/v1 (token
// required, like every /api/v1 call):
//
//   GET /changes?limit=N   the newest N entries of the change stream (default 50, at most
//                          500), newest first: {items: [{entry, version, op, kind, id, ...}],
//                          version}
//   GET /health            every upstream as GET /upstreams/{name} answers it (endpoints
//                          with health, since, reason and prober where it has a health
//                          check), in one pipeline: {items, prober_alive, version}
//
// Both only read Redis; neither writes anything.

import Hummingbird
import SwitchyardCore
import SwitchyardRedis

struct StatusFeedAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let maxBodySize: Int

    static var defaultChanges: Int { 50 }
    static var maxChanges: Int { 500 }

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("changes", use: changes)
        group.get("health", use: health)
    }

    @Sendable func changes(_ request: Request, context: Context) async throws -> Response {
        let limit = try Self.limitParameter(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let (entries, version) = try await call { () throws(StoreError) in try await store.recentChanges(limit: limit) }
        return jsonResponse(["items": .array(entries), "version": .integer(version)])
    }

    @Sendable func health(_ request: Request, context: Context) async throws -> Response {
        if let key = request.uri.queryParameters.first?.key {
            throw APIError.invalid([
                FieldError(field: String(key), code: .unknownField, message: "unknown parameter '\(key)' (health takes none)")
            ])
        }
        let (upstreams, version) = try await call { () throws(StoreError) in try await store.upstreams() }
        let checked = upstreams.filter { $0.value.healthCheck != nil }.map(\.value.name)
        let (records, proberAlive) = try await call { () throws(StoreError) in try await store.health(ofAll: checked) }
        let items = upstreams.map { UpstreamHealthView.json($0, records: records[$0.value.name] ?? [:], proberAlive: proberAlive) }
        return jsonResponse(["items": .array(items), "prober_alive": .bool(proberAlive), "version": .integer(version)])
    }

    /// `limit` of GET /changes: 1 to `maxChanges`; anything else, and any other parameter,
    /// is refused.
    static func limitParameter(_ query: [(String, String)]) throws(APIError) -> Int {
        var limit = defaultChanges
        var problems: [FieldError] = []
        for (key, value) in query {
            if key == "limit" {
                if let n = Int(value), (1...maxChanges).contains(n) {
                    limit = n
                } else {
                    problems.append(
                        FieldError(
                            field: "limit", code: .invalid, message: "limit must be an integer from 1 to \(maxChanges), not '\(value)'")
                    )
                }
            } else {
                problems.append(FieldError(field: key, code: .unknownField, message: "unknown parameter '\(key)' (use limit)"))
            }
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        return limit
    }

    /// One entry of the change stream as answered: `entry` is the stream id (`7-0`),
    /// `version` a number, every other field as stored. nil for an entry that is not a
    /// stream entry at all (logged by nobody: the stream is written only by sy_apply).
    static func changeEntry(_ reply: RedisReply) -> JSONValue? {
        guard let parts = reply.array, parts.count == 2, let entry = parts[0].text, let fields = parts[1].array else { return nil }
        var members: [(key: String, value: JSONValue)] = [("entry", .string(entry))]
        var i = 0
        while i + 1 < fields.count {
            if let key = fields[i].text, let value = fields[i + 1].text, key != "entry", !members.contains(where: { $0.key == key }) {
                if key == "version", let v = Int64(value) {
                    members.append((key, .integer(v)))
                } else {
                    members.append((key, .string(value)))
                }
            }
            i += 2
        }
        return .object(members)
    }
}

extension ConfigStore {
    /// The newest `limit` change-stream entries (newest first) and the configuration version.
    func recentChanges(limit: Int) async throws(StoreError) -> (entries: [JSONValue], version: Int64) {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline([
                ["XREVRANGE", keys.changes, "+", "-", "COUNT", "\(limit)"], ["GET", keys.version],
            ])
        } catch {
            throw StoreError.from(error)
        }
        if case .error(let message) = replies[0] { throw StoreError(.unexpected, "XREVRANGE \(keys.changes): \(message)") }
        let entries = (replies[0].array ?? []).compactMap { StatusFeedAPI<BasicRequestContext>.changeEntry($0) }
        return (entries, replies[1].integer ?? 0)
    }

    /// The health records of several upstreams (by upstream, then address) and whether an
    /// active prober's heartbeat exists: one pipeline.
    func health(ofAll upstreams: [String]) async throws(StoreError) -> (records: [String: [String: HealthRecord]], proberAlive: Bool) {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline(
                upstreams.map { ["HGETALL", keys.health($0)] } + [["EXISTS", keys.proberHeartbeat]])
        } catch {
            throw StoreError.from(error)
        }
        var records: [String: [String: HealthRecord]] = [:]
        for (name, reply) in zip(upstreams, replies) { records[name] = Self.healthRecords(reply) }
        return (records, replies.last?.integer == 1)
    }
}
