// Redis key schema, controller side. The one description is redis/README.md; the edge's
// copy is lua/switchyard/sync/keys.lua, and KeySchemaAgreementTests runs that file with lua to
// keep the two identical.

/// Every Redis key Switchyard uses. All share the `{cfg}` hash tag (one cluster slot).
public enum KeySchema {
    public static let base = "switchyard:{cfg}:"

    /// The configuration version (integer string); KEYS[1] of every `sy_apply` call.
    public static let version = base + "version"
    /// Order-independent digest of every stored document (13 hex digits), kept by `sy_apply`.
    public static let digest = base + "digest"
    /// The configuration history (32 hex digits): created by the first write, changed only by
    /// `sy_reseed`; edges and controller remember it (redis/README.md, "When Redis lost its data").
    public static let epoch = base + "epoch"
    /// The epoch an operator re-seeded (`sy_reseed`): edges follow a new epoch only when this names it.
    public static let adopt = base + "adopt"
    /// Hash: `<kind>:<id>` -> the 13-hex hash `sy_apply` computed when it wrote that document;
    /// the digest is their sum (redis/README.md, "The digest").
    public static let hashes = base + "hashes"
    /// Hash: `<kind>:<id>` -> the writer that owns that object (e.g. `k8s/switchyard`); only
    /// it may change or delete the object (redis/README.md, "Owners").
    public static let owners = base + "owners"
    /// Set of all route ids.
    public static let routes = base + "routes"
    /// Set of all upstream names.
    public static let upstreams = base + "upstreams"
    /// Set of all certificate ids.
    public static let certificates = base + "certificates"
    /// Set of all stream ids (TCP/UDP services, docs/stream.md).
    public static let streams = base + "streams"
    /// Hash: route id -> comma-separated upstreams it uses.
    public static let uses = base + "uses"
    /// Stream: the change log.
    public static let changes = base + "changes"
    /// Pub/sub channel carrying each new version.
    public static let events = base + "events"
    /// Stream: the history, one entry per change (id `<version>-0`: who, note, ts, digest, and
    /// per object its document before and after); bounded by count and bytes (redis/README.md,
    /// "History").
    public static let history = base + "history"
    /// String (integer): the sum of the history entries' `bytes`, for the byte bound.
    public static let historyBytes = base + "history_bytes"
    /// Sorted set: edge id -> last heartbeat (ms since the epoch).
    public static let edges = base + "edges"
    /// Health counter (integer string): bumped once per health change; KEYS[1] of `sy_health`.
    public static let healthVersion = base + "health_version"
    /// Pub/sub channel carrying `<health_version> <upstream> <address> <state>` per change.
    public static let healthEvents = base + "health_events"
    /// Set of the upstream names that have a health hash (so stale hashes can be found).
    public static let healthUpstreams = base + "health_upstreams"
    /// String: id of the active prober, with a PX expiry (the lease); KEYS[1] of `sy_lease`.
    public static let proberLease = base + "prober:lease"
    /// String (JSON) with a PX expiry, refreshed by the active prober: present = health is fresh.
    public static let proberHeartbeat = base + "prober:heartbeat"

    /// One route or upstream document.
    public static func object(_ kind: ObjectKind, _ id: String) -> String { base + kind.rawValue + ":" + id }
    public static func route(_ id: String) -> String { base + "route:" + id }
    public static func upstream(_ name: String) -> String { base + "upstream:" + name }
    /// One certificate document (chain, names, dates and the key, encrypted when configured).
    public static func certificate(_ id: String) -> String { base + "certificate:" + id }
    /// One stream document (listen port, protocol, upstream, balancing: StreamService.swift).
    public static func stream(_ id: String) -> String { base + "stream:" + id }
    /// Set of ids of the routes that use upstream `name`.
    public static func usedBy(_ name: String) -> String { base + "used_by:" + name }
    /// Hash describing one live edge.
    public static func edge(_ id: String) -> String { base + "edge:" + id }
    /// Hash: endpoint address -> health record JSON, for upstream `name`.
    public static func health(_ name: String) -> String { base + "health:" + name }

    /// The index set listing every object of `kind`.
    public static func index(_ kind: ObjectKind) -> String {
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
