// Deterministic ids for what the translation produces, and the owner/source strings.
//
// An id is `<slug>.<origin>.<leaf>` (at most 63 characters of a-z 0-9 . _ -, the Names rule):
//   slug    readable: `default-bbs` (namespace-name, cut to fit), for people and redis-cli;
//   origin  8 hex digits of a hash of (installation, kind, namespace, name) of the object
//           the thing comes from (the Ingress of a route, the Service of an upstream, the
//           Secret of a certificate): everything one object produced shares it, so
//           `switchyard apply` finds what an object produced before and no longer does;
//   leaf    8 hex digits of a hash of what tells the things of one object apart (a route's
//           host, path and pathType; an upstream's port and policy), never of a position
//           in a list, so reordering an Ingress's paths changes no id.
// The installation (the ingress class) is part of every hash: two installations on one
// cluster never write the same id.

public enum KubeIdentity {
    /// The owner of everything the `switchyard kube` role of `installation` writes.
    public static func owner(installation: String) -> String { "k8s/\(installation)" }

    /// The provenance of an object: `k8s:<namespace>/<name>`.
    public static func source(_ key: K8sKey) -> String { "k8s:\(key.namespace)/\(key.name)" }

    public static func id(installation: String, origin: K8sRef, slug: String, leaf: [String]) -> String {
        let originHash = hex8(hash([installation, origin.kind, origin.key.namespace, origin.key.name]))
        let leafHash = hex8(hash(leaf))
        let room = Names.maxLength - 18
        var readable = sanitize(slug)
        if readable.count > room { readable = String(readable.prefix(room)) }  // ASCII: characters are bytes
        while readable.hasSuffix("-") || readable.hasSuffix(".") { readable.removeLast() }
        if readable.isEmpty { readable = "k8s" }
        return "\(readable).\(originHash).\(leafHash)"
    }

    /// The origin part of an id made here, or nil when `id` does not have the shape.
    public static func originHash(of id: String) -> String? {
        let parts = id.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[parts.count - 1].utf8.count == 8, parts[parts.count - 2].utf8.count == 8,
            parts[parts.count - 1].utf8.allSatisfy(isHex), parts[parts.count - 2].utf8.allSatisfy(isHex)
        else { return nil }
        return String(parts[parts.count - 2])
    }

    /// The origin hash objects of `origin` get in `installation`.
    public static func originHash(installation: String, origin: K8sRef) -> String {
        hex8(hash([installation, origin.kind, origin.key.namespace, origin.key.name]))
    }

    /// 8 hex digits of a stable hash of `parts` (names derived from content, e.g. Events).
    public static func digest(_ parts: [String]) -> String { hex8(hash(parts)) }

    static func isHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) }

    /// Lowercase; every character outside a-z 0-9 . - becomes `-`; runs of `-` collapse.
    static func sanitize(_ text: String) -> String {
        var out = ""
        for scalar in text.lowercased().unicodeScalars {
            let c = Character(scalar)
            let ok = scalar.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-")
            let next: Character = ok ? c : "-"
            if next == "-", out.last == "-" { continue }
            out.append(next)
        }
        while out.hasPrefix("-") || out.hasPrefix(".") { out.removeFirst() }
        return out
    }

    /// FNV-1a, 64 bits, over the parts separated by NUL: stable across runs and machines
    /// (Swift's Hasher is seeded per process).
    static func hash(_ parts: [String]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (i, part) in parts.enumerated() {
            if i > 0 {
                h ^= 0
                h = h &* 0x100_0000_01b3
            }
            for b in part.utf8 {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01b3
            }
        }
        return h
    }

    static func hex8(_ value: UInt64) -> String {
        // fold the high half in: FNV's low bits alone mix less well
        let folded = UInt32(truncatingIfNeeded: value ^ (value >> 32))
        let text = String(folded, radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }
}
