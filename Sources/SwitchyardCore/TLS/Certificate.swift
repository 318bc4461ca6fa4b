// TLS certificates the edges serve by SNI: the model, the rules a certificate must pass, its
// stored document, and the encryption of private keys at rest.
//
// Rules (checked by `CertificateValidator`, 422 naming the field and a code when broken):
//   cert  one or more PEM certificates, leaf first, each issued by the next (`unparsable`,
//         `chain_order`); the leaf currently valid (`expired`, `not_yet_valid`); its SNI
//         names come from the subjectAltName dNSName entries only (`no_names` when there is
//         none: clients have ignored the CN for years, so a CN-only certificate would not
//         be trusted anyway). A default certificate may have no names.
//   key   an unencrypted PEM private key (`unparsable`, `encrypted_key`) belonging to the
//         leaf (`key_mismatch`).
//   client_ca      (optional) PEM CA certificates: the edges ask clients of the
//                  certificate's names for a client certificate issued by one of them
//                  (mTLS, docs/traffic-policies.md "Client certificates"; `unparsable`)
//   verify_client  "required" (the default with client_ca: a handshake without a valid
//                  client certificate fails) or "optional" (none is accepted, an invalid
//                  one fails); only with client_ca
// Names are lowercased; `*.example.com` covers exactly one label (`a.example.com`, not
// `a.b.example.com` nor `example.com`), as clients check it. Two certificates may claim the
// same name: the edges serve the one with the later not_after (then the smaller id), so a
// renewed certificate can be added under a new id and the old one deleted later, with no
// gap. The same rule picks among several `"default": true` certificates.
//
// Stored document (canonical JSON, keys sorted; `version` spliced in by sy_apply):
//   {"cert":"<PEM chain>","default":false,"fingerprint_sha256":"AB:..","id":"..",
//    "issuer":"CN=..","key":"<PEM>" | "key_enc":"aes-256-gcm:<b64 nonce>:<b64 ct+tag>",
//    "key_type":"EC P-256","names":["a.example.com","*.example.com"],
//    "not_after":"2027-01-01T00:00:00.000Z","not_before":"...","serial":"..","subject":"CN=.."}
// not_before/not_after are fixed-width ISO 8601 UTC, so they compare as strings (the edge
// does). The API answers the same fields without `key`/`key_enc`.

/// A validated certificate with its private key.
public struct Certificate: Sendable, Equatable {
    public var id: String
    /// PEM chain, leaf first, as OpenSSL re-encoded it.
    public var chainPEM: String
    /// Unencrypted PKCS#8 PEM. Never logged, never answered.
    public var keyPEM: String
    /// SNI names (lowercase; `*.suffix` wildcards), in certificate order, without duplicates.
    public var names: [String]
    /// Answers handshakes whose name no certificate claims (and those without SNI).
    public var isDefault: Bool
    public var subject: String
    public var issuer: String
    /// Seconds since the epoch.
    public var notBefore: Int64
    public var notAfter: Int64
    public var fingerprintSHA256: String
    public var serial: String
    public var keyType: String
    /// Client certificates (mTLS): the CA bundle (PEM, as OpenSSL re-encoded it) and
    /// whether a client certificate is required; nil: none asked for.
    public var clientCA: String?
    public var verifyClient: ClientVerify?
    /// Who may change the object and where it came from; nil when not set (Ownership).
    public var owner: String?
    public var source: String?

    public init(
        id: String, chainPEM: String, keyPEM: String, names: [String], isDefault: Bool = false, subject: String = "",
        issuer: String = "", notBefore: Int64, notAfter: Int64, fingerprintSHA256: String = "", serial: String = "",
        keyType: String = ""
    ) {
        self.id = id
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        self.names = names
        self.isDefault = isDefault
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.fingerprintSHA256 = fingerprintSHA256
        self.serial = serial
        self.keyType = keyType
    }

    /// Whether clients must present a certificate (`verify_client`).
    public enum ClientVerify: String, Sendable, CaseIterable {
        case required, optional
    }

    /// Certificates expiring within this many days are flagged (`expiring_soon`).
    public static let expiryWarningDays = 30
    /// Largest `cert` or `key` field accepted, in bytes.
    public static let maxPEMBytes = 64 * 1024
}

// MARK: - Validation

