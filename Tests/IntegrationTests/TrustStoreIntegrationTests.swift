import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The OS trust store and the runtimes' folders on a real Debian host root.
final class TrustStoreIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func certsTree() -> FileTree { FileTree(node.hostRoot + "/etc/ssl/certs") }

    /// The agent's native rebuild and the node's update-ca-certificates leave the same bundle
    /// (byte for byte) and the same links, on install, rotation and removal, with admin CAs of
    /// awkward names around.
    func testNativeRefreshEqualsTheNodesToolByteForByte() throws {
        let local = node.folder + "/local-ca"
        try FileManager.default.createDirectory(atPath: local + "/corp", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try CertFixtures.path("other-ca.crt"), toPath: local + "/Admin CA (lab),x.crt")
        try FileManager.default.copyItem(atPath: try CertFixtures.path("ca.crt"), toPath: local + "/corp/corp-root.crt")
        XCTAssertEqual(try node.exec(["chroot", node.hostRoot, "update-ca-certificates", "--fresh"]).status, 0)
        let baseline = certsTree()
        let two = node.folder + "/two.crt"
        try
            (try String(contentsOfFile: node.caFile, encoding: .utf8)
            + String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8))
            .write(toFile: two, atomically: true, encoding: .utf8)

        func step(_ mode: String, _ args: [String]) throws -> FileTree {
            let run = try node.agent(args + ["--trust-refresh", mode])
            XCTAssertTrue(run.status == 0, "\(mode) \(args): \(run.stdout) \(run.stderr)")
            return certsTree()
        }
        var trees: [String: [FileTree]] = [:]
        for mode in ["native", "tool"] {
            trees[mode] = [
                try step(mode, node.bootstrapArguments(ca: two)),
                try step(mode, node.bootstrapArguments()),  // rotation: the second CA goes
                try step(mode, ["uninstall", "--host-root", node.hostRoot]),
            ]
        }
        for (i, stage) in ["install", "rotation", "removal"].enumerated() {
            XCTAssertEqual(trees["native"]![i].difference(from: trees["tool"]![i]), [], "\(stage): native differs from the tool")
        }
        XCTAssertNotEqual(trees["native"]![0], baseline)
        XCTAssertEqual(trees["native"]![2].difference(from: baseline), [])
        let pem = try FileManager.default.destinationOfSymbolicLink(atPath: node.hostRoot + "/etc/ssl/certs/Admin_CA_=lab=_x.pem")
        XCTAssertEqual(pem, "/usr/local/share/ca-certificates/Admin CA (lab),x.crt")
    }

    /// The default, auto: natively on this plain node (no hook, links in step), with the node's
    /// tool once a hook is there, and the hook runs; the store ends the same as the tool's
    /// either way.
    func testAutoRefreshIsNativeOnAPlainNodeAndTheToolWhereAHookWouldRun() throws {
        func bootstrap(_ extra: [String] = []) throws -> (JSONReport, FileTree) {
            let run = try node.agent(node.bootstrapArguments(extra: ["--output", "json"] + extra))
            XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
            let tree = certsTree()
            XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot] + extra).status, 0)
            return (try JSONReport.decode(run.stdout), tree)
        }
        let (_, byTool) = try bootstrap(["--trust-refresh", "tool"])
        let (plain, plainTree) = try bootstrap()
        XCTAssertTrue(plain.notes.contains { $0.hasPrefix("trust refresh auto: native") }, "\(plain.notes)")
        XCTAssertTrue(plain.changes.contains { $0.hasPrefix("rebuild /etc/ssl/certs/ca-certificates.crt natively") }, "\(plain.changes)")
        XCTAssertEqual(plainTree.difference(from: byTool), [], "auto's native rebuild differs from the tool")

        // A hook, as ca-certificates-java's: the tool runs it with the certificates added.
        let hooks = node.hostRoot + "/etc/ca-certificates/update.d"
        let seen = node.hostRoot + "/var/tmp/hook-saw"
        try FileManager.default.createDirectory(atPath: node.hostRoot + "/var/tmp", withIntermediateDirectories: true)
        try "#!/bin/sh\ncat >> /var/tmp/hook-saw\n".write(toFile: hooks + "/test-keystore", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(hooks + "/test-keystore", 0o755), 0)
        let (hooked, hookedTree) = try bootstrap()
        XCTAssertTrue(
            hooked.notes.contains {
                $0
                    == "trust refresh auto: update-ca-certificates (/etc/ca-certificates/update.d/test-keystore is a hook update-ca-certificates runs)"
            },
            "\(hooked.notes)")
        XCTAssertTrue(((try? String(contentsOfFile: seen, encoding: .utf8)) ?? "").contains("+"), "the hook did not run")
        XCTAssertEqual(hookedTree.difference(from: byTool), [], "auto with the tool differs from the tool")
        // A hook run-parts would not run (a dot in its name) stops nothing.
        try FileManager.default.moveItem(atPath: hooks + "/test-keystore", toPath: hooks + "/test-keystore.disabled")
        XCTAssertTrue(try bootstrap().0.notes.contains { $0.hasPrefix("trust refresh auto: native") })
    }

    func testDockerAndCRIOFoldersGetTheCAWhereThoseRuntimesAreConfigured() throws {
        for dir in ["/etc/docker", "/etc/containers"] {
            try FileManager.default.createDirectory(atPath: node.hostRoot + dir, withIntermediateDirectories: true)
        }
        let before = node.snapshot()
        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        for dir in ["/etc/docker/certs.d", "/etc/containers/certs.d"] {
            let ca = node.hostRoot + dir + "/registry-service.openfaas.svc.cluster.local:443/ca.crt"
            XCTAssertTrue(try String(contentsOfFile: ca, encoding: .utf8).hasPrefix("# managed by node-agent"))
            // Go and OpenSSL read past the marker line: the file verifies the registry.
            XCTAssertEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", ca, node.folder + "/pki/registry.crt"]).status, 0, dir)
        }
        XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot]).status, 0)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
    }

    func testAHostWithoutTheTrustToolIsRefusedBeforeAnyChange() throws {
        // A RHEL-looking root without its tool (update-ca-trust): refused, nothing written.
        try "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nPRETTY_NAME=\"Rocky Linux 9.4\"\n".write(
            toFile: node.hostRoot + "/etc/os-release", atomically: true, encoding: .utf8)
        let before = node.snapshot()
        let run = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(run.status, 3, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("/usr/bin/update-ca-trust is missing on the host"), run.stderr)
        XCTAssertEqual(node.snapshot().difference(from: before).map { String($0.prefix(200)) }, [])
    }
}

