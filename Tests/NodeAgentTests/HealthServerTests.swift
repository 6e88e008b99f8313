import AgentCore
import Foundation
import HostSystem
import Logging
import TestSupport
import Vocabulary
import XCTest

@testable import NodeAgent

/// The health endpoint's server over real sockets: keep-alive, pipelining, HEAD, the bound on
/// connections (the oldest shed for a new one), the request head's deadline, what each listener
/// answers to whom, and a prompt stop. (RunIntegrationTests covers it inside `run` with curl.)
final class HealthServerTests: XCTestCase {
    var server: HealthServer!
    var port: UInt16 = 0

    /// On port 0: the kernel picks a free port, the server says which.
    override func setUpWithError() throws {
        server = try HealthServer(host: "127.0.0.1", port: 0, cache: StatusCache(), logger: Logger(label: "test"))
        port = server.port
        XCTAssertNotEqual(port, 0)
        server.start()
    }

    override func tearDown() { server?.stop() }

    func connect(_ host: String = "127.0.0.1", port: UInt16? = nil) throws -> Int32 {
        let port = port ?? self.port
        let address = try IPAddress(host)
        let fd = socket(address.family.rawValue, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertEqual(address.withSocketAddress(port: port) { Glibc.connect(fd, $0, $1) }, 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }, bytes.count)
    }

