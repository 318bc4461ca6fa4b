// The one Swift file that talks to libcrypto (OpenSSL 3, through the CSSL system library):
// reading certificate chains and private keys, AES-256-GCM for keys at rest, random bytes,
// and generating certificates (the edge's placeholder, tests). Every OpenSSL object is
// created and freed inside one function here; callers get plain Swift values, so no C
// type leaks past this file.
//
// All of it is computation on bytes (no I/O, no global state except OpenSSL's per-thread
// error queue, which every entry point clears), so it is safe from any thread.

internal import CSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What OpenSSL found in a PEM certificate chain and its private key.
public struct CertificateMaterial: Sendable, Equatable {
    /// The chain as OpenSSL re-encodes it: leaf first, one PEM block per certificate, nothing
    /// else (text between blocks, "Bag Attributes" and the like are dropped).
    public var chainPEM: String
    /// The private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    public var keyPEM: String
    public var chainLength: Int
    /// dNSName entries of the leaf's subjectAltName, as written in the certificate.
    public var dnsNames: [String]
    /// The leaf's subject and issuer, RFC 2253 (`CN=a.example.com,O=Example`).
    public var subject: String
    public var issuer: String
    /// The leaf's first commonName, if any.
    public var commonName: String?
    /// Validity of the leaf, seconds since the epoch.
    public var notBefore: Int64
    public var notAfter: Int64
    /// SHA-256 of the leaf's DER, as `openssl x509 -fingerprint -sha256` prints it (`AB:CD:...`).
    public var fingerprintSHA256: String
    /// The leaf's serial number, uppercase hex.
    public var serial: String
    /// `RSA 2048`, `EC P-256`, `ED25519 256`, ...
    public var keyType: String
}

/// Why a chain or key could not be used. `field` is `cert` or `key`.
public struct CertificateReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not PEM, or PEM that OpenSSL cannot read.
        case unparsable
        /// The key is protected by a passphrase.
        case encryptedKey = "encrypted_key"
        /// The key does not belong to the leaf.
        case keyMismatch = "key_mismatch"
        /// The chain is not leaf first, then each issuer.
        case chainOrder = "chain_order"
    }

    public var field: String
    public var code: Code
    public var message: String

    public var description: String { "\(field): \(code.rawValue): \(message)" }
}

/// A certificate to generate (`OpenSSL.generate`).
public struct CertificateRequest: Sendable {
    public enum KeyKind: Sendable { case ecP256, rsa(bits: Int) }

    public var commonName: String
    /// subjectAltName dNSName entries; none = no subjectAltName extension.
    public var dnsNames: [String]
    /// Validity, seconds since the epoch.
    public var notBefore: Int64
    public var notAfter: Int64
    public var isCA: Bool
    public var key: KeyKind
    /// PEM certificate and key of the issuer; nil = self-signed.
    public var issuer: (certificate: String, key: String)?

    public init(
        commonName: String, dnsNames: [String] = [], notBefore: Int64, notAfter: Int64, isCA: Bool = false,
        key: KeyKind = .ecP256, issuer: (certificate: String, key: String)? = nil
    ) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.isCA = isCA
        self.key = key
        self.issuer = issuer
    }
}

public enum OpenSSL {
    /// The largest chain read: longer ones are certainly a mistake (a whole CA bundle).
    public static let maxChainLength = 10

    // MARK: - Reading certificates

