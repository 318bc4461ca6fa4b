// Every probe of the prober, on one thread and one epoll instance: `http` and `tcp` checks
// go to the prober's own checker (PlainProbes.swift), `https` checks to libcurl
// (Curl.swift, created on the first https probe). The engine thread starts probes, calls
// `perform()` to collect finished ones, and sleeps in `wait(upTo:)` until a socket is
// ready, a deadline is due, or another thread calls `wakeup()`. Every call except
// `wakeup()` must come from that one thread.
//
// epoll keys: all ones = the wake-up eventfd; bit 62 set = a PlainProbes socket;
// otherwise a curl socket (shard << 32 | fd).

internal import CCurl
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class Probes {
    private let epfd: Int32
    private let wakeFD: Int32
    private let reuseConnections: Bool
    private let curlShards: Int
    private let plain: PlainProbes
    private var curl: CurlProbes?
    private var curlCacheSize = 16
    private var keys = [UInt64](repeating: 0, count: 256)
    private var flags = [Int32](repeating: 0, count: 256)

    /// `reuseConnections`: one kept-alive connection per endpoint carries its http(s)
    /// probes; off, every probe opens a new connection (and says `Connection: close`).
    init(reuseConnections: Bool, curlShards: Int = 256) throws(ProberError) {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw ProberError(.curl, "epoll_create1 failed: errno \(errno)") }
        wakeFD = sy_eventfd_open(epfd)
        guard wakeFD >= 0 else {
            close(epfd)
            throw ProberError(.curl, "eventfd failed: errno \(errno)")
        }
        self.reuseConnections = reuseConnections
        self.curlShards = curlShards
        plain = PlainProbes(epfd: epfd, keepAlive: reuseConnections)
    }

    deinit {
        curl = nil
        close(wakeFD)
        close(epfd)
    }

    var inFlight: Int { plain.inFlight + (curl?.inFlight ?? 0) }

    /// Connections the prober's own checker holds open (kept-alive ones included).
    var plainConnections: Int { plain.openConnections }

    /// How many idle connections curl keeps in all (about one per https endpoint when reusing).
    func setConnectionCache(_ size: Int) {
        curlCacheSize = size
        curl?.setConnectionCache(size)
    }

    /// Starts a probe; returns an outcome at once when it is already decided.
    func start(_ request: ProbeRequest, token: Int) -> ProbeOutcome? {
        if request.kind != .https { return plain.start(request, token: token) }
        plain.forget(token)  // in case the check was http before (a no-op otherwise)
        if curl == nil {
            do {
                let created = try CurlProbes(reuseConnections: reuseConnections, epfd: epfd, shardCount: curlShards)
                created.setConnectionCache(curlCacheSize)
                curl = created
            } catch {
                return .failure(reason: "error: \(error.message)")
            }
        }
        return curl!.start(request, token: token)
    }

    /// A target is gone (or changed prober): drop its kept connection.
    func forget(_ token: Int) { plain.forget(token) }

    /// Closes kept-alive connections of the own checker (when the prober stands by).
    func closeIdle() { plain.closeIdle() }

    /// Probes finished since the last call (timeouts included).
    func perform() -> [(token: Int, outcome: ProbeOutcome)] {
        var done = plain.collect(now: monotonicMilliseconds())
        if let curl { done += curl.perform() }
        return done
    }

    /// Sleeps until a socket is ready, a deadline or `milliseconds` expire, or `wakeup()`.
    func wait(upTo milliseconds: Int) {
        let now = monotonicMilliseconds()
        var timeout = Int64(max(0, milliseconds))
        if let next = plain.nextDeadline { timeout = min(timeout, max(0, next - now)) }
        if let next = curl?.nextDeadline { timeout = min(timeout, max(0, next - now)) }
        let n = keys.withUnsafeMutableBufferPointer { k in
            flags.withUnsafeMutableBufferPointer { f in
                sy_epoll_wait(epfd, k.baseAddress, f.baseAddress, Int32(k.count), Int32(clamping: timeout))
            }
        }
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            let key = keys[i]
            if key == UInt64.max {
                sy_eventfd_drain(wakeFD)
            } else if key & PlainProbes.keyBit != 0 {
                plain.socketEvent(key: key, flags: flags[i])
            } else {
                curl?.socketEvent(key: key, flags: flags[i])
            }
        }
    }

    /// Interrupts `wait`. Safe from any thread while this object is alive.
    func wakeup() {
        sy_eventfd_signal(wakeFD)
    }
}
