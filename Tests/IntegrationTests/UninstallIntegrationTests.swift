import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// `node-agent uninstall` restores the node byte for byte and touches nothing of others.
final class UninstallIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func testUninstallRestoresTheHostExactlyAndKeepsOthersFiles() throws {
        // Files of others, present before the agent: a CA of the admin's and another registry's certs.d.
        let foreignCA = node.folder + "/local-ca/admin-ca.crt"
        try FileManager.default.copyItem(atPath: try CertFixtures.path("other-ca.crt"), toPath: foreignCA)
        XCTAssertEqual(try node.exec(["chroot", node.hostRoot, "update-ca-certificates"]).status, 0)
        let foreignCertsD = node.hostRoot + "/etc/containerd/certs.d/mirror.example:5000"
        try FileManager.default.createDirectory(atPath: foreignCertsD, withIntermediateDirectories: true)
        try "server = \"https://mirror.example:5000\"\n".write(toFile: foreignCertsD + "/hosts.toml", atomically: true, encoding: .utf8)
        let before = node.snapshot()

        XCTAssertEqual(try node.agent(node.bootstrapArguments()).status, 0)
        XCTAssertNotEqual(node.snapshot().difference(from: before), [])
        // A later run of the node's own tool (say, a package upgrade) keeps the agent's CA.
        XCTAssertEqual(try node.exec(["chroot", node.hostRoot, "update-ca-certificates", "--fresh"]).status, 0)
        let bundle = node.hostRoot + "/etc/ssl/certs/ca-certificates.crt"
        XCTAssertEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, node.folder + "/pki/registry.crt"]).status, 0)

        let dry = try node.agent(["uninstall", "--host-root", node.hostRoot, "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("run ip link del dev nodeagent0"), dry.stdout)
        XCTAssertFalse(dry.stdout.contains("mirror.example"), "a foreign folder was planned for removal")

        let run = try node.agent(["uninstall", "--host-root", node.hostRoot, "--output", "json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "the link is still there")
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertNotEqual(query.status, 0, "resolved still routes the cluster domain: \(query.stdout)")
        XCTAssertNotEqual(try sh("/usr/bin/openssl", ["verify", "-CAfile", bundle, node.folder + "/pki/registry.crt"]).status, 0)

        // Nothing left: a second uninstall finds nothing and changes nothing.
        let again = try node.agent(["uninstall", "--host-root", node.hostRoot])
        XCTAssertEqual(again.status, 0)
        XCTAssertTrue(again.stdout.contains("Nothing of the agent's was found"), again.stdout)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
    }

    func testUninstallOfOneRegistryKeepsTheOthersAndTheRoute() throws {
        let first = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let second = [
            "bootstrap", "--host-root", node.hostRoot, "--ca", node.caFile,
            "--registry", "open-registry.openfaas.svc.cluster.local:443",
        ]
        let secondRun = try node.agent(second)
        XCTAssertEqual(secondRun.status, 0, secondRun.stdout + secondRun.stderr)
        let run = try node.agent(["uninstall", "--host-root", node.hostRoot, "--registry", "open-registry.openfaas.svc.cluster.local:443"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("the DNS route stays"), run.stdout)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: node.hostRoot + "/etc/containerd/certs.d/open-registry.openfaas.svc.cluster.local:443"))
        let probe = try node.agent(["probe", "--host-root", node.hostRoot, "--registry", node.registry])
        XCTAssertEqual(probe.status, 0, probe.stdout)
    }
}