    /// Reads a PEM chain (leaf first) and the leaf's private key, checks that they parse,
    /// that the key matches the leaf and that each certificate is issued by the next. It
    /// does not check dates or names (the caller's rules) nor signatures or trust (the
    /// edge serves what it is given; clients verify).
    public static func readCertificate(chain: String, key: String) -> Result<CertificateMaterial, CertificateReadError> {
        ERR_clear_error()
        defer { ERR_clear_error() }
        func fail(_ field: String, _ code: CertificateReadError.Code, _ message: String) -> Result<
            CertificateMaterial, CertificateReadError
        > {
            .failure(CertificateReadError(field: field, code: code, message: message))
        }

        let blocks = count(of: "-----BEGIN CERTIFICATE-----", in: chain)
        if blocks == 0 {
            if chain.contains("PRIVATE KEY-----") {
                return fail("cert", .unparsable, "holds a private key, not a certificate (-----BEGIN CERTIFICATE-----)")
            }
            return fail("cert", .unparsable, "no PEM certificate (-----BEGIN CERTIFICATE-----) found")
        }
        if blocks > maxChainLength {
            return fail("cert", .unparsable, "\(blocks) certificates: a chain has at most \(maxChainLength) (leaf first, then its issuers)")
        }
        var certs: [OpaquePointer] = []
        defer { for cert in certs { X509_free(cert) } }
        if !readX509(chain, blocks: blocks, into: &certs) {
            let n = certs.count + 1
            return fail("cert", .unparsable, "certificate \(n) of the chain does not parse (\(lastError()))")
        }

        if key.contains("ENCRYPTED") {
            return fail(
                "key", .encryptedKey,
                "is protected by a passphrase; store it decrypted (openssl pkey -in key.pem -out plain.pem)")
        }
        if count(of: "PRIVATE KEY-----", in: key) == 0 {
            if key.contains("-----BEGIN CERTIFICATE-----") {
                return fail("key", .unparsable, "holds a certificate, not a private key")
            }
            return fail("key", .unparsable, "no PEM private key (-----BEGIN PRIVATE KEY-----) found")
        }
        let keyBytes = Array(key.utf8)
        guard
            let pkey: OpaquePointer = keyBytes.withUnsafeBytes({ raw in
                guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
                defer { BIO_free(bio) }
                return sy_read_private_key(bio)
            })
        else {
            return fail("key", .unparsable, "the private key does not parse (\(lastError()))")
        }
        defer { EVP_PKEY_free(pkey) }

        let leaf = certs[0]
        if X509_check_private_key(leaf, pkey) != 1 {
            ERR_clear_error()
            if let i = certs.indices.dropFirst().first(where: { X509_check_private_key(certs[$0], pkey) == 1 }) {
                return fail(
                    "cert", .chainOrder,
                    "the key belongs to certificate \(i + 1) of the chain: put the server certificate first")
            }
            ERR_clear_error()
            return fail("key", .keyMismatch, "does not belong to the certificate (the first one of the chain)")
        }
        for i in 0..<(certs.count - 1) where sy_x509_is_issued_by(certs[i + 1], certs[i]) == 0 {
            return fail(
                "cert", .chainOrder,
                "certificate \(i + 2) did not issue certificate \(i + 1): order the chain leaf first, then each issuer")
        }

        var ok: Int32 = 0
        let notBefore = sy_asn1_time_epoch(X509_get0_notBefore(leaf), &ok)
        guard ok == 1 else { return fail("cert", .unparsable, "unreadable notBefore") }
        let notAfter = sy_asn1_time_epoch(X509_get0_notAfter(leaf), &ok)
        guard ok == 1 else { return fail("cert", .unparsable, "unreadable notAfter") }

        guard let chainPEM = pem({ bio in certs.allSatisfy { PEM_write_bio_X509(bio, $0) == 1 } }),
            let keyPEM = pem({ bio in sy_write_private_key(bio, pkey) == 1 })
        else {
            return fail("cert", .unparsable, "cannot re-encode (\(lastError()))")
        }
        return .success(
            CertificateMaterial(
                chainPEM: chainPEM, keyPEM: keyPEM, chainLength: certs.count, dnsNames: dnsNames(leaf),
                subject: name(X509_get_subject_name(leaf)), issuer: name(X509_get_issuer_name(leaf)),
                commonName: commonName(X509_get_subject_name(leaf)), notBefore: Int64(notBefore), notAfter: Int64(notAfter),
                fingerprintSHA256: fingerprint(leaf), serial: serial(leaf), keyType: keyType(pkey)))
    }

