// HS256 secrets between a request and Redis (docs/traffic-policies.md, "HS256 secrets").
//
// A request gives an HS256 key either `secret` (a new secret) or `secret_sha256` alone:
// "keep the secret this route has stored with that fingerprint". GET answers a key with
// `secret_sha256` only, so a route read with GET and PUT back (or applied from a file made
// from GET answers) keeps its secrets; a fingerprint this route has not stored is a 422
// naming the field, so a redacted document can never wipe a secret or store a marker.
//
// Stored (the route's canonicalDocument): with SWITCHYARD_CERT_KEY, `secret_enc`, AES-256-GCM
// like certificate keys (CertificateKeyCipher) with the additional authenticated data
// `switchyard:route:<id>:jwt.secret`, so a secret_enc copied to another route does not
// decrypt; when the stored route already holds the same secret its ciphertext is kept (a
// fresh nonce would turn every identical PUT into a change). Without the key, `secret` in
// plaintext, as certificate keys are stored then; answers never show it either way.
// Answers, history entries, dry runs and diffs carry `secret_sha256` only (`redacted`).

public enum JWTSecrets {
    /// The additional authenticated data of route `id`'s sealed secrets (the edge uses the same).
    public static func aad(route id: String) -> [UInt8] { Array("switchyard:route:\(id):jwt.secret".utf8) }

    /// Whether `route` has HS256 keys: then `prepare` runs before it is stored.
    public static func needed(_ route: Route) -> Bool {
        route.policies.jwt?.keys.contains { $0.secret != nil } ?? false
    }

    /// `route` ready to store: references (`secret_sha256` alone) replaced by the secret
    /// `previous` (the stored version of the route) holds with that fingerprint, and plaintext
    /// secrets sealed with `cipher` (unless `previous` holds the same secret sealed: then
    /// its ciphertext). `prefix`: the route's field in the request ("" or `routes[2]`).
    public static func prepare(
        _ route: Route, previous: Route?, cipher: CertificateKeyCipher?, at prefix: String
    ) -> Result<Route, ValidationFailure> {
        guard var jwt = route.policies.jwt else { return .success(route) }
        var stored: [String: HMACSecret] = [:]
        for key in previous?.policies.jwt?.keys ?? [] {
            if let secret = key.secret, !secret.isReference { stored[secret.sha256] = secret }
        }
        let binding = Self.aad(route: route.id)
        var problems: [FieldError] = []
        for (i, key) in jwt.keys.enumerated() {
            guard var secret = key.secret else { continue }
            if secret.isReference {
                guard let kept = stored[secret.sha256] else {
                    let field = join(prefix, "jwt.keys[\(i)].secret_sha256")
                    problems.append(
                        FieldError(
                            field: field, code: .invalid,
                            message: "names no secret stored on route '\(route.id)': give the secret (secret_sha256 alone keeps "
                                + "a secret the route already has)"))
                    continue
                }
                secret = kept
            }
            if let cipher, secret.sealed == nil, let plain = secret.plain {
                if let old = stored[secret.sha256]?.sealed, cipher.open(old, aad: binding) == plain {
                    secret.sealed = old
                } else {
                    secret.sealed = cipher.seal(plain, aad: binding)
                }
            }
            if secret.sealed != nil { secret.plain = nil }
            jwt.keys[i].secret = secret
        }
        guard problems.isEmpty else { return .failure(ValidationFailure(problems)) }
        var out = route
        out.policies.jwt = jwt
        return .success(out)
    }

    /// A route document (stored or requested) for an answer: every jwt key without
    /// `secret` and `secret_enc` (its `secret_sha256` stays, so a diff still shows a change),
    /// every JWK without the `pem` derived from it: the document GET answers.
    public static func redacted(_ doc: JSONValue) -> JSONValue {
        guard case .object(var members) = doc, let j = members.firstIndex(where: { $0.key == "jwt" }),
            case .object(var jwt) = members[j].value
        else { return doc }
        func strip(_ keys: JSONValue, _ names: Set<String>) -> JSONValue {
            guard case .array(let items) = keys else { return keys }
            return .array(
                items.map { key in
                    guard case .object(let m) = key else { return key }
                    return .object(m.filter { !names.contains($0.key) })
                })
        }
        for i in jwt.indices {
            if jwt[i].key == "keys" { jwt[i].value = strip(jwt[i].value, ["secret", "secret_enc"]) }
            if jwt[i].key == "jwks", case .object(var set) = jwt[i].value {
                for s in set.indices where set[s].key == "keys" { set[s].value = strip(set[s].value, ["pem"]) }
                jwt[i].value = .object(set)
            }
        }
        members[j].value = .object(jwt)
        return .object(members)
    }
}
