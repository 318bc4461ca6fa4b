// Streams in POST /api/v1/apply: `"streams": [{"id":..,"listen":..,"upstream":..}]` and
// `"delete": {"streams": [ids]}`, validated as PUT /streams/{id} validates one
// (StreamService.validate) and written in the same atomic sy_apply call as the routes,
// upstreams and certificates. sy_apply checks, after the whole batch, that every stream's
// upstream exists, that no deleted upstream is still named by a stream, and that no two
// streams share a listen port and protocol (docs/stream.md).

import SwitchyardCore

/// The streams of one /apply request.
struct StreamBatch: Sendable {
    var puts: [StreamService] = []
    var deletes: [String] = []

    var isEmpty: Bool { puts.isEmpty && deletes.isEmpty }
    var count: Int { puts.count + deletes.count }

    /// `streams[i]` or `delete.streams[i]` for an id of this batch.
    func field(_ id: String) -> String? {
        if let i = puts.firstIndex(where: { $0.id == id }) { return "streams[\(i)]" }
        if let i = deletes.firstIndex(of: id) { return "delete.streams[\(i)]" }
        return nil
    }

    /// The upstreams the puts name, with their fields, that the batch does not put itself.
    func references(besides batch: Batch) -> [(field: String, upstream: String)] {
        let put = Set(batch.upstreams.map(\.name))
        return puts.enumerated().compactMap { i, s in put.contains(s.upstream) ? nil : ("streams[\(i)].upstream", s.upstream) }
    }

    /// The sy_apply operations: puts, then deletes (sy_apply checks streams after the batch,
    /// so their place among the other kinds' operations does not matter).
    var operations: [ApplyOperation] {
        puts.map { ApplyOperation.put($0) } + deletes.map { ApplyOperation.delete(.stream, $0) }
    }

    /// Splits the streams off an /apply body: the rest (for `Validator.batch`), the streams
    /// and every problem with its field (`streams[2].listen`).
    static func split(_ body: JSONValue) -> (rest: JSONValue, batch: StreamBatch, problems: [FieldError]) {
        guard case .object(var members) = body else { return (body, StreamBatch(), []) }
        var batch = StreamBatch()
        var problems: [FieldError] = []
        var seen = Set<String>()
        if let at = members.firstIndex(where: { $0.key == "streams" }) {
            let value = members.remove(at: at).value
            if case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    let field = "streams[\(i)]"
                    guard case .string(let id)? = item["id"] else {
                        problems.append(FieldError(field: field + ".id", code: .required, message: "every stream needs an id"))
                        continue
                    }
                    if !seen.insert(id).inserted {
                        problems.append(FieldError(field: field + ".id", code: .duplicate, message: "stream '\(id)' appears twice"))
                        continue
                    }
                    switch StreamService.validate(item, id: id) {
                    case .success(let stream): batch.puts.append(stream)
                    case .failure(let failure):
                        for p in failure.problems {
                            problems.append(
                                FieldError(field: p.field.isEmpty ? field : field + "." + p.field, code: p.code, message: p.message))
                        }
                    }
                }
            } else {
                problems.append(FieldError(field: "streams", code: .invalid, message: "streams must be an array"))
            }
        }
        if let at = members.firstIndex(where: { $0.key == "delete" }), case .object(var delete) = members[at].value,
            let inner = delete.firstIndex(where: { $0.key == "streams" })
        {
            let value = delete.remove(at: inner).value
            members[at] = ("delete", .object(delete))
            if case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    let field = "delete.streams[\(i)]"
                    guard case .string(let id) = item, Names.isValid(id) else {
                        problems.append(FieldError(field: field, code: .invalid, message: "a stream id (\(Names.rule))"))
                        continue
                    }
                    if !seen.insert(id).inserted {
                        problems.append(FieldError(field: field, code: .duplicate, message: "stream '\(id)' appears twice"))
                        continue
                    }
                    batch.deletes.append(id)
                }
            } else {
                problems.append(FieldError(field: "delete.streams", code: .invalid, message: "delete.streams must be an array"))
            }
        }
        return (.object(members), batch, problems)
    }
}
