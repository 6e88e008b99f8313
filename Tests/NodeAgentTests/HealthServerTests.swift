import AgentCore
import Foundation
import HostSystem
import Logging
import TestSupport
import Vocabulary
import XCTest

@testable import NodeAgent

/// The health endpoint's server over real sockets: keep-alive, pipelining, HEAD, the bound on
/// connections and a prompt stop. (RunIntegrationTests covers it inside `run` with curl.)
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

    func testConnectionsAreBoundedAndIdleOnesAreCutOff() throws {
        let idle = try (0..<HealthServer.maxConnections).map { _ in try connect() }
        defer { idle.forEach { close($0) } }
        usleep(200_000)
        // One more is not served while every slot is taken; once the idle ones are cut off (5 s), it is.
        let start = Date()
        let extra = try connect()
        defer { close(extra) }
        send(extra, "GET /healthz HTTP/1.1\r\n\r\n")
        let answer = receive(extra, responses: 1)
        let waited = Date().timeIntervalSince(start)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), answer)
        XCTAssertGreaterThan(waited, 3, "served past the bound")
        XCTAssertLessThan(waited, 9)
        assertClosedByPeer(idle[0], "an idle connection was not cut off")
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
