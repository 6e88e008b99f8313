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
/// request body, a request head of at most 16 KiB, at most `limits.maxConnections` at once.
///
/// Not an attack surface (docs/endpoint.md): a client has `limits.headTimeout` from its
/// connection (or from its last answer) for its whole request head, however it drips it, and
/// `limits.answerTimeout` to read the answer. A full server sheds its oldest connection that is
/// not being answered instead of leaving a new one (the kubelet's probe) in the listen queue. A
/// listener serves `Scope.all` or, for Prometheus on the node's network, `Scope.metrics`; on any
/// listener, `/status` and `/readyz`'s reasons are for loopback peers only.
///
/// One thread and poll(2) per listener, no event-loop library: four fixed answers need no more,
/// and swift-nio with swift-service-lifecycle was 2.7 MB of code, ~4 MiB of the agent's resident
/// memory and most of its build time (docs/evidence.md, "Steady state").
final class HealthServer: @unchecked Sendable {
    /// What a listener serves.
    enum Scope: Sendable {
        /// /healthz, /readyz, /status and /metrics: the kubelet's probes and `node-agent status`.
        case all
        /// /metrics alone: what Prometheus scrapes on the node's address.
        case metrics
    }

    struct Limits: Sendable {
        var maxConnections = 64
        /// From accept (or the end of the last answer, on a kept-alive connection) to a whole
        /// request head. Not reset by a byte: a client dripping its head is cut off all the same.
        /// Well above what a real client needs on a node (the kubelet sends its head at once), and
        /// above the kubelet's probe timeout (1 s by default), so a slow but honest probe is served.
        var headTimeout: UInt64 = 3_000_000_000  // ns
        /// From a complete request to its answer written to the socket.
        var answerTimeout: UInt64 = 5_000_000_000
        /// After the last answer and our side shut: what the client still sends is read and dropped
        /// this long (closing with unread input would reset the connection and could destroy the
        /// answer before the client reads it).
        var drainTime: UInt64 = 2_000_000_000
        /// Connections accepted per turn of the loop, so that the ones already open (a probe
        /// whose request has just arrived) are read before a burst of new ones can shed them.
        var acceptBatch = 16
    }

    let cache: StatusCache
    let logger: Logger
    let scope: Scope
    let limits: Limits
    /// The port it listens on: the one asked for, or the one the kernel picked for port 0.
    let port: UInt16
    /// `host:port` as logs and errors show it.
    let shown: String
    private let listener: Int32
    /// A pipe: writing to its end `wake[1]` stops the loop.
    private let wake: [Int32]
    private var thread: pthread_t?

