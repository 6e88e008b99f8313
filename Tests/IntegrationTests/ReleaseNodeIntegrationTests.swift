import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Every Debian release a node runs, booted for real (scripts/booted-node): its own systemd,
/// D-Bus, systemd-resolved, and containerd + runc from that release, run as systemd services.
/// The node boots into a sandbox node's network namespace, so it reaches that node's kube-dns
/// and registry as a cluster node reaches the Services. On each: the real CRI pull fails before
/// `bootstrap` and the agent agrees; a dry run changes nothing; `bootstrap` makes the node ready
/// with no runtime restart and the real pull then succeeds; a second run changes nothing;
/// `uninstall` restores the node's files byte for byte.
final class ReleaseNodeIntegrationTests: XCTestCase {
    func testBookwormSystemd252Containerd16() throws { try endToEnd("bookworm") }
    func testTrixieSystemd257Containerd17() throws { try endToEnd("trixie") }
    func testSidSystemd262Containerd21() throws { try endToEnd("sid") }

    func endToEnd(_ suite: String) throws {
        let sandbox = try SandboxNode()
        defer { sandbox.down() }
        // The booted node's own resolved takes 127.0.0.53 in the shared namespace.
        XCTAssertEqual(try sandbox.control(["stop", "resolved"]), 0)
        // An uplink, as every node has: resolved counts the network as down without a link
        // that is up with an address and a route (a delegate answers "Network is down").
        let uplink = try sandbox.exec([
            "sh", "-c",
            "ip link add eth0 type veth peer name eth0p && ip link set eth0p up && ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2 dev eth0",
        ])
        XCTAssertEqual(uplink.status, 0, uplink.stderr)
        let node = try ReleaseNode(suite: suite, netns: "/proc/\(sandbox.vars["SANDBOX_PID"]!)/ns/net")
        defer { node.down() }
        let started = Date()

        // containerd as Debian ships it, with certs.d enabled (config_path) as a node that
        // uses per-registry configuration has it; containerd reads its config at start.
        try node.enableCertsD()
        let pidBefore = try node.containerdPID()
        XCTAssertNotNil(Int(pidBefore).flatMap { $0 > 0 ? $0 : nil }, "\(suite): containerd.service has no main PID: '\(pidBefore)'")
        let image = sandbox.testImage
        let before = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertFalse(before.ok, "\(suite): pulled before bootstrap")
        let probe = try node.agent(["probe", "--host-root", node.root, "--registry", sandbox.registry, "--output", "json"])
        XCTAssertEqual(probe.status, 1, "\(suite): the agent said ready where the pull failed: \(probe.output)")
        XCTAssertEqual(try JSONReport.decode(probe.stdout).check("runtime-pull")?.outcome, "fail", probe.output)

        let files = try node.files()
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]
        let dry = try node.agent(bootstrap + ["--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertEqual(try node.files(), files, "\(suite): the dry run changed the node")

        // The cluster DNS comes from kubelet's config, as on a node.
        let run = try node.agent(bootstrap)
        XCTAssertEqual(run.status, 0, "\(suite): \(run.output)")
        let report = try JSONReport.decode(run.stdout)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", run.output)
        // resolved runs and the node's programs ask its stub: auto takes the link, or from
        // systemd 258 the delegate file.
        let mode = suite == "sid" ? "delegate" : "link"
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("DNS mode \(mode): ") }, "\(suite): \(report.notes)")
        XCTAssertEqual(try node.containerdPID(), pidBefore, "\(suite): containerd was restarted")
        let after = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertTrue(after.ok, "\(suite): the agent said ready and the pull failed: \(after.error)")

        // resolved restarted under it (a package upgrade, say): the verdict still agrees with the pull.
        XCTAssertEqual(try node.systemctl(["restart", "systemd-resolved.service"]).status, 0)
        let afterRestart = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertTrue(afterRestart.ok, "\(suite): no pull after resolved restarted: \(afterRestart.error)")
        let probeAfter = try node.agent(["probe", "--host-root", node.root, "--registry", sandbox.registry, "--output", "json"])
        XCTAssertEqual(probeAfter.status, 0, "\(suite): the agent disagrees with the pull after resolved restarted: \(probeAfter.output)")

