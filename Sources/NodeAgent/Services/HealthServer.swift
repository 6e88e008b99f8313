import FoundationEssentials
import Glibc
import HTTPWire
import HostSystem
import Logging
import Probes
import Vocabulary

/// The health endpoint: `/healthz` (the agent works), `/readyz` (the node can pull), `/status`
/// (JSON: every check with its reason and timings), `/metrics` (Prometheus text). It serves what
/// the last reconcile found; requests never trigger probes. Bounded: GET and HEAD only, no
/// request body, a request head of at most 16 KiB, at most `maxConnections` at once, and a client
/// that sends nothing for `idleTimeout` is cut off.
///
/// One thread and poll(2), no event-loop library: four fixed answers need no more, and swift-nio
/// with swift-service-lifecycle was 2.7 MB of code, ~4 MiB of the agent's resident memory and
/// most of its build time (README, Evidence).
final class HealthServer: @unchecked Sendable {
    static let maxConnections = 64
    static let idleTimeout: UInt64 = 5_000_000_000  // ns

    let cache: StatusCache
    let logger: Logger
    /// The port it listens on: the one asked for, or the one the kernel picked for port 0.
    let port: UInt16
    private let listener: Int32
    /// A pipe: writing to its end `wake[1]` stops the loop.
    private let wake: [Int32]
    private var thread: pthread_t?

    /// Binds `host:port` (an IP address) now, so that a taken port fails the start.
    init(host: String, port: Int, cache: StatusCache, logger: Logger) throws {
        self.cache = cache
        self.logger = logger
        let address = try IPAddress(host)
        let shown = address.family == .v6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        let fd = socket(
            Int32(address.family.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw AgentError(.io, "health endpoint: socket", errno: errno) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSocketAddress(port: UInt16(port)) { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 128) == 0 else {
            let error = String(cString: strerror(errno))
            close(fd)
            throw AgentError(.io, "health endpoint: cannot listen on \(shown): \(error)", hint: "pick a free --listen address, or off")
        }
        var bound6 = sockaddr_in6()  // large enough for either family; the port is at the same offset
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        guard
            withUnsafeMutablePointer(to: &bound6, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } })
                == 0
        else {
            let error = String(cString: strerror(errno))
            close(fd)
            throw AgentError(.io, "health endpoint: getsockname: \(error)")
        }
        self.port = UInt16(bigEndian: bound6.sin6_port)
        listener = fd
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            close(fd)
            throw AgentError(.io, "health endpoint: pipe", errno: errno)
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wake = ends
        logger.info("health endpoint listening", metadata: ["address": "\(address.family == .v6 ? "[\(host)]" : host):\(self.port)"])
    }

    deinit {
        close(listener)
        wake.forEach { close($0) }
    }

