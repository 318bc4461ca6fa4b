// kubeconfig and in-cluster resolution: pure, on files in a temporary directory.

import Foundation
import Testing

@testable import SwitchyardKube

/// A throwaway self-signed certificate and its key, made for these tests only.
let testCertificatePEM = """
    -----BEGIN CERTIFICATE-----
    MIIBljCCATugAwIBAgIUHnyQG9CJ4iT3i/39FHHNAo3wITwwCgYIKoZIzj0EAwIw
    HzEdMBsGA1UEAwwUc3dpdGNoeWFyZC1rdWJlLXRlc3QwIBcNMjYxMjAzMTQwNDQx
    WhgPMjEyNjExMDkxNDA0NDFaMB8xHTAbBgNVBAMMFHN3aXRjaHlhcmQta3ViZS10
    ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6GQaLyhc+Byt/w5loGmJqa19
    PyNg+O23U0VHE5+Ildu1EOpROTXfoiOAni7T4nPNKQNA+eiMTzHvyD7EZDmIbqNT
    MFEwHQYDVR0OBBYEFCj6uk2WGdAkGzJFo62I/FaEyTFlMB8GA1UdIwQYMBaAFCj6
    uk2WGdAkGzJFo62I/FaEyTFlMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
    SQAwRgIhAKbPYmboQmdEc61u3PDrYHq0K7LZhTtcsARssXorWokJAiEAgdRIP5s5
    v+7fh8b5bM22Ygx6w+7hWtQwf4Vti0Y09Gs=
    -----END CERTIFICATE-----
    """
