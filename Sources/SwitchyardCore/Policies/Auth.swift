// Authentication at the edge (docs/traffic-policies.md, "Authentication"; issue 22 item 4):
// `basic_auth` (htpasswd-style hashes, checked with libxcrypt by the edge) and `jwt`
// (RS256/ES256 signatures against public keys given in the route, HS256 against a shared
// secret). Both are checked in the route's guard step; bad or missing credentials get 401
// with WWW-Authenticate.
//
// basic_auth holds hashes (never logged) and jwt public keys; the one secret is an HS256
// key's shared secret (`HMACSecret`): sealed at rest with SWITCHYARD_CERT_KEY like
// certificate keys, and never in an answer, a log or a diff (JWTSecrets.swift has the rules).
// Every effective value is stored (defaults filled in), so edges never need the defaults.
// The edge's decoder (lua/switchyard/route/policy.lua) applies the same rules.

/// A route's `basic_auth`. A value has passed validation.
public struct BasicAuth: Sendable, Hashable {
    public struct User: Sendable, Hashable {
        public var name: String
        public var hash: String
    }
    public var realm: String
    public var users: [User]

    public static let fields: Set<String> = ["realm", "users"]
    public static let userFields: Set<String> = ["name", "hash"]
    public static let defaultRealm = "restricted"
    public static let maxUsers = 64
    public static let maxRealm = 64
    public static let maxName = 64
    /// bcrypt costs the edge computes (each step doubles the work: 13 and more would hold
    /// a worker for whole seconds on every new credential)
    public static let bcryptCosts = 4...12
    public static let sha512Rounds = 1000...100_000

    public var document: JSONValue {
        .object([
            ("realm", .string(realm)),
            ("users", .array(users.map { .object([("hash", .string($0.hash)), ("name", .string($0.name))]) })),
        ])
    }

    /// Printable ASCII without `"` and `\` (it goes into a quoted WWW-Authenticate value).
    static func isRealm(_ s: String) -> Bool {
        (1...maxRealm).contains(s.utf8.count) && s.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E && $0 != 0x22 && $0 != 0x5C }
    }

    /// Printable ASCII without spaces and `:` (the Basic credential's separator).
    static func isUserName(_ s: String) -> Bool {
        (1...maxName).contains(s.utf8.count) && s.utf8.allSatisfy { $0 > 0x20 && $0 <= 0x7E && $0 != 0x3A }
    }

    static func isCryptChar(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x2F
    }

    /// Why `hash` is not a bcrypt (`$2b$`/`$2y$`) or SHA-512-crypt (`$6$`) hash the edge
    /// verifies, or nil.
    static func hashProblem(_ hash: String) -> String? {
        let b = Array(hash.utf8)
        if hash.hasPrefix("$2b$") || hash.hasPrefix("$2y$") {
            // $2b$NN$ + 22 characters of salt + 31 of hash
            guard b.count == 60, b[6] == 0x24, b[4] >= 0x30, b[4] <= 0x39, b[5] >= 0x30, b[5] <= 0x39,
                b[7...].allSatisfy(isCryptChar)
            else { return "is not a bcrypt hash ($2b$NN$ and 53 characters of ./0-9A-Za-z)" }
            let cost = Int(b[4] - 0x30) * 10 + Int(b[5] - 0x30)
            guard bcryptCosts.contains(cost) else {
                return "has bcrypt cost \(cost): the edge accepts \(bcryptCosts.lowerBound)-\(bcryptCosts.upperBound)"
            }
            return nil
        }
        if hash.hasPrefix("$6$") {
            var parts = hash.dropFirst(3).split(separator: "$", omittingEmptySubsequences: false)
            let rule = "is not a SHA-512-crypt hash ($6$[rounds=N$]salt$ and 86 characters of ./0-9A-Za-z)"
            if parts.count == 3, parts[0].hasPrefix("rounds=") {
                let digits = parts[0].dropFirst(7)
                guard (1...6).contains(digits.count), digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.first != "0",
                    let rounds = Int(digits)
                else { return rule }
                guard sha512Rounds.contains(rounds) else {
                    return "has \(rounds) rounds: the edge accepts \(sha512Rounds.lowerBound)-\(sha512Rounds.upperBound)"
                }
                parts.removeFirst()
            }
            guard parts.count == 2, (1...16).contains(parts[0].utf8.count), parts[0].utf8.allSatisfy(isCryptChar),
                parts[1].utf8.count == 86, parts[1].utf8.allSatisfy(isCryptChar)
            else { return rule }
            return nil
        }
        return "uses a scheme the edge does not verify: give a bcrypt ($2b$, $2y$) or SHA-512-crypt ($6$) hash "
            + "(htpasswd -B, openssl passwd -6)"
    }
}

