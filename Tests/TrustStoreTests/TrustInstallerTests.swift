import Foundation
import HostSystem
import TestSupport
import TrustStore
import Vocabulary
import XCTest

/// Unit tests on a fake host root; the real update-ca-certificates runs in the integration tests.
final class TrustInstallerTests: XCTestCase {
    var dir = ""
    var files: HostFiles!
    let registry = try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443")

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory("trust")
        files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/etc/os-release"), "ID=debian\nPRETTY_NAME=\"Debian 12\"\n")
        try files.writeAtomically(try HostPath("/usr/sbin/update-ca-certificates"), "#!/bin/sh\n", mode: 0o755)
        try files.writeAtomically(
            try HostPath("/etc/containerd/config.toml"),
            "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testPlanApplyThenNothingLeftToDo() throws {
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("two-cas.pem"), source: "two-cas.pem")
        let runner = RecordingRunner()
        let installer = TrustInstaller(files: files, runner: runner)
        let plan = try installer.gatherAndPlan(registry: registry, certificates: certs)
        let paths = plan.fileChanges.map(\.path.path)
        XCTAssertEqual(
            paths,
            [
                "/usr/local/share/ca-certificates/node-agent/registry-service.openfaas.svc.cluster.local_443-1.crt",
                "/usr/local/share/ca-certificates/node-agent/registry-service.openfaas.svc.cluster.local_443-2.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/ca.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/hosts.toml",
            ])
        XCTAssertEqual(plan.refresh, ["update-ca-certificates"])
        try installer.apply(plan)
        XCTAssertEqual(runner.commands, [["/usr/sbin/chroot", dir, "/usr/sbin/update-ca-certificates"]])
        let toml = try XCTUnwrap(
            files.readString(try HostPath("/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml")))
        XCTAssertTrue(toml.hasPrefix(HostFiles.ownershipMarker + "\n"))
        XCTAssertTrue(toml.contains("ca = \"/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt\""))

        // The fake tool built no bundle: a store whose bundle lacks what its CA sources give is
        // damaged, so the plan rebuilds it from scratch, and does nothing else.
        let again = try installer.gatherAndPlan(registry: registry, certificates: certs)
        XCTAssertEqual(again.fileChanges, [])
        XCTAssertEqual(again.refresh, ["update-ca-certificates", "--fresh"])
        XCTAssertTrue(again.notes.contains { $0.contains("(2 certificates: 2 missing, 0 extra or repeated)") }, "\(again.notes)")
        // A bundle with one of them twice is damaged too.
        try files.writeAtomically(OSTrustLayout.debian.bundle, certs[0].pem + certs[0].pem + certs[1].pem)
        XCTAssertTrue(
            try installer.gatherAndPlan(registry: registry, certificates: certs).notes.contains {
                $0.contains("0 missing, 1 extra or repeated")
            })
        // Once the bundle holds both CAs, there is nothing left to do.
        try files.writeAtomically(OSTrustLayout.debian.bundle, certs.map(\.pem).joined())
        XCTAssertTrue(try installer.gatherAndPlan(registry: registry, certificates: certs).isEmpty)
    }

    func testRotationRemovesOnlyOurOldFilesAndRefreshesFresh() throws {
        let two = try CertificateParser.parseCAFile(try CertFixtures.bytes("two-cas.pem"), source: "two")
        let installer = TrustInstaller(files: files, runner: RecordingRunner())
        try installer.apply(try installer.gatherAndPlan(registry: registry, certificates: two))
        let foreign = try HostPath("/usr/local/share/ca-certificates/node-agent-not-ours.crt")
        try files.writeAtomically(foreign, "someone else's")
        let one = try CertificateParser.parseCAFile(try CertFixtures.bytes("other-ca.crt"), source: "other")
        let plan = try installer.gatherAndPlan(registry: registry, certificates: one)
        XCTAssertEqual(
            plan.fileChanges.filter { $0.kind == .remove }.map(\.path.lastComponent),
            ["registry-service.openfaas.svc.cluster.local_443-2.crt"])
        XCTAssertEqual(plan.refresh, ["update-ca-certificates", "--fresh"])
        try installer.apply(plan)
        XCTAssertEqual(try files.readString(foreign), "someone else's")
    }

    func testForeignHostsTomlIsLeftAlone() throws {
        let path = try HostPath("/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml")
        try files.writeAtomically(path, "server = \"https://mirror\"\n")
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca")
        let plan = try TrustInstaller(files: files, runner: RecordingRunner()).gatherAndPlan(registry: registry, certificates: certs)
        XCTAssertFalse(plan.fileChanges.contains { $0.path.parent == path.parent })
        XCTAssertTrue(plan.notes.contains { $0.contains("not written by node-agent") })
    }

    func testUnsupportedOSIsRefusedBeforeAnyChange() throws {
        try files.writeAtomically(try HostPath("/etc/os-release"), "ID=gentoo\nPRETTY_NAME=\"Gentoo Linux\"\n")
        let before = FileTree(dir)
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca")
        XCTAssertThrowsError(
            try TrustInstaller(files: files, runner: RecordingRunner()).gatherAndPlan(registry: registry, certificates: certs)
        ) {
            XCTAssertEqual(($0 as? AgentError)?.code, .unsupportedHost)
        }
        XCTAssertEqual(FileTree(dir), before)
    }

    /// What keeps auto from the native rebuild, read from the host as update-ca-certificates
    /// would act on it.
    func testNativeBlockerReadsHooksAndTheSystemCertificatesLinks() throws {
        func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
            try files.writeAtomically(try HostPath(path), text, mode: mode)
        }
        func link(_ path: String, _ target: String) throws {
            try files.makeDirectories(try HostPath(path).parent)
            try files.replaceSymlink(try HostPath(path), target: target)
        }
        try write("/etc/ca-certificates.conf", "# a comment\nmozilla/A_Root.crt\n!mozilla/B_Root.crt\nmozilla/Gone.crt\n")
        try write("/usr/share/ca-certificates/mozilla/A_Root.crt", "A")
        try write("/usr/share/ca-certificates/mozilla/B_Root.crt", "B")
        XCTAssertEqual(
            try DebianTrustStore.nativeBlocker(files: files),
            "mozilla/A_Root.crt, which /etc/ca-certificates.conf selects, has no link /etc/ssl/certs/A_Root.pem")
        try link("/etc/ssl/certs/A_Root.pem", "/usr/share/ca-certificates/mozilla/A_Root.crt")
        try link("/etc/ssl/certs/0123abcd.0", "A_Root.pem")
        XCTAssertNil(try DebianTrustStore.nativeBlocker(files: files))
        try link("/etc/ssl/certs/B_Root.pem", "/usr/share/ca-certificates/mozilla/B_Root.crt")
        XCTAssertEqual(
            try DebianTrustStore.nativeBlocker(files: files),
            "/etc/ssl/certs/B_Root.pem links mozilla/B_Root.crt, which /etc/ca-certificates.conf deselects")
        try files.removeEntry(try HostPath("/etc/ssl/certs/B_Root.pem"))
        try link("/etc/ssl/certs/fedcba98.0", "Old.pem")
        XCTAssertEqual(try DebianTrustStore.nativeBlocker(files: files), "/etc/ssl/certs/fedcba98.0 is a dangling link")
        try files.removeEntry(try HostPath("/etc/ssl/certs/fedcba98.0"))
        // Hooks as run-parts picks them: executable, a name of letters, digits, _ and -.
        try write("/etc/ca-certificates/update.d/README.txt", "", mode: 0o755)
        try write("/etc/ca-certificates/update.d/notes", "", mode: 0o644)
        XCTAssertNil(try DebianTrustStore.nativeBlocker(files: files))
        try write("/etc/ca-certificates/update.d/jks-keystore", "#!/bin/sh\n", mode: 0o755)
        XCTAssertEqual(
            try DebianTrustStore.nativeBlocker(files: files),
            "/etc/ca-certificates/update.d/jks-keystore is a hook update-ca-certificates runs")
    }
}
