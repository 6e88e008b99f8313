import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
@testable import TrustStore

/// "host:port, and host alone for port 443": the one rule for the registry's certs.d folders.
final class RegistryReferenceNamesTests: XCTestCase {
    func testTheRule() throws {
        let cases: [(String, [String])] = [
            (
                "registry-service.openfaas.svc.cluster.local:443",
                ["registry-service.openfaas.svc.cluster.local:443", "registry-service.openfaas.svc.cluster.local"]
            ),
            ("registry.svc.cluster.local", ["registry.svc.cluster.local:443", "registry.svc.cluster.local"]),
            ("registry.svc.cluster.local:5000", ["registry.svc.cluster.local:5000"]),
            ("10.0.0.5:443", ["10.0.0.5:443", "10.0.0.5"]),
            ("[::1]:443", ["[::1]:443", "[::1]"]),
            ("[fd00::1]:5000", ["[fd00::1]:5000"]),
        ]
        for (text, names) in cases {
            XCTAssertEqual(try RegistryAddress(text).referenceNames, names, text)
        }
    }

    /// Install, discovery and removal all follow it: for `[::1]:443` both folders are written,
    /// the CA is found through them, and removal takes both; for another port, one folder.
    func testInstallDiscoveryAndRemovalFollowTheRule() throws {
        let dir = try makeTemporaryDirectory("names")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/etc/os-release"), "ID=debian\n")
        try files.writeAtomically(try HostPath("/usr/sbin/update-ca-certificates"), "#!/bin/sh\n", mode: 0o755)
        try files.writeAtomically(
            try HostPath("/etc/containerd/config.toml"),
            "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n")
        let certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("ca.crt"), source: "ca")
        let installer = TrustInstaller(files: files, runner: RecordingRunner())
        for (text, folders) in [("[::1]:443", ["[::1]:443", "[::1]"]), ("[::1]:5000", ["[::1]:5000"])] {
            let registry = try RegistryAddress(text)
            let plan = try installer.gatherAndPlan(registry: registry, certificates: certs)
            let certsD = plan.fileChanges.map(\.path).filter { $0.path.hasPrefix("/etc/containerd/certs.d/") }
            XCTAssertEqual(certsD.map(\.parent.lastComponent), folders.flatMap { [$0, $0] }, text)
            try installer.apply(plan)
            XCTAssertEqual(
                try RegistryTrustLocations.discover(files: files, registry: registry).runtimeCAFiles.map(\.path),
                ["/etc/containerd/certs.d/\(folders[0])/ca.crt"], text)
            let removal = try installer.planRemoval(registry: registry)
            XCTAssertEqual(
                Set(removal.fileChanges.map(\.path).filter { $0.path.hasPrefix("/etc/containerd/") }.map(\.parent.lastComponent)),
                Set(folders), text)
            try installer.apply(removal)
        }
    }
}
