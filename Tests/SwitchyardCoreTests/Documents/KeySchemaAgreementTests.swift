import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardCore

/// KeySchema.swift and lua/switchyard/sync/keys.lua describe the same keys; this runs the Lua
/// file and compares, so changing either side alone fails here.
@Suite("Key schema agreement with lua/switchyard/sync/keys.lua")
struct KeySchemaAgreementTests {
    static let ids = ["bbs-api", "backend", "edge-1", "a.b_c-d"]

    func luaInterpreter() -> String? {
        ["/usr/bin/lua5.1", "/usr/bin/lua5.2", "/usr/bin/lua", "/usr/local/bin/lua", "/usr/bin/luajit"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func swiftLines(_ keys: KeySchema) -> [String] {
        var lines = [
            "group=\(keys.group)", "base=\(keys.base)", "version=\(keys.version)", "digest=\(keys.digest)",
            "epoch=\(keys.epoch)", "adopt=\(keys.adopt)", "hashes=\(keys.hashes)",
            "owners=\(keys.owners)",
            "routes=\(keys.routes)",
            "upstreams=\(keys.upstreams)", "certificates=\(keys.certificates)",
            "streams=\(keys.streams)", "uses=\(keys.uses)",
            "changes=\(keys.changes)",
            "events=\(keys.events)", "edges=\(keys.edges)", "edge_ttl_s=\(KeySchema.edgeTTLSeconds)",
            "health_version=\(keys.healthVersion)", "health_events=\(keys.healthEvents)",
            "health_upstreams=\(keys.healthUpstreams)", "prober_lease=\(keys.proberLease)",
            "prober_heartbeat=\(keys.proberHeartbeat)",
            "history=\(keys.history)", "history_bytes=\(keys.historyBytes)",
        ]
        for id in Self.ids {
            lines += [
                "object(route,\(id))=\(keys.object(.route, id))", "object(upstream,\(id))=\(keys.object(.upstream, id))",
                "route(\(id))=\(keys.route(id))", "upstream(\(id))=\(keys.upstream(id))",
                "certificate(\(id))=\(keys.certificate(id))",
                "object(certificate,\(id))=\(keys.object(.certificate, id))",
                "stream(\(id))=\(keys.stream(id))", "object(stream,\(id))=\(keys.object(.stream, id))",
                "used_by(\(id))=\(keys.usedBy(id))", "edge(\(id))=\(keys.edge(id))",
                "health(\(id))=\(keys.health(id))",
            ]
        }
        return lines
    }

    /// `group` nil: the keys as the module starts (the default group, no configure call).
    func luaScript(keysFile: String, group: String?) -> String {
        let ids = Self.ids.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            local K = dofile("\(keysFile)")
            \(group.map { "K.configure(\"\($0)\")" } ?? "")
            local function p(k, v) io.write(k, "=", tostring(v), "\\n") end
            p("group", K.group); p("base", K.base); p("version", K.version); p("digest", K.digest)
            p("epoch", K.epoch); p("adopt", K.adopt); p("hashes", K.hashes)
            p("owners", K.owners); p("routes", K.routes)
            p("upstreams", K.upstreams)
            p("certificates", K.certificates)
            p("streams", K.streams)
            p("uses", K.uses); p("changes", K.changes); p("events", K.events); p("edges", K.edges)
            p("edge_ttl_s", K.edge_ttl_s)
            p("health_version", K.health_version); p("health_events", K.health_events)
            p("health_upstreams", K.health_upstreams); p("prober_lease", K.prober_lease)
            p("prober_heartbeat", K.prober_heartbeat)
            p("history", K.history); p("history_bytes", K.history_bytes)
            for _, id in ipairs({\(ids)}) do
              p("object(route," .. id .. ")", K.object("route", id)); p("object(upstream," .. id .. ")", K.object("upstream", id))
              p("route(" .. id .. ")", K.route(id)); p("upstream(" .. id .. ")", K.upstream(id))
              p("certificate(" .. id .. ")", K.certificate(id))
              p("object(certificate," .. id .. ")", K.object("certificate", id))
              p("stream(" .. id .. ")", K.stream(id)); p("object(stream," .. id .. ")", K.object("stream", id))
              p("used_by(" .. id .. ")", K.used_by(id)); p("edge(" .. id .. ")", K.edge(id))
              p("health(" .. id .. ")", K.health(id))
            end
            """
    }

    /// The default group as the module starts, the default group configured by name, and
    /// two other groups.
    @Test(arguments: [nil, "cfg", "tenant-a", "0staging_2"])
    func luaAndSwiftProduceTheSameKeys(group: String?) throws {
        let keys = try group.map { try KeySchema(group: $0) } ?? .default
        let lua = try #require(luaInterpreter(), "no Lua interpreter installed")
        let keysFile = repositoryRoot().appendingPathComponent("lua/switchyard/sync/keys.lua").path
        #expect(FileManager.default.fileExists(atPath: keysFile))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lua)
        process.arguments = ["-e", luaScript(keysFile: keysFile, group: group)]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "lua failed: \(errors)")
        let luaLines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(luaLines == swiftLines(keys))
        if group == nil { #expect(keys.base == "switchyard:{cfg}:") }  // the default group's keys never move
    }

    /// Both sides refuse the same names (the edge would otherwise serve a group the
    /// controller cannot write, or the other way round).
    @Test func luaAndSwiftAcceptTheSameGroupNames() throws {
        let lua = try #require(luaInterpreter(), "no Lua interpreter installed")
        let keysFile = repositoryRoot().appendingPathComponent("lua/switchyard/sync/keys.lua").path
        let names = [
            "cfg", "a", "tenant-a", "0_x", "A", "a}b", "a{b", "a:b", "a*", "-a", "_a", "a b", "", "é",
            String(repeating: "x", count: 48), String(repeating: "x", count: 49),
        ]
        let list = names.map { "\"\($0)\"" }.joined(separator: ", ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lua)
        process.arguments = [
            "-e",
            """
            local K = dofile("\(keysFile)")
            for _, n in ipairs({\(list)}) do io.write(K.problem(n) and "bad" or "ok", "\\n") end
            """,
        ]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let luaVerdicts = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(luaVerdicts == names.map { KeySchema.problem(group: $0) == nil ? "ok" : "bad" })
        #expect(throws: KeySchemaError.self) { try KeySchema(group: "Bad") }
        #expect(try KeySchema(group: "cfg") == KeySchema.default)
    }

    @Test func functionLibraryDerivesTheSameKeysFromTheVersionKey() throws {
        // sy_apply derives every key from KEYS[1] by replacing the trailing "version"
        let source = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
        #expect(KeySchema.default.version.hasSuffix("version"))
        let base = String(KeySchema.default.version.dropLast("version".count))
        #expect(base == KeySchema.default.base)
        for (name, key) in [
            ("routes", KeySchema.default.routes), ("upstreams", KeySchema.default.upstreams), ("uses", KeySchema.default.uses),
            ("changes", KeySchema.default.changes), ("events", KeySchema.default.events),
            ("certificates", KeySchema.default.certificates), ("epoch", KeySchema.default.epoch), ("adopt", KeySchema.default.adopt),
            ("hashes", KeySchema.default.hashes), ("owners", KeySchema.default.owners), ("streams", KeySchema.default.streams),
        ] {
            #expect(source.contains(#"\#(name) = base .. "\#(name)""#))
            #expect(key == base + name)
        }
        #expect(source.contains(#"base .. "used_by:" .. name"#))
        #expect(KeySchema.default.usedBy("x") == base + "used_by:x")
        // every kind's documents are <base><kind>:<id>, and sy_apply writes exactly the kinds
        // ObjectKind names (its KINDS list)
        #expect(source.contains(#"object = function(kind, id) return base .. kind .. ":" .. id end"#))
        let line = try #require(source.split(separator: "\n").first { $0.hasPrefix("local KINDS = {") })
        let named = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        #expect(Set(named) == Set(ObjectKind.allCases.map(\.rawValue)) && named.count == ObjectKind.allCases.count)
    }
}
