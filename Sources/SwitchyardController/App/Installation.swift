// Finding Switchyard's files (redis/switchyard.lua, lua/, deploy/edge.nginx.conf) from a
// repository checkout or an installed location, so `.build/release/switchyard` works in the
// repo and `/usr/local/bin/switchyard` works with /usr/local/share/switchyard.

import Foundation

public enum Installation {
    /// Directories that may hold Switchyard's files, most specific first:
    /// $SWITCHYARD_HOME, the executable's directory and its ancestors (a checkout with
    /// .build/<config>/switchyard, or <prefix>/bin with <prefix>/share/switchyard), the
    /// current directory, /usr/local/share/switchyard, /usr/share/switchyard.
    public static func candidateRoots(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var roots: [String] = []
        if let home = environment["SWITCHYARD_HOME"], !home.isEmpty { roots.append(home) }
        var dir = URL(fileURLWithPath: executablePath()).deletingLastPathComponent().standardizedFileURL
        while true {
            roots.append(dir.path)
            roots.append(dir.appendingPathComponent("share/switchyard").path)
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        roots.append(FileManager.default.currentDirectoryPath)
        roots.append("/usr/local/share/switchyard")
        roots.append("/usr/share/switchyard")
        return roots
    }

    /// The first root containing `relativePath`, or nil.
    public static func root(containing relativePath: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String?
    {
        candidateRoots(environment: environment).first { root in
            FileManager.default.isReadableFile(atPath: (root as NSString).appendingPathComponent(relativePath))
        }
    }

    /// Path of the running executable (symlinks resolved).
    public static func executablePath() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    /// The Function library's source: `explicitPath` if given, else the first
    /// `redis/switchyard.lua` found under `candidateRoots()`.
    public static func functionLibrary(explicitPath: String?) throws -> (path: String, source: String) {
        let path: String
        if let explicitPath {
            path = explicitPath
        } else if let root = root(containing: "redis/switchyard.lua") {
            path = (root as NSString).appendingPathComponent("redis/switchyard.lua")
        } else {
            throw ConfigurationError(
                "cannot find redis/switchyard.lua (looked in \(candidateRoots().joined(separator: ", "))); "
                    + "pass --functions PATH or set SWITCHYARD_HOME")
        }
        guard let data = FileManager.default.contents(atPath: path), let source = String(data: data, encoding: .utf8) else {
            throw ConfigurationError("cannot read the Function library at \(path)")
        }
        guard source.hasPrefix("#!lua name=") else {
            throw ConfigurationError("\(path) is not a Redis Function library (no '#!lua name=' header)")
        }
        return (path, source)
    }
}