extension BasicAuth {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> BasicAuth? {
        let example = #"{"realm":"staff","users":[{"name":"ann","hash":"$2y$10$..."}]}"#
        guard reader.object(json, fields: BasicAuth.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        var realm = defaultRealm
        if let given = reader.string(json, "realm", required: false, at: prefix), let given {
            if isRealm(given) {
                realm = given
            } else {
                reader.add(join(prefix, "realm"), .invalid, "must be 1-\(maxRealm) printable ASCII characters without \" and \\")
            }
        }
        var users: [User] = []
        let usersAt = join(prefix, "users")
        switch present(json, "users") {
        case nil:
            reader.add(usersAt, .required, "is required: [{\"name\": ..., \"hash\": ...}]")
        case .array(let items)?:
            if items.isEmpty || items.count > maxUsers {
                reader.add(usersAt, .invalid, "must have 1-\(maxUsers) users, not \(items.count)")
                break
            }
            var seen: Set<String> = []
            for (i, item) in items.enumerated() {
                let at = "\(usersAt)[\(i)]"
                guard reader.object(item, fields: userFields, at: at) != nil else { continue }
                let name = reader.requiredString(item, "name", at: at)
                let hash = reader.requiredString(item, "hash", at: at)
                guard let name, let hash else { continue }
                guard isUserName(name) else {
                    reader.add(join(at, "name"), .invalid, "must be 1-\(maxName) printable ASCII characters without spaces and ':'")
                    continue
                }
                // never quote a hash in a message: it is not a secret, but not for logs either
                if let problem = hashProblem(hash) {
                    reader.add(join(at, "hash"), .invalid, problem)
                    continue
                }
                guard seen.insert(name).inserted else {
                    reader.add(join(at, "name"), .duplicate, "'\(name)' appears twice")
                    continue
                }
                users.append(User(name: name, hash: hash))
            }
        case let other?:
            reader.add(usersAt, .invalid, "must be an array of users, not \(other.typeName)")
        }
        return reader.count == before ? BasicAuth(realm: realm, users: users) : nil
    }
}

/// A route's `jwt`. A value has passed validation.
public struct JWTAuth: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var alg: String
        public var kid: String?
        /// RS256, ES256: the public key (PEM); "" for HS256.
        public var pem: String
        /// HS256: the shared secret; nil for the others.
        public var secret: HMACSecret? = nil
        /// Given as a JWK (`jwks`): its members as stored (`pem` derived from them).
        public var jwk: JWK? = nil
    }
    public struct ClaimHeader: Sendable, Hashable {
        public var claim: String
        public var header: String
    }
    public var keys: [Key]
    public var issuer: String?
    public var audience: String?
    public var leewaySeconds: Int
    /// Sorted by claim (UTF-8 bytes), like the document.
    public var claimsToHeaders: [ClaimHeader]
    /// Where the token is: a header holding it bare, or a cookie; Authorization: Bearer when
    /// neither.
    public var header: String?
    public var cookie: String?
    /// The keys came as a JWKS document (`jwks`, JWKS.swift) rather than `keys`.
    public var fromJWKS = false

    public static let fields: Set<String> = [
        "keys", "jwks", "issuer", "audience", "leeway_s", "claims_to_headers", "header", "cookie",
    ]
    public static let keyFields: Set<String> = ["alg", "kid", "pem", "secret", "secret_sha256"]
    public static let algorithms = ["ES256", "HS256", "RS256"]
    /// HS256 secrets: at least the hash's size (RFC 7518 section 3.2), at most 512 bytes.
    public static let secretBytes = 32...512
    public static let maxKeys = 8
    public static let maxPEM = 4096
    public static let maxClaims = 16
    public static let maxText = 256
    public static let leewayRange = 0...300
    public static let defaultLeeway = 30

    /// The document answers show: HS256 secrets as their `secret_sha256` only.
    public var document: JSONValue { document(storage: false) }

    /// `storage`: the stored form, with each HS256 secret as `secret_enc` (sealed) or
    /// `secret` (no SWITCHYARD_CERT_KEY); only for sy_apply, never for an answer.
    public func document(storage: Bool) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if let audience { members.append(("audience", .string(audience))) }
        members.append(("claims_to_headers", .object(claimsToHeaders.map { ($0.claim, .string($0.header)) })))
        if let cookie { members.append(("cookie", .string(cookie))) }
        if let header { members.append(("header", .string(header))) }
        if let issuer { members.append(("issuer", .string(issuer))) }
        if fromJWKS {
            let jwks: [JSONValue] = keys.map { key in
                var m: [(key: String, value: JSONValue)] = [("alg", .string(key.alg))]
                if let kid = key.kid { m.append(("kid", .string(kid))) }
                m += key.jwk?.members ?? []
                if storage { m.append(("pem", .string(key.pem))) }
                return .object(m)
            }
            members.append(("jwks", .object([("keys", .array(jwks))])))
        }
        if !fromJWKS {
            members.append(
                (
                    "keys",
                    .array(
                        keys.map { key in
                            var m: [(key: String, value: JSONValue)] = [("alg", .string(key.alg))]
                            if let kid = key.kid { m.append(("kid", .string(kid))) }
                            if let secret = key.secret {
                                if storage, let plain = secret.plain, secret.sealed == nil { m.append(("secret", .string(plain))) }
                                if storage, let sealed = secret.sealed { m.append(("secret_enc", .string(sealed))) }
                                m.append(("secret_sha256", .string(secret.sha256)))
                            } else {
                                m.append(("pem", .string(key.pem)))
                            }
                            return .object(m)
                        })
                ))
        }
        members.append(("leeway_s", .integer(Int64(leewaySeconds))))
        return .object(members)
    }

    /// 1-256 printable ASCII characters (issuer, audience, kid: compared byte for byte).
    static func isText(_ s: String) -> Bool {
        (1...maxText).contains(s.utf8.count) && s.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    /// Claim names: 1-64 letters, digits and `_-.:`.
    static func isClaim(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count)
            && s.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D || b == 0x2E
                    || b == 0x3A
            }
    }
}

