import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import TrustStore

/// Every distribution family's layout, from a real os-release file of that distribution.
final class OSTrustLayoutTests: XCTestCase {
    func osRelease(_ name: String) throws -> OSRelease {
        OSRelease(parsing: try String(contentsOf: packageRoot.appendingPathComponent("Tests/Fixtures/os-release/\(name)"), encoding: .utf8))
    }

    func testEachFixtureMapsToItsFamily() throws {
        let expected: [String: OSTrustLayout.Family] = [
            "debian-12": .debian, "ubuntu-24.04": .debian, "rhel-9": .rhel, "fedora-40": .rhel, "rocky-9": .rhel,
            "almalinux-9": .rhel, "centos-stream-9": .rhel, "amazonlinux-2023": .rhel, "sles-15": .suse,
            "opensuse-leap-15": .suse, "alpine-3.20": .alpine,
        ]
        for (fixture, family) in expected {
            XCTAssertEqual(try OSTrustLayout.detect(try osRelease(fixture)).family, family, fixture)
        }
        XCTAssertEqual(OSTrustLayout.rhel.anchors.path, "/etc/pki/ca-trust/source/anchors")
        XCTAssertEqual(OSTrustLayout.rhel.refreshArguments, ["extract"])
        XCTAssertEqual(OSTrustLayout.suse.anchors.path, "/etc/pki/trust/anchors")
        XCTAssertEqual(OSTrustLayout.debian.freshArguments, ["--fresh"])
    }

    func testImmutableAndUnknownSystemsAreRefusedWithAnExplanation() throws {
        for (fixture, phrase) in [
            ("bottlerocket", "settings.pki"), ("talos", "TrustedRootsConfig"), ("cos", "read-only"), ("flatcar", "Ignition"),
        ] {
            XCTAssertThrowsError(try OSTrustLayout.detect(try osRelease(fixture)), fixture) {
                XCTAssertEqual(($0 as? AgentError)?.code, .unsupportedHost)
                XCTAssertTrue("\($0)".contains(phrase), "\(fixture): \($0)")
                XCTAssertTrue("\($0)".contains("nothing was changed"))
            }
        }
        assertAgentError(
            try OSTrustLayout.detect(try osRelease("gentoo")), .unsupportedHost, "(ID=gentoo) is not known to the agent",
            "supported: Debian/Ubuntu, RHEL/Fedora/CentOS/Rocky/Alma/Amazon Linux, SUSE, Alpine")
        assertAgentError(
            try OSTrustLayout.detect(nil), .unsupportedHost, "the host has no os-release file",
            "check --host-root: it must be the node's / (with etc/os-release)")
    }

    func testFileNamesInASharedFolderCarryThePrefix() throws {
        let r = try RegistryAddress("registry.svc.cluster.local:5000")
        XCTAssertEqual(OSTrustLayout.debian.filePrefix(r), "registry.svc.cluster.local_5000-")
        XCTAssertEqual(OSTrustLayout.rhel.filePrefix(r), "node-agent-registry.svc.cluster.local_5000-")
        XCTAssertEqual(OSTrustLayout.rhel.filePrefix(nil), "node-agent-")
    }

    /// A RHEL host root: the CA goes to the anchors folder, `update-ca-trust extract` runs in it.
    func testRHELPlanAndApply() throws {
        let dir = try makeTemporaryDirectory("rhel")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(
            try HostPath("/etc/os-release"),
            try String(contentsOf: packageRoot.appendingPathComponent("Tests/Fixtures/os-release/rocky-9"), encoding: .utf8))
        try files.writeAtomically(try HostPath("/usr/bin/update-ca-trust"), "#!/bin/sh\n", mode: 0o755)
        try files.writeAtomically(try HostPath("/etc/pki/ca-trust/source/anchors/admin.crt"), "admin's")
        try files.makeDirectories(try HostPath("/etc/containers"))
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca.crt")
        let runner = RecordingRunner()
        let installer = TrustInstaller(files: files, runner: runner)
        let registry = try RegistryAddress("registry.svc.cluster.local")
        let plan = try installer.gatherAndPlan(registry: registry, certificates: certs)
        XCTAssertEqual(
            plan.fileChanges.first?.path.path, "/etc/pki/ca-trust/source/anchors/node-agent-registry.svc.cluster.local_443-1.crt")
        XCTAssertTrue(plan.fileChanges.contains { $0.path.path == "/etc/containers/certs.d/registry.svc.cluster.local:443/ca.crt" })
        XCTAssertFalse(plan.fileChanges.contains { $0.path.path.hasPrefix("/etc/docker") }, "no Docker on this host")
        XCTAssertEqual(plan.refresh, ["update-ca-trust", "extract"])
        try installer.apply(plan)
        XCTAssertEqual(runner.commands, [["/usr/sbin/chroot", dir, "/usr/bin/update-ca-trust", "extract"]])

        let removal = try installer.planRemoval(registry: nil)
        // No containerd config here: containerd ignores certs.d, so only CRI-O's folder got a CA.
        XCTAssertEqual(
            removal.fileChanges.map(\.path.path),
            [
                "/etc/pki/ca-trust/source/anchors/node-agent-registry.svc.cluster.local_443-1.crt",
                "/etc/containers/certs.d/registry.svc.cluster.local:443/ca.crt",
            ])
        XCTAssertFalse(removal.fileChanges.contains { $0.path.lastComponent == "admin.crt" })
    }
}