        let again = try node.agent(bootstrap)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try JSONReport.decode(again.stdout).changes, [], "\(suite): a second run changed the node")

        let uninstall = try node.agent(["uninstall", "--host-root", node.root])
        XCTAssertEqual(uninstall.status, 0, uninstall.output)
        XCTAssertEqual(try node.files(), files, "\(suite): uninstall did not restore the node")
        print("release node \(suite) (\(node.versions)): end to end in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}

/// A booted node of one Debian release in a given network namespace.
final class ReleaseNode {
    let script = packageRoot.appendingPathComponent("scripts/booted-node").path
    let folder: String
    let suite: String
    let vars: [String: String]
    var root: String { vars["BOOTED_ROOT"]! }
    var environment: [String: String]

    init(suite: String, netns: String) throws {
        self.suite = suite
        folder = NSTemporaryDirectory() + "node-agent-release-\(suite)-\(UUID().uuidString.prefix(8))"
        var env = ProcessInfo.processInfo.environment
        env["NODE_AGENT_SUITE"] = suite
        env["NODE_AGENT_BOOTED_NETNS"] = netns
        env["NODE_AGENT_BOOTED"] = folder
        environment = env
        vars = try startNode(script: script, folderVariable: "NODE_AGENT_BOOTED", folder: folder, extra: env)
    }

    func down() { _ = try? sh(script, ["down"], environment: environment) }

    /// Runs a command in the node's mount view and network namespace.
    @discardableResult
    func exec(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try sh(script, ["exec"] + args, environment: environment)
    }

    /// A command inside the node itself (its own root, its systemctl).
    func inside(_ command: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try exec(["chroot", root, "sh", "-c", command])
    }

    /// The node's own systemctl, talking to its systemd.
    func systemctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try exec(["chroot", root, "systemctl"] + args)
    }

    func agent(_ args: [String]) throws -> (status: Int32, stdout: String, output: String) {
        let r = try exec([SandboxNode.binary] + args)
        return (r.status, r.stdout, r.stdout + r.stderr)
    }

    /// The node's systemd and containerd, as their own binaries say.
    var versions: String {
        let systemd = (try? inside("systemctl --version").stdout.split(separator: "\n").first.map(String.init)) ?? nil
        let containerd = (try? inside("containerd --version").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? nil
        return "\(systemd ?? "systemd ?"), \(containerd ?? "containerd ?")"
    }

    func containerdPID() throws -> String {
        try systemctl(["show", "-p", "MainPID", "--value", "containerd.service"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Adds the registry's `config_path` to containerd's config as Debian ships it (a version 2
    /// file on every release; containerd 2.x migrates it at start), then restarts containerd and
    /// waits for its CRI socket.
    func enableCertsD() throws {
        let table = """
              [plugins."io.containerd.grpc.v1.cri".registry]
                config_path = "/etc/containerd/certs.d"
            """
        let write = try exec([
            "sh", "-c", "test -f \"$0/etc/containerd/config.toml\" && printf '%s\\n' \"$1\" >> \"$0/etc/containerd/config.toml\"", root,
            table,
        ])
        XCTAssertEqual(write.status, 0, "\(suite): no shipped /etc/containerd/config.toml: \(write.stderr)")
        let restart = try systemctl(["restart", "containerd.service"])
        XCTAssertEqual(restart.status, 0, restart.stderr)
        for _ in 0..<100 {
            if try exec(["test", "-S", root + "/run/containerd/containerd.sock"]).status == 0 { return }
            usleep(100_000)
        }
        XCTFail("\(suite): containerd's socket did not appear: \(try systemctl(["status", "containerd.service"]).stdout)")
    }

    /// The real pull through the node's CRI socket, as kubelet asks for it.
    func pull(_ reference: String, user: String, password: String) throws -> (ok: Bool, error: String) {
        let cri = packageRoot.appendingPathComponent("scripts/cri").path
        let r = try exec([
            "env", "-u", "SSL_CERT_FILE", "-u", "SSL_CERT_DIR", cri, "--endpoint", "unix://\(root)/run/containerd/containerd.sock",
            "--timeout", "30", "pull", reference, "--username", user, "--password", password,
        ])
        return (r.status == 0, r.stderr)
    }

    /// The node's files the agent may touch, with their kinds, modes, link targets and contents'
    /// hashes: equal values mean byte for byte the same files.
    func files() throws -> String {
        let r = try exec([
            "sh", "-c",
            """
            cd "$0" && find etc usr/local/share/ca-certificates var/lib/node-agent -xdev -printf '%y %m %p -> %l\\n' 2>/dev/null | sort
            cd "$0" && find etc usr/local/share/ca-certificates -xdev -type f -print0 | sort -z | xargs -0 sha256sum
            """, root,
        ])
        return r.stdout
    }
}
