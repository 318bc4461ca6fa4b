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

    func swiftLines() -> [String] {
        var lines = [
            "base=\(KeySchema.base)", "version=\(KeySchema.version)", "digest=\(KeySchema.digest)",
            "epoch=\(KeySchema.epoch)", "adopt=\(KeySchema.adopt)", "hashes=\(KeySchema.hashes)",
            "owners=\(KeySchema.owners)",
            "routes=\(KeySchema.routes)",
            "upstreams=\(KeySchema.upstreams)", "certificates=\(KeySchema.certificates)",
            "streams=\(KeySchema.streams)", "uses=\(KeySchema.uses)",
            "changes=\(KeySchema.changes)",
            "events=\(KeySchema.events)", "edges=\(KeySchema.edges)", "edge_ttl_s=\(KeySchema.edgeTTLSeconds)",
            "health_version=\(KeySchema.healthVersion)", "health_events=\(KeySchema.healthEvents)",
            "health_upstreams=\(KeySchema.healthUpstreams)", "prober_lease=\(KeySchema.proberLease)",
            "prober_heartbeat=\(KeySchema.proberHeartbeat)",
            "history=\(KeySchema.history)", "history_bytes=\(KeySchema.historyBytes)",
        ]
        for id in Self.ids {
            lines += [
                "object(route,\(id))=\(KeySchema.object(.route, id))", "object(upstream,\(id))=\(KeySchema.object(.upstream, id))",
                "route(\(id))=\(KeySchema.route(id))", "upstream(\(id))=\(KeySchema.upstream(id))",
                "certificate(\(id))=\(KeySchema.certificate(id))",
                "object(certificate,\(id))=\(KeySchema.object(.certificate, id))",
                "stream(\(id))=\(KeySchema.stream(id))", "object(stream,\(id))=\(KeySchema.object(.stream, id))",
                "used_by(\(id))=\(KeySchema.usedBy(id))", "edge(\(id))=\(KeySchema.edge(id))",
                "health(\(id))=\(KeySchema.health(id))",
            ]
        }
        return lines
    }

    func luaScript(keysFile: String) -> String {
        let ids = Self.ids.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            local K = dofile("\(keysFile)")
            local function p(k, v) io.write(k, "=", tostring(v), "\\n") end
            p("base", K.base); p("version", K.version); p("digest", K.digest)
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

    @Test func luaAndSwiftProduceTheSameKeys() throws {
        let lua = try #require(luaInterpreter(), "no Lua interpreter installed")
        let keysFile = repositoryRoot().appendingPathComponent("lua/switchyard/sync/keys.lua").path
        #expect(FileManager.default.fileExists(atPath: keysFile))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lua)
        process.arguments = ["-e", luaScript(keysFile: keysFile)]
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
        #expect(luaLines == swiftLines())
    }

    @Test func functionLibraryDerivesTheSameKeysFromTheVersionKey() throws {
        // sy_apply derives every key from KEYS[1] by replacing the trailing "version"
        let source = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
        #expect(KeySchema.version.hasSuffix("version"))
        let base = String(KeySchema.version.dropLast("version".count))
        #expect(base == KeySchema.base)
        for (name, key) in [
            ("routes", KeySchema.routes), ("upstreams", KeySchema.upstreams), ("uses", KeySchema.uses),
            ("changes", KeySchema.changes), ("events", KeySchema.events),
            ("certificates", KeySchema.certificates), ("epoch", KeySchema.epoch), ("adopt", KeySchema.adopt),
            ("hashes", KeySchema.hashes), ("owners", KeySchema.owners), ("streams", KeySchema.streams),
        ] {
            #expect(source.contains(#"\#(name) = base .. "\#(name)""#))
            #expect(key == base + name)
        }
        #expect(source.contains(#"base .. "used_by:" .. name"#))
        #expect(KeySchema.usedBy("x") == base + "used_by:x")
        // every kind's documents are <base><kind>:<id>, and sy_apply writes exactly the kinds
        // ObjectKind names (its KINDS list)
        #expect(source.contains(#"object = function(kind, id) return base .. kind .. ":" .. id end"#))
        let line = try #require(source.split(separator: "\n").first { $0.hasPrefix("local KINDS = {") })
        let named = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        #expect(Set(named) == Set(ObjectKind.allCases.map(\.rawValue)) && named.count == ObjectKind.allCases.count)
    }
}