/// The RHEL layout, rebuilt by p11-kit's real `trust extract` (Tests/nodes/rhel-root).
final class RHELTrustStoreIntegrationTests: XCTestCase {
    func testRHELAnchorsAndUpdateCATrustThroughP11Kit() throws {
        try requireRoot()
        let root = NSTemporaryDirectory() + "node-agent-rhel-\(UUID().uuidString.prefix(8))"
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: root + ".usr-overlay")
        }
        let script = packageRoot.appendingPathComponent("Tests/nodes/rhel-root").path
        func inRoot(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try sh(script, [root] + args) }
        XCTAssertEqual(try inRoot(["chroot", root, "update-ca-trust", "extract"]).status, 0)
        let bundle = root + "/etc/pki/tls/certs/ca-bundle.crt"
        let leaf = try CertFixtures.path("leaf.crt")
        XCTAssertNotEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, leaf]).status, 0)

        let run = try inRoot([
            SandboxNode.binary, "bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
            "--registry", "127.0.0.99:5000", "--cluster-dns", "127.0.0.10", "--timeout", "0.2", "--output", "json",
        ])
        let report = try JSONReport.decode(run.stdout)
        XCTAssertTrue(
            report.changes.contains { $0.hasPrefix("create /etc/pki/ca-trust/source/anchors/node-agent-127.0.0.99_5000-1.crt") },
            report.changes.joined(separator: "\n"))
        XCTAssertTrue(report.changes.contains("run update-ca-trust extract: rebuild the OS trust bundle"))
        // The bundle p11-kit extracted trusts the CA: the registry's certificate verifies with it.
        XCTAssertEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, leaf]).status, 0)

        XCTAssertEqual(try inRoot([SandboxNode.binary, "uninstall", "--host-root", root]).status, 0)
        XCTAssertNotEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, leaf]).status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/etc/pki/ca-trust/source/anchors"), [])
    }
}
