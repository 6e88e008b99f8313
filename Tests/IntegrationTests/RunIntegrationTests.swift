import Foundation
import HostSystem
import TestSupport
import XCTest

/// `node-agent run` against a sandbox node: it reconciles at start, repairs drift, follows a CA
/// Secret's `..data` swap and resolved restarts, and stops cleanly on SIGTERM.
final class RunIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func startRun(_ extra: [String], environment: [String: String] = [:]) throws -> (Process, String) {
        try node.startRun(extra, environment: environment)
    }

    /// SIGTERM to the agent: it stops within `seconds`, with status 0 and its graceful-shutdown line.
    func assertStopsOnSIGTERM(_ process: Process, within seconds: Double, _ logText: () -> String, _ message: String = "",
                              line: UInt = #line) {
        let stopAsked = Date()
        process.terminate()
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(stopAsked), seconds, message, line: line)
        XCTAssertEqual(process.terminationStatus, 0, logText(), line: line)
        XCTAssertTrue(logText().contains("stopping: graceful shutdown"), logText(), line: line)
    }

    func get(_ path: String, _ extra: [String] = []) throws -> (code: String, body: String) {
        try node.endpoint(path, extra)
    }

    func testRunReconcilesRepairsFollowsTheSecretAndStopsOnSIGTERM() throws {
        // A Secret volume as the kubelet lays it out: ca.crt -> ..data/ca.crt, ..data -> ..v1.
        let secret = node.folder + "/secret"
        try FileManager.default.createDirectory(atPath: secret + "/..v1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: node.caFile, toPath: secret + "/..v1/ca.crt")
        try FileManager.default.createSymbolicLink(atPath: secret + "/..data", withDestinationPath: "..v1")
        try FileManager.default.createSymbolicLink(atPath: secret + "/ca.crt", withDestinationPath: "..data/ca.crt")

        // systemd's notify protocol: a datagram socket named by NOTIFY_SOCKET receives READY=1 and STATUS=.
        let notifySocket = node.folder + "/notify.sock"
        let notifyLog = node.folder + "/notify.log"
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
            with open(sys.argv[2], "a") as log:
                while True:
                    log.write(s.recv(4096).decode() + "\\n---\\n"); log.flush()
            """, notifySocket, notifyLog]
        try listener.run()
        defer { listener.terminate() }
        try eventually(5, "the notify socket") { FileManager.default.fileExists(atPath: notifySocket) }

        let (process, log) = try startRun(["--ca", secret + "/ca.crt"], environment: ["NOTIFY_SOCKET": notifySocket])
        defer { if process.isRunning { process.interrupt(); process.terminate() } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func linkExists() throws -> Bool { try node.exec(["ip", "link", "show", "nodeagent0"]).status == 0 }

        try eventually(10, "first reconcile ready") { logText().contains("ready=true reason=start") }
        XCTAssertEqual(try node.agent(["probe", "--host-root", node.hostRoot, "--registry", node.registry]).status, 0)
        try eventually(5, "sd_notify READY") {
            ((try? String(contentsOfFile: notifyLog, encoding: .utf8)) ?? "").contains("READY=1\nSTATUS=ready to pull from registry-service.openfaas.svc.cluster.local:443")
        }

        // Every thread of the agent holds SIGTERM and SIGINT blocked (the loop takes them between
        // reconciles; a thread without the block would die of them), but for the loop's own while
        // it waits in rt_sigtimedwait (syscall 128), which unblocks them for the wait; SIGPIPE is ignored.
        let threads = try node.exec(["sh", "-c", """
            for t in /proc/$(pgrep -f '[n]ode-agent run' | tail -1)/task/*; do
              echo "$(grep ^SigBlk $t/status | cut -f2) $(grep ^SigIgn $t/status | cut -f2) $(cut -d' ' -f1 $t/syscall)"
            done
            """])
        let masks = threads.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        XCTAssertGreaterThanOrEqual(masks.count, 2, "two threads (loop, endpoint): \(threads.stdout)\(threads.stderr)")
        let held: UInt64 = 1 << (SIGTERM - 1) | 1 << (SIGINT - 1), ignored: UInt64 = 1 << (SIGPIPE - 1)
        for m in masks {
            XCTAssertEqual(m.count, 3, threads.stdout)
            guard m.count == 3, let blocked = UInt64(m[0], radix: 16), let ignoring = UInt64(m[1], radix: 16) else { continue }
            XCTAssertTrue(blocked & held == held || m[2] == "128", threads.stdout)
            XCTAssertEqual(ignoring & ignored, ignored, threads.stdout)
        }

        // The health endpoint serves what the reconcile found, with a real HTTP client.
        XCTAssertEqual(try get("/healthz").code, "200")
        let ready = try get("/readyz")
        XCTAssertEqual(ready.code, "200")
        XCTAssertTrue(ready.body.contains("ready to pull from registry-service.openfaas.svc.cluster.local:443"), ready.body)
        let metrics = try get("/metrics").body
        for line in ["node_agent_ready 1", "probe_success{check=\"registry-api\"} 1", "probe_success{check=\"dns-host\"} 1"] {
            XCTAssertTrue(metrics.contains(line + "\n"), "missing \(line) in\n\(metrics)")
        }
        XCTAssertTrue(metrics.contains("probe_ssl_earliest_cert_expiry{check=\"tls-os-trust\"} "), metrics)
        let status = try JSONReport.decode(try get("/status").body)
        XCTAssertTrue(status.ready)
        XCTAssertEqual(try get("/nope").code, "404")
        XCTAssertEqual(try get("/readyz", ["-X", "POST", "-d", "x"]).code, "413")
        XCTAssertEqual(try get("/readyz", ["-X", "DELETE"]).code, "405")
        XCTAssertEqual(try get("/readyz", ["-H", "X-Big: " + String(repeating: "a", count: 100_000)]).code, "400")
        // A client that connects and says nothing is cut off after the idle timeout.
        let silent = try node.exec(["python3", "-c", """
            import socket, time
            s = socket.create_connection(("127.0.0.1", 9808)); t = time.time()
            s.settimeout(20); data = s.recv(1)
            print("closed after %.1f s" % (time.time() - t) if data == b"" else "got data")
            """])
        XCTAssertTrue(silent.stdout.hasPrefix("closed after"), silent.stdout + silent.stderr)

        // Drift: someone deletes the link; the next interval brings it back.
        XCTAssertEqual(try node.exec(["ip", "link", "del", "nodeagent0"]).status, 0)
        try eventually(6, "the link is back") { try linkExists() }

        // Rotation: the kubelet swaps ..data to a new version holding two CAs.
        try FileManager.default.createDirectory(atPath: secret + "/..v2", withIntermediateDirectories: true)
        let two = try String(contentsOfFile: node.caFile, encoding: .utf8) + String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
        try two.write(toFile: secret + "/..v2/ca.crt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: secret + "/..data_tmp", withDestinationPath: "..v2")
        XCTAssertEqual(rename(secret + "/..data_tmp", secret + "/..data"), 0)
        let ours = node.folder + "/local-ca/node-agent"
        try eventually(6, "a reconcile for the new CA") { logText().contains("reason=the CA file changed") }
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: ours)) ?? []).count, 2)

        // resolved restarts: noticed through its bus name's new owner, and the route holds.
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        XCTAssertEqual(try node.control(["start", "resolved"]), 0)
        try eventually(6, "a reconcile after the restart") { logText().contains("reason=systemd-resolved restarted") }
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertTrue(query.stdout.contains("127.0.0.20"), query.stdout + query.stderr)

        // SIGTERM: a clean, prompt stop.
        assertStopsOnSIGTERM(process, within: 5, logText)
        XCTAssertTrue(((try? String(contentsOfFile: notifyLog, encoding: .utf8)) ?? "").contains("STOPPING=1"))
        XCTAssertFalse(logText().contains("reconcile failed"), logText())
    }

    /// An API server that accepts and never answers (the sandbox's silent-server on
    /// 127.0.0.25:443) costs the loop its request timeout (10 s), but only after the reconcile is
    /// logged and the endpoint and systemd know the outcome; SIGTERM still stops the agent.
    func testASilentAPIServerHoldsBackNeitherTheOutcomeNorTheStop() throws {
        let tokenFile = node.folder + "/token"
        try "test-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let (process, log) = try startRun(["--ca", node.caFile, "--node-name", "node-1", "--kube-api", "https://127.0.0.25:443",
                                           "--kube-token-file", tokenFile, "--kube-ca-file", node.caFile])
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(8, "the first reconcile, logged before the API answers") { logText().contains("ready=true reason=start") }
        XCTAssertEqual(try get("/readyz").code, "200")
        XCTAssertFalse(logText().contains("kubernetes:"), "the API request is still waiting: \(logText())")
        try eventually(15, "the API request given up and logged") { logText().contains("kubernetes:") }

        assertStopsOnSIGTERM(process, within: 12, logText, "at most one API timeout")
    }

    /// The node condition and the startup taint, against scripts/fake-apiserver (a test double
    /// that checks the request shapes, not a Kubernetes API server).
    func testRunPublishesTheNodeConditionOnChangeAndRemovesTheStartupTaint() throws {
        let token = "test-token-\(UUID().uuidString.prefix(8))"
        let tokenFile = node.folder + "/token"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let apiLog = node.folder + "/api.log"
        FileManager.default.createFile(atPath: apiLog, contents: nil)
        func background(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: node.script)
            p.arguments = ["exec"] + args
            var env = ProcessInfo.processInfo.environment
            env["NODE_AGENT_SANDBOX"] = node.folder
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            return p
        }
        let pki = node.folder + "/pki"
        let api = try background(["python3", packageRoot.appendingPathComponent("scripts/fake-apiserver").path, "127.0.0.20", "6443",
                                  pki + "/registry.crt", pki + "/registry.key", token, "node-1", apiLog])
        defer { api.terminate(); api.waitUntilExit() }
        let agent = try background([SandboxNode.binary, "run", "--host-root", node.hostRoot, "--registry", node.registry, "--ca", node.caFile,
                                    "--interval", "1", "--watch-interval", "0.2", "--listen", "off", "--node-name", "node-1",
                                    "--kube-api", "https://127.0.0.20:6443", "--kube-token-file", tokenFile, "--kube-ca-file", node.caFile,
                                    "--startup-taint", "node-agent/registry-not-ready", "--condition-heartbeat", "600"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        func requests() -> [[String: Any]] {
            ((try? String(contentsOfFile: apiLog, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        try eventually(15, "the taint removal") { requests().contains { ($0["path"] as? String) == "/api/v1/nodes/node-1" && ($0["method"] as? String) == "PATCH" } }
        // Several intervals more: nothing changed, so no more condition patches (the heartbeat is 10 min).
        Thread.sleep(forTimeInterval: 3)
        agent.terminate()
        agent.waitUntilExit()

        let all = requests()
        XCTAssertTrue(all.allSatisfy { $0["authorized"] as? Bool == true }, "\(all)")
        let status = all.filter { ($0["path"] as? String) == "/api/v1/nodes/node-1/status" }
        XCTAssertEqual(status.count, 1, "one condition patch while nothing changes: \(status)")
        XCTAssertEqual(status.first?["content_type"] as? String, "application/strategic-merge-patch+json")
        let condition = (((status.first?["body"] as? [String: Any])?["status"] as? [String: Any])?["conditions"] as? [[String: Any]])?.first
        XCTAssertEqual(condition?["type"] as? String, "RegistryPullReady")
        XCTAssertEqual(condition?["status"] as? String, "True")
        XCTAssertEqual(condition?["reason"] as? String, "RegistryPullable")
        XCTAssertNotNil(condition?["lastTransitionTime"] as? String)
        XCTAssertNotNil(condition?["lastHeartbeatTime"] as? String)
        let taintPatch = try XCTUnwrap(all.first { ($0["path"] as? String) == "/api/v1/nodes/node-1" && ($0["method"] as? String) == "PATCH" })
        XCTAssertEqual(taintPatch["content_type"] as? String, "application/merge-patch+json")
        let taints = ((taintPatch["body"] as? [String: Any])?["spec"] as? [String: Any])?["taints"] as? [[String: Any]]
        XCTAssertEqual(taints?.compactMap { $0["key"] as? String }, ["example.com/other"], "only the startup taint goes")
        XCTAssertEqual(all.filter { ($0["method"] as? String) == "PATCH" && ($0["path"] as? String) == "/api/v1/nodes/node-1" }.count, 1)

        // Uninstall takes the condition away (a strategic merge patch deleting it by type).
        let uninstall = try node.agent(["uninstall", "--host-root", node.hostRoot, "--node-name", "node-1", "--kube-api", "https://127.0.0.20:6443",
                                        "--kube-token-file", tokenFile, "--kube-ca-file", node.caFile])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        let last = try XCTUnwrap(requests().last)
        XCTAssertEqual(last["path"] as? String, "/api/v1/nodes/node-1/status")
        let deleted = (((last["body"] as? [String: Any])?["status"] as? [String: Any])?["conditions"] as? [[String: Any]])?.first
        XCTAssertEqual(deleted?["$patch"] as? String, "delete")
        XCTAssertEqual(deleted?["type"] as? String, "RegistryPullReady")
    }

    /// kube-dns, the registry and resolved each stop (SIGKILL) and start again while `run` is up:
    /// readiness goes false with that outage's reason, then true again, the agent never restarting.
    func testReadinessFollowsOutagesOfKubeDNSTheRegistryAndResolvedWithoutARestart() throws {
        let (process, log) = try startRun(["--ca", node.caFile, "--timeout", "1"])
        defer { if process.isRunning { process.interrupt(); process.terminate() } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func failing() throws -> [String: String] {
            let body = try get("/status").body
            guard let status = try? JSONReport.decode(body) else { return ["status": body] }
            return Dictionary(status.checks.filter { $0.outcome == "fail" }.map { ($0.name, $0.reason) }, uniquingKeysWith: { a, _ in a })
        }
        try eventually(10, "ready at start") { try get("/readyz").code == "200" }

        for (daemon, check, reason) in [("kube-dns", "dns-cluster", "nothing listens for DNS there"), ("registry", "tcp", "refused")] {
            XCTAssertEqual(try node.control(["stop", daemon]), 0)
            var seen: [String: String] = [:]
            try eventually(15, "not ready once \(daemon) stopped") {
                guard try get("/readyz").code == "503" else { return false }
                seen = try failing()
                return seen[check] != nil
            }
            XCTAssertTrue(seen[check]?.contains(reason) ?? false, "\(daemon) down: \(seen)")
            XCTAssertEqual(try node.control(["start", daemon]), 0)
            try eventually(15, "ready again once \(daemon) is back") { try get("/readyz").code == "200" }
            XCTAssertTrue(process.isRunning, "the agent stopped: \(logText())")
        }
        // resolved down: `auto` follows the node to /etc/hosts lines (readiness holds, the host
        // still resolves the registry), and back to the link once resolved is up again.
        let hosts = node.hostRoot + "/etc/hosts"
        func agentLines() -> Bool { ((try? String(contentsOfFile: hosts, encoding: .utf8)) ?? "").contains(" # node-agent") }
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        try eventually(15, "hosts lines while resolved is down") { agentLines() }
        try eventually(10, "ready through /etc/hosts") {
            try get("/readyz").code == "200" && (try? JSONReport.decode(try get("/status").body))?.check("dns-host")?.details["source"] == "/etc/hosts"
        }
        XCTAssertEqual(try node.control(["start", "resolved"]), 0)
        try eventually(15, "back to the link, hosts lines gone") { try !agentLines() && node.exec(["ip", "link", "show", "nodeagent0"]).status == 0 }
        try eventually(10, "ready through resolved again") { try get("/readyz").code == "200" }
        XCTAssertTrue(process.isRunning, "the agent stopped: \(logText())")
        XCTAssertEqual(logText().components(separatedBy: "[NodeAgent] starting").count - 1, 1, "the agent restarted")
    }
}
