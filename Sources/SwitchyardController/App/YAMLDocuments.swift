// YAML to the core's JSON values: the controller's tokens file, `switchyard apply`'s
// manifests and Switchyard documents, the CLI's config file. Scalars keep the type YAML
// gives them (a quoted "300" is a string, 300 a number); aliases are refused.

import SwitchyardCore
import Yams

/// YAML documents to the core's JSON values.
public enum YAMLDocuments {
    public struct ConversionError: Error, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    /// The documents of a stream, numbered from 1; an empty document is nil.
    public static func documents(_ text: String) throws -> [(Int, Node?)] {
        var out: [(Int, Node?)] = []
        var index = 0
        // the parser itself, not compose_all: its sequence ends silently at a syntax error
        let parser = try Parser(yaml: text)
        while let node = try parser.nextRoot() {
            index += 1
            if case .scalar = node, node.tag.rawValue == Tag.Name.null.rawValue {
                out.append((index, nil))
            } else {
                out.append((index, node))
            }
        }
        return out
    }

    public static func json(_ node: Node, at path: String = "") throws(ConversionError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool:
                guard let b = node.bool else { throw ConversionError(path: path, message: "'\(scalar.string)' is not a boolean") }
                return .bool(b)
            case .int:
                guard let i = node.int else { throw ConversionError(path: path, message: "'\(scalar.string)' is not an integer") }
                return .integer(Int64(i))
            case .float:
                guard let f = node.float, f.isFinite else {
                    throw ConversionError(path: path, message: "'\(scalar.string)' is not a number")
                }
                return .number(String(f))
            default:
                return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (i, item) in sequence.enumerated() { items.append(try json(item, at: "\(path)[\(i)]")) }
            return .array(items)
        case .mapping(let mapping):
            var members: [(key: String, value: JSONValue)] = []
            for (key, value) in mapping {
                guard case .scalar(let k) = key else { throw ConversionError(path: path, message: "a mapping key must be a scalar") }
                let name = k.string
                if members.contains(where: { $0.key == name }) {
                    throw ConversionError(path: path.isEmpty ? name : "\(path).\(name)", message: "appears twice")
                }
                members.append((name, try json(value, at: path.isEmpty ? name : "\(path).\(name)")))
            }
            return .object(members)
        case .alias:
            throw ConversionError(path: path, message: "YAML aliases are not supported")
        }
    }
}

extension YAMLDocuments {
    /// The single document of a YAML (or JSON) text; an empty text is null.
    public static func single(_ text: String) throws -> JSONValue {
        let all = try documents(text)
        guard all.count <= 1 else { throw ConversionError(path: "", message: "holds \(all.count) YAML documents, not one") }
        guard let node = all.first?.1 else { return .null }
        return try json(node)
    }
}
