// From the translation's documents to validated model values, with the admin API's own
// rules (Validator, CertificateValidator): what the Kubernetes source writes passes exactly
// the checks a hand-written object would. Whatever fails is reported on the object it came
// from (naming the annotation when a member came from one) and skipped with what depends on
// it: a route whose upstream failed, the HTTPS redirect of a certificate that failed.

public struct KubeDesired: Sendable {
    public var routes: [Route] = []
    public var upstreams: [Upstream] = []
    public var certificates: [Certificate] = []
    /// `route:<id>`, `upstream:<id>`, `certificate:<id>` -> the object it comes from.
    public var origins: [String: K8sRef] = [:]
    public var problems: [KubeProblem] = []

    public init() {}

    public func origin(_ kind: ObjectKind, _ id: String) -> K8sRef? { origins["\(kind.rawValue):\(id)"] }
}

/// Certificates checked before, by id and PEM text: a cluster's certificates are parsed once,
/// not on every translation.
public struct KubeCertificateCache: Sendable {
    struct Entry: Sendable {
        var certificatePEM: String
        var keyPEM: String
        var result: Result<Certificate, CertificateValidator.Failure>
        var checkedAt: Int64
    }
    var entries: [String: Entry] = [:]

    public init() {}
}

/// Upstreams and routes validated before, by id, with the document each was validated from:
/// the translation hands an unchanged object's document back as it was, so after a change
/// only what changed is validated again. Valid for one validator configuration (a lowering
/// with another one starts it afresh).
public struct KubeLoweringMemo: Sendable {
    var validator = ""
    var upstreams: [String: (document: JSONValue, result: Result<Upstream, ValidationFailure>)] = [:]
    var routes: [String: (document: JSONValue, result: Result<Route, ValidationFailure>)] = [:]

    public init() {}
}

public struct KubeLowering: Sendable {
    public var validator: Validator
    /// Seconds since the epoch (certificate validity).
    public var now: Int64

    public init(validator: Validator = Validator(), now: Int64) {
        self.validator = validator
        self.now = now
    }

    public func lower(_ translation: KubeTranslation, cache: inout KubeCertificateCache) -> KubeDesired {
        var memo = KubeLoweringMemo()
        return lower(translation, cache: &cache, memo: &memo)
    }