extension JWTAuth {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> JWTAuth? {
        let example = #"{"keys":[{"alg":"RS256","pem":"-----BEGIN PUBLIC KEY-----\n..."}],"issuer":"https://id.example"}"#
        // stored documents also hold secret_enc (a sealed HS256 secret); requests may not
        let keyFields = reader.strict ? JWTAuth.keyFields : JWTAuth.keyFields.union(["secret_enc"])
        guard reader.object(json, fields: JWTAuth.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        var keys: [Key] = []
        var keysAt = join(prefix, "keys")
        let jwks = present(json, "jwks")
        if jwks != nil, present(json, "keys") != nil {
            reader.add(join(prefix, "jwks"), .invalid, "give keys or jwks, not both")
        } else if let jwks {
            keysAt = join(prefix, "jwks.keys")
            keys = JWK.parseSet(jwks, at: join(prefix, "jwks"), into: &reader)
        } else {
            switch present(json, "keys") {
            case nil:
                reader.add(
                    keysAt, .required,
                    "is required: [{\"alg\": \"RS256\" or \"ES256\", \"pem\": a public key}] or [{\"alg\": \"HS256\", \"secret\": ...}]")
            case .array(let items)?:
                if items.isEmpty || items.count > maxKeys {
                    reader.add(keysAt, .invalid, "must have 1-\(maxKeys) keys, not \(items.count)")
                    break
                }
                var kids: Set<String> = []
                for (i, item) in items.enumerated() {
                    let at = "\(keysAt)[\(i)]"
                    guard reader.object(item, fields: keyFields, at: at) != nil else { continue }
                    let alg = reader.requiredString(item, "alg", at: at)
                    let kid = reader.string(item, "kid", required: false, at: at)
                    guard let alg, let kid else { continue }
                    guard algorithms.contains(alg) else {
                        let why =
                            alg.lowercased() == "none"
                            ? "unsigned tokens are never accepted" : "must be one of \(algorithms.joined(separator: ", "))"
                        reader.add(join(at, "alg"), .invalid, why)
                        continue
                    }
                    if let kid, !isText(kid) {
                        reader.add(join(at, "kid"), .invalid, "must be 1-\(maxText) printable ASCII characters")
                        continue
                    }
                    if alg == "HS256" {
                        if present(item, "pem") != nil {
                            reader.add(join(at, "pem"), .invalid, "HS256 takes a secret (the shared key), not a pem")
                            continue
                        }
                        guard let secret = HMACSecret.parse(item, at: at, into: &reader) else { continue }
                        if let kid, !kids.insert(kid).inserted {
                            reader.add(join(at, "kid"), .duplicate, "'\(kid)' appears twice")
                            continue
                        }
                        keys.append(Key(alg: alg, kid: kid, pem: "", secret: secret))
                        continue
                    }
                    for name in ["secret", "secret_sha256", "secret_enc"] where present(item, name) != nil {
                        reader.add(join(at, name), .invalid, "only HS256 keys have a secret: \(alg) takes a pem (a public key)")
                    }
                    guard let pem = reader.requiredString(item, "pem", at: at) else { continue }
                    guard pem.utf8.count <= maxPEM else {
                        reader.add(join(at, "pem"), .invalid, "must be at most \(maxPEM) bytes")
                        continue
                    }
                    let read = OpenSSL.publicKeyType(pem)
                    guard let type = read.type else {
                        reader.add(join(at, "pem"), .invalid, read.problem ?? "does not parse")
                        continue
                    }
                    let fits: Bool
                    if alg == "ES256" {
                        fits = type == "EC P-256"
                    } else {
                        let parts = type.split(separator: " ")
                        fits = parts.count == 2 && parts[0] == "RSA" && (2048...8192).contains(Int(parts[1]) ?? 0)
                    }
                    if !fits {
                        let want = alg == "ES256" ? "an EC P-256 key" : "an RSA key of 2048-8192 bits"
                        reader.add(join(at, "pem"), .invalid, "is \(type): \(alg) needs \(want)")
                        continue
                    }
                    if let kid, !kids.insert(kid).inserted {
                        reader.add(join(at, "kid"), .duplicate, "'\(kid)' appears twice")
                        continue
                    }
                    keys.append(Key(alg: alg, kid: kid, pem: pem))
                }
            case let other?:
                reader.add(keysAt, .invalid, "must be an array of keys, not \(other.typeName)")
            }
        }
        if keys.count > 1, keys.contains(where: { $0.kid == nil }) {
            reader.add(keysAt, .invalid, "every key needs a kid when there are several (tokens name theirs in the kid header)")
        }
        func text(_ key: String) -> String? {
            guard let given = reader.string(json, key, required: false, at: prefix), let given else { return nil }
            if !isText(given) { reader.add(join(prefix, key), .invalid, "must be 1-\(maxText) printable ASCII characters") }
            return given
        }
        let issuer = text("issuer")
        let audience = text("audience")
        let leeway = reader.integer(json, "leeway_s", in: leewayRange, default: defaultLeeway, at: prefix)
        var claims: [ClaimHeader] = []
        let claimsAt = join(prefix, "claims_to_headers")
        switch present(json, "claims_to_headers") {
        case nil: break
        case .object(let members)?:
            if members.count > maxClaims {
                reader.add(claimsAt, .invalid, "must have at most \(maxClaims) claims, not \(members.count)")
                break
            }
            var headers: Set<String> = []
            // in claim order, so a duplicate header is named at the same claim however the
            // object's members were written
            for member in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                let at = join(claimsAt, member.key)
                guard isClaim(member.key) else {
                    reader.add(at, .invalid, "'\(member.key)' is not a claim name (1-64 letters, digits and _-.:)")
                    continue
                }
                guard case .string(let header) = member.value else {
                    reader.add(at, .invalid, "must be a header name, not \(member.value.typeName)")
                    continue
                }
                guard Tokens.isHeaderName(header) else {
                    reader.add(at, .invalid, "'\(header)' is not a header name (\(Tokens.headerRule))")
                    continue
                }
                let low = header.lowercased()
                if HeaderEdits.refusedInRequest.contains(low) || low == "host" || low == "authorization" || low == "cookie" {
                    reader.add(at, .invalid, "\(header) cannot carry a claim")
                    continue
                }
                guard headers.insert(low).inserted else {
                    reader.add(at, .duplicate, "header '\(header)' appears twice")
                    continue
                }
                claims.append(ClaimHeader(claim: member.key, header: header))
            }
        case let other?:
            reader.add(claimsAt, .invalid, "must be an object of claim: header, not \(other.typeName)")
        }
        var header: String? = nil
        var cookie: String? = nil
        if let given = reader.string(json, "header", required: false, at: prefix), let given {
            if Tokens.isHeaderName(given) {
                header = given
            } else {
                reader.add(join(prefix, "header"), .invalid, "'\(given)' is not a header name (\(Tokens.headerRule))")
            }
        }
        if let given = reader.cookieName(json, "cookie", default: "", at: prefix), let given, !given.isEmpty {
            cookie = given
        }
        if header != nil, cookie != nil {
            reader.add(join(prefix, "cookie"), .invalid, "give header or cookie, not both")
        }
        guard reader.count == before, let leeway else { return nil }
        return JWTAuth(
            keys: keys, issuer: issuer, audience: audience, leewaySeconds: leeway,
            claimsToHeaders: claims.sorted { $0.claim.utf8.lexicographicallyPrecedes($1.claim.utf8) }, header: header, cookie: cookie,
            fromJWKS: jwks != nil)
    }
}

