// The local copy of one resource, as a value: it takes the reflector's events and returns the
// changes they make. A full resync (after the first list, or a relist after 410 Gone) reports
// as deleted everything the new list no longer has.

public enum ReflectorEvent<Object: KubeObject>: Sendable {
    /// The complete current state (after a list): replaces everything known before.
    case resync([Object], resourceVersion: String)
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// An object whose new version does not decode: what was known of it is dropped.
    case undecodable(DecodeFailure)
}

public enum CacheChange<Object: KubeObject>: Sendable {
    case added(Object)
    case updated(old: Object, new: Object)
    case deleted(Object)

    public var key: ObjectKey {
        switch self {
        case .added(let o), .deleted(let o): return o.metadata.key
        case .updated(_, let o): return o.metadata.key
        }
    }
}

public struct ObjectCache<Object: KubeObject>: Sendable {
    public private(set) var objects: [ObjectKey: Object] = [:]
    /// The version of the last list or event applied.
    public private(set) var resourceVersion: String?
    /// True once a full list has been applied.
    public private(set) var synced = false

    public init() {}

    public subscript(key: ObjectKey) -> Object? { objects[key] }
    public var count: Int { objects.count }

    /// The cache after `event`, and what changed. An event that changes nothing (same
    /// resourceVersion) reports no change.
    public func applying(_ event: ReflectorEvent<Object>) -> (ObjectCache, [CacheChange<Object>]) {
        var copy = self
        let changes = copy.apply(event)
        return (copy, changes)
    }

    @discardableResult
    public mutating func apply(_ event: ReflectorEvent<Object>) -> [CacheChange<Object>] {
        switch event {
        case .resync(let items, let rv):
            var next: [ObjectKey: Object] = [:]
            var changes: [CacheChange<Object>] = []
            for item in items {
                let key = item.metadata.key
                next[key] = item
                if let old = objects[key] {
                    if old.metadata.resourceVersion != item.metadata.resourceVersion {
                        changes.append(.updated(old: old, new: item))
                    }
                } else {
                    changes.append(.added(item))
                }
            }
            for (key, old) in objects.sorted(by: { $0.key < $1.key }) where next[key] == nil {
                changes.append(.deleted(old))
            }
            objects = next
            resourceVersion = rv
            synced = true
            return changes
        case .added(let item), .modified(let item):
            let key = item.metadata.key
            resourceVersion = item.metadata.resourceVersion ?? resourceVersion
            let old = objects[key]
            objects[key] = item
            guard let old else { return [.added(item)] }
            if old.metadata.resourceVersion == item.metadata.resourceVersion { return [] }
            return [.updated(old: old, new: item)]
        case .deleted(let item):
            resourceVersion = item.metadata.resourceVersion ?? resourceVersion
            guard let old = objects.removeValue(forKey: item.metadata.key) else { return [] }
            return [.deleted(old)]
        case .undecodable(let failure):
            resourceVersion = failure.resourceVersion ?? resourceVersion
            guard let key = failure.key, let old = objects.removeValue(forKey: key) else { return [] }
            return [.deleted(old)]
        }
    }
}