    /// Binds `host:port` (an IP address) now, so that a taken port fails the start.
    init(host: String, port: Int, scope: Scope = .all, limits: Limits = Limits(), cache: StatusCache, logger: Logger) throws {
        self.cache = cache
        self.logger = logger
        self.scope = scope
        self.limits = limits
        let address = try IPAddress(host)
        let option = scope == .all ? "--listen" : "--metrics-listen"
        let fd = socket(
            Int32(address.family.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw AgentError(.io, "health endpoint: socket", errno: errno) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSocketAddress(port: UInt16(port)) { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 128) == 0 else {
            let error = String(cString: strerror(errno))
            close(fd)
            let shown = address.family == .v6 ? "[\(host)]:\(port)" : "\(host):\(port)"
            throw AgentError(.io, "health endpoint: cannot listen on \(shown): \(error)", hint: "pick a free \(option) address, or off")
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
        shown = "\(address.family == .v6 ? "[\(host)]" : host):\(self.port)"
        listener = fd
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            close(fd)
            throw AgentError(.io, "health endpoint: pipe", errno: errno)
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wake = ends
        logger.info(
            scope == .all ? "health endpoint listening" : "metrics endpoint listening",
            metadata: ["address": "\(shown)", "serves": "\(scope == .all ? "/healthz /readyz /status /metrics" : "/metrics")"])
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

    struct Connection {
        enum Phase: Int, Comparable {
            /// Answered, our side shut: reading and dropping what the client still sends.
            case drain = 0
            /// Waiting for a whole request head.
            case head = 1
            /// Writing an answer.
            case answer = 2
            static func < (a: Phase, b: Phase) -> Bool { a.rawValue < b.rawValue }
        }

        let fd: Int32
        /// The peer is on loopback: on this node.
        let local: Bool
        var input: [UInt8] = []
        var output: [UInt8] = []
        var closeWhenWritten = false
        /// Answers queued so far.
        var served = 0
        var phase = Phase.head
        /// When the phase began.
        var since: UInt64
        /// When the phase must be over: the connection is closed then.
        var deadline: UInt64

        mutating func enter(_ phase: Phase, at now: UInt64, limits: Limits) {
            self.phase = phase
            since = now
            switch phase {
            case .drain: deadline = now + limits.drainTime
            case .head: deadline = now + limits.headTimeout
            case .answer: deadline = now + limits.answerTimeout
            }
        }
    }

    /// Connections closed since the last log line: shed to make room, and cut off at a deadline.
    private var shed = 0
    private var cutOff = 0
    private var lastReport: UInt64 = 0

    private func serve() {
        var connections: [Connection] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        defer { for c in connections { close(c.fd) } }
        while true {
            var fds = [
                pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0),
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            ]
            for c in connections {
                fds.append(pollfd(fd: c.fd, events: Int16(c.phase == .answer ? POLLOUT : POLLIN), revents: 0))
            }
            if Syscall.poll(&fds, until: connections.map(\.deadline).min()) < 0 { return }
            if fds[0].revents != 0 { return }
            let later = monotonicNanoseconds()
            var keep: [Connection] = []
            for (i, var c) in connections.enumerated() {
                if step(&c, events: fds[i + 2].revents, now: later, buffer: &buffer) {
                    keep.append(c)
                } else {
                    // A client that kept a connection idle after its answers (Prometheus between
                    // scrapes) is no news; one that never finished a head or read its answer is.
                    if later >= c.deadline && (c.phase == .answer || (c.phase == .head && (c.served == 0 || !c.input.isEmpty))) {
                        cutOff += 1
                    }
                    close(c.fd)
                }
            }
            connections = keep
            if fds[1].revents != 0 { accept(into: &connections, now: later, buffer: &buffer) }
            report(now: later)
        }
    }

    /// Accepts what waits in the listen queue, up to `acceptBatch`; each new connection's request
    /// is read at once if it is there. With every slot taken, the connection that has waited
    /// longest in the phase that loses least is closed to make room: an answered one still
    /// draining, else the oldest still sending its head, else the oldest being answered.
    private func accept(into connections: inout [Connection], now: UInt64, buffer: inout [UInt8]) {
        for _ in 0..<limits.acceptBatch {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
            }
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            if connections.count >= limits.maxConnections,
                let victim = connections.indices.min(by: {
                    (connections[$0].phase, connections[$0].since) < (connections[$1].phase, connections[$1].since)
                })
            {
                close(connections[victim].fd)
                connections.remove(at: victim)
                shed += 1
            }
            var c = Connection(fd: fd, local: Self.peerIsLoopback(peer), since: now, deadline: now + limits.headTimeout)
            if step(&c, events: Int16(POLLIN), now: now, buffer: &buffer) { connections.append(c) } else { close(fd) }
        }
    }

    /// At most one line a minute about connections shed or cut off: a flood must not flood the log.
    private func report(now: UInt64) {
        guard shed + cutOff > 0, now >= lastReport + 60_000_000_000 || lastReport == 0 else { return }
        logger.warning(
            "health endpoint: connections closed to keep it answering",
            metadata: [
                "address": "\(shown)", "shed-when-full": "\(shed)", "cut-off-at-deadline": "\(cutOff)",
                "limits": "\(limits.maxConnections) connections, \(limits.headTimeout / 1_000_000_000) s for a request head",
            ])
        shed = 0
        cutOff = 0
        lastReport = now
    }

    /// One connection after poll said `events`; false to close it.
    private func step(_ c: inout Connection, events: Int16, now: UInt64, buffer: inout [UInt8]) -> Bool {
        let readable = events & Int16(POLLIN | POLLHUP | POLLERR) != 0
        switch c.phase {
        case .drain:
            guard readable else { return now < c.deadline }
            let n = buffer.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
            return (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) && now < c.deadline
        case .answer:
            guard events != 0 else { return now < c.deadline }
        case .head:
            guard readable else { return now < c.deadline }
            let n = buffer.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                c.input += buffer[0..<n]
                answer(&c, now: now)
            } else if n == 0 {
                // The client has sent all it will: a partial request gets its answer.
                guard !c.input.isEmpty else { return false }
                c.input = []
                respond(&c, 400, "text/plain", Array("incomplete request head\n".utf8), keepAlive: false, headOnly: false, now: now)
            } else {
                return (errno == EAGAIN || errno == EINTR) && now < c.deadline
            }
            // Still in its head past the deadline: however it got here, byte by byte, it is over.
            if c.phase == .head && now >= c.deadline { return false }
        }
        while c.phase == .answer {
            guard flush(&c), now < c.deadline else { return false }
            guard c.output.isEmpty else { return true }
            if c.closeWhenWritten {
                shutdown(c.fd, Int32(SHUT_WR))
                c.enter(.drain, at: now, limits: limits)
                return true
            }
            // The next request's head has the full time from here; those that arrived while
            // answers were pending are answered now.
            c.enter(.head, at: now, limits: limits)
            answer(&c, now: now)
        }
        return true
    }
}
