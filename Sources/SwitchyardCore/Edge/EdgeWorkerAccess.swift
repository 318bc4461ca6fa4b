// Whether nginx's worker processes can reach the edge's prefix (issue 16, L14).
//
// Started as root, nginx runs its workers as `nobody` (the Debian build has no --user, and
// the template has no `user` directive). They keep the snapshot in <prefix>/state, the
// configuration the edge serves when it starts while Redis is unreachable; nginx creates
// that directory for them, but they must also be able to enter every directory above it.
// A prefix inside a 0700 root directory (a temporary directory made by root) let nginx
// start, and the workers then failed every snapshot write ("Permission denied" once a
// minute): the boot-without-Redis guarantee was silently gone. `switchyard edge` checks
// before it starts nginx (pure logic here; the file system and the user database are read
// by the caller).

/// The worker processes' identity and the check of a path against it.
public enum EdgeWorkerAccess {
    /// Who the workers run as.
    public struct Identity: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        /// The primary group and every supplementary group.
        public var gids: Set<UInt32>

        public init(name: String, uid: UInt32, gids: Set<UInt32>) {
            self.name = name
            self.uid = uid
            self.gids = gids
        }
    }

    /// A directory's owner, group and permission bits (`st_mode & 0o7777`).
    public struct Directory: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var mode: UInt32

        public init(uid: UInt32, gid: UInt32, mode: UInt32) {
            self.uid = uid
            self.gid = gid
            self.mode = mode
        }
    }

    /// A directory on the way the workers cannot enter.
    public struct Blocked: Error, Sendable, Equatable {
        public var path: String
        public var directory: Directory
    }

    /// The user nginx's workers run as when the master is root: nginx's built-in default.
    public static let defaultUser = "nobody"

    /// Whether `who` may search (enter) a directory: the owner's bit for its owner, the
    /// group's for a member of its group, the others' bit otherwise (POSIX: the first class
    /// that applies decides, even when its bit is off).
    public static func canSearch(_ who: Identity, _ dir: Directory) -> Bool {
        if who.uid == 0 { return true }
        if dir.uid == who.uid { return dir.mode & 0o100 != 0 }
        if who.gids.contains(dir.gid) { return dir.mode & 0o010 != 0 }
        return dir.mode & 0o001 != 0
    }

    /// The first directory from `/` down to `path` (absolute, included) that `who` cannot
    /// enter, or nil. `lookup` gives a directory's owner, group and mode, or nil when it
    /// does not exist (nothing below it exists either: nginx creates what is missing, for
    /// the workers).
    public static func firstBlocked(
        _ path: String, for who: Identity, lookup: (String) -> Directory?
    ) -> Blocked? {
        var current = ""
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        for index in -1..<parts.count {
            current = index < 0 ? "/" : (current == "/" ? "" : current) + "/" + parts[index]
            guard let dir = lookup(current) else { return nil }
            if !canSearch(who, dir) { return Blocked(path: current, directory: dir) }
        }
        return nil
    }

    /// What `switchyard edge` says when a directory is in the way.
    public static func message(_ blocked: Blocked, worker: Identity, state: String) -> String {
        let mode = String(blocked.directory.mode, radix: 8)
        let padded = String(repeating: "0", count: max(0, 4 - mode.count)) + mode
        return "the nginx workers run as \(worker.name) (uid \(worker.uid)) and cannot enter \(blocked.path) "
            + "(mode \(padded), owner uid \(blocked.directory.uid)): they could not keep the snapshot in \(state), "
            + "so the edge could not start without Redis. Pick a --prefix they can reach, or let them in "
            + "(chmod o+x \(blocked.path))"
    }
}
