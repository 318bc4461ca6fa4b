// Writes what the translation wants through the Store: the same validated documents, the same
// `sy_apply` Function, with this installation's owner. Only differences are written, so an
// unchanged cluster causes no write at all (the version does not move), and a burst of
// changes becomes one atomic call (or a few, when it exceeds `chunkSize` operations: each is
// a consistent picture, upstreams before the routes that use them, deletions last).
//
// What it may delete: objects the owners hash says this installation owns (k8s-model.md §4),
// and objects with ids it produces (ids hash the installation: KubeIdentity) that it wrote or
// found while desiring them. It never touches anything else.

import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis

public struct OwnedWriter: Sendable {
    public let store: ConfigStore
    public let owner: String
    public let cipher: CertificateKeyCipher?
    public var chunkSize = 500

    /// `<kind>:<id>` -> the document as stored (canonical, without version).
    var known: [String: String] = [:]
    /// Keys this installation owns or has written: candidates for deletion.
    var mine: Set<String> = []
    /// certificate id -> its key PEM and the sealed form stored for it (reused while the key
    /// is the same, so an unchanged certificate is not rewritten with a fresh nonce).
    var sealed: [String: (key: String, sealed: String)] = [:]
    var loaded = false
    /// `<kind>:<id>` -> the object last wanted (stamped) and its canonical document: an
    /// unchanged object is compared, not encoded again, on every sync.
    var encodedRoutes: [String: (value: Route, document: String)] = [:]
    var encodedUpstreams: [String: (value: Upstream, document: String)] = [:]

    public init(store: ConfigStore, owner: String, cipher: CertificateKeyCipher?) {
        self.store = store
        self.owner = owner
        self.cipher = cipher
    }

    public struct Outcome: Sendable, Equatable {
        public var puts = 0
        public var deletes = 0
        /// sy_apply calls made.
        public var calls = 0
        /// The version after the last call; nil when nothing was written.
        public var version: Int64?
    }

    /// Brings Redis to `desired`. The first call reads what is stored (the reconcile on start).
    public mutating func sync(_ desired: KubeDesired) async throws(StoreError) -> Outcome {
        var routes: [(String, Route)] = []
        var upstreams: [(String, Upstream)] = []
        var certificates: [(String, Certificate)] = []
        for var route in desired.routes {
            Ownership.stamp(&route, owner: owner, source: source(desired.origin(.route, route.id)))
            routes.append(("route:\(route.id)", route))
        }
        for var upstream in desired.upstreams {
            Ownership.stamp(&upstream, owner: owner, source: source(desired.origin(.upstream, upstream.name)))
            upstreams.append(("upstream:\(upstream.name)", upstream))
        }
        for var certificate in desired.certificates {
            Ownership.stamp(&certificate, owner: owner, source: source(desired.origin(.certificate, certificate.id)))
            certificates.append(("certificate:\(certificate.id)", certificate))
        }
        let wanted = Set(routes.map(\.0) + upstreams.map(\.0) + certificates.map(\.0))
        if !loaded { try await load(wanted) }

        var puts: [(key: String, document: String, operation: ApplyOperation, sealed: (String, String)?)] = []
        for (key, upstream) in upstreams {
            let document = Self.encoded(key, upstream, in: &encodedUpstreams) { $0.canonicalDocument }
            if known[key] == document { continue }
            puts.append((key, document, ApplyOperation(op: .put, kind: .upstream, id: upstream.name, document: document), nil))
        }
        for (key, route) in routes {
            let document = Self.encoded(key, route, in: &encodedRoutes) { $0.canonicalDocument }
            if known[key] == document { continue }
            puts.append(
                (key, document, ApplyOperation(op: .put, kind: .route, id: route.id, document: document, refs: route.upstreams), nil))
        }
        if encodedUpstreams.count > upstreams.count { encodedUpstreams = encodedUpstreams.filter { wanted.contains($0.key) } }
        if encodedRoutes.count > routes.count { encodedRoutes = encodedRoutes.filter { wanted.contains($0.key) } }
        var certificatePuts: [(key: String, document: String, operation: ApplyOperation, sealed: (String, String)?)] = []
        for (key, certificate) in certificates {
            var sealedKey: String?
            if let cipher {
                if let previous = sealed[certificate.id], previous.key == certificate.keyPEM {
                    sealedKey = previous.sealed
                } else {
                    sealedKey = cipher.seal(certificate.keyPEM, id: certificate.id)
                }
            }
            let document = certificate.canonicalDocument(sealedKey: sealedKey)
            if known[key] == document { continue }
            let operation = ApplyOperation(op: .put, kind: .certificate, id: certificate.id, document: document)
            certificatePuts.append((key, document, operation, sealedKey.map { (certificate.keyPEM, $0) }))
        }
        // deletions: routes first, then the upstreams and certificates they no longer need
        // (and streams: the source produces none, but prunes one written under its owner)
        let gone = mine.subtracting(wanted)
        var deletes: [(key: String, operation: ApplyOperation)] = []
        for kind in [ObjectKind.route, .stream, .upstream, .certificate] {
            for key in gone.filter({ $0.hasPrefix(kind.rawValue + ":") }).sorted() {
                deletes.append((key, ApplyOperation.delete(kind, String(key.dropFirst(kind.rawValue.count + 1)))))
            }
        }

        // certificates first (a route's HTTPS redirect should find its certificate served)
        let steps: [(key: String, operation: ApplyOperation, document: String?, sealed: (String, String)?)] =
            certificatePuts.map { ($0.key, $0.operation, $0.document, $0.sealed) } + puts.map { ($0.key, $0.operation, $0.document, nil) }
            + deletes.map { ($0.key, $0.operation, nil, nil) }
        var outcome = Outcome()
        var start = 0
        while start < steps.count {
            let chunk = steps[start..<min(start + chunkSize, steps.count)]
            let result = try await Ownership.applyOwned(store, chunk.map(\.operation), owner: owner)
            outcome.calls += 1
            outcome.version = result.version
            for step in chunk {
                if let document = step.document {
                    known[step.key] = document
                    mine.insert(step.key)
                    outcome.puts += 1
                } else {
                    known[step.key] = nil
                    mine.remove(step.key)
                    outcome.deletes += 1
                }
                if let pair = step.sealed, step.key.hasPrefix("certificate:") {
                    sealed[String(step.key.dropFirst("certificate:".count))] = (pair.0, pair.1)
                }
            }
            start += chunk.count
        }
        // what was already right is ours too (found by its id while wanted)
        mine.formUnion(wanted)
        return outcome
    }

