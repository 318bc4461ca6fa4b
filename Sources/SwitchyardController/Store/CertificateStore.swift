// Storage of TLS certificates: reading them back from Redis and the create-or-replace
// write (one sy_apply `put certificate`). The key is sealed here when the controller has
// SWITCHYARD_CERT_KEY; it is never logged. The HTTP side is API/CertificatesAPI.swift.

import SwitchyardCore

extension ConfigStore {
    public func certificate(_ id: String) async throws(StoreError) -> StoredCertificate? {
        try await object(keys.certificate(id)) { bytes throws(DocumentError) in try StoredCertificate(bytes: bytes) }
    }

    public func certificates() async throws(StoreError) -> (items: [StoredCertificate], version: Int64) {
        try await list(.certificate) { bytes throws(DocumentError) in try StoredCertificate(bytes: bytes) }
    }

    /// Create-or-replace. With a cipher the key is stored as `key_enc`; when the stored
    /// certificate already holds the same key, its ciphertext is kept (a fresh nonce would
    /// make every identical PUT a change), so an identical PUT writes nothing.
    public func put(
        _ certificate: Certificate, cipher: CertificateKeyCipher?, owner: String? = nil
    ) async throws(StoreError) -> (version: Int64, created: Bool) {
        try await retrying(.certificate, certificate.id) { () throws(StoreError) -> (Int64, Bool) in
            let (operation, storedVersion) = try await certificateOperation(certificate, cipher: cipher)
            guard let operation else { return (storedVersion ?? 0, false) }
            let result = try await apply([operation], owner: owner)
            return (result.version, operation.expect == 0)
        }
    }

    /// The `put certificate` operation for `certificate` with `expect` = the stored version
    /// (0: none), or nil when the stored document is identical (then its version). The key is
    /// sealed with `cipher`; when the stored certificate holds the same key its ciphertext is
    /// kept, so an identical write is no change.
    func certificateOperation(
        _ certificate: Certificate, cipher: CertificateKeyCipher?
    ) async throws(StoreError) -> (operation: ApplyOperation?, storedVersion: Int64?) {
        let reply = try await send(["GET", keys.certificate(certificate.id)])
        var expect: Int64? = 0
        var sealed: String?
        var storedBytes: [UInt8]?
        if case .string(let bytes) = reply {
            storedBytes = bytes
            if let stored = try? StoredCertificate(bytes: bytes) {
                expect = stored.version
                if let cipher, let previous = stored.sealedKey, cipher.open(previous, id: certificate.id) == certificate.keyPEM {
                    sealed = previous
                }
            } else {
                // a damaged document has no usable version: replace it unconditionally
                expect = (try? StoredDocument.parse(bytes))?.version
            }
        }
        if let cipher, sealed == nil { sealed = cipher.seal(certificate.keyPEM, id: certificate.id) }
        let document = certificate.canonicalDocument(sealedKey: sealed)
        if let storedBytes, let version = expect, StoredDocument.holds(storedBytes, canonicalDocument: document) {
            return (nil, version)
        }
        return (ApplyOperation(op: .put, kind: .certificate, id: certificate.id, document: document, expect: expect), expect)
    }
}
