import Testing

@testable import SwitchyardCore

@Suite("Edge: can nginx's workers reach the prefix (issue 16, L14)")
struct EdgeWorkerAccessTests {
    typealias Dir = EdgeWorkerAccess.Directory
    let nobody = EdgeWorkerAccess.Identity(name: "nobody", uid: 65534, gids: [65534])

    /// A file system of directories by path.
    func lookup(_ dirs: [String: Dir]) -> (String) -> Dir? {
        { dirs[$0] }
    }

    @Test func aRootOnlyTemporaryDirectoryBlocks() {
        let fs = lookup([
            "/": Dir(uid: 0, gid: 0, mode: 0o755),
            "/tmp": Dir(uid: 0, gid: 0, mode: 0o1777),
            "/tmp/switchyard-locked-x": Dir(uid: 0, gid: 0, mode: 0o700),
            "/tmp/switchyard-locked-x/edge": Dir(uid: 0, gid: 0, mode: 0o755),
        ])
        let blocked = EdgeWorkerAccess.firstBlocked("/tmp/switchyard-locked-x/edge/state", for: nobody, lookup: fs)
        #expect(blocked?.path == "/tmp/switchyard-locked-x")
        let text = EdgeWorkerAccess.message(blocked!, worker: nobody, state: "/tmp/switchyard-locked-x/edge/state")
        #expect(text.contains("/tmp/switchyard-locked-x (mode 0700, owner uid 0)"))
        #expect(text.contains("nobody"))
    }

    @Test func reachablePrefixesPass() {
        let fs = lookup([
            "/": Dir(uid: 0, gid: 0, mode: 0o755),
            "/var": Dir(uid: 0, gid: 0, mode: 0o755),
            "/var/lib": Dir(uid: 0, gid: 0, mode: 0o711),  // search without read is enough
            "/var/lib/sy": Dir(uid: 0, gid: 0, mode: 0o755),
            "/var/lib/sy/state": Dir(uid: 65534, gid: 65534, mode: 0o700),  // nginx made it for them
        ])
        #expect(EdgeWorkerAccess.firstBlocked("/var/lib/sy/state", for: nobody, lookup: fs) == nil)
        // missing directories are created by nginx (state) or not there to block
        #expect(EdgeWorkerAccess.firstBlocked("/var/lib/sy/new/state", for: nobody, lookup: fs) == nil)
    }

    @Test func theFirstApplicableClassDecides() {
        // owner without search, although others may: blocked (POSIX)
        #expect(!EdgeWorkerAccess.canSearch(nobody, Dir(uid: 65534, gid: 0, mode: 0o011)))
        #expect(EdgeWorkerAccess.canSearch(nobody, Dir(uid: 65534, gid: 0, mode: 0o700)))
        // group member
        #expect(EdgeWorkerAccess.canSearch(nobody, Dir(uid: 0, gid: 65534, mode: 0o710)))
        #expect(!EdgeWorkerAccess.canSearch(nobody, Dir(uid: 0, gid: 65534, mode: 0o701)))
        // others
        #expect(EdgeWorkerAccess.canSearch(nobody, Dir(uid: 0, gid: 0, mode: 0o701)))
        #expect(!EdgeWorkerAccess.canSearch(nobody, Dir(uid: 0, gid: 0, mode: 0o770)))
        // root workers go anywhere
        let root = EdgeWorkerAccess.Identity(name: "root", uid: 0, gids: [0])
        #expect(EdgeWorkerAccess.canSearch(root, Dir(uid: 1, gid: 1, mode: 0o000)))
    }

    @Test func aStateDirectoryTheWorkersCannotEnterBlocks() {
        let fs = lookup([
            "/": Dir(uid: 0, gid: 0, mode: 0o755),
            "/srv": Dir(uid: 0, gid: 0, mode: 0o755),
            "/srv/state": Dir(uid: 0, gid: 0, mode: 0o700),  // left by a run as root without workers
        ])
        #expect(EdgeWorkerAccess.firstBlocked("/srv/state", for: nobody, lookup: fs)?.path == "/srv/state")
    }
}