/// Checks a `PUT /api/v1/certificates/{id}` body: `{"cert":"<PEM chain>","key":"<PEM>",
/// "default":false}`.
public struct CertificateValidator: Sendable {
    /// Read `owner` and `source` (writers such as the Kubernetes source); the admin API
    /// refuses them (Ownership).
    public var acceptsOwnership: Bool

    public init(acceptsOwnership: Bool = false) { self.acceptsOwnership = acceptsOwnership }

    public static let fields: Set<String> = [
        "id", "cert", "key", "default", "owner", "source", "client_ca", "verify_client",
    ]

    /// Codes of certificate problems beyond `FieldError.Code` (they go in the same `code`
    /// member of a 422's details).
    public enum Problem: String, Sendable {
        case unparsable, encryptedKey = "encrypted_key", keyMismatch = "key_mismatch", chainOrder = "chain_order"
        case expired, notYetValid = "not_yet_valid", noNames = "no_names"
    }

    /// A problem of a certificate body: field (`cert`, `key`, `default`, `id`, ...), code
    /// (`required`, `invalid`, `unknown_field`, `mismatch` or a `Problem`) and message.
    public struct Failure: Error, Sendable, Equatable {
        public var problems: [(field: String, code: String, message: String)]

        public static func == (a: Failure, b: Failure) -> Bool {
            a.problems.map { "\($0.field)|\($0.code)|\($0.message)" } == b.problems.map { "\($0.field)|\($0.code)|\($0.message)" }
        }

        public var codes: [String] { problems.map(\.code) }
    }

    /// `now`: seconds since the epoch (the caller's clock; a test's fixed time).
    public func certificate(_ json: JSONValue, id pathID: String, now: Int64) -> Result<Certificate, Failure> {
        var problems: [(field: String, code: String, message: String)] = []
        func add(_ field: String, _ code: String, _ message: String) { problems.append((field, code, message)) }
        guard case .object(let members) = json else {
            return .failure(Failure(problems: [("", "invalid", "must be a JSON object, not \(json.typeName)")]))
        }
        for member in members where !Self.fields.contains(member.key) {
            add(
                member.key, FieldError.Code.unknownField.rawValue,
                "unknown field '\(member.key)' (known: \(Self.fields.sorted().joined(separator: ", ")))")
        }
        if !Names.isValid(pathID) {
            add("id", FieldError.Code.invalid.rawValue, "'\(pathID)' is not a valid certificate id (\(Names.rule))")
        } else if let value = json["id"], value != .string(pathID) {
            add("id", FieldError.Code.mismatch.rawValue, "must equal the id in the URL ('\(pathID)')")
        }
        func pemField(_ key: String) -> String? {
            switch json[key] {
            case nil, .null?:
                add(key, FieldError.Code.required.rawValue, "is required")
            case .string(let s)? where s.utf8.count > Certificate.maxPEMBytes:
                add(key, FieldError.Code.invalid.rawValue, "is larger than \(Certificate.maxPEMBytes) bytes")
            case .string(let s)?:
                return s
            case let other?:
                add(key, FieldError.Code.invalid.rawValue, "must be a PEM string, not \(other.typeName)")
            }
            return nil
        }
        let cert = pemField("cert")
        let key = pemField("key")
        var isDefault = false
        switch json["default"] {
        case nil, .null?: break
        case .bool(let b)?: isDefault = b
        case let other?: add("default", FieldError.Code.invalid.rawValue, "must be true or false, not \(other.typeName)")
        }
        // client certificates (mTLS)
        var clientCA: String?
        switch json["client_ca"] {
        case nil, .null?: break
        case .string(let s)? where s.utf8.count > Certificate.maxPEMBytes:
            add("client_ca", FieldError.Code.invalid.rawValue, "is larger than \(Certificate.maxPEMBytes) bytes")
        case .string(let s)?:
            switch OpenSSL.readCABundle(s) {
            case .success(let bundle): clientCA = bundle.pem
            case .failure(let error): add("client_ca", Problem.unparsable.rawValue, error.message)
            }
        case let other?: add("client_ca", FieldError.Code.invalid.rawValue, "must be a PEM string, not \(other.typeName)")
        }
        var verifyClient: Certificate.ClientVerify?
        switch json["verify_client"] {
        case nil, .null?: break
        case .string(let s)? where Certificate.ClientVerify(rawValue: s) != nil:
            if json["client_ca"] == nil || json["client_ca"] == .null {
                add(
                    "verify_client", FieldError.Code.invalid.rawValue,
                    "needs client_ca (the CA certificates client certificates are verified against)")
            }
            verifyClient = Certificate.ClientVerify(rawValue: s)
        case let other?:
            add("verify_client", FieldError.Code.invalid.rawValue, "must be \"required\" or \"optional\", not \(other)")
        }
        var reader = FieldReader(strict: true)
        let ownership = Validator(acceptsOwnership: acceptsOwnership).ownership(json, at: "", into: &reader)
        for problem in reader.problems { add(problem.field, problem.code.rawValue, problem.message) }
        guard problems.isEmpty, let cert, let key, let ownership else { return .failure(Failure(problems: problems)) }

        let material: CertificateMaterial
        switch OpenSSL.readCertificate(chain: cert, key: key) {
        case .success(let m): material = m
        case .failure(let error):
            return .failure(Failure(problems: [(error.field, error.code.rawValue, error.message)]))
        }
        if now > material.notAfter {
            add("cert", Problem.expired.rawValue, "expired at \(iso8601(milliseconds: material.notAfter * 1000))")
        } else if now < material.notBefore {
            add("cert", Problem.notYetValid.rawValue, "is valid only from \(iso8601(milliseconds: material.notBefore * 1000))")
        }
        let names = Self.sniNames(material.dnsNames)
        if names.isEmpty && !isDefault {
            let cn = material.commonName.map { " (its CN '\($0)' is not used: clients ignore it)" } ?? ""
            add("cert", Problem.noNames.rawValue, "has no DNS name in its subjectAltName\(cn); only a default certificate may have none")
        }
        guard problems.isEmpty else { return .failure(Failure(problems: problems)) }
        var certificate = Certificate(
            id: pathID, chainPEM: material.chainPEM, keyPEM: material.keyPEM, names: names, isDefault: isDefault,
            subject: material.subject, issuer: material.issuer, notBefore: material.notBefore, notAfter: material.notAfter,
            fingerprintSHA256: material.fingerprintSHA256, serial: material.serial, keyType: material.keyType)
        (certificate.owner, certificate.source) = ownership
        if let clientCA {
            certificate.clientCA = clientCA
            certificate.verifyClient = verifyClient ?? .required
        }
        return .success(certificate)
    }

