import Foundation
import HostSystem
import Vocabulary
import XCTest

@testable import Transport

/// The agent's HTTP client against a server double on loopback that answers every request with
/// the same bytes: what a broken or hostile registry, token service or API server can send.
/// Each answer must be an error that names the problem (or the body, whole), never a trap and
/// never data silently cut short.
final class HTTPClientFramingTests: XCTestCase {
    /// A one-answer HTTP server double on 127.0.0.1 (port 0): reads a request head, then runs
    /// `answer` with the connection's descriptor, then closes it.
    final class CannedServer: @unchecked Sendable {
        let fd: Int32
        let port: UInt16

        init(_ answer: @escaping @Sendable (Int32) -> Void) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = self.fd
            let bound = withUnsafeMutablePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard bound, listen(fd, 8) == 0 else { throw AgentError(.io, "cannot listen on loopback") }
            port = UInt16(bigEndian: sa.sin_port)
            Thread.detachNewThread {
                while true {
                    let c = accept(fd, nil, nil)
                    // Shut down by deinit: the socket is closed here, by the thread that uses it,
                    // so its number cannot be the next server's while this thread still accepts
                    // on it (it was closed in deinit: a row's answer came from the row before).
                    guard c >= 0 else {
                        close(fd)
                        return
                    }
                    var request: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while !request.ends(with: Array("\r\n\r\n".utf8)) {
                        let n = recv(c, &buffer, buffer.count, 0)
                        guard n > 0 else { break }
                        request += buffer[0..<n]
                    }
                    answer(c)
                    close(c)
                }
            }
        }

        convenience init(_ bytes: String) throws {
            let data = Array(bytes.utf8)
            try self.init { c in CannedServer.send(c, data) }
        }

