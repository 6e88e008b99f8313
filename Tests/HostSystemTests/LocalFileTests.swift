import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// `HostFiles.readLocalFile`: the one reader of files named on the command line (`--ca`,
/// `--registry-auth`, `--config`), with the guards of the host's files.
final class LocalFileTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "node-agent-local-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testRegularFilesAndLinksToThemAreRead() throws {
        try "KEY=1\n".write(toFile: dir + "/file", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "file")
        XCTAssertEqual(try HostFiles.readLocalFile(dir + "/file", what: "config file", limit: 100), Array("KEY=1\n".utf8))
        XCTAssertEqual(try HostFiles.readLocalFile(dir + "/link", what: "config file", limit: 100), Array("KEY=1\n".utf8))
        XCTAssertEqual(try HostFiles.readLocalFile(dir + "/file", what: "config file", limit: 6).count, 6)
    }

    func testEachRefusalNamesTheFileWithTheCallersCode() throws {
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        try String(repeating: "a", count: 101).write(toFile: dir + "/big", atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            (dir + "/missing", "CA file \(dir)/missing does not exist"),
            (dir + "/folder/missing/x", "CA file \(dir)/folder/missing/x does not exist"),
            (dir + "/folder", "CA file \(dir)/folder is a folder"),
            (dir + "/big", "CA file \(dir)/big is larger than 100 bytes"),
            ("/dev/null", "CA file /dev/null is not a regular file (a FIFO, socket or device)"),
        ]
        for (path, message) in cases {
            XCTAssertThrowsError(try HostFiles.readLocalFile(path, what: "CA file", limit: 100, code: .invalidCertificate), path) {
                let error = $0 as? AgentError
                XCTAssertEqual(error?.code, .invalidCertificate, path)
                XCTAssertEqual(error?.message, message)
            }
        }
    }

    func testAFailedWriteCarriesTheErrnoAsItsCause() throws {
        try "a file, not a folder".write(toFile: dir + "/plain", atomically: true, encoding: .utf8)
        let files = HostFiles(root: try HostRoot(dir))
        assertAgentError(try files.writeAtomically(try HostPath("/plain/child"), "x"), .io, cause: .errno(ENOTDIR))
    }

    func testAFIFOIsRefusedAtOnceNotWaitedOn() throws {
        let fifo = dir + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        // A reader that opened it would wait for a writer for ever: one comes after 3 s, so that
        // such a reader fails this test on its time instead of hanging it.
        DispatchQueue.global().asyncAfter(deadline: .now() + 3) {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
        let start = Date()
        XCTAssertThrowsError(try HostFiles.readLocalFile(fifo, what: "config file", limit: 1 << 20)) {
            XCTAssertEqual(($0 as? AgentError)?.code, .invalidInput)
            XCTAssertEqual(($0 as? AgentError)?.message, "config file \(fifo) is not a regular file (a FIFO, socket or device)")
            XCTAssertEqual(($0 as? AgentError)?.hint, "pass a file")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    func testTheHostsReaderNamesAFileOverItsLimit() throws {
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/etc/big"), String(repeating: "a", count: 11))
        XCTAssertEqual(try files.read(try HostPath("/etc/big"), limit: 11)?.count, 11)
        XCTAssertThrowsError(try files.read(try HostPath("/etc/big"), limit: 10)) {
            XCTAssertEqual(($0 as? AgentError)?.code, .io)
            XCTAssertEqual(($0 as? AgentError)?.message, "/etc/big is larger than 10 bytes")
        }
    }

    func testTheOwnershipMarkerIsTheFirstLine() {
        XCTAssertTrue(HostFiles.isOwned(HostFiles.ownershipMarker + "\nserver = \"https://r:443\"\n"))
        XCTAssertFalse(HostFiles.isOwned("server = \"https://r:443\"\n" + HostFiles.ownershipMarker + "\n"))
        XCTAssertFalse(HostFiles.isOwned(nil))
        XCTAssertFalse(HostFiles.ownershipMarker.contains("\n"))
    }
}
