import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

final class HostRootTests: XCTestCase {
    var dir = ""
    var files: HostFiles!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory("hostroot")
        files = HostFiles(root: try HostRoot(dir))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func testHostPathRefusesRelativeAndDotDot() throws {
        assertAgentError(try HostPath("etc/ssl"), .invalidInput, "host path 'etc/ssl' is not absolute")
        assertAgentError(try HostPath("/etc/../../x"), .pathEscapesRoot, "host path '/etc/../../x' contains '..'")
        assertAgentError(try HostPath("/etc/x\0y"), .invalidInput, "host path contains a NUL byte")
        XCTAssertEqual(try HostPath("//etc/./ssl/").path, "/etc/ssl")
        assertAgentError(try HostPath("/etc").appending("../x"), .pathEscapesRoot, "path component '../x' is not a plain name")
        assertAgentError(try HostPath("/etc").appending("./x"), .pathEscapesRoot, "path component './x' is not a plain name")
    }

    func testMissingHostRootIsRefused() {
        assertAgentError(
            try HostRoot(dir + "/nope"), .invalidInput, "host root '\(dir)/nope' is not a directory",
            "pass --host-root with the folder where the node's / is mounted")
    }

    func testAbsoluteSymlinkIsResolvedInsideTheRoot() throws {
        try FileManager.default.createDirectory(atPath: dir + "/run/systemd/resolve", withIntermediateDirectories: true)
        try "nameserver 127.0.0.53\n".write(toFile: dir + "/run/systemd/resolve/stub-resolv.conf", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/etc/resolv.conf", withDestinationPath: "/run/systemd/resolve/stub-resolv.conf")
        XCTAssertEqual(try files.root.resolve(try HostPath("/etc/resolv.conf")), dir + "/run/systemd/resolve/stub-resolv.conf")
        XCTAssertEqual(try files.readString(try HostPath("/etc/resolv.conf")), "nameserver 127.0.0.53\n")
    }

    func testSymlinkLeadingOutOfTheRootIsRefused() throws {
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/etc/evil", withDestinationPath: "../../../../tmp")
        XCTAssertThrowsError(try files.writeAtomically(try HostPath("/etc/evil/x"), "x")) {
            XCTAssertEqual(($0 as? AgentError)?.code, .pathEscapesRoot)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/x") && (try? String(contentsOfFile: "/tmp/x", encoding: .utf8)) == "x")
    }

    func testAtomicWriteCreatesReplacesAndLeavesNoTemporaryFile() throws {
        let path = try HostPath("/etc/containerd/certs.d/r:443/hosts.toml")
        try files.writeAtomically(path, "one")
        XCTAssertEqual(try files.readString(path), "one")
        try files.writeAtomically(path, HostFiles.ownershipMarker + "\ntwo", mode: 0o600)
        XCTAssertEqual(try files.readString(path), HostFiles.ownershipMarker + "\ntwo")
        XCTAssertEqual(try files.list(path.parent), ["hosts.toml"])
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + path.path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        try files.remove(path)
        XCTAssertNil(try files.read(path))
    }

    /// A shared file the agent created (/etc/hosts where there was none) starts with the creation
    /// marker: it may be removed; without a marker at its start, a file is refused.
    func testAFileStartingWithTheCreationMarkerMayBeRemovedAndOnlySuch() throws {
        let path = try HostPath("/etc/hosts")
        try files.writeAtomically(path, HostFiles.creationMarker + " (there was none)\n10.0.0.1 a # node-agent\n")
        try files.remove(path)
        XCTAssertNil(try files.read(path))
        for text in ["10.0.0.1 a\n" + HostFiles.creationMarker + "\n", String(HostFiles.creationMarker.dropLast()), ""] {
            try files.writeAtomically(path, text)
            assertAgentError(try files.remove(path), .notOwned)
            XCTAssertEqual(try files.readString(path), text)
        }
    }

    /// A batch: in order, each file whole; a failure before the renames changes nothing.
    func testABatchReplacesInOrderOrNotAtAll() throws {
        let a = try HostPath("/etc/a/ca.crt")
        let b = try HostPath("/etc/a/hosts.toml")
        let old = try HostPath("/etc/b/old")
        try files.writeAtomically(old, HostFiles.ownershipMarker + "\nold")
        try files.perform([.write(a, Array("ca".utf8), mode: 0o644), .write(b, Array("toml".utf8), mode: 0o600), .remove(old)])
        XCTAssertEqual(try files.readString(a), "ca")
        XCTAssertEqual(try files.readString(b), "toml")
        XCTAssertNil(try files.read(old))
        XCTAssertEqual(try files.list(a.parent), ["ca.crt", "hosts.toml"])
        // The second file cannot be written (its folder is a file): the first is not replaced either.
        try files.writeAtomically(try HostPath("/etc/c"), "a file")
        XCTAssertThrowsError(
            try files.perform([.write(a, Array("new".utf8), mode: 0o644), .write(try HostPath("/etc/c/x"), [1], mode: 0o644)]))
        XCTAssertEqual(try files.readString(a), "ca")
        XCTAssertEqual(try files.list(a.parent), ["ca.crt", "hosts.toml"], "a temporary file was left")
    }

    func testReadRefusesOversizedFiles() throws {
        let path = try HostPath("/big")
        try files.writeAtomically(path, [UInt8](repeating: 65, count: 2000))
        assertAgentError(try files.read(path, limit: 1000), .io, "/big is larger than 1000 bytes")
        XCTAssertEqual(try files.read(path, limit: 2000)?.count, 2000)
    }

    func testUserIDsFromProcStatus() {
        let ids = HostProcesses.userIDs(status: "Name:\tcontainerd\nUmask:\t0022\nUid:\t0\t1000\t0\t0\nGid:\t0\t0\t0\t0\n")
        XCTAssertEqual(ids?.real, 0)
        XCTAssertEqual(ids?.effective, 1000)
        XCTAssertNil(HostProcesses.userIDs(status: "Name:\tx\nUid:\tzero\n"))
        XCTAssertNil(HostProcesses.userIDs(status: ""))
    }

    func testAProcessDescendsFromAUnitsMainProcessThroughItsParents() throws {
        // k3s (50, a unit's main pid) starts containerd (100) through a shim (70); another
        // containerd (200) runs under init; 300 names itself as its own parent.
        for (pid, parent) in [(50, 1), (70, 50), (100, 70), (200, 1), (300, 300)] {
            try files.writeAtomically(try HostPath("/proc/\(pid)/status"), "Name:\tx\nPPid:\t\(parent)\nUid:\t0\t0\t0\t0\n")
        }
        let processes = HostProcesses(files: files)
        XCTAssertEqual(processes.parentPID(100), 70)
        XCTAssertTrue(processes.descends(100, from: [50]))
        XCTAssertTrue(processes.descends(50, from: [50]))
        XCTAssertFalse(processes.descends(200, from: [50]))
        XCTAssertFalse(processes.descends(300, from: [50]))
        XCTAssertFalse(processes.descends(999, from: [50]))
    }

    func testOSReleaseParsing() {
        let os = OSRelease(parsing: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# comment\nID_LIKE='rhel fedora'\n")
        XCTAssertEqual(os.id, "debian")
        XCTAssertEqual(os.prettyName, "Debian GNU/Linux 12 (bookworm)")
        XCTAssertEqual(os.idLike, ["rhel", "fedora"])
    }
}
