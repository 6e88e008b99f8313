import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Links planted where the agent writes, replaces or removes: root must not follow them out of
/// what it owns. Every case checks its canary (a file or folder the link points to) untouched.
/// Each case runs with openat2(2) and again with the fallback walk.
final class HostLinkRefusalTests: XCTestCase {
    var dir = ""
    var outside = ""
    var files: HostFiles!
    let marker = HostFiles.ownershipMarker + "\n"

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory("links-root")
        outside = try makeTemporaryDirectory("links-outside")
        files = HostFiles(root: try HostRoot(dir), ledger: HostFiles.defaultLedger)
        for folder in ["/etc/containerd/certs.d", "/usr/local/share/ca-certificates", "/etc/important"] {
            try FileManager.default.createDirectory(atPath: dir + folder, withIntermediateDirectories: true)
        }
        try "canary\n".write(toFile: outside + "/canary", atomically: false, encoding: .utf8)
        try "inside canary\n".write(toFile: dir + "/etc/important/canary", atomically: false, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        HostRoot.useOpenat2 = true
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.removeItem(atPath: outside)
    }

    func link(_ at: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: dir + at, withDestinationPath: target)
    }

    func assertCanariesUntouched(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try? String(contentsOfFile: outside + "/canary", encoding: .utf8), "canary\n", file: file, line: line)
        XCTAssertEqual(
            try? String(contentsOfFile: dir + "/etc/important/canary", encoding: .utf8), "inside canary\n", file: file, line: line)
        XCTAssertEqual(try? FileManager.default.contentsOfDirectory(atPath: outside), ["canary"], file: file, line: line)
    }

    func testAWriteOntoALinkIsRefused() throws { try bothWays(caseAWriteOntoALinkIsRefused) }

    func caseAWriteOntoALinkIsRefused() throws {
        // hosts.toml planted as a link to a file outside the root, and to one inside it.
        try FileManager.default.createDirectory(atPath: dir + "/etc/containerd/certs.d/r:443", withIntermediateDirectories: true)
        try link("/etc/containerd/certs.d/r:443/hosts.toml", to: outside + "/canary")
        try link("/etc/containerd/certs.d/r:443/ca.crt", to: "/etc/important/canary")
        for name in ["hosts.toml", "ca.crt"] {
            let path = try HostPath("/etc/containerd/certs.d/r:443/\(name)")
            assertAgentError(try files.writeAtomically(path, marker + "x"), .notOwned)
        }
        // A batch with one refused file changes none of its files.
        let other = try HostPath("/usr/local/share/ca-certificates/node-agent-r-443-1.crt")
        assertAgentError(
            try files.perform([
                .write(other, Array((marker + "pem").utf8), mode: 0o644),
                .write(try HostPath("/etc/containerd/certs.d/r:443/hosts.toml"), Array(marker.utf8), mode: 0o644),
            ]), .notOwned)
        XCTAssertNil(try files.read(other))
        XCTAssertNotNil(readSymlink(dir + "/etc/containerd/certs.d/r:443/hosts.toml"))
        assertCanariesUntouched()
    }

    func testARemovalOfALinkOrAForeignFileIsRefused() throws { try bothWays(caseARemovalOfALinkOrAForeignFileIsRefused) }

    func caseARemovalOfALinkOrAForeignFileIsRefused() throws {
        try link("/usr/local/share/ca-certificates/node-agent-r-443-1.crt", to: outside + "/canary")
        try (marker + "pem").write(
            toFile: dir + "/usr/local/share/ca-certificates/node-agent-r-443-2.crt", atomically: false, encoding: .utf8)
        try "someone else's\n".write(
            toFile: dir + "/usr/local/share/ca-certificates/node-agent-r-443-3.crt", atomically: false, encoding: .utf8)
        let anchors = try HostPath("/usr/local/share/ca-certificates")
        assertAgentError(try files.remove(try anchors.appending("node-agent-r-443-1.crt")), .notOwned)
        assertAgentError(try files.remove(try anchors.appending("node-agent-r-443-3.crt")), .notOwned)
        try files.remove(try anchors.appending("node-agent-r-443-2.crt"))
        XCTAssertEqual(try files.list(anchors), ["node-agent-r-443-1.crt", "node-agent-r-443-3.crt"])
        // The link itself goes through removeEntry (a trust store's links), never its target.
        try files.removeEntry(try anchors.appending("node-agent-r-443-1.crt"))
        XCTAssertEqual(try files.list(anchors), ["node-agent-r-443-3.crt"])
        assertCanariesUntouched()
    }

    func testAFolderOfTheAgentsSwappedForALinkIsNeitherWrittenNorRemoved() throws {
        try bothWays(caseAFolderOfTheAgentsSwappedForALinkIsNeitherWrittenNorRemoved)
    }

    func caseAFolderOfTheAgentsSwappedForALinkIsNeitherWrittenNorRemoved() throws {
        let hosts = try HostPath("/etc/containerd/certs.d/r:443/hosts.toml")
        try files.writeAtomically(hosts, marker + "one")
        XCTAssertTrue(try files.createdDirectories().contains(try HostPath("/etc/containerd/certs.d/r:443")))
        // Someone replaces the agent's folder with a link to a folder of theirs (inside the root,
        // and outside it): writes into it and the removal of the folder must refuse.
        for target in ["/etc/important", outside] {
            try FileManager.default.removeItem(atPath: dir + "/etc/containerd/certs.d/r:443")
            try link("/etc/containerd/certs.d/r:443", to: target)
            assertAgentError(try files.writeAtomically(try hosts.parent.appending("ca.crt"), marker + "pem"), .notOwned)
            assertAgentError(try files.remove(hosts), .notOwned)
            XCTAssertFalse(try files.removeEmptyDirectory(hosts.parent))
            XCTAssertNotNil(readSymlink(dir + "/etc/containerd/certs.d/r:443"))
            try FileManager.default.removeItem(atPath: dir + "/etc/containerd/certs.d/r:443")
            try FileManager.default.createDirectory(atPath: dir + "/etc/containerd/certs.d/r:443", withIntermediateDirectories: false)
        }
        // An empty folder the link points to is not removed in its place.
        try FileManager.default.createDirectory(atPath: outside + "/empty", withIntermediateDirectories: false)
        try FileManager.default.removeItem(atPath: dir + "/etc/containerd/certs.d/r:443")
        try link("/etc/containerd/certs.d/r:443", to: outside + "/empty")
        XCTAssertFalse(try files.removeEmptyDirectory(hosts.parent))
        XCTAssertTrue(FileManager.default.fileExists(atPath: outside + "/empty"))
        try FileManager.default.removeItem(atPath: outside + "/empty")
        assertCanariesUntouched()
    }

    func testLinksOutsideTheAgentsFoldersAreFollowedInsideTheRoot() throws {
        try bothWays(caseLinksOutsideTheAgentsFoldersAreFollowedInsideTheRoot)
    }

    func caseLinksOutsideTheAgentsFoldersAreFollowedInsideTheRoot() throws {
        // A node whose /etc/containerd is a link (to a data disk, say) still gets its files, in
        // the place the node sees; an absolute target is taken from the root, as a chroot would.
        try FileManager.default.removeItem(atPath: dir + "/etc/containerd")
        try FileManager.default.createDirectory(atPath: dir + "/data/containerd/certs.d", withIntermediateDirectories: true)
        try link("/etc/containerd", to: "/data/containerd")
        try files.writeAtomically(try HostPath("/etc/containerd/certs.d/r:443/hosts.toml"), marker + "one")
        XCTAssertEqual(try String(contentsOfFile: dir + "/data/containerd/certs.d/r:443/hosts.toml", encoding: .utf8), marker + "one")
        // A link that climbs above the root stays in it.
        try link("/etc/climb", to: "../../../../../../etc/important")
        XCTAssertEqual(try files.readString(try HostPath("/etc/climb/canary")), "inside canary\n")
        assertCanariesUntouched()
    }

    func testAReplacedSymlinkMustBeALink() throws { try bothWays(caseAReplacedSymlinkMustBeALink) }

    func caseAReplacedSymlinkMustBeALink() throws {
        try "regular\n".write(toFile: dir + "/etc/important/abcd1234.0", atomically: false, encoding: .utf8)
        assertAgentError(try files.replaceSymlink(try HostPath("/etc/important/abcd1234.0"), target: "x.pem"), .notOwned)
        try files.replaceSymlink(try HostPath("/etc/important/abcd1234.1"), target: "x.pem")
        XCTAssertEqual(readSymlink(dir + "/etc/important/abcd1234.1"), "x.pem")
        XCTAssertEqual(try String(contentsOfFile: dir + "/etc/important/abcd1234.0", encoding: .utf8), "regular\n")
    }

    func testLooksAreTakenInsideTheRootThroughDescriptors() throws { try bothWays(caseLooksAreTakenInsideTheRoot) }

    /// exists, kind, version, modificationTime and list follow links as a chroot would (absolute
    /// targets from the root, `..` never above it), and never look at the machine's own files.
    func caseLooksAreTakenInsideTheRoot() throws {
        try link("/etc/absolute", to: "/etc/important")  // a folder, by an absolute link
        try link("/etc/upward", to: "../../../../etc/important/canary")  // climbs, stays in the root
        try link("/etc/outside", to: outside + "/canary")  // the machine's path: inside, it is missing
        try link("/etc/dangling", to: "/nowhere")
        let path = { (p: String) in try HostPath(p) }
        XCTAssertEqual(files.kind(try path("/etc/absolute")), .directory, "a link to a folder is a folder")
        XCTAssertEqual(files.kind(try path("/etc/upward")), .regular)
        XCTAssertEqual(try files.list(try path("/etc/absolute")), ["canary"])
        XCTAssertTrue(try files.exists(try path("/etc/upward")))
        XCTAssertFalse(try files.exists(try path("/etc/outside")), "the machine's file was looked at")
        XCTAssertNil(files.kind(try path("/etc/outside")))
        XCTAssertNil(files.version(try path("/etc/outside")))
        XCTAssertEqual(try files.list(try path("/etc/outside")), [])
        XCTAssertFalse(try files.exists(try path("/etc/dangling")))
        XCTAssertEqual(files.version(try path("/etc/upward")), files.version(try path("/etc/important/canary")))
        XCTAssertNotNil(files.modificationTime(try path("/etc/upward")))
    }

    func testFolderReadsFollowLinksInsideTheRoot() throws { try bothWays(caseFolderReadsFollowLinksInsideTheRoot) }

    /// HostFolderReads (a trust store's files read through one descriptor per folder) follows
    /// links as HostFiles does: absolute targets from the root, `..` never above it, the
    /// machine's own files never read, loops refused, only regular files read.
    func caseFolderReadsFollowLinksInsideTheRoot() throws {
        try link("/etc/absolute", to: "/etc/important")
        try link("/etc/upward", to: "../../../../etc/important/canary")
        try link("/etc/outside", to: outside + "/canary")
        try link("/etc/hop", to: "absolute/canary")  // relative, through a link to a folder
        try link("/etc/loop-a", to: "loop-b")
        try link("/etc/loop-b", to: "loop-a")
        XCTAssertEqual(mkfifo(dir + "/etc/important/fifo", 0o600), 0)
        let reads = HostFolderReads(files: files)
        let path = { (p: String) in try HostPath(p) }
        for name in ["/etc/absolute/canary", "/etc/upward", "/etc/hop"] {
            XCTAssertEqual(try reads.read(try path(name)), Array("inside canary\n".utf8), name)
            XCTAssertEqual(try reads.status(try path(name))?.st_size, 14, name)
        }
        XCTAssertNil(try reads.read(try path("/etc/outside")), "the machine's file was read")
        XCTAssertNil(try reads.status(try path("/etc/outside")))
        XCTAssertNil(try reads.read(try path("/etc/missing/file")))
        XCTAssertEqual(reads.linkTarget(try path("/etc/hop")), "absolute/canary")
        let folder = try XCTUnwrap(try reads.status(try path("/etc/absolute")))
        XCTAssertEqual(folder.st_mode & S_IFMT, S_IFDIR, "a link to a folder is a folder")
        assertAgentError(try reads.read(try path("/etc/loop-a")), .io)
        assertAgentError(try reads.read(try path("/etc/important/fifo")), .io)  // not waited on: O_NONBLOCK
        XCTAssertNotNil(try reads.status(try path("/etc/important/fifo")))
        assertCanariesUntouched()
    }

    /// Runs a case with openat2(2), then again on fresh folders with the fallback walk (one
    /// `openat(O_NOFOLLOW)` per component: kernels before 5.6, seccomp profiles without openat2).
    func bothWays(_ body: () throws -> Void) throws {
        try body()
        try tearDownWithError()
        try setUpWithError()
        HostRoot.useOpenat2 = false
        try body()
    }
}