    /// Lowers `translation`, validating only the documents `memo` has not seen validated.
    public func lower(_ translation: KubeTranslation, cache: inout KubeCertificateCache, memo: inout KubeLoweringMemo) -> KubeDesired {
        let fingerprint = "\(type(of: validator.regex))|\(validator.allowLinkLocalEndpoints)|\(validator.acceptsOwnership)"
        if memo.validator != fingerprint {
            memo = KubeLoweringMemo()
            memo.validator = fingerprint
        }
        var out = KubeDesired()
        out.problems = translation.problems

        var failedUpstreams: [String: K8sRef] = [:]
        for draft in translation.upstreams {
            let result: Result<Upstream, ValidationFailure>
            if let seen = memo.upstreams[draft.id], seen.document == draft.document {
                result = seen.result
            } else {
                result = validator.upstream(draft.document, name: nil)
                memo.upstreams[draft.id] = (draft.document, result)
            }
            switch result {
            case .success(let upstream):
                out.upstreams.append(upstream)
                out.origins["upstream:\(draft.id)"] = draft.origin
            case .failure(let failure):
                failedUpstreams[draft.id] = draft.origin
                for problem in failure.problems {
                    out.problems.append(
                        KubeProblem(
                            .error, draft.origin, field: "", "upstream \(draft.id) is not valid: \(problem)", reason: "InvalidUpstream"))
                }
            }
        }

        var failedCertificates: Set<String> = []
        for draft in translation.certificates {
            var entry = cache.entries[draft.id]
            // re-check when the PEM changed, and daily (expiry)
            if entry == nil || entry!.certificatePEM != draft.certificatePEM || entry!.keyPEM != draft.keyPEM
                || now - entry!.checkedAt > 86_400
            {
                entry = KubeCertificateCache.Entry(
                    certificatePEM: draft.certificatePEM, keyPEM: draft.keyPEM,
                    result: CertificateValidator().certificate(draft.document, id: draft.id, now: now), checkedAt: now)
                cache.entries[draft.id] = entry
            }
            switch entry!.result {
            case .success(let certificate):
                out.certificates.append(certificate)
                out.origins["certificate:\(draft.id)"] = draft.origin
                for host in draft.hosts where !Self.covers(certificate.names, host) {
                    out.problems.append(
                        KubeProblem(
                            .warning, draft.origin, field: "data.tls.crt",
                            "the certificate does not name \(host) (it names \(certificate.names.joined(separator: ", ")))",
                            reason: "CertificateNameMismatch"))
                }
            case .failure(let failure):
                failedCertificates.insert(draft.id)
                for problem in failure.problems {
                    let field = problem.field == "cert" ? "data.tls.crt" : problem.field == "key" ? "data.tls.key" : problem.field
                    out.problems.append(
                        KubeProblem(
                            .error, draft.origin, field: field, "\(problem.message) (\(problem.code))", reason: "InvalidCertificate"))
                }
            }
        }
        // drop entries of certificates no longer translated
        let live = Set(translation.certificates.map(\.id))
        cache.entries = cache.entries.filter { live.contains($0.key) }

        for draft in translation.routes {
            var document = draft.document
            if let id = draft.redirectCertificate, failedCertificates.contains(id), case .object(let members) = document {
                document = .object(members.filter { $0.key != "https_redirect" })
            }
            let used = Self.upstreamNames(document)
            if let failed = used.first(where: { failedUpstreams[$0] != nil }) {
                out.problems.append(
                    KubeProblem(
                        .error, draft.origin, field: draft.field,
                        "not served: its upstream \(failed) (from \(failedUpstreams[failed]!)) is not valid", reason: "InvalidUpstream"))
                continue
            }
            let result: Result<Route, ValidationFailure>
            if let seen = memo.routes[draft.id], seen.document == document {
                result = seen.result
            } else {
                result = validator.route(document, id: nil)
                memo.routes[draft.id] = (document, result)
            }
            switch result {
            case .success(let route):
                out.routes.append(route)
                out.origins["route:\(draft.id)"] = draft.origin
            case .failure(let failure):
                for problem in failure.problems {
                    let member = String(problem.field.prefix { $0 != "." && $0 != "[" })
                    let field = draft.annotations[member].map { annotationField($0) } ?? draft.field
                    out.problems.append(
                        KubeProblem(
                            .error, draft.origin, field: field, "not served: route field \(problem.field): \(problem.message)",
                            reason: "InvalidRoute"))
                }
            }
        }
        // forget what is no longer translated
        if memo.upstreams.count > translation.upstreams.count {
            let ids = Set(translation.upstreams.map(\.id))
            memo.upstreams = memo.upstreams.filter { ids.contains($0.key) }
        }
        if memo.routes.count > translation.routes.count {
            let ids = Set(translation.routes.map(\.id))
            memo.routes = memo.routes.filter { ids.contains($0.key) }
        }
        out.problems.sort()
        return out
    }

    static func upstreamNames(_ document: JSONValue) -> [String] {
        var out: [String] = []
        if case .string(let name)? = document["upstream"] { out.append(name) }
        if case .array(let targets)? = document["split"] {
            for case .string(let name)? in targets.map({ $0["upstream"] }) { out.append(name) }
        }
        if case .string(let name)? = document["canary"]?["upstream"] { out.append(name) }
        return out
    }

    /// Whether certificate names cover `host` as a client checks it (a wildcard covers one label).
    static func covers(_ names: [String], _ host: String) -> Bool {
        if names.contains(host) { return true }
        if host.hasPrefix("*.") { return false }
        guard let dot = host.firstIndex(of: ".") else { return false }
        return names.contains("*" + host[dot...])
    }
}