/// A route's `forward_auth`: the edge asks an authentication service (ingress-nginx
/// auth-url, Traefik ForwardAuth) before serving the request. A value has passed validation.
public struct ForwardAuth: Sendable, Hashable {
    /// `http://ip:port/path` (IPv6 in brackets): the edge resolves no names on the request path.
    public var url: String
    /// Client request headers sent to the service (and the cache's key).
    public var requestHeaders: [String]
    /// Headers of the service's 2xx answer sent upstream (replacing the client's own).
    public var responseHeaders: [String]
    public var cacheSeconds: Int
    public var timeoutMs: Int
    public var failOpen: Bool

    public static let fields: Set<String> = ["url", "request_headers", "response_headers", "cache_s", "timeout_ms", "fail_open"]
    public static let defaultRequestHeaders = ["Authorization", "Cookie"]
    /// Lowercased names a client may not pass to the service: the request's framing (a
    /// client's Content-Length would make the service wait for a body that never comes) and
    /// the X-Forwarded-* headers the edge sets.
    public static let refusedToService: Set<String> = [
        "host", "connection", "content-length", "transfer-encoding", "te", "upgrade", "keep-alive", "expect",
        "x-forwarded-method", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-uri", "x-forwarded-for",
    ]
    public static let maxNames = 16
    public static let maxURL = 1024
    public static let cacheRange = 0...300
    public static let timeoutRange = 1...10_000
    public static let defaultTimeout = 1000