    /// The SAN DNS entries an edge can match SNI against: lowercased, valid host names or
    /// `*.suffix` wildcards, each once. Entries clients would not accept either (`a*.x`,
    /// `*`, IP-like junk with bad characters) are left out.
    public static func sniNames(_ dnsNames: [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for raw in dnsNames {
            var name = raw.lowercased()
            if name.hasSuffix(".") { name.removeLast() }
            guard case .success(let canonical) = HostNames.canonical(name) else { continue }
            if seen.insert(canonical).inserted { out.append(canonical) }
        }
        return out
    }
}

// MARK: - Documents

extension Certificate {
    /// ISO 8601 UTC with milliseconds, fixed width: compares as a string.
    public static func timestamp(_ seconds: Int64) -> String { iso8601(milliseconds: seconds * 1000) }

    /// The public members (the API answer and the stored document without the key).
    public var publicMembers: [(key: String, value: JSONValue)] {
        [
            ("cert", .string(chainPEM)), ("default", .bool(isDefault)), ("fingerprint_sha256", .string(fingerprintSHA256)),
            ("id", .string(id)), ("issuer", .string(issuer)), ("key_type", .string(keyType)),
            ("names", .array(names.map { .string($0) })), ("not_after", .string(Self.timestamp(notAfter))),
            ("not_before", .string(Self.timestamp(notBefore))), ("serial", .string(serial)), ("subject", .string(subject)),
        ] + clientMembers + ownershipMembers(owner: owner, source: source)
    }

    /// `client_ca` and `verify_client` when set (none otherwise: documents of certificates
    /// without mTLS stay as they were).
    var clientMembers: [(key: String, value: JSONValue)] {
        guard let clientCA else { return [] }
        return [("client_ca", .string(clientCA)), ("verify_client", .string((verifyClient ?? .required).rawValue))]
    }

