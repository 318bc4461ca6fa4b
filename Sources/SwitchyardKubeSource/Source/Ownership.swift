// The ownership half of the k8s-model.md contract, as the Kubernetes source uses it: every
// object it writes carries `owner` and `source`, and every write names the owner, so the
// Function library refuses it on objects another writer owns and records what it owns in the
// owners hash (read on start to find what vanished while the source was down).

import SwitchyardController
import SwitchyardCore

enum Ownership {
    /// The owners hash of k8s-model.md §4 in the store's group: field `<kind>:<id>` -> owner.
    static func ownersKey(_ store: ConfigStore) -> String { store.keys.owners }

    /// Sets owner and source on a route before it is written.
    static func stamp(_ route: inout Route, owner: String, source: String) {
        route.owner = owner
        route.source = source
    }

    static func stamp(_ upstream: inout Upstream, owner: String, source: String) {
        upstream.owner = owner
        upstream.source = source
    }

    static func stamp(_ certificate: inout Certificate, owner: String, source: String) {
        certificate.owner = owner
        certificate.source = source
    }

    /// The one write of the Kubernetes source.
    static func applyOwned(_ store: ConfigStore, _ operations: [ApplyOperation], owner: String) async throws(StoreError) -> ApplyResult {
        try await store.apply(operations, owner: owner)
    }
}