    public var document: JSONValue {
        func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
        return .object([
            ("cache_s", .integer(Int64(cacheSeconds))), ("fail_open", .bool(failOpen)),
            ("request_headers", list(requestHeaders)), ("response_headers", list(responseHeaders)),
            ("timeout_ms", .integer(Int64(timeoutMs))), ("url", .string(url)),
        ])
    }

    /// Why `url` is not `http://ip:port/path`, or nil.
    static func urlProblem(_ url: String) -> String? {
        let rule = "must be http://ip:port/path (an IPv4 address or [IPv6], a port, a path starting with /)"
        guard url.utf8.count <= maxURL else { return "must be at most \(maxURL) bytes" }
        guard url.hasPrefix("http://") else { return rule }
        let rest = url.dropFirst(7)
        guard let slash = rest.firstIndex(of: "/") else { return rule }
        if case .failure(let why) = EndpointAddress.parse(String(rest[..<slash])) { return "has an invalid address: \(why.message)" }
        let path = rest[slash...]
        guard path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x23 }) else {
            return "must have a path of printable ASCII without spaces and '#'"
        }
        return nil
    }
}

extension ForwardAuth {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> ForwardAuth? {
        let example = #"{"url":"http://127.0.0.1:9000/auth","response_headers":["X-User"],"cache_s":10}"#
        guard reader.object(json, fields: ForwardAuth.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        let url = reader.requiredString(json, "url", at: prefix)
        if let url, let problem = urlProblem(url) { reader.add(join(prefix, "url"), .invalid, problem) }
        func names(_ key: String, default defaultValue: [String]) -> [String] {
            let at = join(prefix, key)
            switch present(json, key) {
            case nil: return defaultValue
            case .array(let items)?:
                if items.count > maxNames {
                    reader.add(at, .invalid, "must have at most \(maxNames) header names, not \(items.count)")
                    return []
                }
                var out: [String] = []
                var seen: Set<String> = []
                for (i, item) in items.enumerated() {
                    guard case .string(let name) = item, Tokens.isHeaderName(name) else {
                        reader.add("\(at)[\(i)]", .invalid, "must be a header name (\(Tokens.headerRule))")
                        continue
                    }
                    let low = name.lowercased()
                    if key == "response_headers", HeaderEdits.refusedInRequest.contains(low) || low == "host" {
                        reader.add("\(at)[\(i)]", .invalid, "\(name) is set by the edge itself and cannot come from the service")
                        continue
                    }
                    if key == "request_headers", refusedToService.contains(low) {
                        reader.add(
                            "\(at)[\(i)]", .invalid,
                            "\(name) is the edge's own on the request to the service (its framing, or an X-Forwarded-* header it sets)")
                        continue
                    }
                    guard seen.insert(low).inserted else {
                        reader.add("\(at)[\(i)]", .duplicate, "'\(name)' appears twice")
                        continue
                    }
                    out.append(name)
                }
                return out
            case let other?:
                reader.add(at, .invalid, "must be an array of header names, not \(other.typeName)")
                return []
            }
        }
        let requestHeaders = names("request_headers", default: defaultRequestHeaders)
        let responseHeaders = names("response_headers", default: [])
        let cache = reader.integer(json, "cache_s", in: cacheRange, default: 0, at: prefix)
        let timeout = reader.integer(json, "timeout_ms", in: timeoutRange, default: defaultTimeout, at: prefix)
        let failOpen = reader.bool(json, "fail_open", default: false, at: prefix)
        guard reader.count == before, let url, let cache, let timeout, let failOpen else { return nil }
        return ForwardAuth(
            url: url, requestHeaders: requestHeaders, responseHeaders: responseHeaders, cacheSeconds: cache, timeoutMs: timeout,
            failOpen: failOpen)
    }
}

/// An HS256 key's shared secret. Never logged and never answered: answers and diffs carry
/// `secret_sha256` only (its `description` says no more either).
public struct HMACSecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The first 16 hex digits of the secret's SHA-256: tells secrets apart without showing them.
    public var sha256: String
    /// The secret when known: from a request, stored in plaintext (no SWITCHYARD_CERT_KEY)
    /// or decrypted.
    public var plain: String?
    /// `secret_enc` as stored (JWTSecrets.aad binds it to the route).
    public var sealed: String?

