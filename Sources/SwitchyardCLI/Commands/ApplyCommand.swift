// `switchyard apply -f FILE|DIR|- [--prune --owner X] [--dry-run]` and the files `diff` reads.
//
// The files are either Switchyard's own documents (the body of POST /api/v1/apply, YAML or
// JSON: upstreams, routes, certificates, delete) or Kubernetes manifests (apiVersion + kind:
// Ingress, Service, Endpoints, EndpointSlice, PhysicalEndpoint, TLS Secret), never a mix
// (SwitchyardClient/DocumentFiles.swift decides).
//
//   Switchyard documents: ONE POST /api/v1/apply (all or nothing) with ?prune=true&owner=X
//   when asked; --dry-run asks the controller's dry run (?dry_run=true), or computes the
//   diff from GET answers when the controller has none.
//   Kubernetes manifests: translated offline and written through the admin API
//   (Sources/SwitchyardKubeSource/Apply/KubeApply.swift), as before.

import ArgumentParser
import Foundation
import SwitchyardClient
import SwitchyardCore
import SwitchyardKubeSource

/// The files, and the options of each kind of file.
struct ApplyFiles: ParsableArguments {
    @Option(name: .shortAndLong, help: "A file, a directory (its *.yaml, *.yml and *.json) or - for standard input; repeatable.")
    var filename: [String] = []

    @Flag(help: "Switchyard documents: make the set of objects --owner holds equal to the files (deletions included).")
    var prune = false

    @Option(help: "Switchyard documents: the owner the objects are applied as (needed by --prune).")
    var owner: String?

    @Option(help: "Kubernetes: the ingress class the files are applied as (part of every id); Ingresses of another class are skipped.")
    var ingressClass = "switchyard"

    @Option(help: "Kubernetes: namespace/service answering requests no route matches (the Service's first port).")
    var defaultBackend: String?

    @Option(help: "Kubernetes: namespace of documents that name none.")
    var namespace = "default"

    @Option(help: "Kubernetes: apiVersion of the PhysicalEndpoint custom resource.")
    var physicalEndpointApiVersion = "test.api.io/v1beta1"

    func validate() throws {
        if filename.isEmpty { throw ValidationError("give at least one -f FILE|DIR|-") }
        if filename.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input (-f -) can be read once") }
        if let defaultBackend, K8sKey.parse(defaultBackend) == nil {
            throw ValidationError("--default-backend must be namespace/service")
        }
        if prune, owner == nil { throw ValidationError("--prune needs --owner NAME (whose objects the files replace)") }
    }

    struct Content {
        var kind: DocumentFiles.Content
        var stdin: String?
    }

    /// Reads every file once and decides which kind they are (a ClientFailure names the problem).
    func read() throws -> Content {
        var texts: [(name: String, text: String)] = []
        var stdin: String?
        for path in filename {
            if path == "-" {
                let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                stdin = text
                texts.append(("-", text))
                continue
            }
            do {
                for file in try ManifestSet.paths(path) { texts.append((file, try String(contentsOfFile: file, encoding: .utf8))) }
            } catch {
                throw ClientFailure("\(error)")
            }
        }
        do {
            let kind = try DocumentFiles.classify(texts)
            if case .kubernetes = kind, prune || owner != nil {
                throw ClientFailure(
                    "--prune and --owner apply to Switchyard documents; a Kubernetes apply already deletes what its files no longer produce"
                )
            }
            return Content(kind: kind, stdin: stdin)
        } catch let error as DocumentFiles.ReadError {
            throw ClientFailure(error.description)
        }
    }

    func document(_ content: Content, note: String? = nil) -> DocumentApply {
        guard case .switchyard(let body) = content.kind else { return DocumentApply(body: [:]) }
        return DocumentApply(body: body, prune: prune, owner: owner, note: note)
    }

    /// The Kubernetes apply (or its plan), as `switchyard apply` always did.
    func kubernetesApply(_ content: Content, settings: ClientSettings, dryRun: Bool, changesStatus: Int32) async -> Int32 {
        var options = KubeApplyOptions()
        options.paths = filename
        options.dryRun = dryRun
        options.dryRunChangesStatus = changesStatus
        options.controller = settings.url
        options.token = settings.token
        options.translation.ingressClass = ingressClass
        options.translation.defaultBackend = defaultBackend.flatMap(K8sKey.parse)
        options.parser = KubeObjectParser(physicalEndpointAPIVersion: physicalEndpointApiVersion, defaultNamespace: namespace)
        let stdin = content.stdin ?? ""
        let apply = KubeApply(
            options: options, out: { print($0) }, err: { printError($0) }, stdin: { stdin })
        return await apply.run()
    }
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply Switchyard documents or Kubernetes manifests through the admin API.",
        discussion: """
            Switchyard documents (YAML or JSON, the body of POST /api/v1/apply: upstreams, routes, certificates, \
            delete) go in ONE atomic call; with --prune --owner X the objects X holds become exactly the files'. \
            Kubernetes manifests (Ingress in networking.k8s.io/v1 and the retired v1beta1 versions, IngressClass, \
            Service, Endpoints, EndpointSlice, PhysicalEndpoint, Secret of type kubernetes.io/tls) are translated \
            offline first. Nothing is written when any document is invalid. Exit status: 0 applied or nothing to \
            change, 1 an error.
            """
    )

    @OptionGroup var files: ApplyFiles

    @Flag(help: "Print what would be created, changed and deleted; write nothing.")
    var dryRun = false

    @Option(help: "A note recorded with the change in the history (X-Switchyard-Note).")
    var note: String?

    @Option(name: .shortAndLong, help: "How --dry-run prints: table, json or yaml.")
    var output: OutputFormat = .table

    @Option(help: ArgumentHelp("The controller's admin API (older name of --url).", visibility: .hidden))
    var controller: String?

    @OptionGroup var client: ClientOptions

    func validate() throws { try files.validate() }

    func run() async throws {
        var client = client
        if client.url == nil { client.url = controller }
        let content = try await exitingOnFailure { try files.read() }
        if case .kubernetes = content.kind {
            let settings = try await exitingOnFailure { try client.settings() }
            let status = await files.kubernetesApply(content, settings: settings, dryRun: dryRun, changesStatus: 0)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let document = files.document(content, note: note)
        try await client.run { session in
            if dryRun {
                let preview = try await document.preview(session)
                if case .local(_, let why) = preview { printError("note: \(why)") }
                print(DocumentApply.describe(preview, format: output))
                return 0
            }
            let answer = try await document.apply(session)
            let changed = Output.cell(answer["changed"])
            if changed == "0" {
                print("no change (version \(Output.cell(answer["version"])))")
            } else {
                print("applied: version \(Output.cell(answer["version"])), \(changed) changed")
            }
            return 0
        }
    }
}
