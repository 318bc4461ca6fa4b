// The only file that touches libcurl, which runs the `https` checks (http and tcp checks
// are the prober's own, PlainProbes.swift). `CurlProbes` runs many transfers at once on
// the epoll instance of `Probes` (Probes.swift): that thread starts transfers, calls
// `perform()` to run curl's due timers and collect finished transfers, and hands ready
// curl sockets to `socketEvent`. Every call must come from that one thread; everything
// here blocks, so it never runs on Swift's cooperative pool.
//
// Why shards: libcurl 7.88 walks its whole connection cache on every
// curl_multi_remove_handle (and its DNS cache on every transfer). With one multi handle
// and a kept-alive connection per endpoint, each probe would cost O(endpoints). Targets are
// therefore spread over `shardCount` multi handles (each with its own caches), all driven
// through curl_multi_socket_action and one epoll instance, so a probe touches one small
// shard; the DNS cache is off (endpoints are IP literals).
//
// Probes are plain GETs whose answer is thrown away (tcp is still supported here, with
// CURLOPT_CONNECT_ONLY, though the prober sends tcp checks to PlainProbes). Every transfer
// has hard limits (CURLOPT_TIMEOUT_MS and CURLOPT_CONNECTTIMEOUT_MS), ignores proxy
// variables in the environment, never follows redirects, and for https does not verify
// certificates: endpoints are addressed by IP, usually with internal or self-signed
// certificates.

internal import CCurl
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One probe to run, in Swift terms.
struct ProbeRequest: Sendable, Equatable {
    var kind: HealthCheck.Kind
    /// Where to connect (the health check's port already applied).
    var address: EndpointAddress
    var path: String
    /// Host header (and TLS SNI); nil = the address.
    var host: String?
    var timeoutMs: Int
    var expectStatus: [StatusRange]

    init(target address: EndpointAddress, check: HealthCheck) {
        var address = address
        if let port = check.port { address.port = port }
        self.kind = check.type
        self.address = address
        self.path = check.path
        self.host = check.host
        self.timeoutMs = check.timeoutMs
        self.expectStatus = check.expectStatus
    }

    /// The text for a URL authority or CONNECT_TO: `10.0.0.1` or `[2001:db8::1]`.
    var ipText: String {
        let text = address.description
        return String(text[..<text.lastIndex(of: ":")!])
    }
}

private let curlGlobalInit: Bool = {
    curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}()

final class CurlProbes {
    private final class Shard {
        let multi: UnsafeMutableRawPointer
        let link: UnsafeMutablePointer<sy_shard>
        var active = false

        init?(index: Int, epfd: Int32) {
            guard let multi = curl_multi_init() else { return nil }
            self.multi = multi
            link = .allocate(capacity: 1)
            link.initialize(to: sy_shard(epfd: epfd, index: UInt32(index), deadline_ms: -1))
            sy_curl_multi_attach(multi, link)
        }

        deinit {
            curl_multi_cleanup(multi)
            link.deallocate()
        }
    }

    private let epfd: Int32
    private let reuseConnections: Bool
    private var shards: [Shard] = []
    /// Transfers in flight, by easy handle.
    private var transfers: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Finished http handles kept for the next probes (configured once, see configureHandle).
    private var idle: [UnsafeMutableRawPointer] = []
    private let maxIdle = 256

    private struct Transfer {
        var token: Int
        var shard: Int
        var request: ProbeRequest
        var lists: [UnsafeMutablePointer<curl_slist>]
    }

    /// `reuseConnections`: keep HTTP connections to endpoints open between probes (far
    /// cheaper at thousands of endpoints; a dead server still fails the next probe because
    /// curl then has to connect again). Off: every probe opens a new connection.
    /// `epfd` belongs to the caller and must outlive this object; keys of curl sockets
    /// there are `sy_epoll_key(shard, fd)` (shard < 2^16, so bit 62 and up stay clear).
    init(reuseConnections: Bool, epfd: Int32, shardCount: Int = 256) throws(ProberError) {
        guard curlGlobalInit else { throw ProberError(.curl, "cannot initialise libcurl") }
        self.epfd = epfd
        self.reuseConnections = reuseConnections
        for i in 0..<max(1, min(shardCount, 1 << 16)) {
            guard let shard = Shard(index: i, epfd: epfd) else { throw ProberError(.curl, "cannot create a curl multi handle") }
            shards.append(shard)
        }
    }

