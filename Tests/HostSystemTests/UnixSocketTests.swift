import Foundation
import HostSystem
import TestSupport
import XCTest

/// UnixSocket.connect, as HostProcesses.server(ofSocket:) and the CRI client take its answers: a
/// connected descriptor (close-on-exec, non-blocking when asked), or the errno that stopped it
/// (refused where the socket's file has no listener), or a path too long for an address.
final class UnixSocketTests: XCTestCase {
    func testItConnectsOrSaysWhyNot() throws {
        let dir = try makeTemporaryDirectory("unix")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        XCTAssertEqual(UnixSocket.connect(to: dir + "/missing.sock"), .failure(.failed(ENOENT)))
        let long = "/" + String(repeating: "x", count: 107)
        XCTAssertEqual(UnixSocket.connect(to: long), .failure(.pathTooLong(limit: 107)))

        let path = dir + "/listening.sock"
        let listener = try listeningUnixSocket(at: path)
        for nonBlocking in [false, true] {
            guard case .success(let fd) = UnixSocket.connect(to: path, nonBlocking: nonBlocking) else {
                return XCTFail("no connection to \(path)")
            }
            XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
            XCTAssertEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, nonBlocking ? O_NONBLOCK : 0)
            close(fd)
        }
        // The socket's file stays once its listener is closed: nobody listens there, refused.
        close(listener)
        XCTAssertEqual(UnixSocket.connect(to: path, nonBlocking: true), .failure(.failed(ECONNREFUSED)))
    }
}