    /// The canonical document of `value`: the one encoded last time while the value is the same.
    static func encoded<T: Equatable>(
        _ key: String, _ value: T, in cache: inout [String: (value: T, document: String)], encode: (T) -> String
    ) -> String {
        if let seen = cache[key], seen.value == value { return seen.document }
        let document = encode(value)
        cache[key] = (value, document)
        return document
    }

    func source(_ origin: K8sRef?) -> String { origin.map { KubeIdentity.source($0.key) } ?? "" }

    /// Reads what this installation owns and what it wants, as stored.
    mutating func load(_ wanted: Set<String>) async throws(StoreError) {
        var owned: Set<String> = []
        let reply = try await send(["HGETALL", Ownership.ownersKey(store)])
        if let items = reply.array {
            var i = 0
            while i + 1 < items.count {
                if let field = items[i].text, items[i + 1].text == owner { owned.insert(field) }
                i += 2
            }
        }
        let fields = owned.union(wanted).sorted()
        var start = 0
        while start < fields.count {
            let chunk = Array(fields[start..<min(start + chunkSize, fields.count)])
            start += chunk.count
            let redisKeys = chunk.compactMap { key -> String? in
                guard let colon = key.firstIndex(of: ":"), let kind = ObjectKind(rawValue: String(key[..<colon])) else { return nil }
                return store.keys.object(kind, String(key[key.index(after: colon)...]))
            }
            guard redisKeys.count == chunk.count else { continue }
            let reply = try await send(["MGET"] + redisKeys)
            guard let documents = reply.array, documents.count == chunk.count else {
                throw StoreError(.unexpected, "unexpected MGET reply")
            }
            for (key, document) in zip(chunk, documents) {
                guard case .string(let bytes) = document, let body = StoredDocument.body(bytes) else { continue }
                known[key] = "{" + String(decoding: body, as: UTF8.self)
                if key.hasPrefix("certificate:"), let cipher, let stored = try? StoredCertificate(bytes: bytes),
                    let sealedKey = stored.sealedKey,
                    let keyPEM = cipher.open(sealedKey, id: stored.certificate.id)
                {
                    sealed[stored.certificate.id] = (keyPEM, sealedKey)
                }
            }
        }
        mine = owned.union(wanted.filter { known[$0] != nil })
        loaded = true
    }

    func send(_ args: [String]) async throws(StoreError) -> RedisReply {
        let reply: RedisReply
        do {
            reply = try await store.redis.send(args)
        } catch {
            throw StoreError(.unavailable, "redis unavailable: \(error.message)", underlying: error)
        }
        if case .error(let message) = reply { throw StoreError(.unexpected, "\(args[0]) failed: \(message)") }
        return reply
    }
}
