import Foundation
import XCTest

/// Uninstalling from a cluster, in the order docs/install-autoscalers.md gives: a cleanup run of
/// `node-agent uninstall` on every node (here node-1 of Tests/doubles/api-double, daemonset.yaml's RBAC
/// and admission policies enforced), then deleting the install. The node ends as it was before
/// the agent: no RegistryPullReady condition, no startup taint (even where the agent never could
/// remove it), kubelet's condition and the other taint as they were.
final class ClusterUninstallIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func testUninstallRemovesTheConditionAndTheStartupTaintAndLeavesTheNodeAsBefore() throws {
        let (tokenPath, _) = try node.tokenFile("serviceaccount")
        let api = try APIDouble(node, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let before = try api.nodeObject()
        let kubeletReady = try XCTUnwrap(try api.condition("Ready"))
        let taintKeys = { try api.taints().compactMap { $0["key"] as? String } }
        XCTAssertEqual(try taintKeys(), [APIDouble.startupTaint, "example.com/other"], "the node joins with the startup taint")

        // The agent runs on a node that cannot pull (a registry nobody answers on): it says so in
        // its condition and leaves the startup taint, as it must.
        let log = node.folder + "/agent.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let kube = [
            "--node-name", "node-1", "--kube-api", api.url, "--kube-token-file", tokenPath, "--kube-ca-file", node.caFile,
        ]
        let agent = try node.background(
            [
                SandboxNode.binary, "run", "--host-root", node.hostRoot, "--registry", "127.0.0.1:9", "--ca", node.caFile,
                "--interval", "1", "--watch-interval", "0.2", "--timeout", "1", "--listen", "off",
                "--startup-taint", APIDouble.startupTaint, "--condition-heartbeat", "60",
            ] + kube, output: log)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(30, "the condition published False") { try api.condition("RegistryPullReady")?["status"] == "False" }
        XCTAssertEqual(try taintKeys(), [APIDouble.startupTaint, "example.com/other"], "a node that cannot pull keeps the taint")

        // The DaemonSet is gone (the agent stopped), then the cleanup run on the node.
        agent.terminate()
        agent.waitUntilExit()
        let dryRun = try node.exec(
            [SandboxNode.binary, "uninstall", "--host-root", node.hostRoot, "--startup-taint", APIDouble.startupTaint, "--dry-run"]
                + kube)
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        XCTAssertTrue(dryRun.stdout.contains("remove the startup taint \(APIDouble.startupTaint) of node node-1"), dryRun.stdout)
        XCTAssertNotNil(try api.condition("RegistryPullReady"), "a dry run removed the condition")
        XCTAssertEqual(try taintKeys(), [APIDouble.startupTaint, "example.com/other"], "a dry run removed the taint")

        let uninstall = try node.exec(
            [SandboxNode.binary, "uninstall", "--host-root", node.hostRoot, "--startup-taint", APIDouble.startupTaint] + kube)
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr + logText().suffix(1500))
        XCTAssertTrue(uninstall.stdout.contains("removed startup taint \(APIDouble.startupTaint) from node node-1"), uninstall.stdout)

        // The node as before the agent: the startup taint and the agent's condition gone, nothing
        // else changed (the double's admission policies let the agent's token do no more).
        XCTAssertNil(try api.condition("RegistryPullReady"))
        XCTAssertEqual(try api.condition("Ready"), kubeletReady)
        XCTAssertEqual(try api.conditions().count, 1, "\((try? api.conditions()) ?? [])")
        XCTAssertEqual(try taintKeys(), ["example.com/other"])
        let after = try api.nodeObject()
        for key in ["labels", "annotations"] {
            XCTAssertEqual(
                ((after["metadata"] as? [String: Any])?[key] as? [String: String]),
                ((before["metadata"] as? [String: Any])?[key] as? [String: String]), key)
        }

        // Again (a second cleanup run, or a node the agent had already left ready): nothing to do,
        // no error.
        let again = try node.exec(
            [SandboxNode.binary, "uninstall", "--host-root", node.hostRoot, "--startup-taint", APIDouble.startupTaint] + kube)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try taintKeys(), ["example.com/other"])
    }
}
