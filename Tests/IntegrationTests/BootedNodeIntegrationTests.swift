import Foundation
import HostSystem
import TestSupport
import XCTest

/// A node booted with its own systemd (scripts/booted-node): what needs systemd itself.
final class BootedNodeIntegrationTests: XCTestCase {
    let script = packageRoot.appendingPathComponent("scripts/booted-node").path
    var folder = ""
    var vars: [String: String] = [:]

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "node-agent-booted-\(UUID().uuidString.prefix(8))"
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        let up = try sh(script, ["up"], environment: env)
        guard up.status == 0 else { throw AgentError(.io, "booted-node up failed: \(up.stderr)") }
        for line in up.stdout.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { vars[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
    }

    override func tearDown() {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        _ = try? sh(script, ["down"], environment: env)
    }

    /// Runs the agent in the node's mount view and network namespace, as a pod with hostNetwork would.
    func agent(_ args: [String]) throws -> (status: Int32, report: JSONReport, output: String) {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        let run = try sh(script, ["exec", SandboxNode.binary] + args + ["--output", "json"], environment: env)
        return (run.status, try JSONReport.decode(run.stdout), run.stdout + run.stderr)
    }

    func testRestartRuntimeRestartsAStaleRuntimeOnceThroughSystemd() throws {
        let root = vars["BOOTED_ROOT"]!
        let args = ["bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
                    "--registry", "registry-service.openfaas.svc.cluster.local", "--cluster-dns", "127.0.0.10",
                    "--timeout", "0.3", "--restart-runtime"]
        // containerd.service started at boot, before the CA: restarted, through systemd.
        let first = try agent(args)
        XCTAssertEqual(first.status, 1, "no cluster DNS here, so not ready: \(first.output)")
        let restarts = first.report.changes.filter { $0.hasPrefix("restart containerd.service") }
        XCTAssertEqual(restarts.count, 1, first.report.changes.joined(separator: "\n"))
        XCTAssertEqual(first.report.check("runtime-restart-pending")?.outcome, "pass", first.report.check("runtime-restart-pending")?.reason ?? "")
        // Once: a restarted runtime is newer than the CA.
        let second = try agent(args)
        XCTAssertFalse(second.report.changes.contains { $0.hasPrefix("restart") }, second.report.changes.joined(separator: "\n"))
        // systemd's own view agrees: the unit is active, with a new main process.
        XCTAssertTrue(restarts[0].contains(" -> "))

        // A CA changed after the runtime started, without --restart-runtime: reported (certs.d covers pulls).
        let ca = root + "/usr/local/share/ca-certificates/node-agent/registry-service.openfaas.svc.cluster.local_443-1.crt"
        Thread.sleep(forTimeInterval: 0.05)
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        XCTAssertEqual(try sh(script, ["exec", "touch", ca], environment: env).status, 0)
        let probe = try agent(["probe", "--host-root", root, "--registry", "registry-service.openfaas.svc.cluster.local",
                               "--cluster-dns", "127.0.0.10", "--timeout", "0.3"])
        let pending = try XCTUnwrap(probe.report.check("runtime-restart-pending"))
        XCTAssertEqual(pending.outcome, "warn", pending.reason)
        XCTAssertTrue(pending.reason.contains("containerd.service"), pending.reason)
    }
}