    /// Serves on a thread of its own until `stop()`.
    func start() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(
            &t, nil,
            { arg in
                let server = Unmanaged<HealthServer>.fromOpaque(arg!).takeRetainedValue()
                server.serve()
                return nil
            }, box.toOpaque())
        thread = t
    }

    /// Stops serving and waits for the thread; open connections are closed.
    func stop() {
        var one: UInt8 = 1
        _ = write(wake[1], &one, 1)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private struct Connection {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var closeWhenWritten = false
        /// The last read or write that moved bytes.
        var lastActivity: UInt64
        /// Set once the last answer is written and our side is shut: until then, what the client
        /// still sends is read and dropped (closing with unread input would reset the connection
        /// and could destroy the answer before the client reads it).
        var drainUntil: UInt64?
    }

    private func serve() {
        var connections: [Connection] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        defer { for c in connections { close(c.fd) } }
        while true {
            var fds = [
                pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0),
                pollfd(fd: connections.count < Self.maxConnections ? listener : -1, events: Int16(POLLIN), revents: 0),
            ]
            for c in connections {
                fds.append(pollfd(fd: c.fd, events: Int16(c.drainUntil == nil && !c.output.isEmpty ? POLLOUT : POLLIN), revents: 0))
            }
            let now = monotonicNanoseconds()
            let next = connections.map { $0.drainUntil ?? $0.lastActivity + Self.idleTimeout }.min()
            let timeout = next.map { pollMilliseconds(until: $0, now: now) } ?? -1
            if poll(&fds, nfds_t(fds.count), timeout) < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            let later = monotonicNanoseconds()
            var keep: [Connection] = []
            for (i, var c) in connections.enumerated() {
                if step(&c, events: fds[i + 2].revents, now: later, buffer: &buffer) { keep.append(c) } else { close(c.fd) }
            }
            connections = keep
            if fds[1].revents != 0 {
                while connections.count < Self.maxConnections {
                    let fd = accept(listener, nil, nil)
                    guard fd >= 0 else { break }
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                    var on: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
                    connections.append(Connection(fd: fd, lastActivity: later))
                }
            }
        }
    }

    static let drainTime: UInt64 = 2_000_000_000  // ns

    /// One connection after poll said `events`; false to close it.
    private func step(_ c: inout Connection, events: Int16, now: UInt64, buffer: inout [UInt8]) -> Bool {
        let readable = events & Int16(POLLIN | POLLHUP | POLLERR) != 0
        if let until = c.drainUntil {
            guard readable else { return now < until }
            let n = buffer.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
            return (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) && now < until
        }
        if !c.output.isEmpty {
            guard events != 0 else { return now < c.lastActivity + Self.idleTimeout }
        } else if readable {
            let n = buffer.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                c.input += buffer[0..<n]
                c.lastActivity = now
                answer(&c)
            } else if n == 0 {
                // The client has sent all it will: a partial request gets its answer.
                guard !c.input.isEmpty else { return false }
                c.input = []
                respond(&c, 400, "text/plain", Array("incomplete request head\n".utf8), keepAlive: false, headOnly: false)
            } else {
                return errno == EAGAIN || errno == EINTR
            }
        } else {
            return now < c.lastActivity + Self.idleTimeout
        }
        while true {
            guard flush(&c, now: now) else { return false }
            guard c.output.isEmpty else { return true }
            if c.closeWhenWritten {
                shutdown(c.fd, Int32(SHUT_WR))
                c.drainUntil = now + Self.drainTime
                return true
            }
            // Requests that arrived while answers were pending.
            answer(&c)
            guard !c.output.isEmpty else { return true }
        }
    }

    /// Answers the complete requests in the connection's input.
    private func answer(_ c: inout Connection) {
        // A client that pipelines without reading gets its answers as it reads them: no more than
        // 64 KiB is queued, the rest of its requests wait in its input (at most one read's worth).
        while !c.closeWhenWritten && c.output.count < 64 * 1024 {
            switch HTTPRequestParser.parse(c.input[...]) {
            case .incomplete:
                return
            case .invalid(let status, let reason):
                c.input = []
                respond(&c, status, "text/plain", Array((reason + "\n").utf8), keepAlive: false, headOnly: false)
            case .request(let r):
                c.input.removeFirst(r.length)
                route(&c, r)
            }
        }
    }

    private func route(_ c: inout Connection, _ r: HTTPRequestParser.Request) {
        guard r.method == "GET" || r.method == "HEAD" else {
            respond(&c, 405, "text/plain", Array("GET or HEAD\n".utf8), keepAlive: r.keepAlive, headOnly: false)
            return
        }
        let s = cache.current
        let headOnly = r.method == "HEAD"
        switch r.path {
        case "/healthz":
            respond(&c, s.live ? 200 : 503, "text/plain", Array("ok\n".utf8), keepAlive: r.keepAlive, headOnly: headOnly)
        case "/readyz":
            respond(&c, s.ready ? 200 : 503, "text/plain", Array((s.readyReason + "\n").utf8), keepAlive: r.keepAlive, headOnly: headOnly)
        case "/status":
            respond(&c, 200, "application/json", Array(s.status), keepAlive: r.keepAlive, headOnly: headOnly)
        case "/metrics":
            respond(&c, 200, "text/plain; version=0.0.4", Array(s.metrics), keepAlive: r.keepAlive, headOnly: headOnly)
        default:
            respond(
                &c, 404, "text/plain", Array("not found: /healthz, /readyz, /status, /metrics\n".utf8), keepAlive: r.keepAlive,
                headOnly: headOnly)
        }
    }

    static let reasons = [
        200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
        503: "Service Unavailable",
    ]

    private func respond(_ c: inout Connection, _ status: Int, _ type: String, _ body: [UInt8], keepAlive: Bool, headOnly: Bool) {
        var head =
            "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Error")\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\n"
        if !keepAlive { head += "Connection: close\r\n" }
        c.output += Array((head + "\r\n").utf8)
        if !headOnly { c.output += body }
        if !keepAlive { c.closeWhenWritten = true }
    }

    /// Writes what the connection has pending, as far as the socket takes it; false on an error.
    private func flush(_ c: inout Connection, now: UInt64) -> Bool {
        while !c.output.isEmpty {
            let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                c.output.removeFirst(n)
                c.lastActivity = now
                continue
            }
            return n < 0 && (errno == EAGAIN || errno == EINTR)
        }
        return true
    }
}
