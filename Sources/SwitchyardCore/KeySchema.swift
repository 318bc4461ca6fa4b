// Redis key schema, controller side. The one description is redis/README.md; the edge's
// copy is lua/switchyard/keys.lua, and KeySchemaAgreementTests runs that file with lua to
// keep the two identical.

/// Every Redis key Switchyard uses. All share the `{cfg}` hash tag (one cluster slot).
public enum KeySchema {
    public static let base = "switchyard:{cfg}:"

    /// The configuration version (integer string); KEYS[1] of every `sy_apply` call.
    public static let version = base + "version"
    /// Set of all route ids.
    public static let routes = base + "routes"
    /// Set of all upstream names.
    public static let upstreams = base + "upstreams"
    /// Hash: route id -> comma-separated upstreams it uses.
    public static let uses = base + "uses"
    /// Stream: the change log.
    public static let changes = base + "changes"
    /// Pub/sub channel carrying each new version.
    public static let events = base + "events"
    /// Sorted set: edge id -> last heartbeat (ms since the epoch).
    public static let edges = base + "edges"

    /// One route or upstream document.
    public static func object(_ kind: ObjectKind, _ id: String) -> String { base + kind.rawValue + ":" + id }
    public static func route(_ id: String) -> String { base + "route:" + id }
    public static func upstream(_ name: String) -> String { base + "upstream:" + name }
    /// Set of ids of the routes that use upstream `name`.
    public static func usedBy(_ name: String) -> String { base + "used_by:" + name }
    /// Hash describing one live edge.
    public static func edge(_ id: String) -> String { base + "edge:" + id }

    /// The index set listing every object of `kind`.
    public static func index(_ kind: ObjectKind) -> String { kind == .route ? routes : upstreams }

    /// Seconds an edge registration lives without a heartbeat.
    public static let edgeTTLSeconds = 15
}
