// TLS certificates under /api/v1/certificates (their storage: Store/CertificateStore.swift).
//
//   GET    /certificates          every certificate (without chain and key), which names
//                                 each one loses to another, and the ids expiring within
//                                 30 days (?expiring_within_days=N filters the items)
//   GET    /certificates/:id      one certificate with its chain (never the key)
//   PUT    /certificates/:id      {"cert":"<PEM chain>","key":"<PEM key>","default":false}
//   DELETE /certificates/:id
//
// A PUT is validated with OpenSSL (SwitchyardCore/TLS/Certificate.swift: parse, key match,
// chain order, dates, names) and written with one sy_apply `put certificate`; a rejected
// one writes nothing. The private key is stored encrypted (AES-256-GCM, key_enc) when the
// controller has SWITCHYARD_CERT_KEY, in plaintext (key) otherwise. Keys are never logged
// and never answered.

import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

struct CertificatesAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    /// nil: keys are stored in plaintext.
    let cipher: CertificateKeyCipher?
    let maxBodySize: Int
    let logger: Logger

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("certificates", use: list)
        group.get("certificates/:id", use: get)
        group.put("certificates/:id", use: put)
        group.delete("certificates/:id", use: delete)
    }

    static func now() -> Int64 { ConfigStore.nowMilliseconds() / 1000 }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        var within: Int64?
        if let text = request.uri.queryParameters.get("expiring_within_days") {
            guard let days = Int64(text), days >= 0, days <= 36500 else {
                throw APIError.invalid([
                    FieldError(field: "expiring_within_days", code: .invalid, message: "must be a number of days, 0-36500")
                ])
            }
            within = days
        }
        let (items, version) = try await call { () throws(StoreError) in try await store.certificates() }
        let now = Self.now()
        let shadowed = CertificateSelection.shadowed(items.map(\.certificate))
        var answers: [JSONValue] = []
        var expiring: [JSONValue] = []
        for item in items {
            let c = item.certificate
            if c.notAfter - now <= Int64(Certificate.expiryWarningDays) * 86400 { expiring.append(.string(c.id)) }
            if let within, c.notAfter - now > within * 86400 { continue }
            answers.append(Self.answer(item, now: now, includeChain: false, shadowed: shadowed[c.id] ?? []))
        }
        return jsonResponse(["items": .array(answers), "expiring_soon": .array(expiring), "version": .integer(version)])
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id), let stored = try await call({ () throws(StoreError) in try await store.certificate(id) }) else {
            throw APIError.notFound(.certificate, id)
        }
        return jsonResponse(Self.answer(stored, now: Self.now(), includeChain: true, shadowed: nil))
    }

    @Sendable func put(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        let body = try await requiredBody(request)
        let now = Self.now()
        let certificate: Certificate
        switch CertificateValidator().certificate(body, id: id, now: now) {
        case .success(let value): certificate = value
        case .failure(let failure): throw Self.invalid(failure)
        }
        let (version, created) = try await call { () throws(StoreError) in try await store.put(certificate, cipher: cipher) }
        logger.info(
            "certificate stored",
            metadata: [
                "certificate.id": "\(id)", "certificate.names": "\(certificate.names.joined(separator: ","))",
                "certificate.default": "\(certificate.isDefault)",
                "certificate.not_after": "\(Certificate.timestamp(certificate.notAfter))",
                "certificate.fingerprint": "\(certificate.fingerprintSHA256)", "certificate.key_encrypted": "\(cipher != nil)",
                "config.version": "\(version)", "created": "\(created)",
            ])
        // which of its names another certificate wins (best effort: a listing error does not fail the write)
        var shadowed: [(name: String, by: String)] = []
        if let all = try? await store.certificates() {
            var certificates = all.items.map(\.certificate).filter { $0.id != id }
            certificates.append(certificate)
            shadowed = CertificateSelection.shadowed(certificates)[id] ?? []
        }
        var answer = certificate.apiDocument(version: version, keyEncrypted: cipher != nil, now: now)
        answer = Self.adding(shadowed: shadowed, to: answer)
        return jsonResponse(answer, status: created ? .created : .ok)
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id) else { throw APIError.notFound(.certificate, id) }
        let version = try await call { () throws(StoreError) in try await store.delete(.certificate, id) }
        logger.info("certificate deleted", metadata: ["certificate.id": "\(id)", "config.version": "\(version)"])
        return jsonResponse(["id": .string(id), "deleted": true, "version": .integer(version)])
    }

    // MARK: Helpers

    static func answer(_ stored: StoredCertificate, now: Int64, includeChain: Bool, shadowed: [(name: String, by: String)]?) -> JSONValue {
        let json = stored.certificate.apiDocument(
            version: stored.version, keyEncrypted: stored.sealedKey != nil, now: now,
            includeChain: includeChain)
        guard let shadowed else { return json }
        return adding(shadowed: shadowed, to: json)
    }

    /// `"shadowed": [{"name":"a.example.com","by":"other-id"}]`: names this certificate claims
    /// that the edges serve with another one (later not_after, then smaller id).
    static func adding(shadowed: [(name: String, by: String)], to json: JSONValue) -> JSONValue {
        guard case .object(var members) = json else { return json }
        members.append(("shadowed", .array(shadowed.map { ["name": .string($0.name), "by": .string($0.by)] })))
        return .object(members)
    }

    /// 422 listing every problem; `field` and `message` summarise the first. The detail codes
    /// are the certificate codes (`unparsable`, `key_mismatch`, `expired`, ...).
    static func invalid(_ failure: CertificateValidator.Failure) -> APIError {
        let problems = failure.problems
        let details: [JSONValue] = problems.map { ["field": .string($0.field), "code": .string($0.code), "message": .string($0.message)] }
        let message =
            problems.count == 1
            ? (problems[0].field.isEmpty ? problems[0].message : "\(problems[0].field): \(problems[0].message)")
            : "\(problems.count) problems"
        return APIError(.unprocessableContent, "invalid", message, field: problems.first?.field, extra: [("details", .array(details))])
    }
}
