// The prober's one line waiting for H3's half of the k8s-model.md contract (grep PENDING):
// the core's `Endpoint.activeCheck` (false for an endpoint written with
// `"health_check": false`). Until H3's branch is merged every endpoint counts as checked.
// Deliberately not named `activeCheck` here: an extension member of that name would silently
// shadow the core's stored property after the merge.

import SwitchyardCore

extension Endpoint {
    /// Whether the prober checks this endpoint.
    var isActivelyChecked: Bool {
        true  // PENDING(H3): activeCheck
    }
}
