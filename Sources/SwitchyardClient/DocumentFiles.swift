// The files `switchyard apply -f` and `switchyard diff -f` read: Switchyard's own schema (the
// body of POST /api/v1/apply, in YAML or JSON) or Kubernetes manifests (apiVersion + kind,
// translated by SwitchyardKubeSource). One invocation takes one of the two, never a mix.
//
// Switchyard documents: each document is a mapping of `upstreams`, `routes`, `certificates`
// (lists of objects as PUT takes them, each with its `name`/`id`) and `delete` ({routes,
// upstreams, certificates}: lists of ids). Several documents (files, or `---` in one file)
// are merged into one batch, in order.

import Foundation
import SwitchyardController
import SwitchyardCore

public enum DocumentFiles {
    public enum Content: Sendable, Equatable {
        /// Switchyard's schema: the merged apply body.
        case switchyard(JSONValue)
        /// Kubernetes manifests: read again by the Kubernetes apply.
        case kubernetes
    }

    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    static let listKeys = ["upstreams", "routes", "certificates", "streams"]
    static let deleteKeys = ["upstreams", "routes", "certificates", "streams"]

    /// The documents of the texts (name, text), classified and merged.
    public static func classify(_ texts: [(name: String, text: String)]) throws -> Content {
        var documents: [(origin: String, json: JSONValue)] = []
        for (name, text) in texts {
            let nodes: [(Int, JSONValue?)]
            do {
                nodes = try YAMLDocuments.documents(text).map { index, node in (index, try node.map { try YAMLDocuments.json($0) }) }
            } catch {
                throw ReadError("\(name): not YAML or JSON: \(error)")
            }
            for (index, json) in nodes { if let json { documents.append(("\(name)#\(index)", json)) } }
        }
        guard !documents.isEmpty else { throw ReadError("the files hold no document") }
        let kube = documents.filter { $0.json["apiVersion"] != nil && $0.json["kind"] != nil }
        if !kube.isEmpty {
            if let other = documents.first(where: { $0.json["apiVersion"] == nil || $0.json["kind"] == nil }) {
                throw ReadError(
                    "\(other.origin) is not a Kubernetes manifest but \(kube[0].origin) is: apply one kind of file at a time")
            }
            return .kubernetes
        }
        return .switchyard(try merge(documents))
    }

    /// One apply body from Switchyard documents; unknown keys are errors naming the document.
    static func merge(_ documents: [(origin: String, json: JSONValue)]) throws -> JSONValue {
        var lists: [String: [JSONValue]] = [:]
        var deletes: [String: [JSONValue]] = [:]
        for (origin, json) in documents {
            guard case .object(let members) = json else {
                throw ReadError("\(origin): a document must be a mapping of upstreams, routes, certificates, streams, delete")
            }
            for (key, value) in members {
                if listKeys.contains(key) {
                    guard case .array(let items) = value else { throw ReadError("\(origin): \(key) must be a list") }
                    lists[key, default: []] += items
                } else if key == "delete" {
                    guard case .object(let kinds) = value else { throw ReadError("\(origin): delete must be a mapping") }
                    for (kind, ids) in kinds {
                        guard deleteKeys.contains(kind), case .array(let items) = ids else {
                            throw ReadError(
                                "\(origin): delete.\(kind) must be one of routes, upstreams, certificates, streams, holding a list of ids")
                        }
                        deletes[kind, default: []] += items
                    }
                } else {
                    throw ReadError(
                        "\(origin): unknown key '\(key)' (Switchyard documents hold upstreams, routes, certificates, streams, delete; "
                            + "Kubernetes manifests have apiVersion and kind)")
                }
            }
        }
        var body: [(key: String, value: JSONValue)] = []
        for key in listKeys { if let items = lists[key] { body.append((key, .array(items))) } }
        let deleteMembers: [(key: String, value: JSONValue)] = deleteKeys.compactMap { key in deletes[key].map { (key, .array($0)) } }
        if !deleteMembers.isEmpty { body.append(("delete", .object(deleteMembers))) }
        return .object(body)
    }
}
