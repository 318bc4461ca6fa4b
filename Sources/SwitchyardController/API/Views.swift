// The JSON shapes the admin API answers, built from the core's values: a stored object
// with its version, an upstream with its endpoints' health, one edge of GET /status, and a
// certificate without its key. The documents themselves (what Redis stores) are the
// core's (SwitchyardCore/Documents); these are views of them for the API only.

import SwitchyardCore

extension JSONValue {
    /// The object with `"version": N` added: what the API answers for a stored object.
    func adding(version: Int64) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members.removeAll { $0.key == "version" }
        members.append((key: "version", value: .integer(version)))
        return .object(members)
    }
}

/// What `GET /api/v1/upstreams/{name}` adds when the upstream has a health check.
enum UpstreamHealthView {
    /// The upstream's API object with, per endpoint, `health` (`up`, `down` or `unknown`)
    /// and, when a record exists, `health_since` (ISO 8601), `health_since_ms`,
    /// `health_reason` and `health_prober`; and `health_stale: true` at the top when no
    /// prober heartbeat exists (the records may be outdated). An endpoint exempt from the
    /// check (`"health_check": false`) shows `health: "unchecked"` and no record (edges ignore
    /// any). Upstreams without a health check are answered unchanged.
    static func json(_ stored: Stored<Upstream>, records: [String: HealthRecord], proberAlive: Bool) -> JSONValue {
        let base = stored.value.document.adding(version: stored.version)
        guard stored.value.healthCheck != nil, case .object(var members) = base else { return base }
        let endpoints: [JSONValue] = stored.value.endpoints.map { endpoint in
            guard case .object(var fields) = endpoint.document else { return endpoint.document }
            guard endpoint.activeCheck else {
                fields.append(("health", "unchecked"))
                return .object(fields)
            }
            let record = records[endpoint.address.description]
            fields.append(("health", .string((record?.state ?? .unknown).rawValue)))
            if let record {
                fields.append(("health_since", .string(iso8601(milliseconds: record.since))))
                fields.append(("health_since_ms", .integer(record.since)))
                fields.append(("health_reason", .string(record.reason)))
                fields.append(("health_prober", .string(record.prober)))
            }
            return .object(fields)
        }
        if let i = members.firstIndex(where: { $0.key == "endpoints" }) { members[i].value = .array(endpoints) }
        members.append(("health_stale", .bool(!proberAlive)))
        return .object(members)
    }
}

/// One edge as shown by `GET /api/v1/status`, built from its registration hash.
enum EdgeStatus {
    /// `fields` is the edge's hash (may be empty when it expired); `heartbeat` its score in
    /// the edges sorted set (ms since the epoch); `version` the current configuration version.
    static let numericFields: Set<String> = ["applied_version", "pid", "workers"]

    static func json(id: String, fields: [(String, String)], heartbeat: Int64, version: Int64) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        for (key, value) in fields where seen.insert(key).inserted {
            // only fields known to be numbers become numbers: `listen` may be "8080" or
            // "127.0.0.1:8080" and must keep one type
            if numericFields.contains(key), let n = Int64(value) {
                members.append((key, .integer(n)))
            } else {
                members.append((key, .string(value)))
            }
        }
        func set(_ key: String, _ value: JSONValue) {
            members.removeAll { $0.key == key }
            members.append((key, value))
        }
        set("id", .string(id))
        let lastSeen = fields.first(where: { $0.0 == "last_seen" }).flatMap { Int64($0.1) } ?? heartbeat
        set("last_seen", .string(iso8601(milliseconds: lastSeen)))
        set("last_seen_ms", .integer(lastSeen))
        if let started = fields.first(where: { $0.0 == "started" }).flatMap({ Int64($0.1) }), started > 1_000_000_000_000 {
            set("started", .string(iso8601(milliseconds: started)))
        }
        if let applied = fields.first(where: { $0.0 == "applied_version" }).flatMap({ Int64($0.1) }) {
            set("applied_version", .integer(applied))
            set("lag", .integer(max(0, version - applied)))
        } else {
            set("applied_version", .null)
            set("lag", .null)
        }
        return .object(members)
    }
}

extension Certificate {
    /// What the API answers: no key material; `key_encrypted` says how the key is stored,
    /// `expires_in_days` and `expiring_soon` (within `expiryWarningDays`) are relative to `now`.
    func apiDocument(version: Int64, keyEncrypted: Bool, now: Int64, includeChain: Bool = true) -> JSONValue {
        var members = publicMembers
        if !includeChain { members.removeAll { $0.key == "cert" } }
        let days = (notAfter - now) / 86400
        members += [
            ("key_encrypted", .bool(keyEncrypted)), ("expires_in_days", .integer(days)),
            ("expiring_soon", .bool(notAfter - now <= Int64(Self.expiryWarningDays) * 86400)),
            ("version", .integer(version)),
        ]
        return .object(members)
    }
}