    public init(sha256: String, plain: String? = nil, sealed: String? = nil) {
        self.sha256 = sha256
        self.plain = plain
        self.sealed = sealed
    }

    public init(plain: String) { self.init(sha256: Self.fingerprint(plain), plain: plain) }

    /// A request's `secret_sha256` without `secret`: keep the stored secret with this
    /// fingerprint (JWTSecrets.prepare resolves it before the route is stored).
    public var isReference: Bool { plain == nil && sealed == nil }

    public var description: String { "HMACSecret(sha256: \(sha256))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["sha256": sha256]) }

    public static func fingerprint(_ secret: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(
            decoding: OpenSSL.sha256(Array(secret.utf8)).prefix(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    static func isFingerprint(_ s: String) -> Bool {
        s.utf8.count == 16 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// An HS256 key's `secret` (a new secret), or `secret_sha256` alone (keep the stored one;
    /// requests only), or in a stored document `secret_enc` with `secret_sha256`. Messages
    /// never quote a secret.
    static func parse(_ item: JSONValue, at: String, into reader: inout FieldReader) -> HMACSecret? {
        var fingerprint: String?
        if let value = present(item, "secret_sha256") {
            guard case .string(let f) = value, isFingerprint(f) else {
                reader.add(join(at, "secret_sha256"), .invalid, "must be 16 lowercase hex digits, as GET answers it")
                return nil
            }
            fingerprint = f
        }
        switch present(item, "secret") {
        case .string(let secret)?:
            guard JWTAuth.secretBytes.contains(secret.utf8.count) else {
                reader.add(
                    join(at, "secret"), .invalid,
                    "must be \(JWTAuth.secretBytes.lowerBound)-\(JWTAuth.secretBytes.upperBound) bytes, not \(secret.utf8.count) "
                        + "(a random key, e.g. openssl rand -base64 32)")
                return nil
            }
            if reader.strict, fingerprint != nil {
                reader.add(
                    join(at, "secret_sha256"), .invalid,
                    "give secret (a new secret) or secret_sha256 (keep the stored secret it names), not both")
                return nil
            }
            return HMACSecret(plain: secret)
        case let other?:
            reader.add(join(at, "secret"), .invalid, "must be a string, not \(other.typeName)")
            return nil
        case nil:
            break
        }
        if !reader.strict, let value = present(item, "secret_enc") {
            guard case .string(let sealed) = value, sealed.hasPrefix(CertificateKeyCipher.scheme + ":"), let fingerprint else {
                reader.add(join(at, "secret_enc"), .invalid, "must be aes-256-gcm:<nonce>:<data> with secret_sha256")
                return nil
            }
            return HMACSecret(sha256: fingerprint, sealed: sealed)
        }
        // a reference; stored documents never hold one (the edges refuse it), but a GET
        // answer read back leniently (switchyard diff) does
        if let fingerprint { return HMACSecret(sha256: fingerprint) }
        reader.add(
            join(at, "secret"), .required,
            "is required for HS256: the shared secret (or secret_sha256, as GET answers it, to keep the stored one)")
        return nil
    }
}
