// kubeconfig files (the format kubectl reads): clusters, users and contexts, resolved into a
// KubeConnection for the current or a named context. Relative paths are relative to the file's
// directory, as kubectl resolves them. exec and auth-provider plugins are not supported and
// are refused naming the field.

import Foundation
import NIOSSL
import Yams

public struct KubeConfig: Decodable, Sendable {
    public var clusters: [Named<Cluster>]?
    public var users: [Named<User>]?
    public var contexts: [Named<Context>]?
    public var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }

    public struct Named<T: Decodable & Sendable>: Decodable, Sendable {
        public var name: String
        public var value: T?
        enum CodingKeys: String, CodingKey { case name, cluster, user, context }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            for key in [CodingKeys.cluster, .user, .context] where c.contains(key) {
                value = try c.decodeIfPresent(T.self, forKey: key)
            }
        }
    }

    public struct Cluster: Decodable, Sendable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        public var tlsServerName: String?
        public var proxyURL: String?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    public struct User: Decodable, Sendable {
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var username: String?
        public var exec: JSONValue?
        public var authProvider: JSONValue?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile, username, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    public struct Context: Decodable, Sendable {
        public var cluster: String?
        public var user: String?
        public var namespace: String?
    }

    /// Parses kubeconfig text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws -> KubeConfig {
        do {
            return try YAMLDecoder().decode(KubeConfig.self, from: text)
        } catch let error as DecodingError {
            throw KubeConfigError(file: file, field: fieldPath(of: error), describe(error))
        } catch {
            throw KubeConfigError(file: file, field: "", "is not valid YAML: \(error)")
        }
    }
}

