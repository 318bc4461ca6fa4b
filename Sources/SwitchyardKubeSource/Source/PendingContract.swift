// The places that wait for the other helpers' halves of the k8s-model.md contract, each one
// line to change when their branches are merged (grep PENDING):
//
//   PENDING(H3): Route/Upstream/Certificate gain `owner` and `source` (k8s-model.md §4);
//                `stamp` below sets them. Until then the written documents carry neither.
//   PENDING(H2): `ConfigStore.apply(_:owner:)` and the `switchyard:{cfg}:owners` hash:
//                `applyOwned` below passes the owner, `ownersKey` is read on start to find
//                what this installation owns. Until then writes carry no owner and a restart
//                cannot delete what vanished while it was down (live deletions work).

import SwitchyardController
import SwitchyardCore

enum PendingContract {
    /// The owners hash of k8s-model.md §4: field `<kind>:<id>` -> owner.
    static let ownersKey = KeySchema.base + "owners"

    /// Sets owner and source on a route before it is written.
    static func stamp(_ route: inout Route, owner: String, source: String) {
        // PENDING(H3): route.owner = owner; route.source = source
    }

    static func stamp(_ upstream: inout Upstream, owner: String, source: String) {
        // PENDING(H3): upstream.owner = owner; upstream.source = source
    }

    static func stamp(_ certificate: inout Certificate, owner: String, source: String) {
        // PENDING(H3): certificate.owner = owner; certificate.source = source
    }

    /// The one write of the Kubernetes source.
    static func applyOwned(_ store: ConfigStore, _ operations: [ApplyOperation], owner: String) async throws(StoreError) -> ApplyResult {
        // PENDING(H2): try await store.apply(operations, owner: owner)
        try await store.apply(operations)
    }
}
