import FoundationEssentials
import HTTPWire
import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 response, head and (bounded) body.
package struct HTTPResponse {
    package var status: Int
    package var headers: [(String, String)]
    package var body: [UInt8]

    package func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
}

/// A URL of the parts this agent needs: scheme, host, port, path with query.
package struct SimpleURL: Equatable {
    package var tls: Bool
    /// The host alone (SNI, the name check): an IPv6 address without brackets.
    package var host: String
    /// The host as a URL and the Host header write it: an IPv6 address in brackets.
    package var hostForURL: String
    package var port: UInt16
    package var pathAndQuery: String

    package init?(_ text: String) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            tls = true
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            tls = false
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        guard !authority.isEmpty, !authority.contains("@"), let address = try? RegistryAddress(String(authority)) else { return nil }
        host = address.hostName
        hostForURL = address.hostForURL
        port = address.portWasGiven ? address.port : (tls ? 443 : 80)
        pathAndQuery = path
        guard !path.contains(where: { $0 == " " || $0.isNewline }) else { return nil }
    }
}

/// A minimal HTTP/1.1 client: one request per connection, `Connection: close`. Nothing from
/// the wire is trusted: the head and body are read by `HTTPResponseReader` (lengths and chunk
/// sizes checked against the caller's limit, framing that can be read two ways refused), and all
/// of a client's requests share one deadline (its check's budget), so a server that drips a
/// byte at a time holds it no longer than that. Over TLS it verifies like `TLSProbe` and refuses
/// to talk when that fails.
package struct HTTPClient {
    package static let maximumHeaderBytes = HTTPResponseHead.maximumBytes
    /// The registry's and token service's answers the probes read are small JSON documents.
    package static let defaultMaximumBodyBytes = 64 * 1024

    package var timeoutMilliseconds: Int32
    /// The largest body taken; a larger one is an error, never a truncated body.
    package var maximumBodyBytes: Int
    /// When every request of this client must be over (monotonic milliseconds).
    package let deadline: UInt64

    package init(timeoutMilliseconds: Int32, maximumBodyBytes: Int = Self.defaultMaximumBodyBytes) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maximumBodyBytes = maximumBodyBytes
        deadline = nowMilliseconds() + UInt64(max(0, timeoutMilliseconds))
    }

    package struct VerifyFailed: Error, CustomStringConvertible {
        package var code: Int
        package var description: String { "TLS verification failed: \(TLSConnection.verifyText(code))" }
    }

    /// `reusing`: a TLS connection to `address` for `url`'s host whose handshake is done and
    /// unused (a TLS check's): the request is made on it once its peer chain verifies with
    /// `trust`, and on a connection of its own where it ends before an answer (a server that
    /// closed it meanwhile), so that only the server's answer to a fresh request is judged.
    package func get(
        _ url: SimpleURL, address: IPAddress, trust trustSource: TrustSource?, headers: [(String, String)] = [],
        reusing: TLSConnection? = nil, watch: inout Stopwatch
    ) throws -> HTTPResponse {
        if let reusing, url.tls {
            do {
                return try send("GET", url, address: address, trust: trustSource, headers: headers, body: [], on: reusing, watch: &watch)
            } catch let e as VerifyFailed {
                throw e
            } catch let e as HTTPAnswerError where e.answered {
                throw e
            } catch {
                watch.lap("no answer on the check's connection")
            }
        }
        return try send("GET", url, address: address, trust: trustSource, headers: headers, body: [], watch: &watch)
    }

    package func send(
        _ method: String, _ url: SimpleURL, address: IPAddress, trust trustSource: TrustSource?, headers: [(String, String)] = [],
        body: [UInt8], on reused: TLSConnection? = nil, watch: inout Stopwatch
    ) throws -> HTTPResponse {
        var trust: TLSTrust?
        if url.tls {
            guard let trustSource else { throw AgentError(.io, "no trust to verify \(url.host) with") }
            trust = try TLSTrust.cached(trustSource)
            watch.lap("load trust")
        }
        let now = nowMilliseconds()
        guard now < deadline else { throw SocketError(code: ETIMEDOUT, what: "another request within the same budget") }
        let socket: Socket
        var tls: TLSConnection?
        if let reused, let trust {
            guard !reused.socket.peerHungUp else { throw SocketError(code: EPIPE, what: "the check's connection") }
            let verified = reused.verify(with: trust)
            watch.lap("verify")
            guard verified.code == 0 else { throw VerifyFailed(code: verified.code) }
            // This client's deadline from here on, not the check's that made it.
            socket = reused.socket
            socket.deadline = deadline
            tls = reused
        } else {
            // The socket's own deadline bounds everything on this connection (handshake, writes, reads).
            socket = try Socket.connect(
                to: address, port: url.port, type: Int32(SOCK_STREAM.rawValue),
                timeoutMilliseconds: Int32(clamping: deadline - now))
            watch.lap("connect")
        }
        if let trust, tls == nil {
            let c = try TLSConnection(
                socket: socket, trust: trust, serverName: url.host,
                serverIsIP: (try? IPAddress(url.host)) != nil)
            try c.handshake()
            watch.lap("handshake")
            guard c.verifyCode == 0 else { throw VerifyFailed(code: c.verifyCode) }
            tls = c
        }
        let hostHeader = (url.tls && url.port == 443) || (!url.tls && url.port == 80) ? url.hostForURL : "\(url.hostForURL):\(url.port)"
        var request =
            "\(method) \(url.pathAndQuery) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: node-agent\r\nAccept: */*\r\nConnection: close\r\n"
        if !body.isEmpty || method != "GET" { request += "Content-Length: \(body.count)\r\n" }
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let write: ([UInt8]) throws -> Void = { bytes in if let tls { try tls.write(bytes) } else { try socket.writeAll(bytes) } }
        let read: (Int) throws -> [UInt8] = { max in
            if let tls { return try tls.read(max: max) } else { return try socket.readSome(max: max) }
        }
        try write(Array(request.utf8) + body)

        var reader = HTTPResponseReader(method: method, bodyLimit: maximumBodyBytes)
        var answered = false
        do {
            while !reader.isComplete {
                let chunk = try read(64 * 1024)
                if chunk.isEmpty { break }
                answered = true
                try reader.take(chunk)
            }
            let (head, received) = try reader.finish()
            watch.lap("request")
            return HTTPResponse(status: head.status, headers: head.headers, body: received)
        } catch let e as HTTPResponseError {
            throw HTTPAnswerError(answered: answered, reason: e.description)
        }
    }

    /// Decodes a chunked body (as much of it as arrived, until the first error); extensions and
    /// trailers are ignored.
    package static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var decoder = HTTPBodyDecoder(framing: .chunked, limit: defaultMaximumBodyBytes)
        _ = try? decoder.take(bytes[...])
        return decoder.body
    }
}

