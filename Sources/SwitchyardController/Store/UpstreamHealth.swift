// Endpoint health for `GET /api/v1/upstreams/{name}`, read from what the prober wrote
// (redis/README.md, "Health"): the upstream's health hash and whether a prober heartbeat
// exists. The controller never writes health.

import SwitchyardCore
import SwitchyardRedis

extension ConfigStore {
    /// The health records of `upstream`'s endpoints (by address) and whether an active
    /// prober's heartbeat exists. Unreadable records are left out (shown as unknown).
    public func health(of upstream: String) async throws(StoreError) -> (records: [String: HealthRecord], proberAlive: Bool) {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline([["HGETALL", keys.health(upstream)], ["EXISTS", keys.proberHeartbeat]])
        } catch {
            throw StoreError.from(error)
        }
        return (Self.healthRecords(replies[0]), replies[1].integer == 1)
    }

    /// The records of one health hash (an HGETALL reply) by address; unreadable ones are
    /// left out (shown as unknown).
    static func healthRecords(_ reply: RedisReply) -> [String: HealthRecord] {
        var records: [String: HealthRecord] = [:]
        let items = reply.array ?? []
        var i = 0
        while i + 1 < items.count {
            if let address = items[i].text, let bytes = items[i + 1].bytes, let record = HealthRecord(json: bytes) {
                records[address] = record
            }
            i += 2
        }
        return records
    }
}
