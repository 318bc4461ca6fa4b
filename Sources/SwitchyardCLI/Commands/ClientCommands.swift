// The CLI client of the admin API (Sources/SwitchyardClient): get, diff, delete, history,
// revert, explain (apply: ApplyCommand.swift). Address and token: ClientSettings.swift
// (--url, --config, $SWITCHYARD_URL, $SWITCHYARD_TOKEN, ~/.config/switchyard/config.yaml).
// Exit codes: 0 done (or nothing to change), 1 an error, 2 `diff` found differences.

import ArgumentParser
import Foundation
import NIOHTTP1
import SwitchyardClient
import SwitchyardCore

/// `--url` and `--config` of every client command.
struct ClientOptions: ParsableArguments {
    @Option(help: "The controller's admin API, http://host:port (default: the config file, $SWITCHYARD_URL, http://127.0.0.1:9180).")
    var url: String?

    @Option(help: "Config file with url: and token: (default ~/.config/switchyard/config.yaml).")
    var config: String?

    /// The address and token; a problem with them is a ClientFailure.
    func settings() throws -> ClientSettings {
        do {
            return try ClientSettings.resolve(
                url: url, config: config, environment: ProcessInfo.processInfo.environment, read: ClientSettings.readFile)
        } catch {
            throw ClientFailure("\(error)")
        }
    }

    /// Runs `body` with a session and exits with its status; a ClientFailure is printed and
    /// exits 1.
    func run(_ body: (ClientSession) async throws -> Int32) async throws {
        let status = try await exitingOnFailure {
            let session = ClientSession(settings: try settings())
            do {
                let status = try await body(session)
                await session.shutdown()
                return status
            } catch {
                await session.shutdown()
                throw error
            }
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// Runs `body`; a ClientFailure is printed as `error: ...` and exits 1.
func exitingOnFailure<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let failure as ClientFailure {
        printError("error: \(failure)")
        throw ExitCode(1)
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension OutputFormat: ExpressibleByArgument {}

/// routes|route|upstreams|upstream|certificates|certificate|certs|cert|streams|stream
struct KindArgument: ExpressibleByArgument {
    var kind: ObjectKind

    init?(argument: String) {
        switch argument.lowercased() {
        case "routes", "route": kind = .route
        case "upstreams", "upstream": kind = .upstream
        case "certificates", "certificate", "certs", "cert": kind = .certificate
        case "streams", "stream": kind = .stream
        default: return nil
        }
    }

    var path: String {
        switch kind {
        case .route: return "/api/v1/routes"
        case .upstream: return "/api/v1/upstreams"
        case .certificate: return "/api/v1/certificates"
        case .stream: return "/api/v1/streams"
        }
    }

    static var allValueStrings: [String] { ["routes", "upstreams", "certificates", "streams"] }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Show routes, upstreams, certificates or streams (all, or one by id).")

    @Argument(help: "routes, upstreams or certificates.")
    var kind: KindArgument

    @Argument(help: "One object's id (a route's or certificate's id, an upstream's name).")
    var id: String?

    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run { session in
            var path = kind.path
            if let id { path += "/" + ClientSession.encoded(id) }
            let answer = try await session.call(.GET, path)
            print(Output.render(answer, format: output) { Output.objectsTable(kind.kind, answer) })
            return 0
        }
    }
}

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what `apply -f` would change; exit 2 when it would change something, 0 when not.",
        discussion: """
            Switchyard documents: the controller's dry run (POST /api/v1/apply?dry_run=true); when the controller \
            has none or the token may not write, the diff is computed here from GET answers (without --prune and \
            routing impact). Kubernetes manifests: the same plan `apply --dry-run` prints.
            """)

    @OptionGroup var files: ApplyFiles

    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    @OptionGroup var client: ClientOptions

    func validate() throws { try files.validate() }

    func run() async throws {
        let content = try await exitingOnFailure { try files.read() }
        if case .kubernetes = content.kind {
            let settings = try await exitingOnFailure { try client.settings() }
            let status = await files.kubernetesApply(content, settings: settings, dryRun: true, changesStatus: 2)
            if status != 0 { throw ExitCode(status) }
            return
        }
        try await client.run { session in
            let preview = try await files.document(content).preview(session)
            if case .local(_, let why) = preview { printError("note: \(why)") }
            print(DocumentApply.describe(preview, format: output))
            return preview.hasChanges ? 2 : 0
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a route, upstream or certificate.")

    @Argument(help: "route, upstream or certificate.")
    var kind: KindArgument

    @Argument(help: "Its id (an upstream's name).")
    var id: String

    @Option(help: "A note recorded with the change in the history (X-Switchyard-Note).")
    var note: String?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run { session in
            let answer = try await session.call(
                .DELETE, kind.path + "/" + ClientSession.encoded(id), headers: note.map { [("X-Switchyard-Note", $0)] } ?? [])
            print("deleted \(kind.kind.rawValue) \(id) (version \(Output.cell(answer["version"])))")
            return 0
        }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show the configuration's recent changes: version, time, who, note, objects.")

    @Option(help: "Only changes after this version.")
    var since: Int?

    @Option(help: "At most this many changes.")
    var limit: Int?

    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run { session in
            let path = ClientSession.path("/api/v1/history", [("since", since.map(String.init)), ("limit", limit.map(String.init))])
            let answer = try await session.call(.GET, path)
            print(Output.render(answer, format: output) { Output.historyTable(answer) })
            return 0
        }
    }
}

struct RevertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert", abstract: "Restore routes, upstreams and certificates to their state at a version, in one change.")

    @Argument(help: "The version to go back to (switchyard history lists them).")
    var version: Int

    @Option(help: "A note recorded with the change in the history (X-Switchyard-Note).")
    var note: String?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run { session in
            let answer = try await session.call(
                .POST, "/api/v1/revert", body: ["to_version": .integer(Int64(version))],
                headers: note.map { [("X-Switchyard-Note", $0)] } ?? [])
            print("reverted to version \(version): now version \(Output.cell(answer["version"]))")
            return 0
        }
    }
}

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain", abstract: "Which route an edge would choose for a request, and why (GET /api/v1/explain).")

    @Argument(help: "The request's URL, e.g. http://bbs.test.com/api/x.")
    var requestURL: String

    @Option(name: [.customShort("X"), .long], help: "The request's method.")
    var method: String = "GET"

    @Option(name: [.customShort("H"), .long], help: "A request header, Name:value; repeatable.")
    var header: [String] = []

    @Option(help: "The client's address (for allow/deny lists).")
    var clientAddress: String?

    @Option(help: "Ask this edge (its id).")
    var edge: String?

    @Option(name: .shortAndLong, help: "json or yaml.")
    var output: OutputFormat = .json

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run { session in
            let query: [(String, String?)] =
                [("url", requestURL), ("method", method)] + header.map { ("header", $0) } + [
                    ("client", clientAddress), ("edge", edge),
                ]
            let answer = try await session.call(.GET, ClientSession.path("/api/v1/explain", query))
            print(output == .yaml ? Output.yaml(answer) : Output.pretty(answer))
            return 0
        }
    }
}
