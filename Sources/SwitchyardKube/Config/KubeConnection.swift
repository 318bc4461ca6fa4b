// Where the API server is and how to authenticate to it: the result of reading a kubeconfig or
// the in-cluster service account, independent of where it came from.

import Foundation

public struct KubeConnection: Sendable {
    /// https://host:port (a path prefix, if any, is kept).
    public var server: String
    /// PEM bytes of the CA bundle to trust; nil means the system roots.
    public var certificateAuthority: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    public var credentials: Credentials
    /// The namespace of the context (or the service account's), "default" when none is given.
    public var namespace: String
    /// Where this came from, for messages: "kubeconfig /path (context x)" or "in-cluster".
    public var source: String

    public init(
        server: String, certificateAuthority: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
        credentials: Credentials = Credentials(), namespace: String = "default", source: String = "explicit"
    ) {
        self.server = server
        self.certificateAuthority = certificateAuthority
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.credentials = credentials
        self.namespace = namespace
        self.source = source
    }
}

public struct Credentials: Sendable, Equatable {
    /// A bearer token given inline.
    public var token: String?
    /// A file holding the bearer token, re-read every minute (bound service-account tokens rotate).
    public var tokenFile: String?
    /// PEM client certificate (chain) and key.
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?

    public init(token: String? = nil, tokenFile: String? = nil, clientCertificate: [UInt8]? = nil, clientKey: [UInt8]? = nil) {
        self.token = token
        self.tokenFile = tokenFile
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }
}

/// A problem with a kubeconfig or the in-cluster configuration, naming the file and the field.
public struct KubeConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var field: String
    public var message: String
    public init(file: String, field: String, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }
    public var description: String { field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)" }
}

/// The standard in-cluster locations, injectable for tests.
public struct InClusterPaths: Sendable {
    public var token: String
    public var certificateAuthority: String
    public var namespace: String
    public static let standard = InClusterPaths(directory: "/var/run/secrets/kubernetes.io/serviceaccount")
    public init(directory: String) {
        token = directory + "/token"
        certificateAuthority = directory + "/ca.crt"
        namespace = directory + "/namespace"
    }
}

extension KubeConnection {
    /// The connection a pod has: KUBERNETES_SERVICE_HOST/PORT and the service account's token,
    /// CA and namespace files.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        paths: InClusterPaths = .standard
    ) throws -> KubeConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw KubeConfigError(file: "in-cluster", field: "KUBERNETES_SERVICE_HOST", "is not set (not running in a pod?)")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], let portNumber = Int(port), (1...65535).contains(portNumber) else {
            throw KubeConfigError(
                file: "in-cluster", field: "KUBERNETES_SERVICE_PORT",
                "must be a port number, got \(environment["KUBERNETES_SERVICE_PORT"].map { "'\($0)'" } ?? "nothing")")
        }
        guard FileManager.default.isReadableFile(atPath: paths.token) else {
            throw KubeConfigError(file: paths.token, field: "", "the service-account token is not readable")
        }
        let ca = try readFile(paths.certificateAuthority, field: "", in: "in-cluster")
        try checkCertificates(ca, file: paths.certificateAuthority, field: "")
        var namespace = "default"
        if let data = FileManager.default.contents(atPath: paths.namespace),
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
        {
            namespace = text
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubeConnection(
            server: "https://\(hostPart):\(portNumber)", certificateAuthority: ca,
            credentials: Credentials(tokenFile: paths.token), namespace: namespace, source: "in-cluster")
    }
}

func readFile(_ path: String, field: String, in file: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw KubeConfigError(file: file, field: field, "cannot read \(path)")
    }
    return Array(data)
}
