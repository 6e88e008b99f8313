import FoundationEssentials
import Glibc
import HTTPWire
import HostSystem
import Vocabulary

/// The health endpoint of a running agent, as `node-agent status` reads it: a URL
/// `http://IP[:PORT]` and one bounded GET per connection. Plain HTTP on an IP address, as the
/// endpoint serves it; no name is resolved.
struct EndpointClient {
    let address: IPAddress
    let port: UInt16
    /// The endpoint as the user is shown it: `http://127.0.0.1:9808`.
    let url: String
    var timeoutMilliseconds: Int32 = 5000

    static let maximumBodyBytes = 4 << 20

    /// Parses `--endpoint`: `http://IP[:PORT][/]`, an IPv6 address in brackets; `localhost` is 127.0.0.1.
    init(_ text: String) throws {
        func bad(_ why: String) -> AgentError {
            AgentError(
                .invalidInput, "--endpoint '\(text.escapedForMessage)' \(why)",
                hint: "give the agent's health endpoint, its --listen address, as http://IP:PORT: e.g. http://127.0.0.1:9808")
        }
        let lower = text.lowercased()
        guard !lower.hasPrefix("https://") else { throw bad("is HTTPS: the agent's endpoint speaks plain HTTP") }
        guard lower.hasPrefix("http://") else { throw bad("is not an http:// URL") }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw bad("has a path: the endpoint is the agent's address only (status reads its /status)")
        }
        guard !rest.contains("@") else { throw bad("has user information") }
        var host = rest
        var port: UInt16 = 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("has an IPv6 address without its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = UInt16(after.dropFirst()), p > 0 else { throw bad("has no valid port (1-65535)") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = UInt16(rest[rest.index(after: colon)...]), p > 0 else { throw bad("has no valid port (1-65535)") }
            port = p
        }
        guard !host.isEmpty else { throw bad("has no host") }
        let literal = host.lowercased() == "localhost" ? "127.0.0.1" : String(host)
        guard let ip = try? IPAddress(literal) else { throw bad("does not name its host by IP address") }
        address = ip
        self.port = port
        url = "http://\(ip.family == .v6 ? "[\(ip)]" : "\(ip)"):\(port)"
    }

    /// The endpoint for an agent run with `--listen HOST:PORT` (0.0.0.0 and :: are reached on
    /// loopback); nil for `off` or an address that is no HOST:PORT.
    static func forListen(_ listen: String) -> EndpointClient? {
        guard listen != "off", let colon = listen.lastIndex(of: ":") else { return nil }
        var host = String(listen[..<colon]).trimming(charactersIn: "[]")
        let port = listen[listen.index(after: colon)...]
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return try? EndpointClient("http://\(bracketed):\(port)")
    }

    /// Why a request got no answer: nothing listens, it timed out, or the peer is no agent.
    struct Unreachable: Error, CustomStringConvertible {
        var description: String
    }

    /// GET `path`: the status code and the body.
    func get(_ path: String) throws -> (status: Int, body: [UInt8]) {
        let family = address.family == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw AgentError(.io, "socket", errno: errno) }
        defer { close(fd) }
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        func fail(_ what: String, _ code: Int32) -> Unreachable {
            Unreachable(
                description: code == ETIMEDOUT
                    ? "\(what) timed out after \(timeoutMilliseconds / 1000) s" : "\(what): \(String(cString: strerror(code)))")
        }
        func wait(_ events: Int16, _ what: String) throws {
            while true {
                let now = monotonicNanoseconds()
                guard now < deadline else { throw fail(what, ETIMEDOUT) }
                var p = pollfd(fd: fd, events: events, revents: 0)
                let r = poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1)
                if r > 0 { return }
                if r < 0 && errno != EINTR { throw fail(what, errno) }
            }
        }
        if address.withSocketAddress(port: port, { Glibc.connect(fd, $0, $1) }) != 0 {
            guard errno == EINPROGRESS else { throw fail("connect", errno) }
            try wait(Int16(POLLOUT), "connect")
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            guard err == 0 else { throw fail("connect", err) }
        }
        var request = Array(
            "GET \(path) HTTP/1.1\r\nHost: \(url.dropFirst("http://".count))\r\nUser-Agent: node-agent\r\nConnection: close\r\n\r\n".utf8)
        while !request.isEmpty {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                request.removeFirst(n)
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(Int16(POLLOUT), "send")
            } else {
                throw fail("send", errno)
            }
        }
        // The one HTTP/1.1 response reader (HTTPWire, fuzzed): its framing is checked, never trusted.
        var reader = HTTPResponseReader(bodyLimit: Self.maximumBodyBytes)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var answered = false
        let head: HTTPResponseHead
        let body: [UInt8]
        do {
            while !reader.isComplete {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    answered = true
                    try reader.take(Array(buffer[0..<n]))
                } else if n == 0 {
                    break
                } else if errno == EAGAIN || errno == EINTR {
                    try wait(Int16(POLLIN), "read")
                } else {
                    throw fail("read", errno)
                }
            }
            (head, body) = try reader.finish()
        } catch let error as HTTPResponseError {
            throw Unreachable(description: answered ? "its answer is not usable: \(error)" : "it closed the connection without an answer")
        }
        return (head.status, body)
    }
}