    /// Reads until `count` responses (by their status lines) have arrived, or the peer closes.
    func receive(_ fd: Int32, responses count: Int) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        while text.components(separatedBy: "HTTP/1.1 ").count - 1 < count || !Self.lastResponseIsWhole(text) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return text
    }

    /// Whether the last response in `text` is whole: the body its Content-Length announces has
    /// arrived, or it ends at its head (the answer to HEAD).
    static func lastResponseIsWhole(_ text: String) -> Bool {
        guard let head = text.range(of: "\r\n\r\n", options: .backwards) else { return false }
        if head.upperBound == text.endIndex { return true }
        guard let field = text[..<head.lowerBound].range(of: "Content-Length: ", options: .backwards),
            let length = Int(text[field.upperBound...].prefix(while: \.isNumber))
        else { return false }
        return text[head.upperBound...].utf8.count >= length
    }

    /// The server has closed the connection (a read gives end of file).
    func assertClosedByPeer(_ fd: Int32, _ message: String = "the connection stayed open", line: UInt = #line) {
        var byte: UInt8 = 0
        XCTAssertEqual(recv(fd, &byte, 1, 0), 0, message, line: line)
    }

    func testKeepAlivePipeliningAndHead() throws {
        let fd = try connect()
        defer { close(fd) }
        send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = receive(fd, responses: 1)
        XCTAssertTrue(first.hasPrefix("HTTP/1.1 200 OK\r\n"), first)
        XCTAssertTrue(first.hasSuffix("\r\n\r\nok\n"), first)
        // Two requests in one segment, on the same connection: two answers, in order.
        send(fd, "GET /readyz HTTP/1.1\r\n\r\nHEAD /nope HTTP/1.1\r\n\r\n")
        let two = receive(fd, responses: 2)
        XCTAssertTrue(two.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), two)
        XCTAssertTrue(two.contains("no reconcile yet\nHTTP/1.1 404 Not Found\r\n"), two)
        XCTAssertTrue(two.hasSuffix("\r\n\r\n"), "HEAD has no body: \(two)")
        // Connection: close is honoured.
        send(fd, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(receive(fd, responses: 1).contains("Connection: close\r\n"))
        assertClosedByPeer(fd)
    }

    func testABadRequestIsAnsweredAndClosed() throws {
        let fd = try connect()
        defer { close(fd) }
        send(fd, "GET /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        let answer = receive(fd, responses: 1)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), answer)
        assertClosedByPeer(fd)
    }

    /// A client that stops sending mid-head gets 400; one that sends a body it was refused gets its
    /// 413 whole (the server reads and drops the rest before closing, instead of resetting).
    func testPartialHeadsAndRefusedBodies() throws {
        let partial = try connect()
        defer { close(partial) }
        send(partial, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
        shutdown(partial, Int32(SHUT_WR))
        XCTAssertTrue(receive(partial, responses: 1).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))

        let body = try connect()
        defer { close(body) }
        let payload = String(repeating: "x", count: 200_000)
        send(body, "POST /status HTTP/1.1\r\nContent-Length: \(payload.utf8.count)\r\n\r\n")
        usleep(100_000)
        // The server has answered and shut its side; the body it never wanted keeps coming.
        _ = payload.utf8.withContiguousStorageIfAvailable { Glibc.send(body, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let answer = receive(body, responses: 1)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), answer)
        XCTAssertTrue(answer.hasSuffix("no request body is accepted\n"), answer)
    }

    /// Every slot held by clients that say nothing: a new client (the kubelet's probe) is still
    /// answered at once, and the connection that waited longest is the one closed for it.
    func testAFullServerShedsItsOldestIdleConnectionForANewOne() throws {
        let idle = try (0..<server.limits.maxConnections).map { _ in try connect() }
        defer { idle.forEach { close($0) } }
        usleep(200_000)
        let start = Date()
        let probe = try connect()
        defer { close(probe) }
        send(probe, "GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n")
        let answer = receive(probe, responses: 1)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), answer)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "the probe waited for a slot")
        assertClosedByPeer(idle[0], "the oldest idle connection was not the one shed")
        var byte: UInt8 = 0
        XCTAssertEqual(recv(idle[idle.count - 1], &byte, 1, Int32(MSG_DONTWAIT)), -1, "a younger idle connection was closed")
        XCTAssertEqual(errno, EAGAIN)
    }

    /// A head dripped a byte at a time does not buy time: the deadline runs from the connection,
    /// not from the last byte, and the client is cut off without an answer.
    func testADrippedRequestHeadIsCutOffAtItsDeadline() throws {
        let fd = try connect()
        defer { close(fd) }
        let start = Date()
        send(fd, "GET /healthz HTTP/1.1\r\nX-Slow: ")
        var closedAfter: TimeInterval?
        var byte: UInt8 = 0
        while Date().timeIntervalSince(start) < 8 {
            usleep(250_000)
            if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 {
                closedAfter = Date().timeIntervalSince(start)
                break
            }
            _ = Glibc.send(fd, "a", 1, Int32(MSG_NOSIGNAL))
        }
        let after = try XCTUnwrap(closedAfter, "a client dripping its head for 8 s was never cut off")
        let limit = Double(server.limits.headTimeout) / 1e9
        XCTAssertGreaterThan(after, limit - 0.3)
        XCTAssertLessThan(after, limit + 0.8)
    }

    /// On a kept-alive connection the next head has the whole time again from the last answer;
    /// a connection idle past it is closed (Prometheus opens a new one for its next scrape).
    func testAKeptAliveConnectionHasTheHeadTimeAfterEachAnswer() throws {
        let fd = try connect()
        defer { close(fd) }
        let limit = Double(server.limits.headTimeout) / 1e9
        for _ in 0..<2 {
            usleep(UInt32(limit * 0.7 * 1e6))
            send(fd, "GET /healthz HTTP/1.1\r\n\r\n")
            XCTAssertTrue(receive(fd, responses: 1).hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
        let idleSince = Date()
        assertClosedByPeer(fd)
        XCTAssertLessThan(Date().timeIntervalSince(idleSince), limit + 0.8)
    }

    /// What each path gets on each kind of listener, from a peer on the node or elsewhere.
    func testAnswersByListenerAndPeer() throws {
        var s = StatusCache.Snapshot()
        s.status = Data("{\"ready\":false,\"certificates\":[{\"subject\":\"CN=Private CA\"}]}".utf8)
        s.metrics = Data("node_agent_ready 0\n".utf8)
        s.readyReason = "runtime-proxy: proxyconnect http://10.0.0.9:3128 refused; CA at /host/etc/ssl/certs"
        func answer(_ path: String, _ scope: HealthServer.Scope, local: Bool, method: String = "GET") -> (Int, String) {
            let a = HealthServer.answer(method: method, path: path, scope: scope, local: local, snapshot: s)
            return (a.status, String(decoding: a.body, as: UTF8.self))
        }
        XCTAssertEqual(answer("/status", .all, local: true).0, 200)
        XCTAssertEqual(answer("/readyz", .all, local: true).1, s.readyReason + "\n")
        // From elsewhere, on an endpoint someone bound to 0.0.0.0: nothing of the report.
        XCTAssertEqual(answer("/status", .all, local: false).0, 403)
        XCTAssertFalse(answer("/status", .all, local: false).1.contains("CN="))
        XCTAssertEqual(answer("/readyz", .all, local: false).0, 503)
        XCTAssertEqual(answer("/readyz", .all, local: false).1, "not ready\n")
        XCTAssertEqual(answer("/healthz", .all, local: false).0, 200)
        XCTAssertEqual(answer("/metrics", .all, local: false).0, 200)
        // The metrics listener: /metrics and nothing else, whoever asks.
        XCTAssertEqual(answer("/metrics", .metrics, local: false).1, "node_agent_ready 0\n")
        for path in ["/status", "/readyz", "/healthz", "/"] {
            XCTAssertEqual(answer(path, .metrics, local: false).0, 404, path)
            XCTAssertEqual(answer(path, .metrics, local: true).0, 404, path)
        }
        XCTAssertEqual(answer("/metrics", .metrics, local: false, method: "POST").0, 405)
    }

    func testLoopbackAndListenAddresses() throws {
        for host in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] { XCTAssertTrue(HealthServer.isLoopback(host), host) }
        for host in ["0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "128.0.0.1"] {
            XCTAssertFalse(HealthServer.isLoopback(host), host)
        }
        XCTAssertEqual(try HealthServer.address("[::1]:9808", option: "--listen", example: "e")?.host, "::1")
        XCTAssertEqual(try HealthServer.address("0.0.0.0:9809", option: "--listen", example: "e")?.port, 9809)
        XCTAssertNil(try HealthServer.address("off", option: "--listen", example: "e"))
        assertAgentError(
            try HealthServer.address("9808", option: "--metrics-listen", example: "0.0.0.0:9809"), .invalidInput,
            "--metrics-listen '9808' is not HOST:PORT", "e.g. 0.0.0.0:9809, or off")
        assertAgentError(
            try HealthServer.address("node-1:9808", option: "--listen", example: "127.0.0.1:9808"), .invalidInput,
            "--listen 'node-1:9808' does not name its host by IP address", "e.g. 127.0.0.1:9808, or off")
    }

    /// The metrics listener over a real socket: Prometheus' scrape, and nothing of the endpoint's.
    func testTheMetricsListenerServesMetricsOnly() throws {
        let metrics = try HealthServer(host: "127.0.0.1", port: 0, scope: .metrics, cache: StatusCache(), logger: Logger(label: "test"))
        metrics.start()
        defer { metrics.stop() }
        let fd = try connect(port: metrics.port)
        defer { close(fd) }
        send(fd, "GET /metrics HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n")
        let two = receive(fd, responses: 2)
        XCTAssertTrue(two.hasPrefix("HTTP/1.1 200 OK\r\n"), two)
        XCTAssertTrue(two.contains("node_agent_ready 0\n"), two)
        XCTAssertTrue(two.contains("HTTP/1.1 404 Not Found\r\n"), two)
        XCTAssertFalse(two.contains("started_at"), two)
    }

    func testATakenPortIsNamedAndIPv6Serves() throws {
        assertAgentError(
            try HealthServer(host: "127.0.0.1", port: Int(port), cache: StatusCache(), logger: Logger(label: "test")), .io,
            "cannot listen on 127.0.0.1:\(port): Address already in use", "pick a free --listen address, or off")
        let v6 = try HealthServer(host: "::1", port: 0, cache: StatusCache(), logger: Logger(label: "test"))
        XCTAssertNotEqual(v6.port, 0)
        v6.start()
        defer { v6.stop() }
        let fd = try connect("::1", port: v6.port)
        defer { close(fd) }
        send(fd, "GET /healthz HTTP/1.0\r\n\r\n")
        XCTAssertTrue(receive(fd, responses: 1).hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    func testStopIsPromptAndClosesConnections() throws {
        let fd = try connect()
        defer { close(fd) }
        usleep(100_000)
        let start = Date()
        server.stop()
        server = nil
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        assertClosedByPeer(fd)
    }
}
