// `switchyard token new --name X --role R` and `switchyard token hash`: make admin API tokens
// and the lines of the controller's tokens file (SwitchyardCore/Access/AccessTokens.swift).
// Both print to stdout exactly what a script needs (the token, then the line to add), and
// the explanation to stderr. `token list` and `token reload` ask a running controller (admin).

import ArgumentParser
import Foundation
import SwitchyardClient
import SwitchyardCore

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make admin API tokens and the lines of the controller's tokens file.",
        subcommands: [New.self, Hash.self, List.self, Reload.self]
    )

    struct Identity: ParsableArguments {
        @Option(help: "The token's name (in the audit log and history): \(Names.rule).")
        var name: String

        @Option(help: ArgumentHelp("read, write or admin.", valueName: "read|write|admin"))
        var role: String

        func validate() throws {
            if !Names.isValid(name) { throw ValidationError("--name must be \(Names.rule)") }
            if Role(rawValue: role) == nil { throw ValidationError("--role must be read, write or admin") }
        }

        var parsedRole: Role { Role(rawValue: role) ?? .read }
    }

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new token (32 random bytes) and the tokens file line holding its hash.",
            discussion: "stdout: the token on the first line, the line to add under tokens: on the second.")

        @OptionGroup var identity: Identity

        func run() throws {
            let token = AccessTokens.generate()
            print(token)
            print(AccessTokens.fileLine(name: identity.name, role: identity.parsedRole, token: token))
            FileHandle.standardError.write(
                Data(
                    """
                    The first line is the token: it is shown once, give it to the client (SWITCHYARD_TOKEN). \
                    Add the second line under tokens: in the controller's tokens file, then reload it \
                    (kill -HUP <controller pid>, or switchyard token reload with an admin token).

                    """.utf8))
        }
    }

    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a token on standard input and print its hash (sha256:...), or the whole tokens file line.",
            discussion:
                "With --name and --role, prints the line to add under tokens:. The token is read from standard input, never from a flag (flags are visible in ps)."
        )

        @Option(help: "The token's name (with --role: print the whole line).")
        var name: String?

        @Option(help: ArgumentHelp("read, write or admin (with --name).", valueName: "read|write|admin"))
        var role: String?

        /// Tokens shorter than this are refused: the file's hash is only safe for random tokens.
        static let minimumLength = 32

        func validate() throws {
            if (name == nil) != (role == nil) { throw ValidationError("give --name and --role together, or neither") }
            if let name, !Names.isValid(name) { throw ValidationError("--name must be \(Names.rule)") }
            if let role, Role(rawValue: role) == nil { throw ValidationError("--role must be read, write or admin") }
        }

        func run() throws {
            var token = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            while let last = token.last, last == "\n" || last == "\r" { token.removeLast() }
            guard token.count >= Self.minimumLength else {
                throw ValidationError(
                    "the token on standard input has \(token.count) characters; use at least \(Self.minimumLength) random ones "
                        + "(switchyard token new makes them): the file stores a fast hash, safe only for random tokens")
            }
            if let name, let role = role.flatMap(Role.init(rawValue:)) {
                print(AccessTokens.fileLine(name: name, role: role, token: token))
            } else {
                print(AccessTokens.hash(token))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The controller's tokens: name, role, source (GET /api/v1/tokens, admin; never a hash).")

        @Option(name: .shortAndLong, help: "table, json or yaml.")
        var output: OutputFormat = .table

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await client.run { session in
                let answer = try await session.call(.GET, "/api/v1/tokens")
                print(
                    Output.render(answer, format: output) {
                        Output.table(
                            ["NAME", "ROLE", "SOURCE"],
                            Output.items(answer).map { [Output.cell($0["name"]), Output.cell($0["role"]), Output.cell($0["source"])] })
                    })
                return 0
            }
        }
    }

    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the controller read its tokens file again (POST /api/v1/tokens/reload, admin), as SIGHUP does.",
            discussion: "A broken file keeps the previous tokens: every problem is printed and the exit status is 1.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await client.run { session in
                let answer = try await session.call(.POST, "/api/v1/tokens/reload")
                print("reloaded \(Output.cell(answer["file"])): \(Output.cell(answer["tokens"])) tokens")
                return 0
            }
        }
    }
}
