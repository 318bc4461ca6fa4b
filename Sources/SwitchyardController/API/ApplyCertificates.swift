// Certificates in POST /api/v1/apply: `"certificates": [{"id":..,"cert":..,"key":..,
// "default":..}]` and `"delete": {"certificates": [ids]}`, validated as PUT /certificates/{id}
// validates one (OpenSSL: parse, key match, chain order, dates, names) and written in the same
// atomic sy_apply call as the routes and upstreams; keys sealed when the controller has
// SWITCHYARD_CERT_KEY. Never logged, never answered.

import SwitchyardCore

/// The certificates of one /apply request.
struct CertificateBatch: Sendable {
    var puts: [Certificate] = []
    var deletes: [String] = []

    var isEmpty: Bool { puts.isEmpty && deletes.isEmpty }
    var count: Int { puts.count + deletes.count }

    /// `certificates[i]` or `delete.certificates[i]` for an id of this batch.
    func field(_ id: String) -> String? {
        if let i = puts.firstIndex(where: { $0.id == id }) { return "certificates[\(i)]" }
        if let i = deletes.firstIndex(of: id) { return "delete.certificates[\(i)]" }
        return nil
    }

    /// Splits the certificates off an /apply body: the rest (for `Validator.batch`), the
    /// certificates and every problem with their field (`certificates[2].key`).
    static func split(_ body: JSONValue, now: Int64) -> (rest: JSONValue, batch: CertificateBatch, problems: [FieldError]) {
        guard case .object(var members) = body else { return (body, CertificateBatch(), []) }
        var batch = CertificateBatch()
        var problems: [FieldError] = []
        var seen = Set<String>()
        if let at = members.firstIndex(where: { $0.key == "certificates" }) {
            let value = members.remove(at: at).value
            if case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    let field = "certificates[\(i)]"
                    guard case .string(let id)? = item["id"] else {
                        problems.append(FieldError(field: field + ".id", code: .required, message: "every certificate needs an id"))
                        continue
                    }
                    if !seen.insert(id).inserted {
                        problems.append(FieldError(field: field + ".id", code: .duplicate, message: "certificate '\(id)' appears twice"))
                        continue
                    }
                    switch CertificateValidator().certificate(item, id: id, now: now) {
                    case .success(let certificate): batch.puts.append(certificate)
                    case .failure(let failure):
                        for p in failure.problems {
                            problems.append(
                                FieldError(
                                    field: p.field.isEmpty ? field : field + "." + p.field,
                                    code: FieldError.Code(rawValue: p.code) ?? .invalid,
                                    message: p.code == FieldError.Code(rawValue: p.code)?.rawValue ? p.message : "\(p.code): \(p.message)"))
                        }
                    }
                }
            } else {
                problems.append(FieldError(field: "certificates", code: .invalid, message: "certificates must be an array"))
            }
        }
        if let at = members.firstIndex(where: { $0.key == "delete" }), case .object(var delete) = members[at].value,
            let inner = delete.firstIndex(where: { $0.key == "certificates" })
        {
            let value = delete.remove(at: inner).value
            members[at] = ("delete", .object(delete))
            if case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    let field = "delete.certificates[\(i)]"
                    guard case .string(let id) = item, Names.isValid(id) else {
                        problems.append(FieldError(field: field, code: .invalid, message: "a certificate id (\(Names.rule))"))
                        continue
                    }
                    if !seen.insert(id).inserted {
                        problems.append(FieldError(field: field, code: .duplicate, message: "certificate '\(id)' appears twice"))
                        continue
                    }
                    batch.deletes.append(id)
                }
            } else {
                problems.append(FieldError(field: "delete.certificates", code: .invalid, message: "delete.certificates must be an array"))
            }
        }
        return (.object(members), batch, problems)
    }
}

extension AdminAPI {
    /// The sy_apply operations of the certificates: puts that change something (an identical
    /// certificate, key included, is no operation), then deletes.
    func certificateOperations(_ batch: CertificateBatch) async throws(StoreError) -> [ApplyOperation] {
        var operations: [ApplyOperation] = []
        for certificate in batch.puts {
            if let operation = try await store.certificateOperation(certificate, cipher: cipher).operation { operations.append(operation) }
        }
        return operations + batch.deletes.map { ApplyOperation.delete(.certificate, $0) }
    }
}
