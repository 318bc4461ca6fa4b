// Named bearer tokens of the admin API, each with a role, kept only as hashes.
//
// The tokens file (`switchyard controller --tokens-file PATH`, YAML or JSON):
//
//   tokens:
//     - {name: ci, role: write, hash: "sha256:<64 hex digits>"}
//     - {name: dashboard, role: read, hash: "sha256:..."}
//     - {name: tenant-a, role: write, hash: "sha256:...", groups: [tenant-a]}
//
// Roles are ordered: read < write < admin (a role may do everything the ones below it may).
// `groups` limits a token to the controllers of those groups (`--group`, redis/README.md
// "Groups"): a controller of another group answers 403. Without it a token is good for every
// group; a file shared by the controllers of several groups names per token where it counts.
//
// The hash is SHA-256 of the token's UTF-8 bytes, unsalted. That is enough because the
// tokens are not passwords: `switchyard token new` makes them from 32 random bytes (256
// bits), so there is nothing to guess and nothing a precomputed table could hold; a salt
// or a slow hash (bcrypt, scrypt, argon2) protects low-entropy secrets people choose, and
// would cost every API request milliseconds of CPU. One fast hash also lets a presented
// token be checked against every entry in time that does not depend on which entry (or
// which byte) matches. Operators must not put human-chosen tokens in the file.

/// What a token may do. Ordered: each role includes the ones before it.
public enum Role: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Every GET: objects, status, history, explain, the status page's feeds.
    case read
    /// Changes to routes, upstreams, endpoints and certificates; apply; revert.
    case write
    /// Operator actions: re-seeding Redis, listing and reloading tokens.
    case admin

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    private var rank: Int {
        switch self {
        case .read: return 0
        case .write: return 1
        case .admin: return 2
        }
    }

    /// Whether a token of this role may make a call that needs `needed`.
    public func allows(_ needed: Role) -> Bool { self >= needed }
}

/// One named token: its role and the SHA-256 of the token itself.
public struct AccessToken: Sendable, Equatable {
    public var name: String
    public var role: Role
    /// SHA-256 of the token (32 bytes).
    public var digest: [UInt8]
    /// The groups whose controllers accept it (sorted, unique); nil: every group.
    public var groups: [String]?

    public init(name: String, role: Role, digest: [UInt8], groups: [String]? = nil) {
        self.name = name
        self.role = role
        self.digest = digest
        self.groups = groups
    }

    /// The entry for a token given in clear (the single `SWITCHYARD_ADMIN_TOKEN`).
    public init(name: String, role: Role, token: String) {
        self.init(name: name, role: role, digest: AccessTokens.digest(token))
    }

    /// Whether a controller of `group` accepts this token.
    public func allows(group: String) -> Bool { groups?.contains(group) ?? true }
}

/// A set of named tokens, as the controller checks them.
public struct AccessTokens: Sendable, Equatable {
    public private(set) var tokens: [AccessToken]

    /// The prefix of a hash in the file: the only scheme there is.
    public static let hashPrefix = "sha256:"
    /// The prefix of tokens `switchyard token new` makes (recognisable in a leaked log or diff).
    public static let tokenPrefix = "sy_"
    /// Random bytes in a new token.
    public static let tokenBytes = 32
    /// Tokens in one file.
    public static let maxTokens = 1000

    public init(_ tokens: [AccessToken] = []) { self.tokens = tokens }

    public var isEmpty: Bool { tokens.isEmpty }

    /// SHA-256 of the token's UTF-8 bytes.
    public static func digest(_ token: String) -> [UInt8] { OpenSSL.sha256(Array(token.utf8)) }

    /// `sha256:<64 lowercase hex digits>`, the form the file holds.
    public static func hash(_ token: String) -> String { hashPrefix + hex(digest(token)) }

    /// A new token: `sy_` and 32 random bytes in base64url without padding (43 characters).
    public static func generate() -> String { tokenPrefix + base64url(OpenSSL.randomBytes(tokenBytes)) }

    /// The entry whose hash is the presented token's, or nil. Every entry is compared, in
    /// time that depends only on how many there are, not on which (or which byte) matches.
    public func authenticate(_ presented: some Collection<UInt8>) -> AccessToken? {
        let digest = OpenSSL.sha256(Array(presented))
        var found: Int = -1
        for (i, token) in tokens.enumerated() {
            let equal = ConstantTime.equal(token.digest, digest)
            // branch-free choice: keeps the first match without a data-dependent early exit
            found = equal && found < 0 ? i : found
        }
        return found >= 0 ? tokens[found] : nil
    }

    /// Adds the single `SWITCHYARD_ADMIN_TOKEN` as the admin token named `admin`. nil when
    /// the file already names a token `admin` or holds the same token under another name.
    public func adding(adminToken: String) -> Result<AccessTokens, FieldError> {
        let admin = AccessToken(name: "admin", role: .admin, token: adminToken)
        if tokens.contains(where: { $0.name == admin.name }) {
            return .failure(
                FieldError(
                    field: "tokens", code: .duplicate,
                    message: "the name 'admin' belongs to SWITCHYARD_ADMIN_TOKEN (--admin-token): rename the file's entry"))
        }
        if let same = tokens.first(where: { $0.digest == admin.digest }) {
            return .failure(
                FieldError(field: "tokens", code: .duplicate, message: "token '\(same.name)' is SWITCHYARD_ADMIN_TOKEN itself"))
        }
        return .success(AccessTokens([admin] + tokens))
    }

    // MARK: The file