    /// Reads a bundle of PEM CA certificates (`client_ca` of a certificate: the issuers
    /// whose client certificates an edge accepts): the bundle re-encoded by OpenSSL and the
    /// subjects, or why not.
    public static func readCABundle(_ bundle: String) -> Result<(pem: String, subjects: [String]), CertificateReadError> {
        ERR_clear_error()
        defer { ERR_clear_error() }
        func fail(_ message: String) -> Result<(pem: String, subjects: [String]), CertificateReadError> {
            .failure(CertificateReadError(field: "client_ca", code: .unparsable, message: message))
        }
        let blocks = count(of: "-----BEGIN CERTIFICATE-----", in: bundle)
        if blocks == 0 { return fail("no PEM certificate (-----BEGIN CERTIFICATE-----) found") }
        if bundle.contains("PRIVATE KEY-----") { return fail("holds a private key: give only the CA certificates") }
        if blocks > maxCABundle { return fail("\(blocks) certificates: a client CA bundle has at most \(maxCABundle)") }
        var certs: [OpaquePointer] = []
        defer { for cert in certs { X509_free(cert) } }
        if !readX509(bundle, blocks: blocks, into: &certs) { return fail("certificate \(certs.count + 1) does not parse (\(lastError()))") }
        guard let pemText = pem({ bio in certs.allSatisfy { PEM_write_bio_X509(bio, $0) == 1 } }) else {
            return fail("cannot re-encode (\(lastError()))")
        }
        return .success((pemText, certs.map { name(X509_get_subject_name($0)) }))
    }

