// `switchyard apply -f FILE|DIR|- [--dry-run]`: Kubernetes manifests (Ingress, Service,
// Endpoints, EndpointSlice, PhysicalEndpoint, TLS Secret) translated offline and written
// through the admin API (Sources/SwitchyardKubeSource/Apply/KubeApply.swift).

import ArgumentParser
import Foundation
import SwitchyardCore
import SwitchyardKubeSource

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Translate Kubernetes manifests into routes, upstreams and certificates, through the admin API.",
        discussion: """
            Reads Ingress (networking.k8s.io/v1, and the retired networking.k8s.io/v1beta1 and extensions/v1beta1), \
            IngressClass, Service, Endpoints, EndpointSlice, PhysicalEndpoint and Secret (kubernetes.io/tls) documents. \
            Nothing is written when any document is invalid. The admin token comes from $SWITCHYARD_ADMIN_TOKEN.
            """
    )

    @Option(name: .shortAndLong, help: "A file, a directory (its *.yaml, *.yml and *.json) or - for standard input; repeatable.")
    var filename: [String] = []

    @Flag(help: "Print what would be created, changed and deleted; write nothing.")
    var dryRun = false

    @Option(help: "The controller's admin API (or $SWITCHYARD_CONTROLLER).")
    var controller: String?

    @Option(help: "The ingress class the files are applied as (part of every id); Ingresses of another class are skipped.")
    var ingressClass = "switchyard"

    @Option(help: "namespace/service answering requests no route matches (the Service's first port).")
    var defaultBackend: String?

    @Option(help: "Namespace of documents that name none.")
    var namespace = "default"

    @Option(help: "apiVersion of the PhysicalEndpoint custom resource.")
    var physicalEndpointApiVersion = "test.api.io/v1beta1"

    func validate() throws {
        if filename.isEmpty { throw ValidationError("give at least one -f FILE|DIR|-") }
        if let defaultBackend, K8sKey.parse(defaultBackend) == nil {
            throw ValidationError("--default-backend must be namespace/service")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var options = KubeApplyOptions()
        options.paths = filename
        options.dryRun = dryRun
        options.controller = controller ?? environment["SWITCHYARD_CONTROLLER"] ?? options.controller
        options.token = environment["SWITCHYARD_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        options.translation.ingressClass = ingressClass
        options.translation.defaultBackend = defaultBackend.flatMap(K8sKey.parse)
        options.parser = KubeObjectParser(physicalEndpointAPIVersion: physicalEndpointApiVersion, defaultNamespace: namespace)
        let apply = KubeApply(
            options: options, out: { print($0) },
            err: { line in FileHandle.standardError.write(Data((line + "\n").utf8)) },
            stdin: { String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) })
        let status = await apply.run()
        if status != 0 { throw ExitCode(status) }
    }
}
