// A route's jwt keys given as a JWKS document (RFC 7517): `"jwks": {"keys": [JWK...]}`
// instead of `keys`, for identity providers that publish their keys that way. The document
// is stored through the API like everything else; nothing is ever fetched from a URL.
//
// Accepted JWKs: `{"kty": "RSA", "n", "e"}` (RS256, 2048-8192 bits) and `{"kty": "EC",
// "crv": "P-256", "x", "y"}` (ES256), with optional `kid` (required, distinct, when there are
// several), `alg` (RS256 or ES256, fitting kty) and `use` ("sig"). Members such as x5c, x5t
// and key_ops are accepted and not stored; private members (d, p, q, dp, dq, qi, k) are
// refused, so a private key is never stored by mistake; `kty: "oct"` too (HS256 secrets are
// `keys` entries, sealed at rest: JWTSecrets.swift).
//
// The controller turns each JWK into a SubjectPublicKeyInfo PEM once, here, and checks it
// with libcrypto (an EC point off the curve, a short RSA modulus: 422 naming the member,
// e.g. `jwt.jwks.keys[1].n`). The stored document carries that PEM beside the JWK (`pem`,
// storage only: answers show the JWK as given), so an edge loads it as it loads `keys`.

/// A JWK as stored (canonical base64url members); `pem` is derived.
public struct JWK: Sendable, Hashable {
    public var kty: String
    public var crv: String?
    public var n: String?
    public var e: String?
    public var x: String?
    public var y: String?

    public static let privateMembers = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"]
    static let maxMember = 2048

    /// The JWK's own members (no `alg`, `kid`: the key holds them).
    var members: [(key: String, value: JSONValue)] {
        var out: [(key: String, value: JSONValue)] = []
        if let crv { out.append(("crv", .string(crv))) }
        if let e { out.append(("e", .string(e))) }
        out.append(("kty", .string(kty)))
        if let n { out.append(("n", .string(n))) }
        if let x { out.append(("x", .string(x))) }
        if let y { out.append(("y", .string(y))) }
        return out
    }

    /// Unpadded base64url (RFC 7515 section 2) to bytes; nil for anything else.
    static func base64url(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= maxMember, text.utf8.count % 4 != 1 else { return nil }
        var standard = ""
        for c in text.unicodeScalars {
            switch c {
            case "A"..."Z", "a"..."z", "0"..."9": standard.unicodeScalars.append(c)
            case "-": standard += "+"
            case "_": standard += "/"
            default: return nil
            }
        }
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Base64.decode(standard)
    }

    // DER, as much of it as a SubjectPublicKeyInfo needs
    static func tlv(_ tag: UInt8, _ body: [UInt8]) -> [UInt8] {
        let n = body.count
        let length: [UInt8] = n < 0x80 ? [UInt8(n)] : n < 0x100 ? [0x81, UInt8(n)] : [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
        return [tag] + length + body
    }

    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var b = Array(magnitude.drop { $0 == 0 })
        if b.isEmpty { b = [0] }
        if b[0] >= 0x80 { b.insert(0, at: 0) }
        return tlv(0x02, b)
    }

