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
        vars = try startNode(script: script, folderVariable: "NODE_AGENT_BOOTED", folder: folder)
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

    func exec(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        return try sh(script, ["exec"] + args, environment: env)
    }

    /// The drop-in mode, with consent: systemd restarts resolved to read it, and the report warns
    /// that the cluster DNS is now in the resolv.conf kubelet hands to CoreDNS.
    func testDropInRestartsResolvedThroughSystemdAndTheHazardIsReported() throws {
        let root = vars["BOOTED_ROOT"]!
        let base = ["bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
                    "--registry", "registry-service.openfaas.svc.cluster.local", "--cluster-dns", "127.0.0.10", "--timeout", "0.3"]
        let dropin = try agent(base + ["--dns-mode", "dropin", "--accept-global-dns"])
        XCTAssertTrue(dropin.report.changes.contains("RestartUnit systemd-resolved.service: make resolved read its files"), dropin.output)
        XCTAssertTrue(try exec(["cat", root + "/etc/systemd/resolved.conf.d/node-agent.conf"]).stdout.contains("DNS=127.0.0.10"))
        let uplink = root + "/run/systemd/resolve/resolv.conf"
        XCTAssertTrue(try exec(["grep", "-x", "nameserver 127.0.0.10", uplink]).status == 0, "the global DNS= is not in resolved's resolv.conf")
        let hazard = try XCTUnwrap(dropin.report.check("coredns-loop-hazard"))
        XCTAssertEqual(hazard.outcome, "fail", hazard.reason)
        XCTAssertTrue(hazard.reason.contains("CoreDNS would forward to itself"))

        // Back to the link: the drop-in goes, resolved restarts again, the global entry is gone.
        let link = try agent(base + ["--dns-mode", "link"])
        XCTAssertTrue(link.report.changes.contains { $0.hasPrefix("remove /etc/systemd/resolved.conf.d/node-agent.conf") }, link.output)
        XCTAssertNotEqual(try exec(["grep", "-x", "nameserver 127.0.0.10", uplink]).status, 0, "the cluster DNS is still in resolved's resolv.conf")
        XCTAssertEqual(link.report.check("coredns-loop-hazard")?.outcome, "pass")
        let linkDNS = try exec(["chroot", root, "resolvectl", "dns", "nodeagent0"])
        XCTAssertTrue(linkDNS.stdout.contains("127.0.0.10"), linkDNS.stdout + linkDNS.stderr)

        let uninstall = try exec([SandboxNode.binary, "uninstall", "--host-root", root])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertNotEqual(try exec(["ip", "link", "show", "nodeagent0"]).status, 0)
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