    /// The `doc` argument of sy_apply: the public members plus the key, as `key_enc` (from
    /// `sealedKey`) or, without encryption, `key`.
    public func canonicalDocument(sealedKey: String?) -> String {
        var members = publicMembers
        if let sealedKey {
            members.append(("key_enc", .string(sealedKey)))
        } else {
            members.append(("key", .string(keyPEM)))
        }
        return JSONValue.object(members).canonical
    }
}

/// A certificate as read back from Redis. The key stays as stored (`key` or `key_enc`): it
/// is decrypted only when a write needs to compare it.
public struct StoredCertificate: Sendable, Equatable {
    public var certificate: Certificate
    public var version: Int64
    /// `key_enc` as stored; nil when the key is stored in plaintext (then `certificate.keyPEM` holds it).
    public var sealedKey: String?

    /// Decodes a stored document (lenient: unknown fields ignored).
    public init(bytes: [UInt8]) throws(DocumentError) {
        let (version, json) = try StoredDocument.parse(bytes)
        func string(_ key: String) throws(DocumentError) -> String {
            guard case .string(let s)? = json[key] else { throw DocumentError(key) }
            return s
        }
        func optionalString(_ key: String) -> String { if case .string(let s)? = json[key] { return s } else { return "" } }
        let id = try string("id")
        guard Names.isValid(id) else { throw DocumentError("id") }
        let chain = try string("cert")
        var names: [String] = []
        if case .array(let items)? = json["names"] {
            names = items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        var isDefault = false
        if case .bool(let b)? = json["default"] { isDefault = b }
        guard let notBefore = Self.seconds(optionalString("not_before")) else { throw DocumentError("not_before") }
        guard let notAfter = Self.seconds(optionalString("not_after")) else { throw DocumentError("not_after") }
        var keyPEM = ""
        var sealed: String?
        if case .string(let s)? = json["key_enc"] {
            sealed = s
        } else if case .string(let s)? = json["key"] {
            keyPEM = s
        } else {
            throw DocumentError("key")
        }
        self.certificate = Certificate(
            id: id, chainPEM: chain, keyPEM: keyPEM, names: names, isDefault: isDefault, subject: optionalString("subject"),
            issuer: optionalString("issuer"), notBefore: notBefore, notAfter: notAfter,
            fingerprintSHA256: optionalString("fingerprint_sha256"), serial: optionalString("serial"),
            keyType: optionalString("key_type"))
        (self.certificate.owner, self.certificate.source) = storedOwnership(json)
        if case .string(let ca)? = json["client_ca"] {
            self.certificate.clientCA = ca
            if case .string(let v)? = json["verify_client"], let verify = Certificate.ClientVerify(rawValue: v) {
                self.certificate.verifyClient = verify
            } else {
                self.certificate.verifyClient = .required
            }
        }
        self.version = version
        self.sealedKey = sealed
    }

    /// Seconds since the epoch of `2027-01-01T00:00:00.000Z` (the form `Certificate.timestamp` writes).
    static func seconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"), b[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), let hh = number(11, 2), let mm = number(14, 2),
            let ss = number(17, 2), (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        // days-from-civil (Howard Hinnant's algorithm)
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86400 + hh * 3600 + mm * 60 + ss
    }
}

// MARK: - Keys at rest

/// AES-256-GCM encryption of private keys in Redis with a key shared by the controller and
/// the edges (`SWITCHYARD_CERT_KEY`: 32 bytes as 64 hex digits or standard base64).
///
/// Stored form: `aes-256-gcm:<base64 nonce (12 bytes)>:<base64 ciphertext + 16-byte tag>`;
/// the additional authenticated data is `switchyard:certificate:<id>`, so a `key_enc` copied
/// to another certificate does not decrypt. The edge decrypts the same way
/// (lua/switchyard/tls/aesgcm.lua, libcrypto through LuaJIT's FFI).
public struct CertificateKeyCipher: Sendable {
    let key: [UInt8]

    public static let scheme = "aes-256-gcm"
    public static let environmentVariable = "SWITCHYARD_CERT_KEY"

    /// nil (with the reason) unless `text` is 32 bytes as 64 hex digits or base64.
    public static func parse(_ text: String) -> Result<CertificateKeyCipher, CertificateKeyError> {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.utf8.count == 64, let bytes = hexBytes(trimmed) { return .success(CertificateKeyCipher(key: bytes)) }
        if let bytes = Base64.decode(trimmed), bytes.count == 32 { return .success(CertificateKeyCipher(key: bytes)) }
        return .failure(
            CertificateKeyError(
                message: "\(environmentVariable) must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)"))
    }

