// Kubernetes manifests from files: multi-document YAML (JSON is YAML too), `kind: List`
// expanded, each document parsed by the core's KubeObjectParser. Every object remembers the
// file and the document index it came from, so each problem can name them.
//
// YAML scalars keep the type YAML gives them (a quoted "300" is a string, 300 a number), as
// kubectl reads them: an annotation written as a bare number is an error, not a silent
// conversion.

import Foundation
import SwitchyardController
import SwitchyardCore
import Yams

/// Where an object was written: `bbs.yaml#2` (document 2, counting from 1), with the line.
public struct ManifestOrigin: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var document: Int
    public var line: Int?
    /// The position in a `kind: List`'s items.
    public var item: Int?

    public var description: String {
        var text = "\(file)#\(document)"
        if let item { text += " items[\(item)]" }
        if let line { text += " (line \(line))" }
        return text
    }
}

/// One problem found while reading files, with where it is.
public struct ManifestProblem: Sendable, Hashable, CustomStringConvertible {
    public var origin: ManifestOrigin?
    public var problem: KubeProblem

    public var description: String { origin.map { "\($0) \(problem)" } ?? problem.description }
}

/// The objects of a set of files, and what was wrong or skipped.
public struct ManifestSet: Sendable {
    public var state = ClusterState()
    public var origins: [K8sRef: ManifestOrigin] = [:]
    /// Errors: nothing may be written while there is one.
    public var errors: [ManifestProblem] = []
    /// Documents of kinds switchyard does not read, and why.
    public var ignored: [(origin: ManifestOrigin, what: String)] = []
    public var objectCount = 0

    public init() {}

    /// Reads one file's text. `name` is how problems name the file (`-` for stdin).
    public mutating func read(_ text: String, name: String, parser: KubeObjectParser) {
        let documents: [(Int, Node?)]
        do {
            documents = try KubeYAML.documents(text)
        } catch {
            errors.append(
                ManifestProblem(
                    origin: ManifestOrigin(file: name, document: 0),
                    problem: KubeProblem(.error, K8sRef("?", "", ""), field: "", "not YAML: \(error)", reason: "InvalidYAML")))
            return
        }
        for (index, node) in documents {
            guard let node else { continue }
            let origin = ManifestOrigin(file: name, document: index, line: node.mark.map { $0.line })
            let json: JSONValue
            do {
                json = try KubeYAML.json(node)
            } catch {
                errors.append(
                    ManifestProblem(
                        origin: origin,
                        problem: KubeProblem(.error, K8sRef("?", "", ""), field: error.path, error.message, reason: "InvalidYAML")))
                continue
            }
            if case .string("List")? = json["kind"], case .array(let items)? = json["items"] {
                for (i, item) in items.enumerated() {
                    var itemOrigin = origin
                    itemOrigin.item = i
                    add(item, origin: itemOrigin, parser: parser)
                }
            } else {
                add(json, origin: origin, parser: parser)
            }
        }
    }

    mutating func add(_ json: JSONValue, origin: ManifestOrigin, parser: KubeObjectParser) {
        switch parser.parse(json) {
        case .object(let object):
            if let first = origins[object.ref] {
                errors.append(
                    ManifestProblem(
                        origin: origin,
                        problem: KubeProblem(.error, object.ref, field: "metadata.name", "is also defined at \(first)", reason: "Duplicate")
                    ))
                return
            }
            origins[object.ref] = origin
            state.insert(object)
            objectCount += 1
        case .ignored(let ref, let reason):
            ignored.append((origin, ref.map { "\($0): \(reason)" } ?? reason))
        case .invalid(_, let problems):
            errors += problems.map { ManifestProblem(origin: origin, problem: $0) }
        }
    }

    /// Files of a directory (`*.yaml`, `*.yml`, `*.json`, not recursive, sorted), or the file.
    public static func paths(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ManifestReadError("\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }.sorted().map {
            (path as NSString).appendingPathComponent($0)
        }
    }
}

public struct ManifestReadError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// YAML documents to the core's JSON values (the controller's converter, which reads its
/// tokens file with it too).
public typealias KubeYAML = YAMLDocuments
