// `switchyard apply -f FILE|DIR|-`: the Kubernetes translation without a cluster, written
// through the admin API.
//
// 1. Read every file (multi-document YAML); any document that is invalid stops everything
//    before a single write, with every problem named by file, document, kind/namespace/name
//    and field.
// 2. Translate and validate with the same code as the `switchyard kube` role (errors, e.g.
//    a backend naming a Service the files do not define, also stop everything).
// 3. Plan against the controller's objects (ApplyPlan): `--dry-run` prints it and stops.
// 4. Certificates one by one (PUT, the controller encrypts the keys), then routes and
//    upstreams in ONE atomic `POST /api/v1/apply`, then deletion of certificates no longer
//    produced. An empty plan writes nothing (applying the same files twice is idempotent).

import Foundation
import SwitchyardCore

public struct KubeApplyOptions: Sendable {
    /// Files and directories; "-" is standard input.
    public var paths: [String] = []
    public var dryRun = false
    /// The exit status of a dry run that would change something (`switchyard diff`: 2).
    public var dryRunChangesStatus: Int32 = 0
    public var controller = "http://127.0.0.1:9180"
    public var token: String?
    public var translation = KubeTranslationOptions(watchIngressWithoutClass: true, requireIngressClassObject: false)
    public var parser = KubeObjectParser()

    public init() {}
}

public struct KubeApply {
    public var options: KubeApplyOptions
    /// Where the plan and the results go (stdout), and problems (stderr).
    public var out: @Sendable (String) -> Void
    public var err: @Sendable (String) -> Void
    /// Reads standard input for "-".
    public var stdin: @Sendable () -> String

    public init(
        options: KubeApplyOptions, out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void,
        stdin: @escaping @Sendable () -> String
    ) {
        self.options = options
        self.out = out
        self.err = err
        self.stdin = stdin
    }

    /// The exit status: 0 applied (or planned), 1 invalid input or a refused write.
    public func run() async -> Int32 {
        // 1. read
        var manifests = ManifestSet()
        for path in options.paths {
            if path == "-" {
                manifests.read(stdin(), name: "-", parser: options.parser)
                continue
            }
            do {
                for file in try ManifestSet.paths(path) {
                    let text = try String(contentsOfFile: file, encoding: .utf8)
                    manifests.read(text, name: file, parser: options.parser)
                }
            } catch {
                err("error: \(error)")
                return 1
            }
        }
        for (origin, what) in manifests.ignored { err("skipped \(origin): \(what)") }
        if !manifests.errors.isEmpty {
            for problem in manifests.errors { err("error: \(problem)") }
            err("nothing applied: \(manifests.errors.count) problem\(manifests.errors.count == 1 ? "" : "s") in the files")
            return 1
        }

        // 2. translate and validate
        let translation = KubeTranslator(options: options.translation).translate(manifests.state)
        var cache = KubeCertificateCache()
        let desired = KubeLowering(now: Int64(Date().timeIntervalSince1970)).lower(translation, cache: &cache)
        for ref in manifests.state.ingresses.values.map(\.ref).sorted() where !translation.ingresses.contains(ref.key) {
            if desired.problems.contains(where: { $0.object == ref && $0.reason == "SnippetRefused" }) { continue }
            err("skipped \(manifests.origins[ref].map { "\($0) " } ?? "")\(ref): its class is not \(options.translation.ingressClass)")
        }
        var errors = 0
        for problem in desired.problems {
            let located = ManifestProblem(origin: manifests.origins[problem.object], problem: problem)
            err("\(problem.severity == .error ? "error" : "warning"): \(located)")
            if problem.severity == .error { errors += 1 }
        }
        if errors > 0 {
            err("nothing applied: \(errors) error\(errors == 1 ? "" : "s")")
            return 1
        }

        let client = AdminAPIClient(baseURL: options.controller, token: options.token)
        let status = await write(desired, translation: translation, manifests: manifests, client: client)
        await client.shutdown()
        return status
    }

    /// Steps 3 and 4: plan against the controller and write.
    func write(_ desired: KubeDesired, translation: KubeTranslation, manifests: ManifestSet, client: AdminAPIClient) async -> Int32 {
        let current: ControllerObjects
        do {
            async let routes = client.send(.GET, "/api/v1/routes")
            async let upstreams = client.send(.GET, "/api/v1/upstreams")
            async let certificates = client.send(.GET, "/api/v1/certificates")
            current = ControllerObjects(
                routes: try await routes.body, upstreams: try await upstreams.body, certificates: try await certificates.body)
        } catch {
            err("error: \(error)")
            return 1
        }
        var origins: Set<String> = []
        for ref in manifests.origins.keys where ["Ingress", "Service", "Secret"].contains(ref.kind) {
            origins.insert(KubeIdentity.originHash(installation: options.translation.ingressClass, origin: ref))
        }
        let plan = ApplyPlan(desired: desired, current: current, origins: origins)
        if plan.isEmpty {
            out(
                "nothing to change (\(desired.routes.count) routes, \(desired.upstreams.count) upstreams, \(desired.certificates.count) certificates up to date)"
            )
            return 0
        }
        for item in plan.items { out((options.dryRun ? "would " : "") + item.description) }
        if options.dryRun { return options.dryRunChangesStatus }

        // 4. write
        do {
            for certificate in plan.putCertificates {
                guard let draft = translation.certificates.first(where: { $0.id == certificate.id }) else { continue }
                try await client.send(.PUT, "/api/v1/certificates/\(certificate.id)", body: draft.document)
            }
            if plan.hasBatch {
                // more than one atomic batch holds (issue 16's bound): consecutive atomic parts,
                // each its own version; the controller has validated the whole first
                let atomic = plan.batchIsAtomic
                let path = atomic ? "/api/v1/apply" : "/api/v1/apply?atomic=false"
                let (_, answer) = try await client.send(.POST, path, body: plan.batch)
                let versions = answer["versions"]?.canonical ?? "?"
                let parts = atomic ? "" : " in atomic parts, versions \(versions) (more than \(Batch.maxObjects) objects)"
                out("applied: version \(answer["version"]?.canonical ?? "?"), \(answer["changed"]?.canonical ?? "?") changed" + parts)
            }
            for id in plan.deleteCertificates { try await client.send(.DELETE, "/api/v1/certificates/\(id)") }
        } catch {
            err("error: \(error)")
            return 1
        }
        return 0
    }
}