    static func aad(_ id: String) -> [UInt8] { Array("switchyard:certificate:\(id)".utf8) }

    public func seal(_ keyPEM: String, id: String) -> String { seal(keyPEM, aad: Self.aad(id)) }

    /// The PEM key, or nil when `sealed` is malformed or was encrypted with another key or
    /// for another id.
    public func open(_ sealed: String, id: String) -> String? { open(sealed, aad: Self.aad(id)) }

    /// `plaintext` sealed in the stored form, bound to `aad` (which names the object and the
    /// field, so a sealed value copied elsewhere does not decrypt). Used for certificate keys
    /// and for routes' HS256 secrets (JWTSecrets).
    public func seal(_ plaintext: String, aad: [UInt8]) -> String {
        let nonce = OpenSSL.randomBytes(12)
        guard let sealed = OpenSSL.aes256gcmSeal(key: key, nonce: nonce, plaintext: Array(plaintext.utf8), aad: aad) else {
            fatalError("AES-256-GCM encryption failed")  // only with a broken libcrypto
        }
        return "\(Self.scheme):\(Base64.encode(nonce)):\(Base64.encode(sealed))"
    }

    /// The plaintext, or nil when `sealed` is malformed or was encrypted with another key or
    /// another `aad`.
    public func open(_ sealed: String, aad: [UInt8]) -> String? {
        let parts = sealed.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.scheme, let nonce = Base64.decode(String(parts[1])), nonce.count == 12,
            let data = Base64.decode(String(parts[2])),
            let plain = OpenSSL.aes256gcmOpen(key: key, nonce: nonce, sealed: data, aad: aad)
        else { return nil }
        return String(validating: plain, as: UTF8.self)
    }

    private static func hexBytes(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 0x30...0x39: v = c - 0x30
            case 0x61...0x66: v = c - 0x61 + 10
            case 0x41...0x46: v = c - 0x41 + 10
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return high == nil ? out : nil
    }
}

public struct CertificateKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let bytes = Array(utf8)
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

/// Standard base64 (RFC 4648, with padding).
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for anything that is not padded standard base64.
    public static func decode(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x41...0x5A: return UInt32(c - 0x41)
            case 0x61...0x7A: return UInt32(c - 0x61 + 26)
            case 0x30...0x39: return UInt32(c - 0x30 + 52)
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        var i = 0
        while i < bytes.count {
            let last = i + 4 == bytes.count
            let pad = last ? (bytes[i + 3] == UInt8(ascii: "=") ? (bytes[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            guard let a = value(bytes[i]), let b = value(bytes[i + 1]) else { return nil }
            let c = pad >= 2 ? 0 : value(bytes[i + 2])
            let d = pad >= 1 ? 0 : value(bytes[i + 3])
            guard let c, let d else { return nil }
            let v = a << 18 | b << 12 | c << 6 | d
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(v & 0xFF)) }
            i += 4
        }
        return out
    }
}

// MARK: - Which certificate serves a name

/// The edges' choice among certificates claiming the same name (lua/switchyard/tls/certificates.lua does
/// the same): the later not_after wins, then the smaller id. Used by the API to show which
/// names a certificate does not serve because another one wins them.
public enum CertificateSelection {
    /// Whether `a` beats `b` for a name both claim.
    public static func wins(_ a: Certificate, over b: Certificate) -> Bool {
        a.notAfter != b.notAfter ? a.notAfter > b.notAfter : a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
    }

    /// For every certificate id, the names (and `*default*` for the default role) it claims
    /// but another certificate wins: id -> [(name, winner id)].
    public static func shadowed(_ certificates: [Certificate]) -> [String: [(name: String, by: String)]] {
        var winner: [String: Certificate] = [:]
        func claims(_ c: Certificate) -> [String] { c.names + (c.isDefault ? [defaultRole] : []) }
        for c in certificates {
            for name in claims(c) where winner[name].map({ wins(c, over: $0) }) ?? true { winner[name] = c }
        }
        var out: [String: [(name: String, by: String)]] = [:]
        for c in certificates {
            for name in claims(c) {
                if let w = winner[name], w.id != c.id { out[c.id, default: []].append((name, w.id)) }
            }
        }
        return out
    }

    /// How the default role is named in `shadowed`.
    public static let defaultRole = "*default*"
}
