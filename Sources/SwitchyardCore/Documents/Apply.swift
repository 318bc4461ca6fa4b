// Calling the `sy_apply` Redis Function (redis/switchyard.lua): building its arguments and
// reading its `SYERR {json}` error replies back into typed errors.

/// One operation of an `sy_apply` call.
public struct ApplyOperation: Sendable, Equatable {
    /// `restore`: `document` is a document exactly as sy_apply stored it (its `version`
    /// included), written byte for byte (a revert).
    public enum Op: String, Sendable { case put, del, restore }

    public var op: Op
    public var kind: ObjectKind
    public var id: String
    /// put: the canonical document without version; del: "".
    public var document: String
    /// put route: the upstreams it uses; otherwise empty.
    public var refs: [String]
    /// Optimistic precondition on the stored version: nil = none, 0 = must not exist.
    public var expect: Int64?

    public init(op: Op, kind: ObjectKind, id: String, document: String = "", refs: [String] = [], expect: Int64? = nil) {
        self.op = op
        self.kind = kind
        self.id = id
        self.document = document
        self.refs = refs
        self.expect = expect
    }

    public static func put(_ route: Route, expect: Int64? = nil) -> ApplyOperation {
        ApplyOperation(op: .put, kind: .route, id: route.id, document: route.canonicalDocument, refs: route.upstreams, expect: expect)
    }

    public static func put(_ upstream: Upstream, expect: Int64? = nil) -> ApplyOperation {
        ApplyOperation(op: .put, kind: .upstream, id: upstream.name, document: upstream.canonicalDocument, expect: expect)
    }

    /// Writes `stored` (a document as sy_apply stored it, version included) byte for byte.
    public static func restore(_ kind: ObjectKind, _ id: String, stored: String, refs: [String] = []) -> ApplyOperation {
        ApplyOperation(op: .restore, kind: kind, id: id, document: stored, refs: refs)
    }

    public static func delete(_ kind: ObjectKind, _ id: String, expect: Int64? = nil) -> ApplyOperation {
        ApplyOperation(op: .del, kind: kind, id: id, expect: expect)
    }

    /// The six arguments: op kind id doc refs expect.
    public var arguments: [String] {
        [op.rawValue, kind.rawValue, id, document, refs.joined(separator: ","), expect.map { String($0) } ?? ""]
    }
}

public enum ApplyCall {
    public static let functionName = "sy_apply"

    /// The whole command: `FCALL sy_apply 1 <version key> op kind id doc refs expect ...`,
    /// for the group of `keys`.
    public static func command(_ operations: [ApplyOperation], keys: KeySchema = .default) -> [String] {
        ["FCALL", functionName, "1", keys.version] + operations.flatMap(\.arguments)
    }
}

/// The result of a successful `sy_apply`.
/// One operation's outcome in sy_apply's `report` (redis/README.md, "sy_apply").
public struct ObjectOutcome: Sendable, Equatable {
    /// The object's stored version after the call (an unchanged document keeps its own).
    public var version: Int64
    /// The call created the object (it did not exist before).
    public var created: Bool

    public init(version: Int64, created: Bool) {
        self.version = version
        self.created = created
    }
}

public struct ApplyResult: Sendable, Equatable {
    /// The configuration version after the call (unchanged when nothing changed).
    public var version: Int64
    /// How many objects the call changed; 0 when every put equalled what was stored.
    public var changed: Int64
    /// With sy_apply's `report` option, per operation in order: the object's stored version
    /// after the call (0 after a delete) and whether the call created it; empty otherwise.
    public var report: [ObjectOutcome]

    public init(version: Int64, changed: Int64, report: [ObjectOutcome] = []) {
        self.version = version
        self.changed = changed
        self.report = report
    }
}

/// An `SYERR` error reply of `sy_apply`. Nothing was written.
public enum ApplyError: Error, Sendable, Equatable {
    /// del of an object that does not exist.
    case notFound(kind: ObjectKind?, id: String)
    /// del of an upstream that routes or stream services still use.
    case inUse(id: String, routes: [String], streams: [String] = [])
    /// A route names an upstream that will not exist.
    case missingUpstream(route: String, upstream: String)
    /// An expect precondition failed.
    case versionMismatch(kind: ObjectKind?, id: String, expected: Int64?, actual: Int64?)
    /// A malformed call: a bug in the caller.
    case badRequest(message: String)
    /// A code this controller does not know (a newer library).
    case other(code: String, raw: String)

    /// Parses an error reply. nil when it is not an SYERR reply (e.g. `ERR Function not found`).
    public static func parse(_ reply: String) -> ApplyError? {
        var text = Substring(reply)
        if text.hasPrefix("-") { text = text.dropFirst() }
        guard text.hasPrefix("SYERR ") else { return nil }
        let payload = String(text.dropFirst("SYERR ".count))
        guard let json = try? JSONValue.parse(payload), case .string(let code)? = json["code"] else {
            return .other(code: "unparsable", raw: reply)
        }
        func string(_ key: String) -> String {
            if case .string(let s)? = json[key] { return s }
            return ""
        }
        func integer(_ key: String) -> Int64? {
            switch json[key] {
            case .integer(let v)?: return v
            case .number(let text)?: return Double(text).map { Int64($0) }
            default: return nil
            }
        }
        let kind = ObjectKind(rawValue: string("kind"))
        switch code {
        case "not_found":
            return .notFound(kind: kind, id: string("id"))
        case "in_use":
            func strings(_ name: String) -> [String] {
                guard case .array(let items)? = json[name] else { return [] }  // cjson writes an empty list as {}
                return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
            }
            return .inUse(id: string("id"), routes: strings("routes"), streams: strings("streams"))
        case "missing_upstream":
            return .missingUpstream(route: string("id"), upstream: string("upstream"))
        case "version_mismatch":
            return .versionMismatch(kind: kind, id: string("id"), expected: integer("expected"), actual: integer("actual"))
        case "bad_request":
            return .badRequest(message: string("message"))
        default:
            return .other(code: code, raw: reply)
        }
    }
}
