import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

public struct SocketError: Error, CustomStringConvertible {
    public let code: Int32
    public let what: String
    public var isTimeout: Bool { code == ETIMEDOUT || code == EAGAIN || code == EWOULDBLOCK }
    public var isRefused: Bool { code == ECONNREFUSED }
    public var description: String {
        isTimeout ? "\(what): timeout" : "\(what): \(String(cString: strerror(code)))"
    }
}

/// A connected socket with a deadline on every read and write; closed with its owner.
package final class Socket {
    package let fd: Int32
    /// When every wait on it ends (monotonic milliseconds); a connection taken over for
    /// another request gets that request's.
    package var deadline: UInt64

    private init(fd: Int32, deadline: UInt64) {
        self.fd = fd
        self.deadline = deadline
    }

    deinit { close(fd) }

    package static func connect(to address: IPAddress, port: UInt16, type: Int32, timeoutMilliseconds: Int32) throws -> Socket {
        let family = address.family == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError(code: errno, what: "socket") }
        let deadline = nowMilliseconds() + UInt64(timeoutMilliseconds)
        let s = Socket(fd: fd, deadline: deadline)
        if type == Int32(SOCK_STREAM.rawValue) {
            // No Nagle: a small write after an unacknowledged one (the request after TLS's
            // Finished) would otherwise wait for the peer's delayed ACK, 40 ms, as curl avoids too.
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        let r = address.withSocketAddress(port: port) { Glibc.connect(fd, $0, $1) }
        if r != 0 {
            guard errno == EINPROGRESS else { throw SocketError(code: errno, what: "connect") }
            try s.wait(events: Int16(POLLOUT), what: "connect")
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            guard err == 0 else { throw SocketError(code: err, what: "connect") }
        }
        return s
    }

    /// Whether the peer has ended its side (or the connection failed), without waiting: a
    /// connection kept for a later request is not written to then (the write would raise SIGPIPE
    /// where it is not ignored, and nothing would answer).
    package var peerHungUp: Bool {
        // POLLRDHUP (Linux): the peer shut its side down. A deadline already passed: no wait.
        let rdHangUp: Int16 = 0x2000  // Glibc exports it only under _GNU_SOURCE
        var fds = [pollfd(fd: fd, events: Int16(POLLIN) | rdHangUp, revents: 0)]
        guard Syscall.poll(&fds, until: 0) > 0 else { return false }
        return fds[0].revents & (rdHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }

    package func wait(events: Int16, what: String) throws {
        guard nowMilliseconds() < deadline else { throw SocketError(code: ETIMEDOUT, what: what) }
        var fds = [pollfd(fd: fd, events: events, revents: 0)]
        let r = Syscall.poll(&fds, until: deadline * 1_000_000)
        if r < 0 { throw SocketError(code: errno, what: what) }
        if r == 0 { throw SocketError(code: ETIMEDOUT, what: what) }
    }

    package func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR {
                    try wait(events: Int16(POLLOUT), what: "send")
                    continue
                }
                throw SocketError(code: errno, what: "send")
            }
            offset += n
        }
    }

    /// Reads what is there (at least one byte, at most `max`); an empty result means end of stream.
    package func readSome(max: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR {
                    try wait(events: Int16(POLLIN), what: "receive")
                    continue
                }
                throw SocketError(code: errno, what: "receive")
            }
            return Array(buffer[0..<n])
        }
    }

    package func readExactly(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let chunk = try readSome(max: count - out.count)
            guard !chunk.isEmpty else { throw SocketError(code: ECONNRESET, what: "receive (closed early)") }
            out += chunk
        }
        return out
    }
}

package func nowMilliseconds() -> UInt64 {
    monotonicNanoseconds() / 1_000_000
}
