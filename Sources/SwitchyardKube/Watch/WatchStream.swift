// The watch verb: a streaming GET whose body is one JSON event per line.

import AsyncHTTPClient
import Foundation
import NIOCore

public struct WatchOptions: Sendable {
    /// Events after this version; nil or "0" starts with the current objects as ADDED events.
    public var resourceVersion: String?
    public var labelSelector: String?
    public var fieldSelector: String?
    /// The server ends the stream after this many seconds.
    public var timeoutSeconds: Int
    public var allowWatchBookmarks: Bool
    public init(
        resourceVersion: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
        timeoutSeconds: Int = 300, allowWatchBookmarks: Bool = true
    ) {
        self.resourceVersion = resourceVersion
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.timeoutSeconds = timeoutSeconds
        self.allowWatchBookmarks = allowWatchBookmarks
    }
}

public enum WatchEvent<Object: Sendable>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// Nothing changed for this watch up to this version (resume from it).
    case bookmark(resourceVersion: String)
    /// The server ended the watch with a Status (410 Expired: list again).
    case error(KubeStatus)
    /// An ADDED/MODIFIED/DELETED object that does not decode as the model.
    case undecodable(type: String, DecodeFailure)
}

extension WatchEvent where Object: KubeObject {
    /// The version this event brings the watch to (nil for ERROR).
    public var resourceVersion: String? {
        switch self {
        case .added(let o), .modified(let o), .deleted(let o): return o.metadata.resourceVersion
        case .bookmark(let rv): return rv
        case .undecodable(_, let failure): return failure.resourceVersion
        case .error: return nil
        }
    }
}

extension KubeClient {
    /// Opens a watch; iterate the stream until it ends (server timeout) or throws.
    public func watch<T: KubeObject>(
        _ type: T.Type, namespace: String? = nil, options: WatchOptions = WatchOptions(),
        resource: ResourceType = T.resource
    ) async throws -> WatchStream<T> {
        let path = resource.collectionPath(namespace: namespace)
        var query: [(String, String)] = [("watch", "1"), ("timeoutSeconds", String(options.timeoutSeconds))]
        if options.allowWatchBookmarks { query.append(("allowWatchBookmarks", "true")) }
        if let rv = options.resourceVersion { query.append(("resourceVersion", rv)) }
        if let s = options.labelSelector { query.append(("labelSelector", s)) }
        if let s = options.fieldSelector { query.append(("fieldSelector", s)) }
        let label = "watch \(path)"
        let request = try makeRequest(.GET, path, query: query, body: nil, contentType: "application/json")
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(Int64(requestTimeout.components.seconds)))
        } catch let error as CancellationError {
            throw error
        } catch {
            throw KubeError.transport(request: label, underlying: String(describing: error))
        }
        let code = Int(response.status.code)
        if code >= 400 {
            let buffer = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            throw apiError(code, Data(buffer.readableBytesView), label)
        }
        return WatchStream(body: response.body, label: label)
    }
}

public struct WatchStream<Object: KubeObject>: AsyncSequence, Sendable {
    public typealias Element = WatchEvent<Object>
    let body: HTTPClientResponse.Body
    let label: String

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: body.makeAsyncIterator(), label: label)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: HTTPClientResponse.Body.AsyncIterator
        let label: String
        var buffer: [UInt8] = []
        var scanned = 0
        var finished = false

        public mutating func next() async throws -> WatchEvent<Object>? {
            while true {
                if let newline = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    scanned = 0
                    if line.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
                    return try parse(line)
                }
                scanned = buffer.count
                if finished {
                    guard !buffer.isEmpty else { return nil }
                    let line = buffer
                    buffer = []
                    scanned = 0
                    return try parse(line)
                }
                do {
                    if let chunk = try await base.next() {
                        buffer.append(contentsOf: chunk.readableBytesView)
                    } else {
                        finished = true
                    }
                } catch let error as CancellationError {
                    throw error
                } catch {
                    throw KubeError.transport(request: label, underlying: String(describing: error))
                }
            }
        }

        func parse(_ line: [UInt8]) throws -> WatchEvent<Object> {
            let data = Data(line)
            let event: WatchLine<Object>
            do {
                event = try JSONDecoder().decode(WatchLine<Object>.self, from: data)
            } catch {
                throw KubeError.decoding(request: label, underlying: "watch event: \(describeDecoding(error))")
            }
            switch event.type {
            case "BOOKMARK":
                return .bookmark(resourceVersion: event.object.metadata?.resourceVersion ?? "")
            case "ERROR":
                let status =
                    (try? JSONDecoder().decode(WatchLine<KubeStatus>.self, from: data).object.result.get())
                    ?? KubeStatus(status: "Failure", message: "unreadable ERROR event")
                return .error(status)
            case "ADDED", "MODIFIED", "DELETED":
                switch event.object.result {
                case .failure(let error):
                    return .undecodable(type: event.type, event.object.failure(error))
                case .success(let object):
                    switch event.type {
                    case "ADDED": return .added(object)
                    case "MODIFIED": return .modified(object)
                    default: return .deleted(object)
                    }
                }
            default:
                throw KubeError.decoding(request: label, underlying: "unknown watch event type '\(event.type)'")
            }
        }
    }
}

struct WatchLine<T: Decodable & Sendable>: Decodable, Sendable {
    var type: String
    var object: Lenient<T>
}