    deinit {
        for (easy, transfer) in transfers {
            curl_multi_remove_handle(shards[transfer.shard].multi, easy)
            curl_easy_cleanup(easy)
            for list in transfer.lists { curl_slist_free_all(list) }
        }
        for easy in idle { curl_easy_cleanup(easy) }
        shards.removeAll()
    }

    var inFlight: Int { transfers.count }

    /// How many idle connections curl keeps in all (about one per endpoint when reusing).
    func setConnectionCache(_ size: Int) {
        let perShard = reuseConnections ? max(16, 2 * size / shards.count + 16) : 16
        for shard in shards { _ = sy_curl_multi_setopt_long(shard.multi, CURLMOPT_MAXCONNECTS, perShard) }
    }

    /// Starts a probe (on the shard `token` maps to, so an endpoint's kept-alive connection
    /// is always in the same shard). Returns an outcome at once when it cannot be started.
    func start(_ request: ProbeRequest, token: Int) -> ProbeOutcome? {
        let easy: UnsafeMutableRawPointer
        if request.kind != .tcp, let reused = idle.popLast() {
            easy = reused  // configured for http(s) already; only the request options change
        } else if let fresh = curl_easy_init() {
            easy = fresh
            configureHandle(easy, tcp: request.kind == .tcp)
        } else {
            return .failure(reason: "error: out of memory")
        }
        var lists: [UnsafeMutablePointer<curl_slist>] = []
        configureRequest(easy, request, lists: &lists)
        let index = token % shards.count
        if curl_multi_add_handle(shards[index].multi, easy) != CURLM_OK {
            curl_easy_cleanup(easy)
            for list in lists { curl_slist_free_all(list) }
            return .failure(reason: "error: cannot start probe")
        }
        shards[index].active = true
        transfers[easy] = Transfer(token: token, shard: index, request: request, lists: lists)
        return nil
    }