        static func send(_ c: Int32, _ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(c, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return }
                offset += n
            }
        }

        deinit {
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    func get(_ server: CannedServer, limit: Int = 64 * 1024, timeoutMilliseconds: Int32 = 2000) throws -> HTTPResponse {
        var watch = Stopwatch()
        let client = HTTPClient(timeoutMilliseconds: timeoutMilliseconds, maximumBodyBytes: limit)
        return try client.get(
            SimpleURL("http://127.0.0.1:\(server.port)/v2/")!, address: try IPAddress("127.0.0.1"), trust: nil, watch: &watch)
    }

    func failure(_ server: CannedServer, limit: Int = 64 * 1024) -> String {
        do {
            let r = try get(server, limit: limit)
            return "no error: \(r.status), \(r.body.count) bytes"
        } catch {
            return "\(error)"
        }
    }

    /// An IPv6 literal: the name checks take it bare, the Host header in brackets (RFC 9110 7.2);
    /// the header said `Host: ::1:9808` before.
    func testAnIPv6HostIsBracketedWhereAURLWritesIt() throws {
        let url = try XCTUnwrap(SimpleURL("http://[::1]:9808/status"))
        XCTAssertEqual(url.host, "::1")
        XCTAssertEqual(url.hostForURL, "[::1]")
        XCTAssertEqual(url.port, 9808)
        XCTAssertEqual(SimpleURL("https://registry.example/v2/")?.hostForURL, "registry.example")
    }

    func testLengthsFromTheWireAreCheckedNotTrusted() throws {
        let ok = "HTTP/1.1 200 OK\r\n"
        let rows: [(String, String)] = [
            // Trapped before (prefix(-1)): the agent died on every node that asked this server.
            (ok + "Content-Length: -1\r\n\r\n{}", "Content-Length '-1' is not a number of bytes"),
            (ok + "Content-Length: 99999999999999999999\r\n\r\n{}", "the response body exceeds 65536 bytes"),
            (ok + "Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}", "Content-Length has different values (2 and 5)"),
            (ok + "Content-Length: 0x10\r\n\r\n{}", "Content-Length '0x10' is not a number of bytes"),
            (
                ok + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                "both Transfer-Encoding and Content-Length"
            ),
            (ok + "Transfer-Encoding: gzip\r\n\r\nxx", "Transfer-Encoding 'gzip'"),
            // Trapped before (start + size overflowed).
            (ok + "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n{}\r\n0\r\n\r\n", "the response body exceeds 65536 bytes"),
            (ok + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", "the response body exceeds 65536 bytes"),
            (ok + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "the chunk size 'zz' is not hexadecimal"),
            (ok + "Transfer-Encoding: chunked\r\n\r\n64\r\n{\"a", "the chunked body ended without its last chunk"),
            (ok + "Transfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n", "a chunk's data is not followed by CRLF"),
            (ok + "Content-Length: 10\r\n\r\n{}", "2 of the 10 bytes of Content-Length arrived"),
            // Cut at the limit before, and the cut JSON parsed as if whole.
            (ok + "Content-Length: 70000\r\n\r\n" + String(repeating: " ", count: 70000), "the response body exceeds 65536 bytes"),
            (ok + "\r\n" + String(repeating: " ", count: 70000), "the response body exceeds 65536 bytes"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "the server did not answer HTTP"),
            ("", "the server did not answer HTTP"),
            (ok + "A: b\r\n", "the connection ended inside the response head"),
        ]
        for (answer, expected) in rows {
            let server = try CannedServer(answer)
            let got = failure(server)
            XCTAssertTrue(got.contains(expected), "\(answer.prefix(80).debugDescription): \(got)")
        }
    }

    func testWholeBodiesAreReadByTheirFraming() throws {
        let chunked = try CannedServer(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nTrailer: t\r\n\r\n")
        XCTAssertEqual(String(decoding: try get(chunked).body, as: UTF8.self), "Wikipedia")
        // 1xx interim answers are skipped; 204 has no body whatever it says.
        let interim = try CannedServer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        XCTAssertEqual(try get(interim).body, Array("{}".utf8))
        let noContent = try CannedServer("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
        XCTAssertEqual(try get(noContent).status, 204)
        // Same value twice is one length (RFC 9110 8.6).
        let twice = try CannedServer("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}")
        XCTAssertEqual(try get(twice).body, Array("{}".utf8))
    }

    func testTheLimitIsTheCallersAndLargeBodiesArriveWhole() throws {
        // A Node of 600 KiB, as the API server sends one with many images in its status.
        let body = Array(repeating: UInt8(ascii: " "), count: 600 * 1024)
        let server = try CannedServer { c in
            CannedServer.send(c, Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
            for start in stride(from: 0, to: body.count, by: 8000) {
                let part = body[start..<min(start + 8000, body.count)]
                CannedServer.send(c, Array((String(part.count, radix: 16) + "\r\n").utf8) + part + Array("\r\n".utf8))
            }
            CannedServer.send(c, Array("0\r\n\r\n".utf8))
        }
        XCTAssertEqual(try get(server, limit: 4 << 20).body.count, body.count)
        XCTAssertTrue(failure(server).contains("the response body exceeds 65536 bytes"), failure(server))
    }

    func testASlowDripEndsAtTheClientsDeadline() throws {
        // One byte every 100 ms, never ending: each read is quick, the whole is not.
        let server = try CannedServer { c in
            for b in Array("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".utf8) + Array(repeating: UInt8(ascii: " "), count: 100) {
                CannedServer.send(c, [b])
                usleep(100_000)
            }
        }
        let started = Date()
        XCTAssertThrowsError(try get(server, timeoutMilliseconds: 700)) { error in
            XCTAssertTrue("\(error)".contains("timeout"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
        // The deadline is the client's, across its requests (a check's budget): a second request
        // of the same client gets what is left, not a fresh timeout.
        let quick = try CannedServer { c in
            usleep(400_000)
            CannedServer.send(c, Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8))
        }
        var watch = Stopwatch()
        let client = HTTPClient(timeoutMilliseconds: 700)
        let url = SimpleURL("http://127.0.0.1:\(quick.port)/v2/")!
        XCTAssertEqual(try client.get(url, address: try IPAddress("127.0.0.1"), trust: nil, watch: &watch).status, 200)
        XCTAssertThrowsError(try client.get(url, address: try IPAddress("127.0.0.1"), trust: nil, watch: &watch))
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
