import CRIClient
import Foundation
import TestSupport
import XCTest

/// The call's failures without a runtime: a missing socket, one that never answers, one that does
/// not speak HTTP/2, one that takes the call and never answers it. Each ends within the timeout.
final class CRIClientCallTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "cri-client-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testAMissingSocketThrowsNamingIt() async throws {
        let path = folder + "/containerd.sock"
        do {
            _ = try await CRIClient.version(socketPath: path, timeoutSeconds: 2)
            XCTFail("a missing socket answered")
        } catch {
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("No such file or directory"), "\(error)")
        }
        // A path no unix socket address holds is said as such, not tried.
        let long = folder + "/" + String(repeating: "x", count: 108)
        do {
            _ = try await CRIClient.version(socketPath: long, timeoutSeconds: 2)
            XCTFail("a path too long answered")
        } catch {
            XCTAssertEqual(
                "\(error)",
                "cannot connect to the container runtime's socket \(long): the path is longer than a unix socket address allows (107 bytes)"
            )
        }
    }

    /// A socket nobody accepts on (the kernel queues the connection): the pull's result is
    /// deadline exceeded after the timeout; `version` throws.
    func testASilentSocketTimesOut() async throws {
        let (path, fd) = try listen()
        defer { close(fd) }
        let start = Date()
        let r = try await CRIClient.pullImage(socketPath: path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 0.5)
        XCTAssertEqual(r.code, 4, r.message)
        XCTAssertFalse(r.ok)
        XCTAssertEqual(r.message, "no answer from the container runtime at \(path) within 0.5 s")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
        do {
            _ = try await CRIClient.version(socketPath: path, timeoutSeconds: 0.3)
            XCTFail("a silent socket answered Version")
        } catch {
            XCTAssertTrue("\(error)".contains("no answer from the container runtime at \(path) within 0.3 s"), "\(error)")
        }
    }

    /// A peer that answers the HTTP/2 preface with its SETTINGS and then says nothing more (a
    /// runtime that takes the call and never answers it): at the timeout the pull's result is
    /// deadline exceeded naming the socket and the seconds, not grpc's words for a cancelled call.
    func testAServerThatTakesTheCallAndNeverAnswersTimesOutSayingSo() async throws {
        let (path, fd) = try listen()
        let peer = AcceptLoop(fd) { c in
            // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
            let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
            _ = send(c, settings, settings.count, Int32(MSG_NOSIGNAL))
        }
        defer { peer.stop() }
        let start = Date()
        let r = try await CRIClient.pullImage(socketPath: path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 1)
        XCTAssertFalse(r.ok)
        XCTAssertEqual(r.code, 4, r.message)
        XCTAssertEqual(r.message, "no answer from the container runtime at \(path) within 1.0 s")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    /// A peer that answers the HTTP/2 preface with HTTP/1.1 and hangs up: a protocol failure.
    func testAPeerThatIsNotGRPCThrows() async throws {
        let (path, fd) = try listen()
        // Answers each connection (the reachability check's, then grpc's) and hangs up.
        let peer = AcceptLoop(fd) { c in
            // MSG_NOSIGNAL: the reachability check hangs up at once (EPIPE, not SIGPIPE).
            _ = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n".withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            shutdown(c, Int32(SHUT_RDWR))
        }
        defer { peer.stop() }
        do {
            _ = try await CRIClient.pullImage(socketPath: path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
            XCTFail("a peer that is not gRPC answered")
        } catch {
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("is not an HTTP/2 (gRPC) server"), "\(error)")
        }
    }

    // MARK: helpers

    /// A peer's thread that accepts on a listening socket and hands each connection to `answer`,
    /// until `stop`. One owner for every descriptor: `stop` shuts the socket down, waits until the
    /// thread has left its loop and closed the connections it took, and only then closes the
    /// socket. Before, a test closed the socket while its peer's thread was between two accepts;
    /// the next test's socket got the same number, and that thread accepted its connection and
    /// answered "HTTP/1.1 400" (testASilentSocketTimesOut failed so in a clean-clone run, and
    /// always with a pause of 1.2 s put after the peer's close).
    final class AcceptLoop: Sendable {
        private let fd: Int32
        private let done = DispatchSemaphore(value: 0)

        init(_ fd: Int32, _ answer: @escaping @Sendable (Int32) -> Void) {
            self.fd = fd
            Thread.detachNewThread { [done] in
                var taken: [Int32] = []
                while true {
                    let c = accept(fd, nil, nil)
                    if c < 0 { break }
                    taken.append(c)
                    answer(c)
                }
                taken.forEach { close($0) }
                done.signal()
            }
        }

        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
            done.wait()
            close(fd)
        }
    }

    /// A listening unix socket in the test's folder that accepts nothing by itself.
    func listen() throws -> (String, Int32) {
        let path = folder + "/silent.sock"
        return (path, try listeningUnixSocket(at: path))
    }
}