    /// Reads `blocks` PEM certificates from `text` into `certs` (the caller frees them,
    /// also those read before a failure); false when one does not parse.
    private static func readX509(_ text: String, blocks: Int, into certs: inout [OpaquePointer]) -> Bool {
        let bytes = Array(text.utf8)
        var read: [OpaquePointer] = []
        let ok: Bool = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return false }
            defer { BIO_free(bio) }
            for _ in 0..<blocks {
                guard let x = sy_read_x509(bio) else { return false }
                read.append(x)
            }
            return true
        }
        certs += read
        return ok
    }

    /// The key type of one PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo)
    /// as `keyType` names it ("RSA 2048", "EC P-256"), or why it does not read. Used by the
    /// jwt route policy (Policies/Auth.swift).
    public static func publicKeyType(_ pem: String) -> (type: String?, problem: String?) {
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard count(of: "-----BEGIN PUBLIC KEY-----", in: pem) == 1 else {
            return (nil, "must hold exactly one PEM public key (-----BEGIN PUBLIC KEY-----)")
        }
        let bytes = Array(pem.utf8)
        return bytes.withUnsafeBytes { raw -> (type: String?, problem: String?) in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return (nil, "cannot be read") }
            defer { BIO_free(bio) }
            guard let key = PEM_read_bio_PUBKEY(bio, nil, nil, nil) else {
                return (nil, "does not parse as a public key (\(lastError()))")
            }
            defer { EVP_PKEY_free(key) }
            return (keyType(key), nil)
        }
    }

    /// Most CA certificates in a `client_ca` bundle.
    public static let maxCABundle = 32

    private static func count(of needle: String, in text: String) -> Int {
        let n = Array(needle.utf8)
        let t = Array(text.utf8)
        guard t.count >= n.count else { return 0 }
        var found = 0
        var i = 0
        while i <= t.count - n.count {
            if t[i] == n[0], t[i..<(i + n.count)].elementsEqual(n) {
                found += 1
                i += n.count
            } else {
                i += 1
            }
        }
        return found
    }

    /// Runs `write` into a memory BIO and returns what it wrote.
    private static func pem(_ write: (OpaquePointer) -> Bool) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard write(bio) else { return nil }
        var data: UnsafeMutablePointer<CChar>?
        let n = sy_bio_mem_data(bio, &data)
        guard n >= 0, let data else { return n == 0 ? "" : nil }
        return data.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }

    private static func dnsNames(_ x: OpaquePointer) -> [String] {
        guard let sans = sy_sans(x) else {
            ERR_clear_error()
            return []
        }
        defer { sy_sans_free(sans) }
        var out: [String] = []
        for i in 0..<sy_sans_count(sans) {
            var data: UnsafePointer<UInt8>?
            let n = sy_san_dns(sans, i, &data)
            guard n >= 0, let data else { continue }
            out.append(String(decoding: UnsafeBufferPointer(start: data, count: Int(n)), as: UTF8.self))
        }
        return out
    }

    private static func name(_ n: OpaquePointer?) -> String {
        guard let n else { return "" }
        return pem { bio in sy_print_name(bio, n) >= 0 } ?? ""
    }

    private static func commonName(_ n: OpaquePointer?) -> String? {
        guard let n else { return nil }
        var data: UnsafePointer<UInt8>?
        let len = sy_name_cn(n, &data)
        guard len >= 0, let data else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(len)), as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func fingerprint(_ x: OpaquePointer) -> String {
        var md = [UInt8](repeating: 0, count: 64)
        var len: UInt32 = 0
        guard X509_digest(x, EVP_sha256(), &md, &len) == 1 else { return "" }
        var out: [UInt8] = []
        for (i, b) in md.prefix(Int(len)).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ":")) }
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func serial(_ x: OpaquePointer) -> String {
        guard let bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nil) else { return "" }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return "" }
        defer { sy_free(hex) }
        return String(cString: hex)
    }

    private static func keyType(_ key: OpaquePointer) -> String {
        let bits = EVP_PKEY_get_bits(key)
        let id = EVP_PKEY_get_base_id(key)
        if id == sy_evp_pkey_rsa() { return "RSA \(bits)" }
        if id == sy_evp_pkey_ec() {
            var buffer = [CChar](repeating: 0, count: 64)
            var len = 0
            if EVP_PKEY_get_group_name(key, &buffer, buffer.count, &len) == 1 {
                let group = String(decoding: buffer.prefix(len).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let curves = ["prime256v1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"]
                return "EC \(curves[group] ?? group)"
            }
            return "EC \(bits)"
        }
        if let sn = OBJ_nid2sn(id) { return "\(String(cString: sn)) \(bits)" }
        return "unknown \(bits)"
    }

    /// The reason of the newest error in OpenSSL's queue, for messages.
    private static func lastError() -> String {
        let code = ERR_peek_last_error()
        guard code != 0 else { return "malformed input" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // "error:1E08010C:DECODER routines::unsupported" -> "DECODER routines::unsupported"
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count == 3 ? String(parts[2]) : text
    }

    // MARK: - AES-256-GCM

    /// Encrypts with AES-256-GCM (96-bit nonce); returns ciphertext followed by the 16-byte
    /// tag. `key` must be 32 bytes and `nonce` 12 bytes.
    public static func aes256gcmSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == 12, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1, sy_gcm_set_ivlen(ctx, Int32(nonce.count)) == 1,
            EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { return nil }
        var outLength: Int32 = 0
        if !aad.isEmpty, EVP_EncryptUpdate(ctx, nil, &outLength, aad, Int32(aad.count)) != 1 { return nil }
        var out = [UInt8](repeating: 0, count: plaintext.count + 32)
        var total = 0
        let ok = out.withUnsafeMutableBufferPointer { buf -> Bool in
            guard EVP_EncryptUpdate(ctx, buf.baseAddress, &outLength, plaintext, Int32(plaintext.count)) == 1 else { return false }
            total = Int(outLength)
            guard EVP_EncryptFinal_ex(ctx, buf.baseAddress! + total, &outLength) == 1 else { return false }
            total += Int(outLength)
            return sy_gcm_get_tag(ctx, buf.baseAddress! + total, 16) == 1
        }
        guard ok else { return nil }
        return Array(out.prefix(total + 16))
    }

    /// Decrypts what `aes256gcmSeal` produced; nil when the key, nonce, AAD or data are wrong
    /// (the tag does not verify).
    public static func aes256gcmOpen(key: [UInt8], nonce: [UInt8], sealed: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == 12, sealed.count >= 16, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1, sy_gcm_set_ivlen(ctx, Int32(nonce.count)) == 1,
            EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { return nil }
        var outLength: Int32 = 0
        if !aad.isEmpty, EVP_DecryptUpdate(ctx, nil, &outLength, aad, Int32(aad.count)) != 1 { return nil }
        let ciphertext = Array(sealed.dropLast(16))
        var tag = Array(sealed.suffix(16))
        var out = [UInt8](repeating: 0, count: ciphertext.count + 32)
        var total = 0
        let ok = out.withUnsafeMutableBufferPointer { buf -> Bool in
            guard EVP_DecryptUpdate(ctx, buf.baseAddress, &outLength, ciphertext, Int32(ciphertext.count)) == 1 else { return false }
            total = Int(outLength)
            guard sy_gcm_set_tag(ctx, &tag, 16) == 1 else { return false }
            guard EVP_DecryptFinal_ex(ctx, buf.baseAddress! + total, &outLength) == 1 else { return false }
            total += Int(outLength)
            return true
        }
        return ok ? Array(out.prefix(total)) : nil
    }

    /// Cryptographically secure random bytes (OpenSSL's DRBG).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        if RAND_bytes(&out, Int32(count)) != 1 {
            // never expected on Linux with getrandom(); a nonce must not be predictable
            fatalError("RAND_bytes failed: \(lastError())")
        }
        return out
    }

    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, EVP_sha256(), nil)
        }
        // never expected: SHA-256 of bytes in memory cannot fail short of memory exhaustion
        if ok != 1 || length != 32 { fatalError("EVP_Digest(sha256) failed: \(lastError())") }
        return out
    }

    // MARK: - Generating certificates

    /// A new key and certificate (PEM), self-signed or issued by `request.issuer`. For the
    /// edge's placeholder certificate and for tests; nil if OpenSSL fails.
    public static func generate(_ request: CertificateRequest) -> (certificate: String, key: String)? {
        ERR_clear_error()
        defer { ERR_clear_error() }
        let key: OpaquePointer?
        switch request.key {
        case .ecP256: key = sy_generate_ec_p256()
        case .rsa(let bits): key = sy_generate_rsa(bits)
        }
        guard let key else { return nil }
        defer { EVP_PKEY_free(key) }

        var issuerCert: OpaquePointer?
        var issuerKey: OpaquePointer?
        defer {
            if let issuerCert { X509_free(issuerCert) }
            if let issuerKey { EVP_PKEY_free(issuerKey) }
        }
        if let issuer = request.issuer {
            issuerCert = Array(issuer.certificate.utf8).withUnsafeBytes { raw in
                BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)).flatMap { bio in
                    defer { BIO_free(bio) }
                    return sy_read_x509(bio)
                }
            }
            issuerKey = Array(issuer.key.utf8).withUnsafeBytes { raw in
                BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)).flatMap { bio in
                    defer { BIO_free(bio) }
                    return sy_read_private_key(bio)
                }
            }
            guard issuerCert != nil, issuerKey != nil else { return nil }
        }

        guard let x = X509_new() else { return nil }
        defer { X509_free(x) }
        var serialBytes = randomBytes(8)
        serialBytes[0] &= 0x7F
        let serialValue = serialBytes.reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard X509_set_version(x, 2) == 1,
            ASN1_INTEGER_set_int64(X509_get_serialNumber(x), max(1, serialValue)) == 1,
            ASN1_TIME_set(X509_getm_notBefore(x), time_t(request.notBefore)) != nil,
            ASN1_TIME_set(X509_getm_notAfter(x), time_t(request.notAfter)) != nil,
            X509_set_pubkey(x, key) == 1,
            sy_name_add_cn(X509_get_subject_name(x), request.commonName) == 1,
            X509_set_issuer_name(x, issuerCert.map { X509_get_subject_name($0) } ?? X509_get_subject_name(x)) == 1
        else { return nil }
        let signer = issuerCert ?? x
        var extensions: [(Int32, String)] = [(sy_nid_subject_key_identifier(), "hash")]
        if request.isCA {
            extensions += [(sy_nid_basic_constraints(), "critical,CA:TRUE"), (sy_nid_key_usage(), "critical,keyCertSign,cRLSign")]
        } else {
            extensions += [(sy_nid_basic_constraints(), "CA:FALSE")]
        }
        if request.issuer != nil { extensions.append((sy_nid_authority_key_identifier(), "keyid:always")) }
        if !request.dnsNames.isEmpty {
            extensions.append((sy_nid_subject_alt_name(), request.dnsNames.map { "DNS:\($0)" }.joined(separator: ",")))
        }
        for (nid, value) in extensions where sy_x509_add_ext(signer, x, nid, value) != 1 { return nil }
        guard X509_sign(x, issuerKey ?? key, EVP_sha256()) > 0,
            let certificate = pem({ PEM_write_bio_X509($0, x) == 1 }),
            let keyPEM = pem({ sy_write_private_key($0, key) == 1 })
        else { return nil }
        return (certificate, keyPEM)
    }
}
