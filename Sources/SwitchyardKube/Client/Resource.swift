// Which REST collection an object lives in, and the protocol typed objects conform to.

import Foundation

/// A resource of the Kubernetes API: group/version/plural, the kind, and the scope.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// The collection path: all namespaces (or cluster-scoped) when namespace is nil.
    public func collectionPath(namespace: String?) -> String {
        let base = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { return "\(base)/namespaces/\(escape(namespace))/\(plural)" }
        return "\(base)/\(plural)"
    }

    public func objectPath(namespace: String?, name: String, subresource: String? = nil) -> String {
        var path = collectionPath(namespace: namespaced ? (namespace ?? "default") : nil) + "/" + escape(name)
        if let subresource { path += "/" + subresource }
        return path
    }

    private func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(.init(charactersIn: "/"))) ?? segment
    }
}

/// A typed Kubernetes object. Typed models decode only what Switchyard reads; writes that must
/// not lose fields the model does not know go through patches (KubeClient.patch).
public protocol KubeObject: Codable, Sendable {
    /// Where objects of this type live by default (PhysicalEndpoint's group is configurable:
    /// pass another ResourceType to the client's calls).
    static var resource: ResourceType { get }
    var metadata: ObjectMeta { get set }
}

extension KubeObject {
    public var key: ObjectKey { metadata.key }
}

/// Any object, as JSON plus its decoded metadata (for kinds without a model).
public struct GenericObject: KubeObject, Hashable {
    public static var resource: ResourceType {
        ResourceType(group: "", version: "v1", plural: "", kind: "", namespaced: true)
    }
    public var metadata: ObjectMeta
    public var json: JSONValue

    public init(json: JSONValue) throws {
        self.json = json
        self.metadata = try (json["metadata"] ?? .object([:])).decode(ObjectMeta.self)
    }

    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        var json = self.json
        json = json.setting("metadata", to: try JSONValue(encoding: metadata).merged(into: json["metadata"]))
        try json.encode(to: encoder)
    }
}

extension JSONValue {
    /// Keys of self (an object) laid over `base` (an object or nil), shallowly.
    func merged(into base: JSONValue?) -> JSONValue {
        guard case .object(let top) = self else { return self }
        var out = base?.objectValue ?? [:]
        for (k, v) in top { out[k] = v }
        return .object(out)
    }
}
