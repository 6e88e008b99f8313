import FoundationEssentials
import Glibc
import HTTPWire
import Vocabulary

/// The health endpoint's answers on a connection: the answer a request gets (its route, in
/// HealthEndpointRoutes), written with keep-alive or not, and flushed as far as the socket takes it.
extension HealthServer {
    /// Answers the complete requests in the connection's input.
    func answer(_ c: inout Connection, now: UInt64) {
        // A client that pipelines without reading gets its answers as it reads them: no more than
        // 64 KiB is queued, the rest of its requests wait in its input (at most one read's worth).
        while !c.closeWhenWritten && c.output.count < 64 * 1024 {
            switch HTTPRequestParser.parse(c.input[...]) {
            case .incomplete:
                return
            case .invalid(let status, let reason):
                c.input = []
                respond(&c, status, "text/plain", Array((reason + "\n").utf8), keepAlive: false, headOnly: false, now: now)
            case .request(let r):
                c.input.removeFirst(r.length)
                let a = Self.answer(method: r.method, path: r.path, scope: scope, local: c.local, snapshot: cache.current)
                respond(&c, a.status, a.type, a.body, keepAlive: r.keepAlive, headOnly: r.method == "HEAD", now: now)
            }
        }
    }

    func respond(
        _ c: inout Connection, _ status: Int, _ type: String, _ body: [UInt8], keepAlive: Bool, headOnly: Bool, now: UInt64
    ) {
        var head =
            "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Error")\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\n"
        if !keepAlive { head += "Connection: close\r\n" }
        c.output += Array((head + "\r\n").utf8)
        if !headOnly { c.output += body }
        if !keepAlive { c.closeWhenWritten = true }
        c.served += 1
        if c.phase == .head { c.enter(.answer, at: now, limits: limits) }
    }

    /// Writes what the connection has pending, as far as the socket takes it; false on an error.
    func flush(_ c: inout Connection) -> Bool {
        while !c.output.isEmpty {
            let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                c.output.removeFirst(n)
                continue
            }
            return n < 0 && (errno == EAGAIN || errno == EINTR)
        }
        return true
    }
}
