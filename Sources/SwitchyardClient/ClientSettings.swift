// Where the CLI client finds the controller and its token.
//
// Precedence, first found wins:
//   address: --url, then the file named by --config, then $SWITCHYARD_URL, then
//            $SWITCHYARD_CONTROLLER (older name), then the default config file, then
//            http://127.0.0.1:9180
//   token:   the file named by --config, then $SWITCHYARD_TOKEN, then $SWITCHYARD_ADMIN_TOKEN
//            (older name), then the default config file; none sends no Authorization header
//
// An explicit --config beats the environment (you named it on purpose); the default file
// ($XDG_CONFIG_HOME/switchyard/config.yaml, else ~/.config/switchyard/config.yaml) is only a
// fall-back. The file is YAML (or JSON): `url: http://...` and `token: ...` (or
// `token_file: PATH`, whose first line is the token). Unknown keys are errors.

import Foundation
import SwitchyardController
import SwitchyardCore

public struct ClientSettings: Sendable, Equatable {
    public var url: String
    public var token: String?

    public static let defaultURL = "http://127.0.0.1:9180"

    public init(url: String = ClientSettings.defaultURL, token: String? = nil) {
        self.url = url
        self.token = token
    }

    /// What one config file says.
    public struct FileValues: Sendable, Equatable {
        public var url: String?
        public var token: String?
    }

    public struct SettingsError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The default config file's path for this environment.
    public static func defaultConfigPath(environment: [String: String]) -> String? {
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/switchyard/config.yaml" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/switchyard/config.yaml" }
        return nil
    }

    /// The settings from flags, environment and config files. `read` reads a file (nil when
    /// it does not exist).
    public static func resolve(
        url flagURL: String?, config: String?, environment: [String: String], read: (String) throws -> String?
    ) throws -> ClientSettings {
        func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }
        var explicit: FileValues?
        if let config {
            guard let text = try read(config) else { throw SettingsError("--config \(config) does not exist") }
            explicit = try parse(text, path: config, read: read)
        }
        var fallback: FileValues?
        if let path = defaultConfigPath(environment: environment), let text = try read(path) {
            fallback = try parse(text, path: path, read: read)
        }
        let url =
            nonEmpty(flagURL) ?? explicit?.url ?? nonEmpty(environment["SWITCHYARD_URL"]) ?? nonEmpty(environment["SWITCHYARD_CONTROLLER"])
            ?? fallback?.url ?? defaultURL
        let token =
            explicit?.token ?? nonEmpty(environment["SWITCHYARD_TOKEN"]) ?? nonEmpty(environment["SWITCHYARD_ADMIN_TOKEN"])
            ?? fallback?.token
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw SettingsError("the controller's address must be http://host:port or https://..., not '\(url)'")
        }
        return ClientSettings(url: url.hasSuffix("/") ? String(url.dropLast()) : url, token: token)
    }

    /// One config file's values.
    public static func parse(_ text: String, path: String, read: (String) throws -> String?) throws -> FileValues {
        let json: JSONValue
        do {
            json = try YAMLDocuments.single(text)
        } catch {
            throw SettingsError("\(path): not YAML: \(error)")
        }
        if json == .null { return FileValues() }
        guard case .object(let members) = json else { throw SettingsError("\(path): must hold a mapping (url:, token:)") }
        var values = FileValues()
        for (key, value) in members {
            guard case .string(let text) = value else { throw SettingsError("\(path): \(key) must be a string") }
            switch key {
            case "url": values.url = text
            case "token": values.token = text
            case "token_file":
                guard let content = try read(text) else { throw SettingsError("\(path): token_file \(text) does not exist") }
                values.token = content.split(whereSeparator: \.isNewline).first.map(String.init)
            default: throw SettingsError("\(path): unknown key '\(key)' (use url, token, token_file)")
            }
        }
        if values.token != nil, members.contains(where: { $0.key == "token" }), members.contains(where: { $0.key == "token_file" }) {
            throw SettingsError("\(path): give token or token_file, not both")
        }
        return values
    }

    /// Reads a file; nil when it does not exist.
    public static func readFile(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try String(contentsOfFile: path, encoding: .utf8)
    }
}