let testKeyPEM = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVIDSEm0qFehrEHSz
    RI5uV9Bbz+6tX/jnwseQ7+yXtfihRANCAAToZBovKFz4HK3/DmWgaYmprX0/I2D4
    7bdTRUcTn4iV27UQ6lE5Nd+iI4CeLtPic80pA0D56IxPMe/IPsRkOYhu
    -----END PRIVATE KEY-----
    """

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

/// A scratch directory removed when the test ends.
func withScratchDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kubecfg-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

func write(_ text: String, _ path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

private func kubeconfig(cluster: String = "", user: String = "", context: String = "", current: String = "current-context: dev") -> String {
    """
    apiVersion: v1
    kind: Config
    \(current)
    clusters:
    - name: c1
      cluster:
        server: https://127.0.0.1:6443
        certificate-authority-data: \(b64(testCertificatePEM))
    - name: c2
      cluster:
        server: https://localhost:7443/prefix/
        insecure-skip-tls-verify: true
    \(cluster)
    users:
    - name: u1
      user:
        token: secret-token
    - name: u2
      user:
        client-certificate-data: \(b64(testCertificatePEM))
        client-key-data: \(b64(testKeyPEM))
    \(user)
    contexts:
    - name: dev
      context:
        cluster: c1
        user: u1
        namespace: team-a
    - name: other
      context:
        cluster: c2
        user: u2
    \(context)
    """
}

private func resolve(_ text: String, context: String? = nil, dir: String = "/nonexistent") throws -> KubeConnection {
    try KubeConnection.resolve(KubeConfig.parse(text, file: "/k/config"), file: "/k/config", directory: dir, context: context)
}

private func configError(_ body: () throws -> Void) -> KubeConfigError? {
    do {
        try body()
        return nil
    } catch let error as KubeConfigError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct KubeConfigTests {
    @Test func currentContextWithTokenAndEmbeddedCA() throws {
        let c = try resolve(kubeconfig())
        #expect(c.server == "https://127.0.0.1:6443")
        #expect(c.credentials == Credentials(token: "secret-token"))
        #expect(c.certificateAuthority == Array(testCertificatePEM.utf8))
        #expect(c.namespace == "team-a")
        #expect(!c.insecureSkipTLSVerify)
        #expect(c.source == "kubeconfig /k/config (context dev)")
    }

    @Test func namedContextWithClientCertificateAndInsecure() throws {
        let c = try resolve(kubeconfig(), context: "other")
        #expect(c.server == "https://localhost:7443/prefix")
        #expect(c.insecureSkipTLSVerify && c.certificateAuthority == nil)
        #expect(c.credentials.clientCertificate == Array(testCertificatePEM.utf8))
        #expect(c.credentials.clientKey == Array(testKeyPEM.utf8))
        #expect(c.credentials.token == nil)
        #expect(c.namespace == "default")
    }

    @Test func relativeFilesAreResolvedFromTheKubeconfigDirectory() throws {
        try withScratchDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/pki", withIntermediateDirectories: true)
            try write(testCertificatePEM, dir + "/pki/ca.crt")
            try write(testCertificatePEM, dir + "/pki/client.crt")
            try write(testKeyPEM, dir + "/pki/client.key")
            try write("file-token\n", dir + "/token")
            try write(
                """
                current-context: x
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority: pki/ca.crt}}]
                users: [{name: u, user: {tokenFile: token, client-certificate: pki/client.crt, client-key: \(dir)/pki/client.key}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                """, dir + "/config")
            let c = try KubeConnection.kubeconfig(path: dir + "/config")
            #expect(c.certificateAuthority == Array(testCertificatePEM.utf8))
            #expect(c.credentials.tokenFile == dir + "/token")
            #expect(try TokenSource(credentials: c.credentials).current() == "file-token")
            #expect(c.credentials.clientKey == Array(testKeyPEM.utf8))
        }
    }

    @Test func errorsNameTheFileAndTheField() throws {
        #expect(
            configError { _ = try resolve(kubeconfig(), context: "nope") }
                == KubeConfigError(file: "/k/config", field: "context", "names context 'nope', which is not in contexts"))
        #expect(configError { _ = try resolve(kubeconfig(current: "")) }?.field == "current-context")
        #expect(
            configError { _ = try resolve(kubeconfig(context: "- {name: bad, context: {cluster: c9, user: u1}}"), context: "bad") }
                == KubeConfigError(
                    file: "/k/config", field: "contexts[name=bad].context.cluster", "names cluster 'c9', which is not in clusters"))
        #expect(
            configError { _ = try resolve(kubeconfig(context: "- {name: bad, context: {cluster: c1, user: u9}}"), context: "bad") }?.field
                == "contexts[name=bad].context.user")
        let badServer = kubeconfig(cluster: "- {name: c3, cluster: {server: 'ftp://x'}}", context: "- {name: s, context: {cluster: c3}}")
        #expect(configError { _ = try resolve(badServer, context: "s") }?.field == "clusters[name=c3].cluster.server")
        let badCA = kubeconfig(
            cluster: "- {name: c3, cluster: {server: 'https://127.0.0.1', certificate-authority-data: '%%'}}",
            context: "- {name: s, context: {cluster: c3}}")
        #expect(
            configError { _ = try resolve(badCA, context: "s") }
                == KubeConfigError(file: "/k/config", field: "clusters[name=c3].cluster.certificate-authority-data", "is not valid base64"))
        let notPEM = kubeconfig(
            cluster: "- {name: c3, cluster: {server: 'https://127.0.0.1', certificate-authority-data: \(b64("hello"))}}",
            context: "- {name: s, context: {cluster: c3}}")
        #expect(configError { _ = try resolve(notPEM, context: "s") }?.message.contains("PEM") == true)
        let missingFile = kubeconfig(
            cluster: "- {name: c3, cluster: {server: 'https://127.0.0.1', certificate-authority: ca.pem}}",
            context: "- {name: s, context: {cluster: c3}}")
        #expect(
            configError { _ = try resolve(missingFile, context: "s", dir: "/nonexistent") }
                == KubeConfigError(
                    file: "/k/config", field: "clusters[name=c3].cluster.certificate-authority", "cannot read /nonexistent/ca.pem"))
        let exec = kubeconfig(user: "- {name: u3, user: {exec: {command: aws}}}", context: "- {name: e, context: {cluster: c1, user: u3}}")
        #expect(configError { _ = try resolve(exec, context: "e") }?.field == "users[name=u3].user.exec")
        let halfCert = kubeconfig(
            user: "- {name: u3, user: {client-certificate-data: \(b64(testCertificatePEM))}}",
            context: "- {name: e, context: {cluster: c1, user: u3}}")
        #expect(configError { _ = try resolve(halfCert, context: "e") }?.field == "users[name=u3].user.client-key")
        let both = kubeconfig(
            cluster:
                "- {name: c3, cluster: {server: 'https://127.0.0.1', insecure-skip-tls-verify: true, certificate-authority-data: \(b64(testCertificatePEM))}}",
            context: "- {name: s, context: {cluster: c3}}")
        #expect(configError { _ = try resolve(both, context: "s") }?.field == "clusters[name=c3].cluster.insecure-skip-tls-verify")
        #expect(
            configError {
                _ = try KubeConfig.parse("clusters: [{name: c, cluster: {insecure-skip-tls-verify: maybe}}]", file: "/k/config")
            }?.field
                == "clusters[0].cluster.insecure-skip-tls-verify")
        #expect(
            configError { _ = try KubeConnection.kubeconfig(path: "/nonexistent/kubeconfig") }
                == KubeConfigError(file: "/nonexistent/kubeconfig", field: "", "cannot read the file"))
    }

    @Test func inCluster() throws {
        try withScratchDirectory { dir in
            try write("sa-token", dir + "/token")
            try write(testCertificatePEM, dir + "/ca.crt")
            try write("switchyard\n", dir + "/namespace")
            let paths = InClusterPaths(directory: dir)
            let c = try KubeConnection.inCluster(
                environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443"], paths: paths)
            #expect(c.server == "https://127.0.0.1:443")
            #expect(c.namespace == "switchyard")
            #expect(c.credentials.tokenFile == dir + "/token" && c.credentials.token == nil)
            #expect(c.certificateAuthority == Array(testCertificatePEM.utf8))
            let v6 = try KubeConnection.inCluster(
                environment: ["KUBERNETES_SERVICE_HOST": "::1", "KUBERNETES_SERVICE_PORT": "6443"], paths: paths)
            #expect(v6.server == "https://[::1]:6443")
            #expect(configError { _ = try KubeConnection.inCluster(environment: [:], paths: paths) }?.field == "KUBERNETES_SERVICE_HOST")
            #expect(
                configError {
                    _ = try KubeConnection.inCluster(
                        environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "http"], paths: paths)
                }?.field
                    == "KUBERNETES_SERVICE_PORT")
            #expect(
                configError {
                    _ = try KubeConnection.inCluster(
                        environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443"],
                        paths: InClusterPaths(directory: dir + "/missing"))
                }?.file == dir + "/missing/token")
        }
    }
}
