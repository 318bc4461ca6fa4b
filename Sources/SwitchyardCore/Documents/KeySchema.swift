// Redis key schema, controller side. The one description is redis/README.md; the edge's
// copy is lua/switchyard/sync/keys.lua, and KeySchemaAgreementTests runs that file with lua to
// keep the two identical.
//
// A group (`--group NAME`, redis/README.md "Groups") is one independent configuration in the
// same Redis: its keys are `switchyard:{NAME}:...`, so each group is one hash tag (one
// Redis Cluster slot). The default group is `cfg`, whose keys are the ones every release
// before groups wrote. A schema is a value handed from a role's options to the store, the
// prober and the sources; there is no process-wide group.

/// Every Redis key of one group. All share the `{<group>}` hash tag (one cluster slot).
public struct KeySchema: Sendable, Hashable, CustomStringConvertible {
    /// The group's name (`cfg` by default).
    public let group: String
    /// `switchyard:{<group>}:`, what every key starts with.
    public let base: String

    /// The name of the default group, whose keys are `switchyard:{cfg}:...`.
    public static let defaultGroup = "cfg"
    /// The default group's keys.
    public static let `default` = KeySchema(checked: defaultGroup)
    /// Longest group name.
    public static let maxGroupLength = 48

    /// Why `group` cannot name a group (nil when it can): 1-48 characters from a-z 0-9 `_` `-`,
    /// starting with a letter or digit. Lower case only, so `A` and `a` are never two groups
    /// that look alike; no `{`, `}`, `:` or `*`, which would break the hash tag, the key
    /// layout or an ACL key pattern.
    public static func problem(group: String) -> String? {
        if group.isEmpty || group.utf8.count > maxGroupLength {
            return "group must be 1-\(maxGroupLength) characters, not \(group.utf8.count)"
        }
        let allowed = group.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
        }
        if !allowed { return "group '\(group)' may hold only a-z 0-9 _ -" }
        if group.utf8.first == 0x5F || group.utf8.first == 0x2D {
            return "group '\(group)' must start with a letter or digit"
        }
        return nil
    }

    /// The keys of `group`; throws `KeySchemaError` naming the reason for a bad name.
    public init(group: String) throws(KeySchemaError) {
        if let problem = Self.problem(group: group) { throw KeySchemaError(message: problem) }
        self.init(checked: group)
    }

    private init(checked group: String) {
        self.group = group
        self.base = "switchyard:{" + group + "}:"
    }

    public var description: String { group }

    /// The configuration version (integer string); KEYS[1] of every `sy_apply` call.
    public var version: String { base + "version" }
    /// Order-independent digest of every stored document (13 hex digits), kept by `sy_apply`.
    public var digest: String { base + "digest" }
    /// The configuration history (32 hex digits): created by the first write, changed only by
    /// `sy_reseed`; edges and controller remember it (redis/README.md, "When Redis lost its data").
    public var epoch: String { base + "epoch" }
    /// The epoch an operator re-seeded (`sy_reseed`): edges follow a new epoch only when this names it.
    public var adopt: String { base + "adopt" }
    /// Hash: `<kind>:<id>` -> the 13-hex hash `sy_apply` computed when it wrote that document;
    /// the digest is their sum (redis/README.md, "The digest").
    public var hashes: String { base + "hashes" }
    /// Hash: `<kind>:<id>` -> the writer that owns that object (e.g. `k8s/switchyard`); only
    /// it may change or delete the object (redis/README.md, "Owners").
    public var owners: String { base + "owners" }
    /// Set of all route ids.
    public var routes: String { base + "routes" }
    /// Set of all upstream names.
    public var upstreams: String { base + "upstreams" }
    /// Set of all certificate ids.
    public var certificates: String { base + "certificates" }
    /// Set of all stream ids (TCP/UDP services, docs/stream.md).
    public var streams: String { base + "streams" }
    /// Hash: route id -> comma-separated upstreams it uses.
    public var uses: String { base + "uses" }
    /// Stream: the change log.
    public var changes: String { base + "changes" }
    /// Pub/sub channel carrying each new version.
    public var events: String { base + "events" }
    /// Stream: the history, one entry per change (id `<version>-0`: who, note, ts, digest, and
    /// per object its document before and after); bounded by count and bytes (redis/README.md,
    /// "History").
    public var history: String { base + "history" }
    /// String (integer): the sum of the history entries' `bytes`, for the byte bound.
    public var historyBytes: String { base + "history_bytes" }
    /// Sorted set: edge id -> last heartbeat (ms since the epoch).
    public var edges: String { base + "edges" }
    /// Health counter (integer string): bumped once per health change; KEYS[1] of `sy_health`.
    public var healthVersion: String { base + "health_version" }
    /// Pub/sub channel carrying `<health_version> <upstream> <address> <state>` per change.
    public var healthEvents: String { base + "health_events" }
    /// Set of the upstream names that have a health hash (so stale hashes can be found).
    public var healthUpstreams: String { base + "health_upstreams" }
    /// String: id of the active prober, with a PX expiry (the lease); KEYS[1] of `sy_lease`.
    public var proberLease: String { base + "prober:lease" }
    /// String (JSON) with a PX expiry, refreshed by the active prober: present = health is fresh.
    public var proberHeartbeat: String { base + "prober:heartbeat" }

    /// One route or upstream document.
    public func object(_ kind: ObjectKind, _ id: String) -> String { base + kind.rawValue + ":" + id }
    public func route(_ id: String) -> String { base + "route:" + id }
    public func upstream(_ name: String) -> String { base + "upstream:" + name }
    /// One certificate document (chain, names, dates and the key, encrypted when configured).
    public func certificate(_ id: String) -> String { base + "certificate:" + id }
    /// One stream document (listen port, protocol, upstream, balancing: StreamService.swift).
    public func stream(_ id: String) -> String { base + "stream:" + id }
    /// Set of ids of the routes that use upstream `name`.
    public func usedBy(_ name: String) -> String { base + "used_by:" + name }
    /// Hash describing one live edge.
    public func edge(_ id: String) -> String { base + "edge:" + id }
    /// Hash: endpoint address -> health record JSON, for upstream `name`.
    public func health(_ name: String) -> String { base + "health:" + name }

    /// The index set listing every object of `kind`.
    public func index(_ kind: ObjectKind) -> String {
        switch kind {
        case .route: return routes
        case .upstream: return upstreams
        case .certificate: return certificates
        case .stream: return streams
        }
    }

    /// Seconds an edge registration lives without a heartbeat.
    public static let edgeTTLSeconds = 15
}

/// A group name that cannot be used; `message` says why.
public struct KeySchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
