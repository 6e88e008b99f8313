import FoundationEssentials
import Glibc
import HTTPWire
import HostSystem
import Transport
import Vocabulary

/// The API as a watch uses it: a GET's answer, and a watch's stream of events. `KubeAPI` is the
/// real one; the tests give a scripted double.
public protocol KubeWatchTransport: Sendable {
    func get(_ path: String) throws -> (status: Int, json: JSONValue?)
    /// A watch request: each line of a 200's body (one JSON watch event) to `event` as it
    /// arrives, until the server ends the stream (after `seconds`, its timeoutSeconds) or
    /// `event` throws; the status, and the JSON of an answer that is not a stream (a refusal).
    func watch(_ path: String, seconds: Int, event: ([UInt8]) throws -> Void) throws -> (status: Int, json: JSONValue?)
}

/// A watch stream's bounds: nothing from the wire grows the agent's memory past them.
public enum KubeWatchBounds {
    /// The longest event line taken (an EndpointSlice holds at most 1,000 endpoints, 100 by
    /// default: tens of KiB); a longer one ends the stream with an error.
    public static let maximumEventBytes = 1 << 20
    /// At most this much of one stream is read; then it is closed and the watch starts again
    /// from the last resourceVersion (a server that streams without end holds no more).
    public static let maximumStreamBytes = 64 << 20
}

extension KubeAPI: KubeWatchTransport {
    public func get(_ path: String) throws -> (status: Int, json: JSONValue?) {
        try request("GET", path)
    }

    /// One connection (`Connection: close`), verified with the API's CA file as every request
    /// of the agent; the socket's deadline is the watch's timeout and a minute more, and TCP
    /// keepalives (30 s idle, 3 probes 10 s apart) see a peer that went away without a word.
    public func watch(_ path: String, seconds: Int, event: ([UInt8]) throws -> Void) throws -> (status: Int, json: JSONValue?) {
        let token = try self.token()
        guard let url = SimpleURL(base + path) else { throw AgentError(.invalidInput, "'\(path.escapedForMessage)' is not a path") }
        let trust = try TLSTrust.cached(.file(caFile))
        let socket = try Socket.connect(
            to: address, port: url.port, type: Int32(SOCK_STREAM.rawValue),
            timeoutMilliseconds: Int32(clamping: (seconds + 60) * 1000))
        var on: Int32 = 1
        setsockopt(socket.fd, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
        for (option, value) in [(TCP_KEEPIDLE, Int32(30)), (TCP_KEEPINTVL, 10), (TCP_KEEPCNT, 3)] {
            var v = value
            setsockopt(socket.fd, Int32(IPPROTO_TCP), option, &v, socklen_t(MemoryLayout<Int32>.size))
        }
        let tls = try TLSConnection(socket: socket, trust: trust, serverName: url.host, serverIsIP: (try? IPAddress(url.host)) != nil)
        try tls.handshake()
        guard tls.verifyCode == 0 else {
            throw AgentError(.io, "TLS verification of the API failed: \(TLSConnection.verifyText(tls.verifyCode))")
        }
        let request =
            "GET \(url.pathAndQuery) HTTP/1.1\r\nHost: \(url.hostForURL):\(url.port)\r\nUser-Agent: node-agent\r\n"
            + "Accept: application/json\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\n\r\n"
        try tls.write(Array(request.utf8))
        var lines = WatchLines()
        var reader = HTTPResponseReader(bodyLimit: KubeWatchBounds.maximumEventBytes + 64 * 1024)
        var read = 0
        do {
            while !reader.isComplete {
                let bytes = try tls.read(max: 64 * 1024)
                if bytes.isEmpty { break }
                read += bytes.count
                try reader.take(bytes)
                guard let head = reader.head else { continue }
                guard head.status == 200 else { continue }
                for line in try lines.take(reader.drainBody()) { try event(line) }
                if read > KubeWatchBounds.maximumStreamBytes { return (200, nil) }
            }
            let (head, body) = try reader.finish()
            guard head.status == 200 else { return (head.status, try? JSONValue.parse(body)) }
            for line in try lines.take(body) { try event(line) }
            return (200, nil)
        } catch let e as HTTPResponseError {
            throw AgentError(.io, "the watch's answer: \(e.description)")
        }
    }
}

/// A watch body's lines: one JSON event each, as the API server writes them (`\n` after each).
package struct WatchLines {
    private var pending: [UInt8] = []

    package init() {}

    /// The whole lines in `bytes` with what came before; a line longer than
    /// `KubeWatchBounds.maximumEventBytes` is an error.
    package mutating func take(_ bytes: [UInt8]) throws -> [[UInt8]] {
        pending += bytes
        var lines: [[UInt8]] = []
        var start = pending.startIndex
        while let end = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if end > start { lines.append(Array(pending[start..<end])) }
            start = end + 1
        }
        pending.removeFirst(start)
        guard pending.count <= KubeWatchBounds.maximumEventBytes, lines.allSatisfy({ $0.count <= KubeWatchBounds.maximumEventBytes })
        else {
            throw AgentError(.io, "a watch event longer than \(KubeWatchBounds.maximumEventBytes) bytes")
        }
        return lines
    }
}
