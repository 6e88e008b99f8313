import Containerd
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// Every Debian release a node runs, booted for real (Tests/nodes/booted-node): its own systemd,
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
    func testBookwormBootUnit() throws { try bootUnit("bookworm") }

    /// resolved restarting while the agent reads the node (a package upgrade, `systemctl
    /// restart`; a drop-in makes its start take 2 s here): its name is off the bus meanwhile.
    /// A reconcile in that moment on a booted trixie node took resolved for absent, wrote
    /// /etc/hosts lines and removed its link, to undo both at the next one. Now the agent waits
    /// for systemd to have resolved started, keeps its link, changes nothing, and the pull agrees.
    func testTrixieResolvedRestartingIsWaitedForNotTakenForAbsent() throws {
        let (sandbox, node) = try bootWithCertsD("trixie")
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]
        let first = try node.agent(bootstrap)
        XCTAssertEqual(first.status, 0, first.output)
        let slow = try node.inside(
            "mkdir -p /etc/systemd/system/systemd-resolved.service.d && printf '[Service]\\nExecStartPre=/bin/sleep 2\\n' > /etc/systemd/system/systemd-resolved.service.d/slow-start.conf && systemctl daemon-reload"
        )
        XCTAssertEqual(slow.status, 0, slow.stderr)
        let files = try node.files()
        XCTAssertEqual(try node.systemctl(["restart", "--no-block", "systemd-resolved.service"]).status, 0)
        try eventually(10, "resolved starting again") {
            try node.systemctl(["show", "-p", "ActiveState", "--value", "systemd-resolved.service"]).stdout == "activating\n"
        }
        let again = try node.agent(bootstrap)
        XCTAssertEqual(again.status, 0, again.output)
        let report = try JSONReport.decode(again.stdout)
        XCTAssertEqual(report.changes, [], "the agent changed the node while resolved restarted: \(again.output)")
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("DNS mode link: ") }, "\(report.notes)")
        XCTAssertEqual(try node.files(), files, "the agent's run while resolved restarted changed the node's files")
        let pull = try node.pullTestImage(from: sandbox)
        XCTAssertTrue(pull.ok, "the agent said ready and the pull failed: \(pull.error)")
    }

    /// resolved going away while a call of the agent's is in flight to it: the call gets no
    /// reply (`NoReply`, "recipient disconnected"), and a `run` reconcile in that moment failed,
    /// the node's condition flipping to not ready for a second (seen in CI on bookworm, at
    /// `systemctl restart`). Here resolved is stopped (SIGSTOP) so that `bootstrap`'s call to it
    /// (the link's settings) waits, then killed under it, and systemd restarts it (its unit's
    /// Restart=always, as a crash would): systemd says resolved moved during the run, so the run
    /// is made again once resolved is back, and it says so. Ready, nothing changed, the pull agrees.
    func testTrixieResolvedRestartingUnderACallIsRunAgainNotAFailure() throws {
        let (sandbox, node) = try bootWithCertsD("trixie")
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]
        let first = try node.agent(bootstrap)
        XCTAssertEqual(first.status, 0, first.output)
        let files = try node.files()
        let pid = try node.systemctl(["show", "-p", "MainPID", "--value", "systemd-resolved.service"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try node.inside("kill -STOP \(pid)").status, 0)
        let log = node.folder + "/bootstrap-under-restart"
        let started = try node.exec(
            [
                "sh", "-c", "(\"$@\" >\"$0.out\" 2>\"$0.err\"; echo $? >\"$0.rc\") </dev/null >/dev/null 2>&1 & echo started", log,
                SandboxNode.binary,
            ] + bootstrap)
        XCTAssertEqual(started.status, 0, started.stderr)
        // A bootstrap takes well under a second here; one that has not ended waits on resolved.
        usleep(1_500_000)
        XCTAssertFalse(FileManager.default.fileExists(atPath: log + ".rc"), "bootstrap did not wait on a stopped resolved")
        XCTAssertEqual(try node.inside("kill -KILL \(pid)").status, 0)
        try eventually(30, "bootstrap ended") { FileManager.default.fileExists(atPath: log + ".rc") }
        let rc = try String(contentsOfFile: log + ".rc", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try String(contentsOfFile: log + ".out", encoding: .utf8)
        let err = try String(contentsOfFile: log + ".err", encoding: .utf8)
        XCTAssertEqual(rc, "0", "resolved's restart under a call failed the run: \(out)\(err)")
        let report = try JSONReport.decode(out)
        XCTAssertTrue(report.ready, out)
        XCTAssertEqual(report.changes, [], "the run again changed the node: \(out)")
        XCTAssertTrue(
            report.notes.contains {
                $0.hasPrefix("systemd-resolved ") && $0.contains("during this run, which ended: ") && $0.contains("NoReply")
            },
            "the run made again is not said: \(report.notes)")
        XCTAssertNotEqual(
            try node.systemctl(["show", "-p", "MainPID", "--value", "systemd-resolved.service"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines), pid, "resolved did not restart")
        XCTAssertEqual(try node.files(), files, "the agent's runs while resolved restarted changed the node's files")
        let pull = try node.pullTestImage(from: sandbox)
        XCTAssertTrue(pull.ok, "the agent said ready and the pull failed: \(pull.error)")
    }

    /// The same moment for containerd: its unit starts it with `-c` a config of its own (certs.d
    /// in /etc/containerd-node), and `bootstrap` runs while systemd has it activating (its start
    /// slowed by 2 s). No containerd serves the socket then; taken for a node whose config files
    /// decide, the CA went where the default config says, where this containerd never reads.
    func testBookwormContainerdStartingIsWaitedForNotTakenForAbsent() throws {
        let (sandbox, node) = try bootWithCertsD("bookworm")
        let own = try node.inside(
            "mkdir -p /etc/containerd-node /etc/systemd/system/containerd.service.d"
                + " && sed 's#/etc/containerd/certs.d#/etc/containerd-node/certs.d#' /etc/containerd/config.toml > /etc/containerd-node/config.toml"
                + " && printf '[Service]\\nExecStartPre=/bin/sleep 2\\nExecStart=\\nExecStart=/usr/bin/containerd -c /etc/containerd-node/config.toml\\n'"
                + " > /etc/systemd/system/containerd.service.d/own-config.conf && systemctl daemon-reload")
        XCTAssertEqual(own.status, 0, own.stderr)
        XCTAssertEqual(try node.systemctl(["restart", "--no-block", "containerd.service"]).status, 0)
        try eventually(10, "containerd starting again") {
            try node.systemctl(["show", "-p", "ActiveState", "--value", "containerd.service"]).stdout == "activating\n"
        }
        let r = try node.agent([
            "bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json",
        ])
        XCTAssertEqual(r.status, 0, r.output)
        let running = try node.inside("tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value containerd.service)/cmdline").stdout
        XCTAssertTrue(running.contains("-c /etc/containerd-node/config.toml"), "not the node's own containerd: \(running)")
        XCTAssertEqual(try node.inside("ls /etc/containerd-node/certs.d | grep -c :443").stdout, "1\n", r.output)
        XCTAssertEqual(
            try node.inside("ls /etc/containerd/certs.d 2>/dev/null | grep -c :443").stdout, "0\n",
            "the CA went where the default config says: \(r.output)")
        let pull = try node.pullTestImage(from: sandbox)
        XCTAssertTrue(pull.ok, "the agent said ready and the pull failed: \(pull.error)")
    }

    /// containerd started with `-c` a config of its own that names its socket (`[grpc] address`,
    /// no `-a`), kubelet pulling through that socket: the agent finds the containerd where its
    /// config says and writes the CA where it reads. Before, only the default socket was looked
    /// for: containerd "not running", and the CA written by the default config into
    /// /etc/containerd/certs.d, which this containerd never reads.
    func testBookwormContainerdServingTheSocketItsConfigNames() throws {
        let (sandbox, node) = try bootWithCertsD("bookworm")
        let socket = "/run/containerd-alt/containerd.sock"
        let own = try node.inside(
            "mkdir -p /etc/containerd-node /etc/systemd/system/containerd.service.d"
                + " && sed 's#/etc/containerd/certs.d#/etc/containerd-node/certs.d#' /etc/containerd/config.toml > /etc/containerd-node/config.toml"
                + " && printf '[grpc]\\n  address = \"\(socket)\"\\n' >> /etc/containerd-node/config.toml"
                + " && printf '[Service]\\nExecStart=\\nExecStart=/usr/bin/containerd -c /etc/containerd-node/config.toml\\n'"
                + " > /etc/systemd/system/containerd.service.d/own-config.conf && systemctl daemon-reload && systemctl restart containerd.service"
                + " && sed -i 's#^containerRuntimeEndpoint: .*#containerRuntimeEndpoint: unix://\(socket)#' /var/lib/kubelet/config.yaml")
        XCTAssertEqual(own.status, 0, own.stdout + own.stderr)
        try eventually(10, "containerd serving \(socket)") { try node.inside("test -S \(socket)").status == 0 }
        let r = try node.agent([
            "bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json",
        ])
        XCTAssertEqual(r.status, 0, r.output)
        let report = try JSONReport.decode(r.stdout)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", r.output)
        XCTAssertEqual(try node.inside("ls /etc/containerd-node/certs.d | grep -c :443").stdout, "1\n", r.output)
        XCTAssertEqual(
            try node.inside("ls /etc/containerd/certs.d 2>/dev/null | grep -c :443").stdout, "0\n",
            "the CA went where the default config says: \(r.output)")
        let pull = try node.pull(
            sandbox.testImage, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!, socket: socket)
        XCTAssertTrue(pull.ok, "the agent said ready and the pull failed: \(pull.error)")
    }

    /// containerd 2.1's CRI pulls go through its transfer service, which takes `config_path` as
    /// one folder (v2.1.9's image_pull.go: `registry.WithHostDir(ConfigPath)`, no SplitList;
    /// containerd#12808): a colon-separated list is no folder, and no certs.d is read. With Go's
    /// system roots loaded before the CA reached the OS store (a pull that got to TLS before
    /// bootstrap), the pull still fails after bootstrap, whose CA is in the list's first folder:
    /// the agent says so, not ready, and its model says why: no certs.d is read, containerd's
    /// trust is the OS store as it loaded it, a restart pending. Before, it said the first
    /// folder was read (tls-runtime-trust and certs-d passed), and only its runtime-pull failed.
    func testSidTransferServiceReadsNoCertsDFromAList() throws {
        let (sandbox, node) = try boot("sid")
        addTeardownBlock {
            node.down()
            sandbox.down()
        }
        try node.enableCertsD("/etc/containerd/certs.d:/etc/docker/certs.d")
        // The registry's name in /etc/hosts, so that a pull before bootstrap reaches TLS (and
        // containerd loads Go's system roots, once, without the CA).
        let ip = sandbox.vars["REGISTRY_IP"] ?? "127.0.0.20"
        let host = sandbox.registry.replacingOccurrences(of: ":443", with: "")
        XCTAssertEqual(try node.inside("echo '\(ip) \(host)' >> /etc/hosts").status, 0)
        let user = sandbox.vars["REGISTRY_USER"]!
        let password = sandbox.vars["REGISTRY_PASSWORD"]!
        let before = try node.pull(sandbox.testImage, user: user, password: password)
        XCTAssertTrue(before.error.contains("x509"), "the pull before bootstrap did not reach TLS: \(before.error)")
        let r = try node.agent([
            "bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json",
        ])
        let after = try node.pull(sandbox.testImage, user: user, password: password)
        XCTAssertTrue(after.error.contains("x509"), "containerd read the list's first folder: \(after.ok) \(after.error)")
        XCTAssertEqual(r.status, 1, "the agent said ready where the pull fails: \(r.output)")
        let report = try JSONReport.decode(r.stdout)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "fail", r.output)
        XCTAssertEqual(report.check("tls-runtime-trust")?.outcome, "fail", r.output)
        XCTAssertNotEqual(report.check("certs-d")?.outcome, "pass", r.output)
        XCTAssertTrue(r.output.contains("transfer service, which takes config_path"), r.output)
    }

    /// A second containerd on the node, as a CI runner's: root, in the node's network, serving
    /// the same socket path in a mount namespace of its own (a unit with a private
    /// /run/containerd), started with a config whose config_path is its own. The agent runs
    /// without CAP_SYS_PTRACE, as in the DaemonSet's pod, so it cannot tell the sockets apart by
    /// the processes' descriptors: the socket in the node's root names the process that serves
    /// it (SO_PEERCRED). Before, the second one's config decided where root wrote the CA (the
    /// node's containerd names no -c), and then systemd's containerd.service did.
    func testBookwormSecondContainerdIsNotTheNodes() throws { try secondContainerd(maskedNodeUnit: false) }

    /// A second containerd in the node's own mount namespace, serving a socket of its own, on a
    /// node whose kubelet is not configured yet (bootstrap before the node joins): each socket
    /// names its own server and no kubelet names its socket, so systemd's containerd.service
    /// says which one is the node's, here masked while it runs (an admin's `systemctl mask`, a
    /// package's postinst): systemd 252 answers LoadState "masked", ActiveState "active" and its
    /// main PID, so the unit still says which containerd is the node's. Read as "not installed"
    /// before de0e19f, the unit said nothing and the second one's config could decide.
    func testBookwormMaskedContainerdUnitStillSaysWhichIsTheNodes() throws { try secondContainerd(maskedNodeUnit: true) }

    func secondContainerd(maskedNodeUnit: Bool) throws {
        let (sandbox, node) = try bootWithCertsD("bookworm")
        if maskedNodeUnit {
            XCTAssertEqual(try node.systemctl(["mask", "containerd.service"]).status, 0)
            let state = try node.systemctl(["show", "-p", "LoadState", "-p", "ActiveState", "containerd.service"]).stdout
            XCTAssertEqual(state, "LoadState=masked\nActiveState=active\n", "not a running unit masked since")
            XCTAssertEqual(try node.inside("rm /var/lib/kubelet/config.yaml").status, 0)
        }
        // Masked: in the node's mount namespace at a socket of its own; otherwise at the node's
        // socket path in a mount namespace of its own.
        let socket = maskedNodeUnit ? "/run/impostor/containerd.sock" : "/run/containerd/containerd.sock"
        let setup = try node.inside(
            "mkdir -p /etc/impostor /run/impostor && printf 'version = 2\\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\\n  config_path = \"/etc/impostor-certs.d\"\\n' > /etc/impostor/config.toml"
                + " && systemd-run --unit=impostor \(maskedNodeUnit ? "" : "-p TemporaryFileSystem=/run/containerd") /usr/bin/containerd -c /etc/impostor/config.toml"
                + " -a \(socket) --root /var/lib/impostor --state /run/impostor/state")
        XCTAssertEqual(setup.status, 0, setup.stdout + setup.stderr)
        var sockets = ""
        for _ in 0..<100 {
            sockets = try node.exec(["sh", "-c", "grep -E ' /run/(containerd|impostor)/containerd.sock$' /proc/net/unix"]).stdout
            if sockets.split(separator: "\n").count >= 2 { break }
            usleep(100_000)
        }
        guard sockets.split(separator: "\n").count >= 2 else {
            return XCTFail(
                "\(sockets) \(try node.systemctl(["status", "impostor.service"]).stdout) \(try node.inside("journalctl -u impostor --no-pager | tail -5").stdout)"
            )
        }
        let r = try node.exec([
            "setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace", SandboxNode.binary, "bootstrap", "--host-root",
            node.root,
            "--registry", sandbox.registry, "--ca", sandbox.caFile, "--cluster-dns", sandbox.clusterDNS,
        ])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(
            r.stdout.contains(
                maskedNodeUnit
                    ? "is not the node's containerd.service, k3s or RKE2 unit's"
                    : "listens at /run/containerd/containerd.sock in a mount namespace of its own: the node's /run/containerd/containerd.sock is served by pid \(try node.containerdPID())"
            ), r.stdout)
        XCTAssertNotEqual(
            try node.inside("test -e /etc/impostor-certs.d").status, 0, "root wrote where the second containerd's config said")
        XCTAssertEqual(try node.inside("ls /etc/containerd/certs.d | grep -c :443").stdout, "1\n")
        let after = try node.pullTestImage(from: sandbox)
        XCTAssertTrue(after.ok, after.error)
    }
    func testTrixieBootUnit() throws { try bootUnit("trixie") }
    func testSidBootUnit() throws { try bootUnit("sid") }

    /// A sandbox node (kube-dns, the registry) with an uplink, and a node of `suite` booted into
    /// its network namespace.
    func boot(_ suite: String) throws -> (sandbox: SandboxNode, node: ReleaseNode) {
        let sandbox = try SandboxNode()
        // The booted node's own resolved takes 127.0.0.53 in the shared namespace.
        XCTAssertEqual(try sandbox.control(["stop", "resolved"]), 0)
        // An uplink, as every node has: resolved counts the network as down without a link
        // that is up with an address and a route (a delegate answers "Network is down").
        let uplink = try sandbox.exec([
            "sh", "-c",
            "ip link add eth0 type veth peer name eth0p && ip link set eth0p up && ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2 dev eth0",
        ])
        XCTAssertEqual(uplink.status, 0, uplink.stderr)
        do {
            return (sandbox, try ReleaseNode(suite: suite, netns: "/proc/\(sandbox.vars["SANDBOX_PID"]!)/ns/net"))
        } catch {
            sandbox.down()
            throw error
        }
    }

    /// `boot(suite)`, taken down when the test ends, with containerd's certs.d enabled as a node
    /// that uses per-registry configuration has it: how most tests on a booted node start.
    /// `debs`: packages fetched into the node's apt archive (Tests/nodes/booted-node), to install.
    func bootWithCertsD(_ suite: String, debs: String? = nil) throws -> (sandbox: SandboxNode, node: ReleaseNode) {
        if let debs { setenv("NODE_AGENT_BOOTED_DEBS", debs, 1) }
        defer { if debs != nil { unsetenv("NODE_AGENT_BOOTED_DEBS") } }
        let (sandbox, node) = try boot(suite)
        addTeardownBlock {
            node.down()
            sandbox.down()
        }
        try node.enableCertsD()
        return (sandbox, node)
    }

    func endToEnd(_ suite: String) throws {
        let (sandbox, node) = try boot(suite)
        defer {
            node.down()
            sandbox.down()
        }
        let started = Date()

        // containerd as Debian ships it, with certs.d enabled (config_path) as a node that
        // uses per-registry configuration has it; containerd reads its config at start. On 1.x a
        // colon-separated list, which those releases search in order (the boot unit's nodes have
        // the single folder): the agent writes into the first. containerd 2.1's CRI pulls take
        // the list as one folder and read no certs.d (testSidTransferServiceReadsNoCertsDFromAList):
        // there the single folder. With the list, this test passed on sid only when Go's roots
        // were loaded after the CA reached the OS store, and failed in CI when not.
        let list = suite != "sid"
        try node.enableCertsD(list ? "/etc/containerd/certs.d:/etc/docker/certs.d" : "/etc/containerd/certs.d")
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
        let hostFolder = sandbox.registry.replacingOccurrences(of: ":443", with: "") + ":443"
        XCTAssertEqual(try node.inside("ls /etc/containerd/certs.d/\(hostFolder)").stdout, "ca.crt\nhosts.toml\n", suite)
        if list {
            XCTAssertNotEqual(try node.inside("test -e /etc/docker/certs.d").status, 0, "\(suite): wrote into the list's second folder")
        }
        // resolved's facts the agent relies on, as this version behaves: the host's resolv.conf
        // is the stub; the uplink file kubelet hands to CoreDNS (resolvConf in its config) never
        // names the cluster DNS (CoreDNS would forward to itself); the link routes only the
        // domain (DefaultRoute off), so the host's other lookups stay with the uplink's servers.
        let stub = try node.inside("cat /etc/resolv.conf").stdout
        XCTAssertTrue(stub.contains("nameserver 127.0.0.53"), "\(suite): \(stub)")
        let uplinkFile = try node.inside("cat /run/systemd/resolve/resolv.conf").stdout
        XCTAssertFalse(uplinkFile.contains("127.0.0.10"), "\(suite): the cluster DNS leaked into kubelet's resolv.conf: \(uplinkFile)")
        // The route is routing-only in every mode: no search domain reaches the host's programs
        // or the pods (kubelet hands the uplink file to CoreDNS and to dnsPolicy Default pods).
        for (name, text) in [("/etc/resolv.conf", stub), ("/run/systemd/resolve/resolv.conf", uplinkFile)] {
            XCTAssertFalse(
                text.split(separator: "\n").contains { $0.hasPrefix("search") && $0.contains("svc.cluster.local") },
                "\(suite): the cluster domain became a search domain in \(name): \(text)")
        }
        if mode == "link" {
            let route = try node.inside("resolvectl default-route nodeagent0").stdout
            XCTAssertTrue(route.hasSuffix("(nodeagent0): no\n"), "\(suite): \(route)")
            let domain = try node.inside("resolvectl domain nodeagent0").stdout
            XCTAssertTrue(domain.hasSuffix("(nodeagent0): ~svc.cluster.local\n"), "\(suite): \(domain)")
        }
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

        // `run`, as the DaemonSet runs it, for a few reconciles with containerd and then resolved
        // restarted under it through systemd: it stays ready, and the pull agrees each time.
        let agentRun = try node.startRun(["--registry", sandbox.registry, "--ca", sandbox.caFile])
        defer { agentRun.stop() }
        try eventually(30, "\(suite): run's first reconcile") { agentRun.reconciles.count >= 1 }
        XCTAssertEqual(try node.endpoint("/readyz").code, "200", agentRun.text)
        XCTAssertEqual(try node.systemctl(["restart", "containerd.service"]).status, 0)
        XCTAssertNotEqual(try node.containerdPID(), pidBefore, "\(suite): containerd did not restart")
        try node.waitForCRI()
        var seen = agentRun.reconciles.count
        try eventually(30, "\(suite): two reconciles after containerd restarted") { agentRun.reconciles.count >= seen + 2 }
        XCTAssertTrue(agentRun.reconciles.last?.contains("ready=true") == true, agentRun.text)
        XCTAssertEqual(try node.endpoint("/readyz").code, "200", agentRun.text)
        let afterRuntimeRestart = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertTrue(afterRuntimeRestart.ok, "\(suite): run said ready and the pull failed: \(afterRuntimeRestart.error)")
        seen = agentRun.reconciles.count
        XCTAssertEqual(try node.systemctl(["restart", "systemd-resolved.service"]).status, 0)
        // resolved's new bus owner is noticed at once, not at the next interval.
        try eventually(30, "\(suite): a reconcile for resolved's restart") {
            agentRun.reconciles.dropFirst(seen).contains { $0.contains("reason=systemd-resolved restarted") }
        }
        try eventually(30, "\(suite): ready after resolved restarted") { agentRun.reconciles.last?.contains("ready=true") == true }
        // resolved's fact the agent relies on, on each version: a restarted resolved keeps the
        // link's settings (saved in /run) or reads the delegate file again, so nothing is redone.
        XCTAssertTrue(
            agentRun.reconciles.dropFirst(seen).first { $0.contains("reason=systemd-resolved restarted") }?.contains("changes=0") == true,
            "\(suite): resolved lost the agent's settings on restart: \(agentRun.text)")
        XCTAssertEqual(try node.endpoint("/readyz").code, "200", agentRun.text)
        let afterResolvedRestart = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertTrue(afterResolvedRestart.ok, "\(suite): run said ready and the pull failed: \(afterResolvedRestart.error)")
        XCTAssertTrue(agentRun.stop(), "\(suite): run did not stop on SIGTERM: \(agentRun.text)")
        XCTAssertFalse(agentRun.text.contains("reconcile failed"), agentRun.text)

        let uninstall = try node.agent(["uninstall", "--host-root", node.root])
        XCTAssertEqual(uninstall.status, 0, uninstall.output)
        XCTAssertEqual(try node.files(), files, "\(suite): uninstall did not restore the node")
        let afterUninstall = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertFalse(afterUninstall.ok, "\(suite): still pulls after uninstall")

        // nsswitch as some nodes ship it: libnss-resolve adds `resolve [!UNAVAIL=return]` to
        // hosts:, and Go leaves such a line to the C library, so containerd asks resolved through
        // its NSS module. The agent follows that path (the node's own getent) and agrees with the pull.
        let nss = try node.inside("dpkg -i /var/cache/apt/archives/libnss-resolve_*.deb")
        XCTAssertEqual(nss.status, 0, "\(suite): \(nss.stdout) \(nss.stderr)")
        let hostsLine = try node.inside("grep '^hosts:' /etc/nsswitch.conf").stdout
        XCTAssertTrue(hostsLine.contains("resolve [!UNAVAIL=return]"), "\(suite): \(hostsLine)")
        let withNSS = try node.files()
        let nssRun = try node.agent(bootstrap)
        XCTAssertEqual(nssRun.status, 0, "\(suite): \(nssRun.output)")
        let nssReport = try JSONReport.decode(nssRun.stdout)
        XCTAssertEqual(nssReport.check("runtime-pull")?.outcome, "pass", nssRun.output)
        let lookup = try XCTUnwrap(nssReport.check("dns-host"), nssRun.output)
        XCTAssertEqual(lookup.details["resolver"], "glibc", "\(suite): \(lookup)")
        XCTAssertTrue(lookup.details["nsswitch_hosts"]?.contains("resolve") == true, "\(suite): \(lookup)")
        XCTAssertEqual(lookup.outcome, "pass", "\(suite): \(lookup)")
        let nssPull = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
        XCTAssertTrue(nssPull.ok, "\(suite): with nss-resolve the agent said ready and the pull failed: \(nssPull.error)")
        let nssUninstall = try node.agent(["uninstall", "--host-root", node.root])
        XCTAssertEqual(nssUninstall.status, 0, nssUninstall.output)
        XCTAssertEqual(try node.files(), withNSS, "\(suite): uninstall did not restore the node with nss-resolve")
        print("release node \(suite) (\(node.versions)): end to end in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    func testK3sThatKeepsForeignFoldersGetsTheAgentsFolder() throws { try rancher(.k3s, "v1.31.1+k3s1", keeps: true, on: "bookworm") }
    func testK3sThatDeletesCertsDIsLeftAloneWithTheLinesToAdd() throws {
        try rancher(.k3s, "v1.30.4+k3s1", keeps: false, on: "bookworm")
    }
    /// k3s started with --data-dir: found from the config its running containerd was started with.
    func testK3sWithADataDirOfItsOwn() throws { try rancher(.k3s, "v1.31.1+k3s1", keeps: true, on: "bookworm", dataDir: "/srv/k3s") }
    func testK3sWhoseRegistriesYAMLNamesTheRegistryWithAnotherCAIsToldHowToFixIt() throws {
        try rancher(.k3s, "v1.31.1+k3s1", keeps: true, on: "bookworm", conflict: true)
    }
    /// RKE2 as its 1.32 releases lay it out: containerd 2 (sid's) with a version 3 config.
    func testRKE2OnContainerd2WithItsVersion3Config() throws { try rancher(.rke2, "v1.32.4+rke2r1", keeps: true, on: "sid") }

    /// A node laid out as k3s or RKE2 lays out its own, with the release's real containerd run as
    /// they run it: their generated config (their header, their certs.d as config_path, their
    /// socket /run/k3s/containerd/containerd.sock; version 2 for k3s on bookworm's containerd
    /// 1.6, version 3 for RKE2 on sid's 2.1), registries.yaml with a mirror, kubelet's settings
    /// in their kubelet.conf.d and no /var/lib/kubelet. They cannot be had here: their version
    /// is where the agent reads it (a stand-in /usr/local/bin/k3s that carries the string as
    /// k3s's binary does; RKE2's data/<version>-<digest> folder with bin linked to it, holding
    /// the containerd it runs), and their start is Tests/doubles/k3s-start-double (a test double of
    /// what that version's start does to certs.d from registries.yaml) and a containerd restart.
    /// - A version that keeps other folders gets the agent's: the real pull works with no
    ///   restart, the folder outlives their restarts, `run` writes it again when it goes, and
    ///   once registries.yaml names the registry their own folder is what containerd reads: the
    ///   agent leaves it to them, and the verdict and the pull agree.
    /// - An older one gets nothing there and a not-ready verdict with the registries.yaml lines
    ///   and the restart; with those lines and that restart, it is ready and the pull works.
    /// - A registries.yaml entry for the registry whose CA file does not verify it (`conflict`):
    ///   their folder is left to them, not ready with what to change in that entry and the
    ///   restart; once changed so, ready and the pull works.
    func rancher(
        _ program: K3sNode.Distribution, _ version: String, keeps: Bool, on suite: String, conflict: Bool = false, dataDir: String? = nil
    ) throws {
        let name = program.rawValue
        let (sandbox, node) = try boot(suite)
        defer {
            node.down()
            sandbox.down()
        }
        let data = dataDir ?? "/var/lib/rancher/\(name)"
        let header = "# File generated by \(name). DO NOT EDIT.\n"
        let certsD = "\(data)/agent/etc/containerd/certs.d"
        let socket = "/run/k3s/containerd/containerd.sock"
        let registries = "/etc/rancher/\(name)/registries.yaml"
        let otherCA = "/etc/rancher/\(name)/other-ca.crt"  // a CA, not the registry's
        /// Their start, as far as containerd goes: certs.d as this version rewrites it from
        /// registries.yaml, then its containerd started again.
        func k3sStart() throws {
            let start = try node.exec([
                "python3", packageRoot.appendingPathComponent("Tests/doubles/k3s-start-double").path, "--root", node.root,
                "--program", name, "--data-dir", data, "--cleanup", keeps ? "owned" : "all",
            ])
            XCTAssertEqual(start.status, 0, start.stderr)
            let restart = try node.systemctl(["restart", "containerd.service"])
            XCTAssertEqual(restart.status, 0, restart.stderr)
            try node.waitForCRI(socket)
        }
        let generated =
            suite == "bookworm"
            ? """
            { echo '# File generated by \(name). DO NOT EDIT. Use config.toml.tmpl instead.'; cat /etc/containerd/config.toml
              printf '[grpc]\\n  address = "\(socket)"\\n[plugins."io.containerd.grpc.v1.cri".registry]\\n  config_path = "\(certsD)"\\n'
            } > \(data)/agent/etc/containerd/config.toml
            """
            // Version 3 as their 2025 template writes it; containerd's root stays on the node's
            // tmpfs (overlayfs snapshots cannot stack on the node root's overlay).
            : """
            cat > \(data)/agent/etc/containerd/config.toml <<'EOF'
            # File generated by \(name). DO NOT EDIT. Use config-v3.toml.tmpl instead.
            version = 3
            root = "/var/lib/containerd"
            state = "/run/k3s/containerd"

            [grpc]
              address = "\(socket)"

            [plugins.'io.containerd.internal.v1.opt']
              path = "/var/lib/containerd/opt"

            [plugins.'io.containerd.cri.v1.images']
              snapshotter = "overlayfs"

            [plugins.'io.containerd.cri.v1.images'.registry]
              config_path = "\(certsD)"

            [plugins.'io.containerd.cri.v1.runtime'.cni]
              bin_dir = "/usr/lib/cni"
              conf_dir = "/etc/cni/net.d"
            EOF
            """
        let digest = "2a30dd9c8583"  // sha256("rancher/rke2-runtime:v1.32.4-rke2r1"), as RKE2 names the folder
        let installed =
            program == .k3s
            ? """
            printf '#!/bin/sh\\n# a stand-in for k3s (node-agent tests): its version string, as k3s carries it\\necho k3s version \(version)\\n' > /usr/local/bin/k3s
            chmod 755 /usr/local/bin/k3s
            containerd=/usr/bin/containerd
            """
            : """
            mkdir -p \(data)/data/\(version.replacingOccurrences(of: "+", with: "-"))-\(digest)/bin
            ln -s /usr/bin/containerd \(data)/data/\(version.replacingOccurrences(of: "+", with: "-"))-\(digest)/bin/containerd
            ln -s \(data)/data/\(version.replacingOccurrences(of: "+", with: "-"))-\(digest)/bin \(data)/bin
            containerd=\(data)/bin/containerd
            """
        let setUp = try node.inside(
            """
            set -e
            mkdir -p \(data)/agent/etc/containerd \(data)/agent/etc/kubelet.conf.d /etc/rancher/\(name) /etc/systemd/system/containerd.service.d
            \(generated)
            printf 'mirrors:\\n  docker.io:\\n    endpoint: ["https://registry-1.docker.io"]\\n' > \(registries)
            \(conflict ? "sed -n '1,/END CERTIFICATE/p' /etc/ssl/certs/ca-certificates.crt > \(otherCA); printf 'configs:\\n  \"\(sandbox.registry)\":\\n    tls:\\n      ca_file: \(otherCA)\\n' >> \(registries)" : "")
            printf 'apiVersion: kubelet.config.k8s.io/v1beta1\\nkind: KubeletConfiguration\\nclusterDNS:\\n- 127.0.0.10\\nclusterDomain: cluster.local\\n' > \(data)/agent/etc/kubelet.conf.d/00-\(name)-defaults.conf
            rm -f /var/lib/kubelet/config.yaml
            \(installed)
            printf '[Service]\\nExecStart=\\nExecStart=%s -c \(data)/agent/etc/containerd/config.toml -a \(socket)\\n' "$containerd" > /etc/systemd/system/containerd.service.d/\(name).conf
            systemctl daemon-reload
            """)
        XCTAssertEqual(setUp.status, 0, setUp.stderr)
        try k3sStart()
        let pidBefore = try node.containerdPID()
        let user = sandbox.vars["REGISTRY_USER"]!
        let password = sandbox.vars["REGISTRY_PASSWORD"]!
        func pull() throws -> (ok: Bool, error: String) { try node.pull(sandbox.testImage, user: user, password: password, socket: socket) }
        XCTAssertFalse(try pull().ok, "pulled before bootstrap")
        // containerd has loaded its OS roots, as a k3s node's has after its first pull: with the
        // name in /etc/hosts for one pull, it reaches TLS and fails on the unknown CA. So only
        // certs.d, read on every pull, can make it trust the CA without a restart.
        let hostsLine = try node.inside(
            "if [ -e /etc/hosts ]; then cp -p /etc/hosts /etc/hosts.before; fi; echo '\(sandbox.vars["REGISTRY_IP"]!) \(sandbox.registry.split(separator: ":")[0])' >> /etc/hosts"
        )
        XCTAssertEqual(hostsLine.status, 0, hostsLine.stderr)
        let rootsLoaded = try pull()
        XCTAssertTrue(rootsLoaded.error.contains("x509: certificate signed by unknown authority"), rootsLoaded.error)
        XCTAssertEqual(
            try node.inside("if [ -e /etc/hosts.before ]; then mv /etc/hosts.before /etc/hosts; else rm /etc/hosts; fi").status, 0)
        let k3sFolder = try node.inside("cat \(certsD)/docker.io/hosts.toml").stdout
        XCTAssertTrue(k3sFolder.hasPrefix(header), k3sFolder)

        // No --cluster-dns and no --runtime-endpoint: k3s's files give them.
        let bootstrap = ["bootstrap", "--host-root", node.root, "--registry", sandbox.registry, "--ca", sandbox.caFile, "--output", "json"]
        let run = try node.agent(bootstrap)
        let report = try JSONReport.decode(run.stdout)
        let ours = "\(certsD)/\(sandbox.registry)/hosts.toml"
        if conflict {
            // containerd reads their folder: the roots it loaded before the CA was installed,
            // and a CA file that does not verify the registry.
            XCTAssertEqual(run.status, 1, run.output)
            XCTAssertEqual(report.check("runtime-pull")?.outcome, "fail", run.output)
            XCTAssertEqual(report.check("tls-runtime-trust")?.outcome, "fail", run.output)
            let said = try XCTUnwrap(report.check("tls-runtime-trust")?.reason)
            XCTAssertTrue(said.contains("the tls.ca_file of \(registries)'s entry for \(sandbox.registry): make that the OS bundle"), said)
            XCTAssertTrue(
                said.contains("configs:\n  \"\(sandbox.registry)\":\n    tls:\n      ca_file: /etc/ssl/certs/ca-certificates.crt"), said)
            XCTAssertTrue(said.contains("restart \(name) on each node"), said)
            XCTAssertFalse(report.changes.contains { $0.contains(certsD) }, "\(report.changes)")
            XCTAssertTrue(try node.inside("cat \(ours)").stdout.hasPrefix(header), "the agent wrote over their folder")
            XCTAssertFalse(try pull().ok, "the pull disagrees")
            // As it says: the entry's CA file the OS bundle, and the restart.
            XCTAssertEqual(
                try node.inside("sed -i 's|ca_file: \(otherCA)|ca_file: /etc/ssl/certs/ca-certificates.crt|' \(registries)").status, 0)
            try k3sStart()
            let after = try node.agent(bootstrap)
            XCTAssertEqual(after.status, 0, after.output)
            XCTAssertEqual(try JSONReport.decode(after.stdout).check("runtime-pull")?.outcome, "pass", after.output)
            XCTAssertTrue(try pull().ok, "ready after the entry was changed as told, and the pull failed")
        } else if keeps {
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", run.output)
            XCTAssertTrue(report.changes.contains { $0.contains(ours) }, "\(report.changes)")
            // The version as the agent read it: k3s's binary, RKE2's data folder.
            XCTAssertTrue(
                report.notes.contains {
                    $0.hasPrefix("\(name) \(version.replacingOccurrences(of: "+rke2", with: "-rke2"))")
                        && $0.contains("keeps certs.d folders")
                },
                run.output)
            XCTAssertTrue(try node.inside("head -1 \(ours)").stdout.hasPrefix("# managed by node-agent"))
            XCTAssertEqual(try node.containerdPID(), pidBefore, "containerd was restarted")
            let pulled = try pull()
            XCTAssertTrue(pulled.ok, "the agent said ready on \(name) and the pull failed: \(pulled.error)")

            // k3s restarts: this version's cleanup keeps the agent's folder (no header, a host
            // registries.yaml does not name), and rewrites its own.
            let oursBefore = try node.inside("cat \(ours)").stdout
            try k3sStart()
            XCTAssertEqual(try node.inside("cat \(ours)").stdout, oursBefore, "\(name) \(version)'s restart lost the agent's folder")
            XCTAssertEqual(try node.inside("cat \(certsD)/docker.io/hosts.toml").stdout, k3sFolder, "k3s's own folder changed")
            XCTAssertTrue(try pull().ok, "no pull after k3s restarted")

            // Under `run`, the folder comes back when it goes (a person, an older k3s's restart).
            let agentRun = try node.startRun(["--registry", sandbox.registry, "--ca", sandbox.caFile])
            defer { agentRun.stop() }
            try eventually(30, "run's first reconcile") { agentRun.reconciles.count >= 1 }
            XCTAssertEqual(try node.inside("rm -r \(certsD)/\(sandbox.registry)").status, 0)
            try eventually(30, "run writes the agent's folder again") { (try? node.inside("cat \(ours)").stdout) == oursBefore }
            XCTAssertTrue(agentRun.stop(), agentRun.text)

            // registries.yaml now names the registry, with the OS bundle as its CA: at its start
            // k3s replaces the agent's folder with its own, the agent leaves it so, and the
            // verdict (k3s's ca file) and the pull agree.
            let claim = try node.inside(
                "printf 'configs:\\n  \"\(sandbox.registry)\":\\n    tls:\\n      ca_file: /etc/ssl/certs/ca-certificates.crt\\n' >> \(registries)"
            )
            XCTAssertEqual(claim.status, 0, claim.stderr)
            try k3sStart()
            let k3sOwn = try node.inside("cat \(ours)").stdout
            XCTAssertTrue(k3sOwn.hasPrefix(header), k3sOwn)
            let claimed = try node.agent(bootstrap)
            XCTAssertEqual(claimed.status, 0, claimed.output)
            let claimedReport = try JSONReport.decode(claimed.stdout)
            XCTAssertEqual(claimedReport.check("runtime-pull")?.outcome, "pass", claimed.output)
            XCTAssertEqual(claimedReport.check("certs-d")?.outcome, "pass", claimed.output)
            XCTAssertTrue(claimedReport.check("certs-d")?.reason.contains("/etc/ssl/certs/ca-certificates.crt") == true, claimed.output)
            XCTAssertFalse(claimedReport.changes.contains { $0.contains(certsD) }, "\(claimedReport.changes)")
            XCTAssertEqual(try node.inside("cat \(ours)").stdout, k3sOwn, "the agent wrote over k3s's folder")
            XCTAssertTrue(try pull().ok, "the agent said ready with k3s's entry and the pull failed")
        } else {
            // containerd loaded its roots before the CA reached the OS store, and certs.d is k3s's.
            XCTAssertEqual(run.status, 1, run.output)
            XCTAssertEqual(report.check("runtime-pull")?.outcome, "fail", run.output)
            XCTAssertNotEqual(try node.inside("test -e \(certsD)/\(sandbox.registry)").status, 0, "wrote into an old k3s's certs.d")
            XCTAssertFalse(try pull().ok, "the pull disagrees")
            // The lines the verdict gives, added as printed, and the restart it asks for: k3s
            // writes the registry's folder with the OS bundle as its CA, and the node is ready.
            let said = (report.notes + report.checks.map(\.reason)).joined(separator: "\n")
            let lines = try XCTUnwrap(said.range(of: "configs:\n").map { String(said[$0.lowerBound...]) }, run.output)
                .split(separator: "\n").prefix(4).joined(separator: "\n")
            XCTAssertEqual(
                lines, "configs:\n  \"\(sandbox.registry)\":\n    tls:\n      ca_file: /etc/ssl/certs/ca-certificates.crt", run.output)
            XCTAssertTrue(said.contains("restart \(name) on each node"), run.output)
            XCTAssertEqual(try node.exec(["sh", "-c", "printf '%s\\n' \"$1\" >> \"$0\"", node.root + registries, lines]).status, 0)
            try k3sStart()
            XCTAssertTrue(
                try node.inside("cat \(ours)").stdout.contains("ca = [\"/etc/ssl/certs/ca-certificates.crt\"]"),
                "k3s wrote no folder from the printed lines")
            let after = try node.agent(bootstrap)
            XCTAssertEqual(after.status, 0, after.output)
            XCTAssertEqual(try JSONReport.decode(after.stdout).check("runtime-pull")?.outcome, "pass", after.output)
            XCTAssertTrue(try pull().ok, "ready after the printed lines and the restart, and the pull failed")
        }
        let k3sFolders = try node.inside("grep -l '^# File generated by \(name)' \(certsD)/*/hosts.toml | sort | xargs cat").stdout
        let uninstall = try node.agent(["uninstall", "--host-root", node.root])
        XCTAssertEqual(uninstall.status, 0, uninstall.output)
        XCTAssertEqual(
            try node.inside("grep -rl 'managed by node-agent' \(certsD) || true").stdout, "",
            "uninstall left the agent's files in k3s's certs.d")
        XCTAssertEqual(
            try node.inside("grep -l '^# File generated by \(name)' \(certsD)/*/hosts.toml | sort | xargs cat").stdout, k3sFolders,
            "uninstall changed k3s's folders")
    }

    /// The one-shot unit, as cloud-init sets a node up: the binaries in /usr/local/bin, the CA and
    /// /etc/default/node-agent written, deploy/node-agent-bootstrap.service enabled. At boot it runs
    /// before containerd and kubelet (as its Before= says), and the node comes up able to pull:
    /// a CRI pull right after boot succeeds, and the unit's status and journal say ready. A
    /// reboot (a clean shutdown, a new boot: /run, containerd's state, every link the node made
    /// and resolved's runtime settings gone) keeps it so.
    func bootUnit(_ suite: String) throws {
        guard let binary = ProcessInfo.processInfo.environment["NODE_AGENT_RELEASE_BINARY"] else {
            throw XCTSkip("NODE_AGENT_RELEASE_BINARY is unset (scripts/test builds it with scripts/build-release)")
        }
        let (sandbox, node) = try bootWithCertsD(suite)
        let started = Date()
        let folder = URL(fileURLWithPath: binary).deletingLastPathComponent().path
        let unit = packageRoot.appendingPathComponent("deploy/node-agent-bootstrap.service").path
        let install = try node.exec([
            "sh", "-euc",
            """
            install -m 755 "$1/node-agent" "$1/node-agent-cri" "$0/usr/local/bin/"
            install -D -m 644 "$2" "$0/etc/node-agent/ca.crt"
            printf 'NODE_AGENT_REGISTRY=%s\nNODE_AGENT_CA=/etc/node-agent/ca.crt\n' "$3" > "$0/etc/default/node-agent"
            install -m 644 "$4" "$0/etc/systemd/system/node-agent-bootstrap.service"
            """, node.root, folder, sandbox.caFile, sandbox.registry, unit,
        ])
        XCTAssertEqual(install.status, 0, install.stderr)
        let enable = try node.systemctl(["enable", "node-agent-bootstrap.service"])
        XCTAssertEqual(enable.status, 0, enable.stderr)

        for boot in 1...2 {
            if boot == 2 {
                // A reboot loses the links the node made; the sandbox's namespace outlives it.
                _ = try node.exec(["ip", "link", "delete", "nodeagent0"])
            }
            try node.reboot()
            try node.waitForCRI()
            let state = try ["ActiveState", "Result"].map {
                try node.systemctl(["show", "-p", $0, "--value", "node-agent-bootstrap.service"]).stdout.trimmingCharacters(
                    in: .whitespacesAndNewlines)
            }
            // This boot's run of the unit, by its invocation (in nspawn, journalctl -b in a chroot
            // sees the kernel's boot ID, not the node's).
            let journal = try node.inside(
                "journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value node-agent-bootstrap.service)"
            ).stdout
            XCTAssertEqual(state, ["active", "success"], "\(suite) boot \(boot): \(journal)")
            let image = sandbox.testImage
            let pull = try node.pull(image, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
            XCTAssertTrue(pull.ok, "\(suite) boot \(boot): no pull right after boot: \(pull.error)")
            // Ordered as the unit says: containerd started after the bootstrap ended.
            let ended = try node.monotonic("ExecMainExitTimestampMonotonic", "node-agent-bootstrap.service")
            let runtime = try node.monotonic("ExecMainStartTimestampMonotonic", "containerd.service")
            XCTAssertGreaterThan(ended, 0, "\(suite) boot \(boot): the unit did not run")
            XCTAssertGreaterThan(runtime, ended, "\(suite) boot \(boot): containerd started before the bootstrap ended")
            if boot == 2 {
                // What a reboot undoes, by mode: the link (and its settings in /run) is made
                // again at each boot; the delegate file, in /etc, routes the domain from boot on,
                // so the unit's second run finds nothing to do.
                if suite == "sid" {
                    XCTAssertTrue(journal.contains("No changes: the host was already set up"), "\(suite) boot 2: \(journal)")
                } else {
                    XCTAssertTrue(journal.contains("run ip link add nodeagent0-new type dummy"), "\(suite) boot 2: \(journal)")
                }
            }
            XCTAssertTrue(journal.contains("READY: this node can pull from \(sandbox.registry)."), "\(suite) boot \(boot): \(journal)")
        }
        print("release node \(suite): boot unit, boot and reboot, in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}

/// A booted node of one Debian release in a given network namespace.
final class ReleaseNode {
    let script = packageRoot.appendingPathComponent("Tests/nodes/booted-node").path
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

    /// A clean shutdown and a new boot of the same node (Tests/nodes/booted-node reboot).
    func reboot() throws {
        let r = try sh(script, ["reboot"], environment: environment)
        guard r.status == 0 else { throw AgentError(.io, "\(suite): reboot failed: \(r.stderr)") }
    }

    /// A systemd monotonic timestamp property of a unit, in microseconds.
    func monotonic(_ property: String, _ unit: String) throws -> UInt64 {
        UInt64(try systemctl(["show", "-p", property, "--value", unit]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The agent's health endpoint in the node's network namespace.
    func endpoint(_ path: String) throws -> (code: String, body: String) { try healthEndpoint(path, exec: exec) }

    /// `node-agent run` on the node, in the background, in the node's PID namespace (as the
    /// DaemonSet's pod with hostPID): full reconciles every second, the endpoint on 127.0.0.1:9808.
    func startRun(_ args: [String]) throws -> BackgroundRun {
        let run = BackgroundRun(node: self, log: folder + "/run.log")
        let r = try exec(
            [
                "sh", "-c", "\"$@\" >\"$0\" 2>&1 & echo $!", run.log, SandboxNode.binary, "run", "--host-root", root, "--interval", "1",
                "--watch-interval", "0.2", "--listen", "127.0.0.1:9808",
            ] + args)
        guard r.status == 0, let pid = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw AgentError(.io, "\(suite): run did not start: \(r.stderr)")
        }
        run.pid = pid
        return run
    }

    /// containerd's CRI socket, once it is there.
    func waitForCRI(_ socket: String = "/run/containerd/containerd.sock") throws {
        for _ in 0..<150 {
            if try exec(["test", "-S", root + socket]).status == 0 { return }
            usleep(100_000)
        }
        XCTFail("\(suite): containerd's socket did not appear: \(try systemctl(["status", "containerd.service"]).stdout)")
    }

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
    func enableCertsD(_ configPath: String = "/etc/containerd/certs.d") throws {
        let table = """
              [plugins."io.containerd.grpc.v1.cri".registry]
                config_path = "\(configPath)"
            """
        let write = try exec([
            "sh", "-c", "test -f \"$0/etc/containerd/config.toml\" && printf '%s\\n' \"$1\" >> \"$0/etc/containerd/config.toml\"", root,
            table,
        ])
        XCTAssertEqual(write.status, 0, "\(suite): no shipped /etc/containerd/config.toml: \(write.stderr)")
        let restart = try systemctl(["restart", "containerd.service"])
        XCTAssertEqual(restart.status, 0, restart.stderr)
        try waitForCRI()
    }

    /// The real pull through the node's CRI socket, as kubelet asks for it.
    func pull(_ reference: String, user: String, password: String, socket: String = "/run/containerd/containerd.sock") throws -> (
        ok: Bool, error: String
    ) {
        let cri = packageRoot.appendingPathComponent("scripts/cri").path
        let r = try exec([
            "env", "-u", "SSL_CERT_FILE", "-u", "SSL_CERT_DIR", cri, "--endpoint", "unix://\(root)\(socket)",
            "--timeout", "30", "pull", reference, "--username", user, "--password", password,
        ])
        return (r.status == 0, r.stderr)
    }

    /// The sandbox registry's test image, pulled as kubelet asks for it, with its credentials.
    func pullTestImage(from sandbox: SandboxNode) throws -> (ok: Bool, error: String) {
        try pull(sandbox.testImage, user: sandbox.vars["REGISTRY_USER"]!, password: sandbox.vars["REGISTRY_PASSWORD"]!)
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

/// `node-agent run` started on a release node; its output in `log`.
final class BackgroundRun {
    let node: ReleaseNode
    let log: String
    var pid = 0
    var stopped = false

    init(node: ReleaseNode, log: String) {
        self.node = node
        self.log = log
    }

    var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// The "reconciled" lines so far, oldest first.
    var reconciles: [String] { text.split(separator: "\n").filter { $0.contains("reconciled") }.map(String.init) }

    /// SIGTERM, then up to 15 s for the graceful stop; whether it stopped.
    @discardableResult
    func stop() -> Bool {
        if stopped { return true }
        stopped = true
        _ = try? node.exec(["kill", "-TERM", "\(pid)"])
        for _ in 0..<150 {
            if (try? node.exec(["kill", "-0", "\(pid)"]).status) != 0 { return text.contains("graceful shutdown") }
            usleep(100_000)
        }
        _ = try? node.exec(["kill", "-KILL", "\(pid)"])
        return false
    }
}
