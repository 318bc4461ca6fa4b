// Storage of stream services (TCP/UDP, docs/stream.md): a kind of object like routes and
// upstreams, written by sy_apply (which checks that the upstream exists and that no other
// stream holds the listen port and protocol). The HTTP side is API/StreamsAPI.swift.

import SwitchyardCore

extension ConfigStore {
    public func stream(_ id: String) async throws(StoreError) -> Stored<StreamService>? {
        try await object(keys.stream(id)) { bytes throws(DocumentError) in try StoredDocument.stream(bytes) }
    }

    public func streams() async throws(StoreError) -> (items: [Stored<StreamService>], version: Int64) {
        try await list(.stream) { bytes throws(DocumentError) in try StoredDocument.stream(bytes) }
    }

    /// Create-or-replace; an identical stream is not written again (and keeps its version).
    public func put(_ stream: StreamService, owner: String? = nil) async throws(StoreError) -> (
        stored: Stored<StreamService>, created: Bool
    ) {
        let (version, created) = try await putObject(.put(stream), owner: owner)
        return (Stored(value: stream, version: version), created)
    }

    /// Runs sy_migrate: streams written by the first version's own function (sy_stream,
    /// under their own version) become sy_apply's (hashes recorded, one resync). Answers how
    /// many streams it took over (0: nothing to do, nothing written).
    public func migrateStreams() async throws(StoreError) -> Int64 {
        let reply = try await send(["FCALL", "sy_migrate", "1", keys.version])
        switch reply {
        case .array(let items) where items.count == 2:
            let migrated = items[1].integer ?? 0
            if migrated > 0 {
                logger.notice(
                    "streams of the first version's keys are now part of the configuration (sy_migrate)",
                    metadata: ["streams": "\(migrated)", "config.version": "\(items[0].integer ?? 0)"])
            }
            return migrated
        case .error(let message):
            throw StoreError(.unexpected, "sy_migrate failed: \(message)")
        default:
            throw StoreError(.unexpected, "unexpected reply to FCALL sy_migrate")
        }
    }
}