    static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    static let ecPublicKey: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    static let prime256v1: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]

    static func pem(_ der: [UInt8]) -> String {
        let text = Base64.encode(der)
        var lines: [Substring] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            lines.append(rest.prefix(64))
            rest = rest.dropFirst(64)
        }
        return "-----BEGIN PUBLIC KEY-----\n" + lines.joined(separator: "\n") + "\n-----END PUBLIC KEY-----\n"
    }

    /// Member `key` of a JWK as base64url bytes, or nil with a problem.
    static func bytes(_ item: JSONValue, _ key: String, at: String, into reader: inout FieldReader) -> (String, [UInt8])? {
        guard let text = reader.requiredString(item, key, at: at) else { return nil }
        guard let bytes = base64url(text) else {
            reader.add(join(at, key), .invalid, "must be unpadded base64url (at most \(maxMember) characters)")
            return nil
        }
        return (text, bytes)
    }

    /// One JWK of `jwks.keys` as a key (alg, kid, derived PEM), or nil with the problems.
    static func parse(_ item: JSONValue, at: String, into reader: inout FieldReader) -> JWTAuth.Key? {
        guard case .object = item else {
            reader.add(at, .invalid, "must be a JWK object such as {\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":...,\"y\":...}")
            return nil
        }
        if let found = privateMembers.first(where: { item[$0] != nil }) {
            reader.add(join(at, found), .invalid, "is a private key member: give the public JWKS (never a private key)")
            return nil
        }
        guard let kty = reader.requiredString(item, "kty", at: at) else { return nil }
        let kid = reader.string(item, "kid", required: false, at: at)
        let alg = reader.string(item, "alg", required: false, at: at)
        let use = reader.string(item, "use", required: false, at: at)
        guard let kid, let alg, let use else { return nil }
        if let kid, !JWTAuth.isText(kid) {
            reader.add(join(at, "kid"), .invalid, "must be 1-\(JWTAuth.maxText) printable ASCII characters")
            return nil
        }
        if let use, use != "sig" {
            reader.add(join(at, "use"), .invalid, "must be \"sig\": '\(use)' keys do not verify signatures")
            return nil
        }
        let want: String
        var jwk = JWK(kty: kty)
        let der: [UInt8]
        switch kty {
        case "RSA":
            want = "RS256"
            guard let (nText, n) = bytes(item, "n", at: at, into: &reader), let (eText, e) = bytes(item, "e", at: at, into: &reader)
            else { return nil }
            guard (1...8).contains(e.count), let last = e.last, last & 1 == 1, e.drop(while: { $0 == 0 }).count > 1 || last >= 3 else {
                reader.add(join(at, "e"), .invalid, "is not an RSA public exponent (odd, at least 3, at most 8 bytes)")
                return nil
            }
            jwk.n = nText
            jwk.e = eText
            der = tlv(0x30, tlv(0x30, rsaEncryption + [0x05, 0x00]) + tlv(0x03, [0] + tlv(0x30, integer(n) + integer(e))))
        case "EC":
            want = "ES256"
            guard let crv = reader.requiredString(item, "crv", at: at) else { return nil }
            guard crv == "P-256" else {
                reader.add(join(at, "crv"), .invalid, "must be P-256 (ES256), not '\(crv)'")
                return nil
            }
            guard let (xText, x) = bytes(item, "x", at: at, into: &reader), let (yText, y) = bytes(item, "y", at: at, into: &reader)
            else { return nil }
            for (name, value) in [("x", x), ("y", y)] where value.count != 32 {
                reader.add(join(at, name), .invalid, "must be 32 bytes for P-256, not \(value.count)")
                return nil
            }
            jwk.crv = crv
            jwk.x = xText
            jwk.y = yText
            der = tlv(0x30, tlv(0x30, ecPublicKey + prime256v1) + tlv(0x03, [0, 4] + x + y))
        case "oct":
            reader.add(
                join(at, "kty"), .invalid,
                "oct (a shared secret) is not taken from a JWKS: give it as {\"alg\": \"HS256\", \"secret\": ...} in keys, sealed at rest")
            return nil
        default:
            reader.add(join(at, "kty"), .invalid, "must be RSA or EC, not '\(kty)'")
            return nil
        }
        if let alg, alg != want {
            reader.add(join(at, "alg"), .invalid, "must be \(want) for a \(kty) key, not '\(alg)'")
            return nil
        }
        let pem = Self.pem(der)
        let read = OpenSSL.publicKeyType(pem)
        guard let type = read.type else {
            reader.add(
                join(at, kty == "EC" ? "x" : "n"), .invalid, "is not a valid \(kty) public key (\(read.problem ?? "does not parse"))")
            return nil
        }
        if kty == "EC", type != "EC P-256" {
            reader.add(join(at, "x"), .invalid, "is \(type), not a P-256 point")
            return nil
        }
        if kty == "RSA" {
            let parts = type.split(separator: " ")
            let bits = parts.count == 2 ? Int(parts[1]) ?? 0 : 0
            guard (2048...8192).contains(bits) else {
                reader.add(join(at, "n"), .invalid, "is an RSA key of \(bits) bits: RS256 needs 2048-8192")
                return nil
            }
        }
        return JWTAuth.Key(alg: want, kid: kid, pem: pem, jwk: jwk)
    }

    /// `jwks`: `{"keys": [JWK...]}` (1-8 keys, distinct kids) as keys.
    static func parseSet(_ json: JSONValue, at: String, into reader: inout FieldReader) -> [JWTAuth.Key] {
        guard reader.object(json, fields: ["keys"], example: #"{"keys":[{"kty":"EC","crv":"P-256","x":"...","y":"..."}]}"#, at: at) != nil
        else { return [] }
        let keysAt = join(at, "keys")
        guard case .array(let items)? = present(json, "keys") else {
            reader.add(keysAt, present(json, "keys") == nil ? .required : .invalid, "must be an array of 1-\(JWTAuth.maxKeys) JWKs")
            return []
        }
        guard (1...JWTAuth.maxKeys).contains(items.count) else {
            reader.add(keysAt, .invalid, "must have 1-\(JWTAuth.maxKeys) keys, not \(items.count)")
            return []
        }
        var out: [JWTAuth.Key] = []
        var kids: Set<String> = []
        for (i, item) in items.enumerated() {
            let itemAt = "\(keysAt)[\(i)]"
            guard let key = parse(item, at: itemAt, into: &reader) else { continue }
            if let kid = key.kid, !kids.insert(kid).inserted {
                reader.add(join(itemAt, "kid"), .duplicate, "'\(kid)' appears twice")
                continue
            }
            out.append(key)
        }
        return out
    }
}
