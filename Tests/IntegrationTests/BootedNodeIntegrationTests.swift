import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// A node booted with its own systemd (Tests/nodes/booted-node): what needs systemd itself.
final class BootedNodeIntegrationTests: XCTestCase {
    let script = packageRoot.appendingPathComponent("Tests/nodes/booted-node").path
    var folder = ""
    var vars: [String: String] = [:]

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "node-agent-booted-\(UUID().uuidString.prefix(8))"
        // A stand-in containerd.service: these tests are about systemd's side (units, restarts,
        // resolved); ReleaseNodeIntegrationTests pull with each release's real containerd.
        // Bookworm's systemd 252, unless the test names 257 (trixie's) or 262 (sid's).
        vars = try startNode(
            script: script, folderVariable: "NODE_AGENT_BOOTED", folder: folder,
            extra: [
                "NODE_AGENT_BOOTED_RUNTIME": "standin",
                "NODE_AGENT_SUITE": name.contains("Systemd262") ? "sid" : name.contains("Systemd257") ? "trixie" : "bookworm",
            ])
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
        guard let report = try? JSONReport.decode(run.stdout) else {
            throw AgentError(.io, "the agent gave no report (exit \(run.status)): \(run.stdout)\(run.stderr)")
        }
        return (run.status, report, run.stdout + run.stderr)
    }

    func exec(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_BOOTED"] = folder
        return try sh(script, ["exec"] + args, environment: env)
    }

    /// The drop-in mode, with consent: systemd restarts resolved to read it, and the report warns
    /// that the cluster DNS is now in the resolv.conf kubelet hands to CoreDNS.
    func testDropInRestartsResolvedThroughSystemdAndTheHazardIsReported() throws {
        try dropIn(action: "RestartUnit")
    }

    /// From systemd 256 resolved rereads its files on reload: the same, with no restart of it
    /// (its PID stays), on trixie's 257 and sid's 262.
    func testDropInReloadsResolvedOnSystemd262() throws { try dropInReloads() }
    func testDropInReloadsResolvedOnSystemd257() throws { try dropInReloads() }

    func dropInReloads() throws {
        let root = vars["BOOTED_ROOT"]!
        let pid = try exec(["chroot", root, "systemctl", "show", "-p", "MainPID", "--value", "systemd-resolved.service"]).stdout
        try dropIn(action: "ReloadOrRestartUnit")
        XCTAssertEqual(
            try exec(["chroot", root, "systemctl", "show", "-p", "MainPID", "--value", "systemd-resolved.service"]).stdout, pid,
            "resolved was restarted, not reloaded")
    }

    func dropIn(action: String) throws {
        let root = vars["BOOTED_ROOT"]!
        let base = [
            "bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
            "--registry", "registry-service.openfaas.svc.cluster.local", "--cluster-dns", "127.0.0.10", "--timeout", "0.3",
        ]
        let dropin = try agent(base + ["--dns-mode", "dropin", "--accept-global-dns"])
        XCTAssertTrue(dropin.report.changes.contains("\(action) systemd-resolved.service: make resolved read its files"), dropin.output)
        XCTAssertTrue(try exec(["cat", root + "/etc/systemd/resolved.conf.d/node-agent.conf"]).stdout.contains("DNS=127.0.0.10"))
        let uplink = root + "/run/systemd/resolve/resolv.conf"
        XCTAssertTrue(
            try exec(["grep", "-x", "nameserver 127.0.0.10", uplink]).status == 0, "the global DNS= is not in resolved's resolv.conf")
        let hazard = try XCTUnwrap(dropin.report.check("coredns-loop-hazard"))
        XCTAssertEqual(hazard.outcome, "fail", hazard.reason)
        XCTAssertTrue(hazard.reason.contains("CoreDNS would forward to itself"))

        // Back to the link: the drop-in goes, resolved restarts again, the global entry is gone.
        let link = try agent(base + ["--dns-mode", "link"])
        XCTAssertTrue(link.report.changes.contains { $0.hasPrefix("remove /etc/systemd/resolved.conf.d/node-agent.conf") }, link.output)
        XCTAssertNotEqual(
            try exec(["grep", "-x", "nameserver 127.0.0.10", uplink]).status, 0, "the cluster DNS is still in resolved's resolv.conf")
        XCTAssertEqual(link.report.check("coredns-loop-hazard")?.outcome, "pass")
        let linkDNS = try exec(["chroot", root, "resolvectl", "dns", "nodeagent0"])
        XCTAssertTrue(linkDNS.stdout.contains("127.0.0.10"), linkDNS.stdout + linkDNS.stderr)

        let uninstall = try exec([SandboxNode.binary, "uninstall", "--host-root", root])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertNotEqual(try exec(["ip", "link", "show", "nodeagent0"]).status, 0)
    }

    func testRestartRuntimeRestartsAStaleRuntimeOnceThroughSystemd() throws {
        let root = vars["BOOTED_ROOT"]!
        let args = [
            "bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
            "--registry", "registry-service.openfaas.svc.cluster.local", "--cluster-dns", "127.0.0.10",
            "--timeout", "0.3", "--restart-runtime",
        ]
        // The node's containerd config (Debian's, as shipped) with certs.d enabled.
        let table = "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/containerd/certs.d\"\n"
        XCTAssertEqual(try exec(["sh", "-c", "printf '%s' \"$1\" >> \"$0/etc/containerd/config.toml\"", root, table]).status, 0)
        // containerd.service started at boot, before the CA: restarted, through systemd.
        let first = try agent(args)
        XCTAssertEqual(first.status, 1, "no cluster DNS here, so not ready: \(first.output)")
        let restarts = first.report.changes.filter { $0.hasPrefix("restart containerd.service") }
        XCTAssertEqual(restarts.count, 1, first.report.changes.joined(separator: "\n"))
        XCTAssertEqual(
            first.report.check("runtime-restart-pending")?.outcome, "pass", first.report.check("runtime-restart-pending")?.reason ?? "")
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
        let probe = try agent([
            "probe", "--host-root", root, "--registry", "registry-service.openfaas.svc.cluster.local",
            "--cluster-dns", "127.0.0.10", "--timeout", "0.3",
        ])
        let pending = try XCTUnwrap(probe.report.check("runtime-restart-pending"))
        XCTAssertEqual(pending.outcome, "warn", pending.reason)
        XCTAssertTrue(pending.reason.contains("containerd.service"), pending.reason)
    }

    /// With systemd-networkd running and a .network file that matches the agent's link (a
    /// catch-all, as some images ship), resolved refuses the link's settings ("Link nodeagent0 is
    /// managed"). The link mode writes its own Unmanaged file and reloads networkd first; the
    /// foreign file stays; uninstall removes only the agent's.
    func testLinkModeKeepsSystemdNetworkdOffItsLink() throws {
        let root = vars["BOOTED_ROOT"]!
        let catchAll = root + "/etc/systemd/network/50-catch-all.network"
        XCTAssertEqual(try exec(["sh", "-c", "printf '[Match]\\nName=*\\n[Network]\\nDHCP=no\\n' > \(catchAll)"]).status, 0)
        let bus = ["busctl", "--address=unix:path=\(root)/run/dbus/system_bus_socket"]
        let start = try exec(
            bus + [
                "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                "StartUnit", "ss", "systemd-networkd.service", "replace",
            ])
        XCTAssertEqual(start.status, 0, start.stderr)
        var up = false
        for _ in 0..<50 where !up {
            up = try exec(bus + ["status", "org.freedesktop.network1"]).status == 0
            if !up { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertTrue(up, "systemd-networkd did not come up")

        let run = try agent([
            "bootstrap", "--host-root", root, "--ca", try CertFixtures.path("ca.crt"),
            "--registry", "registry-service.openfaas.svc.cluster.local", "--cluster-dns", "127.0.0.10",
            "--timeout", "0.3", "--dns-mode", "link",
        ])
        XCTAssertTrue(run.report.changes.contains { $0.hasPrefix("create /etc/systemd/network/00-node-agent.network") }, run.output)
        XCTAssertTrue(run.report.changes.contains("reload systemd-networkd: make it re-read its .network files"), run.output)
        let linkDNS = try exec(["chroot", root, "resolvectl", "dns", "nodeagent0"])
        XCTAssertTrue(linkDNS.stdout.contains("127.0.0.10"), linkDNS.stdout + linkDNS.stderr)
        let show = try exec(["ip", "-o", "link", "show", "nodeagent0"]).stdout
        let index = String(show.prefix { $0.isNumber })
        let state = try exec(["cat", root + "/run/systemd/netif/links/" + index]).stdout
        XCTAssertTrue(state.contains("ADMIN_STATE=unmanaged"), "link \(index): \(state)")

        let uninstall = try exec([SandboxNode.binary, "uninstall", "--host-root", root])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertTrue(uninstall.stdout.contains("remove /etc/systemd/network/00-node-agent.network"), uninstall.stdout + uninstall.stderr)
        XCTAssertNotEqual(try exec(["test", "-e", root + "/etc/systemd/network/00-node-agent.network"]).status, 0)
        XCTAssertEqual(try exec(["test", "-e", catchAll]).status, 0, "uninstall removed a file not the agent's")
    }
}