    /// Options every probe of a kind shares, set once per handle.
    private func configureHandle(_ easy: UnsafeMutableRawPointer, tcp: Bool) {
        _ = sy_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = sy_curl_setopt_string(easy, CURLOPT_PROXY, "")  // never http_proxy from the environment
        _ = sy_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = sy_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        // endpoints are IP literals: a DNS cache only costs (curl prunes it on every transfer)
        _ = sy_curl_setopt_long(easy, CURLOPT_DNS_CACHE_TIMEOUT, 0)
        if tcp {
            _ = sy_curl_setopt_long(easy, CURLOPT_CONNECT_ONLY, 1)
            return
        }
        _ = sy_curl_setopt_string(easy, CURLOPT_USERAGENT, "switchyard-prober/1")
        _ = sy_curl_discard_body(easy)
        if !reuseConnections {
            _ = sy_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1)
            _ = sy_curl_setopt_long(easy, CURLOPT_FORBID_REUSE, 1)
        }
        _ = sy_curl_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)  // https only; see the file header
        _ = sy_curl_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
    }

    /// Options of this probe: every one is set each time, so a pooled handle keeps nothing
    /// from its previous probe.
    private func configureRequest(_ easy: UnsafeMutableRawPointer, _ request: ProbeRequest, lists: inout [UnsafeMutablePointer<curl_slist>])
    {
        let port = request.address.port
        let scheme = request.kind == .https ? "https" : "http"
        var url = "\(scheme)://\(request.ipText):\(port)\(request.kind == .tcp ? "/" : request.path)"
        var connectTo: UnsafeMutablePointer<curl_slist>?
        if request.kind == .https, let host = request.host {
            // name in the URL so TLS sends it as SNI; CONNECT_TO still dials the address
            url = "https://\(host):\(port)\(request.path)"
            connectTo = curl_slist_append(nil, "::\(request.ipText):\(port)")
        }
        var headers: UnsafeMutablePointer<curl_slist>?
        if request.kind != .tcp, let host = request.host { headers = curl_slist_append(nil, "Host: \(host)") }
        for list in [connectTo, headers] { if let list { lists.append(list) } }
        _ = sy_curl_setopt_string(easy, CURLOPT_URL, url)
        _ = sy_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeoutMs)
        _ = sy_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.timeoutMs)
        _ = sy_curl_setopt_slist(easy, CURLOPT_CONNECT_TO, connectTo)
        _ = sy_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
    }

    /// Runs curl's due timers and returns the transfers that finished.
    func perform() -> [(token: Int, outcome: ProbeOutcome)] {
        let now = sy_monotonic_ms()
        var running: Int32 = 0
        for shard in shards where shard.link.pointee.deadline_ms >= 0 && shard.link.pointee.deadline_ms <= now {
            shard.link.pointee.deadline_ms = -1  // curl sets a new one from inside the call if it wants
            _ = curl_multi_socket_action(shard.multi, CURL_SOCKET_TIMEOUT, 0, &running)
            shard.active = true
        }
        var done: [(token: Int, outcome: ProbeOutcome)] = []
        for shard in shards where shard.active {
            shard.active = false
            var queued: Int32 = 0
            while let message = curl_multi_info_read(shard.multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result
                guard let transfer = transfers.removeValue(forKey: easy) else { continue }
                let outcome = classify(code, easy, transfer.request)
                curl_multi_remove_handle(shard.multi, easy)
                for list in transfer.lists { curl_slist_free_all(list) }
                // a CONNECT_ONLY handle owns its socket: cleanup closes it
                if transfer.request.kind != .tcp, idle.count < maxIdle {
                    idle.append(easy)
                } else {
                    curl_easy_cleanup(easy)
                }
                done.append((transfer.token, outcome))
            }
        }
        return done
    }

    /// The earliest time (monotonic ms) curl wants `perform()` to run its timers; nil = none.
    var nextDeadline: Int64? {
        var next: Int64?
        for shard in shards where shard.link.pointee.deadline_ms >= 0 {
            next = min(next ?? .max, shard.link.pointee.deadline_ms)
        }
        return next
    }

    /// A curl socket is ready (`key` from epoll, `flags` CURL_CSELECT_*).
    func socketEvent(key: UInt64, flags: Int32) {
        let index = Int(key >> 32)
        let fd = Int32(truncatingIfNeeded: UInt32(key & 0xFFFF_FFFF))
        guard index < shards.count else { return }
        var running: Int32 = 0
        _ = curl_multi_socket_action(shards[index].multi, fd, flags, &running)
        shards[index].active = true
    }

    private func classify(_ code: CURLcode, _ easy: UnsafeMutableRawPointer, _ request: ProbeRequest) -> ProbeOutcome {
        if code == CURLE_OK {
            if request.kind == .tcp { return .success(reason: "connected") }
            var status = 0
            _ = sy_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            let reason = "status \(status)"
            return request.expectStatus.contains(where: { $0.contains(status) }) ? .success(reason: reason) : .failure(reason: reason)
        }
        var osErrno = 0
        _ = sy_curl_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .failure(reason: "timeout")
        case CURLE_COULDNT_CONNECT:
            switch Int32(osErrno) {
            case ECONNREFUSED: return .failure(reason: "refused")
            case EHOSTUNREACH, ENETUNREACH: return .failure(reason: "unreachable")
            case ETIMEDOUT: return .failure(reason: "timeout")
            default: return .failure(reason: "connect failed")
            }
        case CURLE_GOT_NOTHING:
            return .failure(reason: "empty reply")
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR:
            return .failure(reason: Int32(osErrno) == ECONNRESET ? "reset" : "connection error")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER:
            return .failure(reason: "tls error")
        case CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_UNSUPPORTED_PROTOCOL:
            return .failure(reason: "bad response")
        default:
            let text = curl_easy_strerror(code).map { String(cString: $0) } ?? "code \(code.rawValue)"
            return .failure(reason: "error: \(text)")
        }
    }
}