    /// The file's content as JSON (YAML is converted by the caller): every problem, each
    /// naming its field (`tokens[2].role`).
    public static func parse(_ json: JSONValue) -> Result<AccessTokens, ValidationFailure> {
        guard case .object(let members) = json else {
            return .failure(
                ValidationFailure([FieldError(field: "", code: .invalid, message: "the file must hold a mapping with tokens:")]))
        }
        var problems: [FieldError] = []
        for (key, _) in members where key != "tokens" {
            problems.append(FieldError(field: key, code: .unknownField, message: "unknown field '\(key)' (the file holds tokens:)"))
        }
        guard case .array(let items)? = json["tokens"] else {
            problems.append(
                FieldError(
                    field: "tokens", code: json["tokens"] == nil ? .required : .invalid,
                    message: "tokens must be a list of {name, role, hash}"))
            return .failure(ValidationFailure(problems))
        }
        if items.count > maxTokens {
            problems.append(FieldError(field: "tokens", code: .invalid, message: "at most \(maxTokens) tokens, not \(items.count)"))
        }
        var tokens: [AccessToken] = []
        var names: [String: Int] = [:]
        var digests: [[UInt8]: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "tokens[\(i)]"
            guard case .object(let fields) = item else {
                problems.append(FieldError(field: at, code: .invalid, message: "must be a mapping {name, role, hash}"))
                continue
            }
            for (key, _) in fields where !["name", "role", "hash", "groups"].contains(key) {
                problems.append(
                    FieldError(
                        field: "\(at).\(key)", code: .unknownField, message: "unknown field '\(key)' (use name, role, hash, groups)"))
            }
            var groups: [String]?
            if let value = item["groups"] {
                switch parseGroups(value) {
                case .success(let list): groups = list
                case .failure(let problem):
                    problems.append(FieldError(field: "\(at).groups", code: .invalid, message: problem.message))
                }
            }
            var name: String?
            switch item["name"] {
            case .string(let value)? where Names.isValid(value): name = value
            case nil: problems.append(FieldError(field: "\(at).name", code: .required, message: "name is required"))
            default: problems.append(FieldError(field: "\(at).name", code: .invalid, message: "name must be \(Names.rule)"))
            }
            var role: Role?
            let roles = Role.allCases.map(\.rawValue).joined(separator: ", ")
            switch item["role"] {
            case .string(let value)? where Role(rawValue: value) != nil: role = Role(rawValue: value)
            case nil: problems.append(FieldError(field: "\(at).role", code: .required, message: "role is required (\(roles))"))
            default: problems.append(FieldError(field: "\(at).role", code: .invalid, message: "role must be one of \(roles)"))
            }
            var digest: [UInt8]?
            switch item["hash"] {
            case .string(let value)?:
                digest = parseHash(value)
                if digest == nil {
                    problems.append(
                        FieldError(
                            field: "\(at).hash", code: .invalid,
                            message: "hash must be sha256: and 64 hex digits (switchyard token hash prints it; never the token itself)"))
                }
            case nil: problems.append(FieldError(field: "\(at).hash", code: .required, message: "hash is required"))
            default: problems.append(FieldError(field: "\(at).hash", code: .invalid, message: "hash must be a string"))
            }
            if let name {
                if let first = names[name] {
                    problems.append(FieldError(field: "\(at).name", code: .duplicate, message: "name '\(name)' is also tokens[\(first)]"))
                } else {
                    names[name] = i
                }
            }
            if let digest {
                if let first = digests[digest] {
                    problems.append(
                        FieldError(field: "\(at).hash", code: .duplicate, message: "the same token as tokens[\(first)]: one name per token")
                    )
                } else {
                    digests[digest] = i
                }
            }
            if let name, let role, let digest { tokens.append(AccessToken(name: name, role: role, digest: digest, groups: groups)) }
        }
        if !problems.isEmpty { return .failure(ValidationFailure(problems)) }
        return .success(AccessTokens(tokens))
    }

    /// A token's `groups`: a non-empty list of distinct group names (KeySchema.problem), sorted;
    /// or why not.
    static func parseGroups(_ value: JSONValue) -> Result<[String], GroupsProblem> {
        guard case .array(let items) = value, !items.isEmpty else {
            return .failure(GroupsProblem("groups must be a non-empty list of group names (leave it out for every group)"))
        }
        var names: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let group) = item else { return .failure(GroupsProblem("groups[\(i)] must be a string")) }
            if let problem = KeySchema.problem(group: group) { return .failure(GroupsProblem("groups[\(i)]: \(problem)")) }
            if names.contains(group) { return .failure(GroupsProblem("groups[\(i)]: '\(group)' is listed twice")) }
            names.append(group)
        }
        return .success(names.sorted())
    }

    struct GroupsProblem: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// The 32 bytes of `sha256:<64 hex digits>` (either case), or nil.
    public static func parseHash(_ text: String) -> [UInt8]? {
        guard text.hasPrefix(hashPrefix) else { return nil }
        let digits = Array(text.utf8.dropFirst(hashPrefix.utf8.count))
        guard digits.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let hi = hexValue(digits[i]), let lo = hexValue(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// The line to add under `tokens:` for a token (YAML flow mapping; valid YAML for any name).
    public static func fileLine(name: String, role: Role, token: String) -> String {
        "  - {name: \(name), role: \(role.rawValue), hash: \"\(hash(token))\"}"
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var chunk: UInt32 = 0
            for j in 0..<3 { chunk = chunk << 8 | UInt32(j < n ? bytes[i + j] : 0) }
            for j in 0..<(n + 1) { out.append(alphabet[Int((chunk >> UInt32(18 - 6 * j)) & 0x3F)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Comparisons whose time does not depend on the bytes compared.
public enum ConstantTime {
    /// Equality whose time depends only on the lengths, not on where the bytes differ.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}