/// An answer that cannot be read as HTTP/1.1 (its framing, its size), or none: the connection
/// closed before a byte of it (`answered` false).
public struct HTTPAnswerError: Error, CustomStringConvertible {
    public let answered: Bool
    public let reason: String
    public var description: String { reason }
}

/// One request with the agent's bounded client, to `address` (no name is resolved): for the
/// Kubernetes API over HTTPS, verified with `trustFile` (SNI and name check for the URL's host),
/// and for the agent's own health endpoint over plain HTTP (`trustFile` nil). A body over
/// `maximumBodyBytes` is an error. Throws `SocketError` (connect, send, receive; timeouts) and
/// `HTTPAnswerError` as they came.
public func httpRequest(
    _ method: String, url: String, address: IPAddress, trustFile: String?, headers: [(String, String)] = [],
    body: [UInt8] = [], timeoutMilliseconds: Int32 = 10_000, maximumBodyBytes: Int = 64 * 1024
) throws -> (status: Int, body: [UInt8]) {
    guard let parsed = SimpleURL(url) else { throw AgentError(.invalidInput, "'\(url.escapedForMessage)' is not an http(s) URL") }
    var watch = Stopwatch()
    let r = try HTTPClient(timeoutMilliseconds: timeoutMilliseconds, maximumBodyBytes: maximumBodyBytes).send(
        method, parsed, address: address, trust: trustFile.map { .file($0) },
        headers: headers, body: body, watch: &watch)
    return (r.status, r.body)
}