extension KubeConnection {
    /// Reads a kubeconfig and resolves `context` (default: its current-context).
    public static func kubeconfig(path: String, context: String? = nil) throws -> KubeConnection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeConfigError(file: path, field: "", "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KubeConfigError(file: path, field: "", "is not UTF-8 text")
        }
        let config = try KubeConfig.parse(text, file: path)
        let directory = (path as NSString).deletingLastPathComponent
        return try resolve(config, file: path, directory: directory.isEmpty ? "." : directory, context: context)
    }

    public static func resolve(_ config: KubeConfig, file: String, directory: String, context: String? = nil) throws -> KubeConnection {
        let contextName: String
        if let context {
            contextName = context
        } else if let current = config.currentContext, !current.isEmpty {
            contextName = current
        } else {
            throw KubeConfigError(file: file, field: "current-context", "is not set and no context was given")
        }
        let contextField = context == nil ? "current-context" : "context"
        guard let named = config.contexts?.first(where: { $0.name == contextName }) else {
            throw KubeConfigError(file: file, field: contextField, "names context '\(contextName)', which is not in contexts")
        }
        let ctxField = "contexts[name=\(contextName)].context"
        guard let ctx = named.value else { throw KubeConfigError(file: file, field: ctxField, "is missing") }
        guard let clusterName = ctx.cluster, !clusterName.isEmpty else {
            throw KubeConfigError(file: file, field: ctxField + ".cluster", "is required")
        }
        guard let clusterEntry = config.clusters?.first(where: { $0.name == clusterName }) else {
            throw KubeConfigError(file: file, field: ctxField + ".cluster", "names cluster '\(clusterName)', which is not in clusters")
        }
        let clusterField = "clusters[name=\(clusterName)].cluster"
        guard let cluster = clusterEntry.value else { throw KubeConfigError(file: file, field: clusterField, "is missing") }
        guard let server = cluster.server, let url = URL(string: server), let scheme = url.scheme?.lowercased(),
            scheme == "https" || scheme == "http", url.host != nil
        else {
            throw KubeConfigError(
                file: file, field: clusterField + ".server",
                "must be an http(s) URL, got \(cluster.server.map { "'\($0)'" } ?? "nothing")")
        }
        if cluster.proxyURL != nil {
            throw KubeConfigError(file: file, field: clusterField + ".proxy-url", "is not supported")
        }
        var ca: [UInt8]?
        if let data = cluster.certificateAuthorityData {
            ca = try base64(data, file: file, field: clusterField + ".certificate-authority-data")
            try checkCertificates(ca!, file: file, field: clusterField + ".certificate-authority-data")
        } else if let caPath = cluster.certificateAuthority {
            ca = try readFile(absolute(caPath, directory), field: clusterField + ".certificate-authority", in: file)
            try checkCertificates(ca!, file: file, field: clusterField + ".certificate-authority")
        }
        let insecure = cluster.insecureSkipTLSVerify ?? false
        if insecure && ca != nil {
            throw KubeConfigError(
                file: file, field: clusterField + ".insecure-skip-tls-verify",
                "cannot be combined with a certificate authority")
        }

        var credentials = Credentials()
        if let userName = ctx.user, !userName.isEmpty {
            guard let userEntry = config.users?.first(where: { $0.name == userName }) else {
                throw KubeConfigError(file: file, field: ctxField + ".user", "names user '\(userName)', which is not in users")
            }
            let userField = "users[name=\(userName)].user"
            let user = userEntry.value ?? KubeConfig.User()
            if user.exec != nil { throw KubeConfigError(file: file, field: userField + ".exec", "credential plugins are not supported") }
            if user.authProvider != nil { throw KubeConfigError(file: file, field: userField + ".auth-provider", "is not supported") }
            if user.username != nil {
                throw KubeConfigError(file: file, field: userField + ".username", "basic authentication is not supported")
            }
            credentials.token = user.token
            if user.token == nil, let tokenFile = user.tokenFile {
                let path = absolute(tokenFile, directory)
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw KubeConfigError(file: file, field: userField + ".tokenFile", "cannot read \(path)")
                }
                credentials.tokenFile = path
            }
            if let data = user.clientCertificateData {
                credentials.clientCertificate = try base64(data, file: file, field: userField + ".client-certificate-data")
            } else if let p = user.clientCertificate {
                credentials.clientCertificate = try readFile(absolute(p, directory), field: userField + ".client-certificate", in: file)
            }
            if let data = user.clientKeyData {
                credentials.clientKey = try base64(data, file: file, field: userField + ".client-key-data")
            } else if let p = user.clientKey {
                credentials.clientKey = try readFile(absolute(p, directory), field: userField + ".client-key", in: file)
            }
            switch (credentials.clientCertificate, credentials.clientKey) {
            case (nil, nil): break
            case (let cert?, let key?):
                let certField = userField + (user.clientCertificateData != nil ? ".client-certificate-data" : ".client-certificate")
                let keyField = userField + (user.clientKeyData != nil ? ".client-key-data" : ".client-key")
                try checkCertificates(cert, file: file, field: certField)
                do { _ = try NIOSSLPrivateKey(bytes: key, format: .pem) } catch {
                    throw KubeConfigError(file: file, field: keyField, "is not a PEM private key")
                }
            case (nil, _):
                throw KubeConfigError(file: file, field: userField + ".client-certificate", "is required with a client key")
            case (_, nil):
                throw KubeConfigError(file: file, field: userField + ".client-key", "is required with a client certificate")
            }
        }
        let namespace = (ctx.namespace?.isEmpty == false) ? ctx.namespace! : "default"
        return KubeConnection(
            server: server.hasSuffix("/") ? String(server.dropLast()) : server, certificateAuthority: ca,
            insecureSkipTLSVerify: insecure, credentials: credentials, namespace: namespace,
            source: "kubeconfig \(file) (context \(contextName))")
    }
}

private func absolute(_ path: String, _ directory: String) -> String {
    path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
}

private func base64(_ text: String, file: String, field: String) throws -> [UInt8] {
    let cleaned = text.filter { !$0.isWhitespace }
    guard let data = Data(base64Encoded: cleaned) else {
        throw KubeConfigError(file: file, field: field, "is not valid base64")
    }
    return Array(data)
}

func checkCertificates(_ pem: [UInt8], file: String, field: String) throws {
    do {
        let certs = try NIOSSLCertificate.fromPEMBytes(pem)
        if certs.isEmpty { throw KubeConfigError(file: file, field: field, "holds no PEM certificate") }
    } catch let error as KubeConfigError {
        throw error
    } catch {
        throw KubeConfigError(file: file, field: field, "is not a PEM certificate")
    }
}

private func fieldPath(of error: DecodingError) -> String {
    let path: [any CodingKey]
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
    case .keyNotFound(let key, let c): path = c.codingPath + [key]
    @unknown default: path = []
    }
    return path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        .replacingOccurrences(of: ".[", with: "[")
}

private func describe(_ error: DecodingError) -> String {
    switch error {
    case .typeMismatch(let type, _): return "has the wrong type (expected \(type))"
    case .valueNotFound: return "is missing"
    case .keyNotFound: return "is required"
    case .dataCorrupted(let c): return c.debugDescription
    @unknown default: return "is invalid"
    }
}
