import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The pull is the proof: the node's real containerd pulls the test image through its CRI socket,
/// as kubelet asks it to, and the agent's verdict for the same node must say the same thing.
final class RuntimePullIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// The image with the port, as the registry's clients name it, and without it (`host/...`):
    /// containerd reads a different certs.d folder for each.
    var references: [String] { [node.testImage, node.testImage.replacingOccurrences(of: ":443/", with: "/")] }

    /// The agent's verdict (`probe`, read-only) and the runtime's pull of every reference, for the
    /// node as it is now: they agree, and are `expected`. Returns the runtime's errors.
    @discardableResult
    func assertVerdictAgreesWithThePull(
        _ expected: Bool, _ what: String, probe extra: [String] = [],
        line: UInt = #line
    ) throws -> [String] {
        let report = try node.probe(extra)
        var errors: [String] = []
        for reference in references {
            let pull = try node.pull(reference)
            XCTAssertEqual(
                pull.ok, report.ready,
                "\(what): the runtime \(pull.ok ? "pulled" : "could not pull") \(reference) (\(pull.error)) but the agent said ready=\(report.ready): \(failures(report))",
                line: line)
            XCTAssertEqual(pull.ok, expected, "\(what): pull of \(reference): \(pull.error)", line: line)
            if !pull.ok { errors.append(pull.error) }
        }
        XCTAssertEqual(report.ready, expected, "\(what): \(failures(report))", line: line)
        return errors
    }

    func failures(_ report: JSONReport) -> String {
        report.checks.filter { $0.outcome == "fail" }.map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
    }

    func bootstrap(_ extra: [String] = [], ca: String? = nil, expectReady: Bool = true, line: UInt = #line) throws {
        let run = try node.agent(node.bootstrapArguments(ca: ca, extra: extra))
        XCTAssertEqual(run.status, expectReady ? 0 : 1, run.stdout + run.stderr, line: line)
    }

    func testThePullFailsBeforeBootstrapWorksRightAfterWithoutARestartAndFailsAfterUninstall() throws {
        let errors = try assertVerdictAgreesWithThePull(false, "before bootstrap")
        for e in errors { XCTAssertTrue(e.contains("name resolution") || e.contains("no such host"), e) }
        let containerd = try node.containerdPID()

        try bootstrap()
        try assertVerdictAgreesWithThePull(true, "after bootstrap")
        XCTAssertEqual(try node.containerdPID(), containerd, "containerd was restarted")
        XCTAssertEqual(try node.exec(["kill", "-0", containerd]).status, 0, "containerd is gone")

        let uninstall = try node.agent(["uninstall", "--host-root", node.hostRoot])
        XCTAssertEqual(uninstall.status, 0, uninstall.stdout + uninstall.stderr)
        try assertVerdictAgreesWithThePull(false, "after uninstall")
    }

    /// The cluster's CA is rotated: the registry's new certificate is refused by the node (the
    /// runtime's own x509 error, and the agent agrees) until the agent installs the new CA; the
    /// next pull works, with no runtime restart.
    func testCARotationOldCAOutNewCAInAndTheNextPullWorks() throws {
        try bootstrap()
        try assertVerdictAgreesWithThePull(true, "first CA")
        let containerd = try node.containerdPID()

        let rotated = try node.exec([node.script, "rotate-ca"])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        let newCA = rotated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let errors = try assertVerdictAgreesWithThePull(false, "registry on the new CA, node on the old")
        for e in errors { XCTAssertTrue(e.contains("x509: certificate signed by unknown authority"), e) }

        try bootstrap(ca: newCA)
        try assertVerdictAgreesWithThePull(true, "new CA installed")
        XCTAssertEqual(try node.containerdPID(), containerd, "containerd was restarted")
    }

    /// With resolved down, `auto` picks /etc/hosts lines; containerd (through glibc) finds the
    /// registry there.
    func testHostsModeWhenResolvedIsDown() throws {
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        try assertVerdictAgreesWithThePull(false, "resolved down, before bootstrap")
        try bootstrap()
        try assertVerdictAgreesWithThePull(true, "resolved down, hosts lines")
        XCTAssertTrue(try String(contentsOfFile: node.hostRoot + "/etc/hosts", encoding: .utf8).contains(" # node-agent"))
    }

    /// Without `config_path` containerd ignores certs.d and trusts only the OS store, which Go
    /// loads once, at the process's first TLS verification. A runtime that verified the registry
    /// before the CA reached the store keeps refusing it until it restarts: the agent says so,
    /// and the restart makes both the pull and the verdict good.
    func testARuntimeThatLoadedItsRootsBeforeTheCANeedsARestart() throws {
        let config = node.hostRoot + "/etc/containerd/config.toml"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "config_path", with: "# config_path").write(toFile: config, atomically: true, encoding: .utf8)
        try assertTheOSStorePathNeedsARestart()
    }

    /// The node's config as containerd reads it: an `imports` file that configures the CRI plugin
    /// replaces its whole table in containerd 1.x, config_path included, so certs.d is ignored
    /// although config.toml sets it. The agent follows the imports; the pull agrees.
    func testAnImportThatReplacesTheCRITableDropsCertsDAsContainerdReadsIt() throws {
        let config = node.hostRoot + "/etc/containerd/config.toml"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: node.hostRoot + "/etc/containerd/conf.d", withIntermediateDirectories: true)
        try "[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true\n"
            .write(toFile: node.hostRoot + "/etc/containerd/conf.d/10-cri.toml", atomically: true, encoding: .utf8)
        try ("imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + text).write(toFile: config, atomically: true, encoding: .utf8)
        // containerd's own reading of it.
        let dump = try node.exec(["containerd", "--config", "/etc/containerd/config.toml", "config", "dump"])
        XCTAssertTrue(dump.stdout.contains("config_path = \"\""), dump.stdout + dump.stderr)
        try assertTheOSStorePathNeedsARestart()
        let certsD = try XCTUnwrap(try node.probe(["--runtime-pull", "off"]).check("certs-d"))
        XCTAssertTrue(certsD.reason.contains("conf.d/10-cri.toml"), certsD.reason)
    }

    /// With certs.d off (however), after containerd loaded its OS roots: not ready until it restarts.
    func assertTheOSStorePathNeedsARestart(line: UInt = #line) throws {
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0, line: line)
        // The admin's own /etc/hosts line: the name resolves, so the first pull reaches TLS and
        // containerd loads the OS roots, without the registry's CA.
        let hosts = node.hostRoot + "/etc/hosts"
        try (try String(contentsOfFile: hosts, encoding: .utf8) + "127.0.0.20 registry-service.openfaas.svc.cluster.local\n")
            .write(toFile: hosts, atomically: true, encoding: .utf8)
        let errors = try assertVerdictAgreesWithThePull(false, "before bootstrap, name in /etc/hosts")
        for e in errors { XCTAssertTrue(e.contains("x509: certificate signed by unknown authority"), e) }

        try bootstrap(["--output", "json"], expectReady: false)
        let stale = try assertVerdictAgreesWithThePull(false, "CA in the OS store, runtime holding its old roots")
        for e in stale { XCTAssertTrue(e.contains("x509: certificate signed by unknown authority"), e) }
        let pending = try XCTUnwrap(try node.probe().check("runtime-restart-pending"))
        XCTAssertEqual(pending.outcome, "fail", pending.reason)
        XCTAssertTrue(pending.reason.contains("containerd (pid \(try node.containerdPID()))"), pending.reason)
        XCTAssertEqual(try node.probe().check("certs-d")?.outcome, "warn")

        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        try assertVerdictAgreesWithThePull(true, "runtime restarted after the CA was installed")
    }

    /// containerd (Go with cgo) hands cluster names to glibc, so the node's nsswitch.conf decides:
    /// for every hosts line the agent says what the pull does. A line that asks no DNS source
    /// makes `auto` write /etc/hosts lines, which then work.
    func testTheVerdictFollowsTheHostsLineOfNsswitchAsContainerdDoes() throws {
        try bootstrap()
        let nsswitch = node.hostRoot + "/etc/nsswitch.conf"
        let original = try String(contentsOfFile: nsswitch, encoding: .utf8)
        func hostsLine(_ line: String) throws {
            let text =
                original.split(separator: "\n").map { $0.hasPrefix("hosts:") ? "hosts: \(line)" : String($0) }.joined(separator: "\n")
                + "\n"
            try text.write(toFile: nsswitch, atomically: true, encoding: .utf8)
        }
        for (line, pulls) in [
            ("files", false), ("files [NOTFOUND=return] dns", false), ("dns [!UNAVAIL=return] files", true),
            ("files mdns4_minimal [NOTFOUND=return] dns", true), ("dns", true), ("files dns", true),
        ] {
            try hostsLine(line)
            let errors = try assertVerdictAgreesWithThePull(pulls, "hosts: \(line)")
            for e in errors { XCTAssertTrue(e.contains("no such host"), e) }
            if !pulls {
                XCTAssertEqual(try node.probe().check("dns-host")?.details["resolver"], "glibc")
            }
        }
        try hostsLine("files")
        try bootstrap()
        XCTAssertTrue(try String(contentsOfFile: node.hostRoot + "/etc/hosts", encoding: .utf8).contains(" # node-agent"))
        try assertVerdictAgreesWithThePull(true, "hosts: files, with the agent's /etc/hosts lines")
    }

    /// An HTTPS proxy in containerd's environment takes its pulls unless NO_PROXY exempts the
    /// registry: the agent reads the running process's environment, as the pull uses it.
    func testAProxyInTheRuntimesEnvironmentUnlessNoProxyExemptsTheRegistry() throws {
        try bootstrap()
        let env = node.folder + "/conf/containerd.env"
        try "HTTPS_PROXY=http://127.0.0.99:3128\n".write(toFile: env, atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        let errors = try assertVerdictAgreesWithThePull(false, "proxy, no NO_PROXY")
        for e in errors { XCTAssertTrue(e.contains("proxyconnect"), e) }
        let proxy = try XCTUnwrap(try node.probe().check("runtime-proxy"))
        XCTAssertEqual(proxy.outcome, "fail")
        XCTAssertTrue(proxy.reason.contains("NO_PROXY"), proxy.reason)

        for noProxy in ["no_proxy=svc.cluster.local", "NO_PROXY=.cluster.local,10.0.0.0/8", "NO_PROXY=*"] {
            try "https_proxy=http://127.0.0.99:3128\n\(noProxy)\n".write(toFile: env, atomically: true, encoding: .utf8)
            XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
            try assertVerdictAgreesWithThePull(true, "proxy with \(noProxy)")
            XCTAssertEqual(try node.probe().check("runtime-proxy")?.outcome, "skip")
        }
        try "HTTPS_PROXY=http://127.0.0.99:3128\nNO_PROXY=registry-service.openfaas.svc.cluster.local:5000\n".write(
            toFile: env, atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        try assertVerdictAgreesWithThePull(false, "NO_PROXY for another port")
    }

    /// A real proxy (Debian's tinyproxy) in containerd's environment: containerd's pulls go
    /// through its CONNECT tunnel, and the proxy resolves the registry's name as the node does.
    /// The agent opens the same tunnel: ready when it opens, not when the proxy refuses the port.
    func testARealProxyThatOpensTheTunnelOrRefusesIt() throws {
        try bootstrap()
        func proxy(connectPort: Int) throws -> Process {
            let conf = node.folder + "/tinyproxy-\(connectPort).conf"
            try """
            Port 3128
            Listen 127.0.0.98
            Timeout 10
            MaxClients 10
            ConnectPort \(connectPort)
            User root
            Group root
            LogLevel Info
            """.write(toFile: conf, atomically: true, encoding: .utf8)
            let log = node.folder + "/logs/tinyproxy.log"
            FileManager.default.createFile(atPath: log, contents: nil)
            let p = try node.background(["tinyproxy", "-d", "-c", conf], output: log)
            try eventually(10, "tinyproxy listens") {
                try node.exec(["curl", "-s", "-o", "/dev/null", "http://127.0.0.98:3128/"]).status == 0
            }
            return p
        }
        try "HTTPS_PROXY=http://127.0.0.98:3128\n".write(toFile: node.folder + "/conf/containerd.env", atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)

        let open = try proxy(connectPort: 443)
        try assertVerdictAgreesWithThePull(true, "through a proxy that tunnels to 443")
        let through = try XCTUnwrap(try node.probe().check("runtime-proxy"))
        XCTAssertEqual(through.outcome, "pass", through.reason)
        XCTAssertTrue(through.reason.contains("opened a tunnel"), through.reason)
        open.terminate()
        open.waitUntilExit()

        let closed = try proxy(connectPort: 8443)
        defer {
            closed.terminate()
            closed.waitUntilExit()
        }
        let errors = try assertVerdictAgreesWithThePull(false, "through a proxy that refuses CONNECT to 443")
        XCTAssertFalse(errors.isEmpty)
        let refused = try XCTUnwrap(try node.probe().check("runtime-proxy"))
        XCTAssertEqual(refused.outcome, "fail", refused.reason)
        XCTAssertTrue(refused.reason.contains("403"), refused.reason)
        print("containerd through a proxy that refuses the port: \(errors.first ?? "")")
    }

    /// `runtime-pull`: the agent asks the node's containerd over its CRI socket, as kubelet does,
    /// and reports the runtime's own error. Without --pull-image it pulls a reference that cannot
    /// exist: the registry's "not found" (or 401) proves names, proxy, trust and TLS as the
    /// runtime has them.
    func testRuntimePullGivesTheRuntimesOwnWord() throws {
        let before = try XCTUnwrap(try node.probe().check("runtime-pull"))
        XCTAssertEqual(before.outcome, "fail")
        XCTAssertEqual(before.details["stage"], "resolve", before.reason)
        XCTAssertTrue(before.reason.contains("failed to pull and unpack image"), before.reason)

        try bootstrap()
        let probed = try XCTUnwrap(try node.probe().check("runtime-pull"))
        XCTAssertEqual(probed.outcome, "pass", probed.reason)
        XCTAssertEqual(probed.details["stage"], "registry")
        XCTAssertTrue(probed.reason.contains("reached the registry and verified its certificate"), probed.reason)

        // A real image, with the pull secret's credentials as kubelet passes them.
        let auth = node.folder + "/pull-secret.json"
        let basic = Data("\(node.vars["REGISTRY_USER"]!):\(node.vars["REGISTRY_PASSWORD"]!)".utf8).base64EncodedString()
        try "{\"auths\": {\"\(node.registry)\": {\"auth\": \"\(basic)\"}}}".write(toFile: auth, atomically: true, encoding: .utf8)
        let pulled = try XCTUnwrap(try node.probe(["--pull-image", node.testImage, "--registry-auth", auth]).check("runtime-pull"))
        XCTAssertEqual(pulled.outcome, "pass", pulled.reason)
        XCTAssertTrue(pulled.details["image_ref"]?.hasPrefix("sha256:") == true, "\(pulled.details)")
        let refused = try node.probe(["--pull-image", node.testImage])
        XCTAssertEqual(refused.check("runtime-pull")?.outcome, "fail")
        XCTAssertTrue(
            refused.check("runtime-pull")?.reason.contains("401 Unauthorized") == true, refused.check("runtime-pull")?.reason ?? "")
        XCTAssertFalse(refused.ready)
        XCTAssertEqual(try node.probe(["--runtime-pull", "off"]).check("runtime-pull")?.outcome, nil)
    }

    /// The CRI call runs in node-agent-cri, beside the agent. An agent installed without it says
    /// so in runtime-pull (a skip naming the missing program), and the other checks still judge.
    func testAnAgentWithoutItsCRIHelperSaysSo() throws {
        try bootstrap()
        let lonely = node.folder + "/lonely"
        try FileManager.default.createDirectory(atPath: lonely, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: SandboxNode.binary, toPath: lonely + "/node-agent")
        let r = try node.exec([
            lonely + "/node-agent", "probe", "--host-root", node.hostRoot, "--registry", node.registry,
            "--cluster-dns", node.clusterDNS, "--output", "json", "--timeout", "2",
        ])
        let report = try JSONReport.decode(r.stdout)
        let pull = try XCTUnwrap(report.check("runtime-pull"))
        XCTAssertEqual(pull.outcome, "skip", pull.reason)
        XCTAssertTrue(pull.reason.contains(lonely + "/node-agent-cri"), pull.reason)
        XCTAssertTrue(report.ready, r.stdout)
        // Beside it again, the same agent asks the runtime.
        try FileManager.default.copyItem(
            atPath: URL(fileURLWithPath: SandboxNode.binary).deletingLastPathComponent().path + "/node-agent-cri",
            toPath: lonely + "/node-agent-cri")
        let again = try node.exec([
            lonely + "/node-agent", "probe", "--host-root", node.hostRoot, "--registry", node.registry,
            "--cluster-dns", node.clusterDNS, "--output", "json", "--timeout", "2",
        ])
        XCTAssertEqual(try JSONReport.decode(again.stdout).check("runtime-pull")?.outcome, "pass", again.stdout)
    }

    /// A copy of the agent beside a node-agent-cri that logs each run's arguments and what it
    /// wrote (`runs`), and its exit status (`exits`).
    func countedAgent() throws -> (agent: String, folder: String) {
        let folder = node.folder + "/counted"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: SandboxNode.binary, toPath: folder + "/node-agent")
        let real = URL(fileURLWithPath: SandboxNode.binary).deletingLastPathComponent().path + "/node-agent-cri"
        let wrapper = """
            #!/bin/sh
            echo "run: $*" >> \(folder)/runs
            { \(real) "$@"; echo "exit: $?" >> \(folder)/exits; } | tee -a \(folder)/runs

            """
        try wrapper.write(toFile: folder + "/node-agent-cri", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(folder + "/node-agent-cri", 0o755), 0)
        return (folder + "/node-agent", folder)
    }

    /// bootstrap asks the runtime's status and its pull through one run of node-agent-cri (the
    /// status first, on a line of its own, the pull once the files are in place): one process
    /// start and one program load fewer on the way to the verdict than a run for each. The run is
    /// started before the agent's command line is parsed, its call given on its input once the
    /// runtime's socket is known (`standby`).
    func testBootstrapAsksTheStatusAndThePullThroughOneRunOfItsHelper() throws {
        let (agent, folder) = try countedAgent()
        let run = try node.exec([agent] + node.bootstrapArguments(extra: ["--output", "json"]))
        let report = try JSONReport.decode(run.stdout)
        XCTAssertTrue(report.ready, run.stdout + run.stderr)
        XCTAssertEqual(report.check("runtime-pull")?.outcome, "pass", report.check("runtime-pull")?.reason ?? "")
        let runs = try String(contentsOfFile: folder + "/runs", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(runs.count, 3, "\(runs)")
        XCTAssertEqual(runs.first, "run: standby", "\(runs)")
        XCTAssertTrue(runs.dropFirst().first?.contains(#""runtime_name":"containerd""#) == true, "the status line first: \(runs)")
        XCTAssertTrue(runs.last?.contains(#""code":"#) == true, "then the pull's answer: \(runs)")
        XCTAssertEqual(try String(contentsOfFile: folder + "/exits", encoding: .utf8), "exit: 0\n")
    }

    /// A bootstrap that stops before its pull (here: a CA file that is not there) ends the
    /// helper it started ahead: its input closed before any call, it says nothing, asks nothing
    /// and exits 0, before the agent does.
    func testAHelperStartedAheadAndNotUsedEndsWithoutPulling() throws {
        let (agent, folder) = try countedAgent()
        let run = try node.exec([agent] + node.bootstrapArguments(ca: node.folder + "/no-such-ca.crt"))
        XCTAssertEqual(run.status, 2, run.stderr)
        // Nothing written: neither a status line nor a pull's answer.
        XCTAssertEqual(try String(contentsOfFile: folder + "/runs", encoding: .utf8), "run: standby\n")
        XCTAssertEqual(try String(contentsOfFile: folder + "/exits", encoding: .utf8), "exit: 0\n")
        // A dry run starts none.
        try FileManager.default.removeItem(atPath: folder + "/runs")
        XCTAssertEqual(try node.exec([agent] + node.bootstrapArguments(extra: ["--dry-run"])).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/runs"))
    }

    /// Where the model cannot know, the runtime's word decides. containerd without config_path,
    /// restarted, the CA reaching the OS store after it started but before it verified anything:
    /// Go loads the roots at the first verification, so the pull works although the runtime
    /// started before the CA. The model alone says "restart"; runtime-pull says ready, as the pull does.
    func testTheRuntimesWordDecidesWhereTheModelCannotKnow() throws {
        let config = node.hostRoot + "/etc/containerd/config.toml"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "config_path", with: "# config_path").write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        try bootstrap(["--runtime-pull", "off"], expectReady: false)
        let model = try node.probe(["--runtime-pull", "off"])
        XCTAssertEqual(
            model.check("runtime-restart-pending")?.outcome, "fail", "the model alone cannot know the runtime has not loaded its roots yet")
        try assertVerdictAgreesWithThePull(true, "runtime started before the CA, roots not loaded yet")
        let pending = try node.probe().check("runtime-restart-pending")
        XCTAssertEqual(pending?.outcome, "warn")
        XCTAssertTrue(pending?.reason.contains("runtime's own pull got through") == true, pending?.reason ?? "")
    }

    /// `run` keeps the node ready while containerd restarts under it, and the node pulls after.
    func testTheRuntimeRestartedWhileRunIsUp() throws {
        let (process, log) = try node.startRun(["--ca", node.caFile, "--timeout", "1"])
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        try eventually(15, "ready at start") { try node.endpoint("/readyz").code == "200" }
        XCTAssertEqual(try node.pull(node.testImage).ok, true)
        let before = try node.containerdPID()
        XCTAssertEqual(try node.control(["restart", "containerd"]), 0)
        XCTAssertNotEqual(try node.containerdPID(), before)
        let pull = try node.pull(node.testImage)
        XCTAssertTrue(pull.ok, pull.error)
        // Some reconciles later the agent still says ready, having seen the new runtime.
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertEqual(try node.endpoint("/readyz").code, "200", (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        XCTAssertTrue(process.isRunning)
    }
}
