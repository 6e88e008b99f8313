import Foundation
import HostSystem
import TestSupport
import Vocabulary
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
    func assertStopsOnSIGTERM(
        _ process: Process, within seconds: Double, _ logText: () -> String, _ message: String = "",
        line: UInt = #line
    ) {
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
        listener.arguments = [
            "python3", "-c",
            """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
            with open(sys.argv[2], "a") as log:
                while True:
                    log.write(s.recv(4096).decode() + "\\n---\\n"); log.flush()
            """, notifySocket, notifyLog,
        ]
        try listener.run()
        defer { listener.terminate() }
        try eventually(5, "the notify socket") { FileManager.default.fileExists(atPath: notifySocket) }

        let (process, log) = try startRun(["--ca", secret + "/ca.crt"], environment: ["NOTIFY_SOCKET": notifySocket])
        defer {
            if process.isRunning {
                process.interrupt()
                process.terminate()
            }
        }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func linkExists() throws -> Bool { try node.exec(["ip", "link", "show", "nodeagent0"]).status == 0 }

        try eventually(10, "first reconcile ready") { logText().contains("ready=true reason=start") }
        XCTAssertEqual(try node.agent(["probe", "--host-root", node.hostRoot, "--registry", node.registry]).status, 0)
        try eventually(5, "sd_notify READY") {
            ((try? String(contentsOfFile: notifyLog, encoding: .utf8)) ?? "").contains(
                "READY=1\nSTATUS=ready to pull from registry-service.openfaas.svc.cluster.local:443")
        }

        // Every thread of the agent holds SIGTERM and SIGINT blocked (the loop takes them between
        // reconciles; a thread without the block would die of them), but for the loop's own while
        // it waits in rt_sigtimedwait (syscall 128), which unblocks them for the wait; SIGPIPE is ignored.
        // The agent's own PID (the script execs nsenter, which execs the agent): a pgrep for its
        // name can also match a child it forked that has not exec'd yet.
        let threads = try node.exec([
            "sh", "-c",
            """
            for t in /proc/\(process.processIdentifier)/task/*; do
              echo "$(grep ^SigBlk $t/status | cut -f2) $(grep ^SigIgn $t/status | cut -f2) $(cut -d' ' -f1 $t/syscall)"
            done
            """,
        ])
        let masks = threads.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        XCTAssertGreaterThanOrEqual(masks.count, 2, "two threads (loop, endpoint): \(threads.stdout)\(threads.stderr)")
        let held: UInt64 = 1 << (SIGTERM - 1) | 1 << (SIGINT - 1)
        let ignored: UInt64 = 1 << (SIGPIPE - 1)
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
        let silent = try node.exec([
            "python3", "-c",
            """
            import socket, time
            s = socket.create_connection(("127.0.0.1", 9808)); t = time.time()
            s.settimeout(20); data = s.recv(1)
            print("closed after %.1f s" % (time.time() - t) if data == b"" else "got data")
            """,
        ])
        XCTAssertTrue(silent.stdout.hasPrefix("closed after"), silent.stdout + silent.stderr)

        // Drift: someone deletes the link; the next interval brings it back.
        XCTAssertEqual(try node.exec(["ip", "link", "del", "nodeagent0"]).status, 0)
        try eventually(6, "the link is back") { try linkExists() }

        // Rotation: the kubelet swaps ..data to a new version holding two CAs.
        try FileManager.default.createDirectory(atPath: secret + "/..v2", withIntermediateDirectories: true)
        let two =
            try String(contentsOfFile: node.caFile, encoding: .utf8)
            + String(contentsOfFile: try CertFixtures.path("other-ca.crt"), encoding: .utf8)
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
    /// Another writer of certs.d (Spegel clears it when it starts, keeping only its own folders):
    /// the agent's folder is put back within a few watch ticks, not at the next interval (an hour
    /// here), and the node pulls again. Before, nothing happened until the interval.
    func testARemovedCertsDFolderIsPutBackWithinAWatchTick() throws {
        let (process, log) = try startRun(["--ca", node.caFile, "--interval", "3600"])
        defer {
            if process.isRunning {
                process.interrupt()
                process.terminate()
            }
        }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(15, "first reconcile ready") { logText().contains("ready=true reason=start") }
        let certsD = node.hostRoot + "/etc/containerd/certs.d"
        let hostsTOML = certsD + "/\(node.registry)/hosts.toml"
        XCTAssertEqual(try node.exec(["test", "-f", hostsTOML]).status, 0)
        let cleared = try node.exec(["sh", "-c", "rm -rf \"$0\"/*", certsD])
        XCTAssertEqual(cleared.status, 0, cleared.stderr)
        try eventually(5, "a reconcile for the changed certs.d") { logText().contains("certs.d changed") }
        try eventually(5, "the agent's folder back") { try node.exec(["test", "-f", hostsTOML]).status == 0 }
        XCTAssertEqual(
            try node.agent(["probe", "--host-root", node.hostRoot, "--registry", node.registry]).status, 0, logText())
        // Nothing else changes it: no reconcile follows but the interval's.
        let reconciles = logText().components(separatedBy: "reconciled").count
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(logText().components(separatedBy: "reconciled").count, reconciles, logText())
    }

    func testASilentAPIServerHoldsBackNeitherTheOutcomeNorTheStop() throws {
        let tokenFile = node.folder + "/token"
        try "test-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let (process, log) = try startRun([
            "--ca", node.caFile, "--node-name", "node-1", "--kube-api", "https://127.0.0.25:443",
            "--kube-token-file", tokenFile, "--kube-ca-file", node.caFile,
        ])
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(8, "the first reconcile, logged before the API answers") { logText().contains("ready=true reason=start") }
        XCTAssertEqual(try get("/readyz").code, "200")
        XCTAssertFalse(logText().contains("kubernetes:"), "the API request is still waiting: \(logText())")
        try eventually(15, "the API request given up and logged") { logText().contains("kubernetes:") }

        assertStopsOnSIGTERM(process, within: 12, logText, "at most one API timeout")
    }

    /// `node-agent run` against Tests/doubles/api-double, publishing to node-1 of that API with the
    /// token in `tokenFile`; its output in a log file of the node's folder.
    func startReporting(_ api: APIDouble, tokenFile: String, heartbeat: Int, log: String) throws -> Process {
        try node.startReporting(api, tokenFile: tokenFile, heartbeat: heartbeat, log: log)
    }

    /// The node condition and the startup taint, judged by the node as it ends up in
    /// Tests/doubles/api-double (the daemonset.yaml's RBAC enforced, every patch applied by kubectl's
    /// own strategic-merge and merge-patch code): one RegistryPullReady condition beside kubelet's
    /// Ready, merged by type; its lastTransitionTime kept across heartbeats and an agent restart
    /// while the status holds, new when it flips; the startup taint gone, the other one kept.
    func testRunPublishesTheNodeConditionOnChangeAndRemovesTheStartupTaint() throws {
        let (tokenPath, _) = try node.tokenFile("serviceaccount")
        let api = try APIDouble(node, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let before = try api.nodeObject()
        let kubeletReady = try XCTUnwrap(try api.condition("Ready"))
        let otherTaint = try XCTUnwrap(try api.taints().first { $0["key"] as? String == "example.com/other" })
        XCTAssertEqual(try api.taints().count, 2, "the double starts with the startup taint and another: \(before)")
        let log = node.folder + "/agent.log"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func statusPatches() -> [[String: Any]] {
            api.requests.filter { $0["path"] as? String == "/api/v1/nodes/node-1/status" && $0["method"] as? String == "PATCH" }
        }
        func taintKeys() throws -> [String] { try api.taints().compactMap { $0["key"] as? String } }

        // A heartbeat every 3 s; reconciles every second.
        var agent = try startReporting(api, tokenFile: tokenPath, heartbeat: 3, log: log)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        try eventually(20, "the condition published and the startup taint removed") {
            try api.condition("RegistryPullReady") != nil && taintKeys() == ["example.com/other"]
        }
        // A new node's requests about itself, to the taint gone: the node read for a previous
        // agent's transition time, the condition, the taint (its taints and resourceVersion from
        // the status patch's answer). Broken (the taint's GET, as at 97e9134): four.
        let nodeRequests = api.requests.compactMap { r -> String? in
            guard let path = r["path"] as? String, path.hasPrefix("/api/v1/nodes/node-1") else { return nil }
            return "\(r["method"] as? String ?? "") \(path)"
        }
        let taintGone = try XCTUnwrap(nodeRequests.firstIndex(of: "PATCH /api/v1/nodes/node-1"), "\(nodeRequests)")
        XCTAssertEqual(
            Array(nodeRequests[...taintGone]),
            ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1/status", "PATCH /api/v1/nodes/node-1"])
        let first = try XCTUnwrap(try api.condition("RegistryPullReady"), logText())
        XCTAssertEqual(first["status"], "True")
        XCTAssertEqual(first["reason"], "RegistryPullable")
        XCTAssertEqual(first["message"], "ready to pull from \(node.registry)")
        XCTAssertEqual(try api.condition("Ready"), kubeletReady, "kubelet's condition untouched")
        XCTAssertEqual(try api.conditions().count, 2, "\((try? api.conditions()) ?? [])")
        XCTAssertEqual(try api.taints().count, 1)
        XCTAssertEqual(
            try api.taints().first.map { NSDictionary(dictionary: $0) }, NSDictionary(dictionary: otherTaint), "the other taint as it was")

        // A heartbeat: lastHeartbeatTime moves on, lastTransitionTime stays.
        try eventually(10, "a heartbeat") { try api.condition("RegistryPullReady")?["lastHeartbeatTime"] != first["lastHeartbeatTime"] }
        let beat = try XCTUnwrap(try api.condition("RegistryPullReady"))
        XCTAssertEqual(beat["status"], "True")
        XCTAssertEqual(beat["lastTransitionTime"], first["lastTransitionTime"], "the status held")
        // Patches while nothing changes come at the heartbeat only, not every reconcile. The double
        // logs a request after it has applied it, so the heartbeat's patch may reach the log a
        // moment after the Node shows it.
        func truePatchTimes() -> [Double] {
            statusPatches().filter {
                ((($0["body"] as? [String: Any])?["status"] as? [String: Any])?["conditions"] as? [[String: Any]])?.first?["status"]
                    as? String == "True"
            }.compactMap { $0["t"] as? Double }
        }
        try eventually(5, "the heartbeat's patch in the double's log") { truePatchTimes().count >= 2 }
        let times = truePatchTimes()
        for (a, b) in zip(times, times.dropFirst()) { XCTAssertGreaterThan(b - a, 2.5, "a condition patch between heartbeats: \(times)") }

        // The registry goes away: the condition flips to False, a new lastTransitionTime.
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "the condition False") { try api.condition("RegistryPullReady")?["status"] == "False" }
        let down = try XCTUnwrap(try api.condition("RegistryPullReady"))
        XCTAssertEqual(down["reason"], "RegistryNotPullable")
        XCTAssertGreaterThan(try XCTUnwrap(down["lastTransitionTime"]), try XCTUnwrap(first["lastTransitionTime"]), "flipped: \(down)")
        XCTAssertEqual(try taintKeys(), ["example.com/other"], "the agent never puts a taint back")
        // Back (a second later, so that the RFC 3339 seconds differ): True again, newer still.
        Thread.sleep(forTimeInterval: 1.1)
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        try eventually(20, "the condition True again") { try api.condition("RegistryPullReady")?["status"] == "True" }
        let up = try XCTUnwrap(try api.condition("RegistryPullReady"))
        XCTAssertGreaterThan(try XCTUnwrap(up["lastTransitionTime"]), try XCTUnwrap(down["lastTransitionTime"]), "flipped back: \(up)")

        // A restarted agent keeps the transition time the node has while the status holds, and
        // finds the taint already gone in its status patch's answer (no GET after it, no patch of
        // the node).
        agent.terminate()
        agent.waitUntilExit()
        let patchesBefore = statusPatches().count
        let requestsBefore = api.requests.count
        Thread.sleep(forTimeInterval: 1.1)
        agent = try startReporting(api, tokenFile: tokenPath, heartbeat: 600, log: log)
        try eventually(20, "the restarted agent's first condition patch") { statusPatches().count > patchesBefore }
        let again = try XCTUnwrap(try api.condition("RegistryPullReady"))
        XCTAssertEqual(again["status"], "True")
        XCTAssertNotEqual(again["lastHeartbeatTime"], up["lastHeartbeatTime"])
        XCTAssertEqual(again["lastTransitionTime"], up["lastTransitionTime"], "the status held across the restart")
        Thread.sleep(forTimeInterval: 2)
        let since = api.requests.dropFirst(requestsBefore)
        let patched = try XCTUnwrap(since.firstIndex { $0["path"] as? String == "/api/v1/nodes/node-1/status" })
        XCTAssertFalse(
            since[patched...].contains { $0["path"] as? String == "/api/v1/nodes/node-1" && $0["method"] as? String == "GET" },
            "the taint's check reads the status patch's answer")
        XCTAssertFalse(
            api.requests.dropFirst(requestsBefore).contains {
                $0["path"] as? String == "/api/v1/nodes/node-1" && $0["method"] as? String == "PATCH"
            })
        agent.terminate()
        agent.waitUntilExit()

        // Every request was the service account's, allowed by daemonset.yaml's ClusterRole, and
        // answered 200 (201 for an Event created); each write with the patch type the agent means.
        let all = api.requests
        for r in all {
            XCTAssertEqual(r["identity"] as? String, APIDouble.serviceAccount, "\(r)")
            XCTAssertEqual(r["decision"] as? String, "allow", "\(r)")
            XCTAssertEqual(r["code"] as? Int, r["method"] as? String == "POST" ? 201 : 200, "\(r)")
        }
        XCTAssertTrue(statusPatches().allSatisfy { $0["content_type"] as? String == "application/strategic-merge-patch+json" })
        let taintPatches = all.filter { $0["path"] as? String == "/api/v1/nodes/node-1" && $0["method"] as? String == "PATCH" }
        XCTAssertEqual(taintPatches.count, 1)
        XCTAssertEqual(taintPatches.first?["content_type"] as? String, "application/merge-patch+json")
        XCTAssertEqual(try api.condition("Ready"), kubeletReady, "kubelet's condition untouched")

        // Uninstall takes the condition away (a strategic merge patch deleting it by type): the
        // node is left with kubelet's condition only.
        let uninstall = try node.agent([
            "uninstall", "--host-root", node.hostRoot, "--node-name", "node-1", "--kube-api", api.url,
            "--kube-token-file", tokenPath, "--kube-ca-file", node.caFile,
        ])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertEqual(api.requests.last?["code"] as? Int, 200)
        XCTAssertNil(try api.condition("RegistryPullReady"))
        XCTAssertEqual(try api.conditions().count, 1)
        XCTAssertEqual(try api.condition("Ready"), kubeletReady)
        XCTAssertEqual(try taintKeys(), ["example.com/other"])
    }

    /// The API's refusals, as a real API server sends them, reach the agent's log: a token the
    /// API does not know (401), and a ClusterRole without `patch nodes/status` (a copy of
    /// daemonset.yaml with that rule taken out: 403 with the API server's message). A refused
    /// request changes nothing on the node. The double's other refusals have the real shapes too:
    /// a stale resourceVersion (409) and a Content-Type that is no patch type (415).
    func testTheAPIServersRefusalsReachTheAgentAndChangeNothing() throws {
        let (known, knownToken) = try node.tokenFile("serviceaccount")
        let (unknown, unknownToken) = try node.tokenFile("unknown")
        let log = node.folder + "/agent.log"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        // An unknown token: 401 Unauthorized, the real Status body.
        let api = try APIDouble(node, tokens: [known: APIDouble.serviceAccount])
        defer { api.stop() }
        let initial = NSDictionary(dictionary: try api.nodeObject())
        let refused = try api.curl("GET", "/api/v1/nodes/node-1", token: unknownToken)
        XCTAssertEqual(refused.code, "401")
        XCTAssertEqual(
            refused.body,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        )
        var agent = try startReporting(api, tokenFile: unknown, heartbeat: 600, log: log)
        let unauthorized = "kubernetes: the API answered 401 to the RegistryPullReady condition of node node-1: Unauthorized"
        try eventually(20, "the agent logs the 401") { logText().contains(unauthorized) }
        XCTAssertTrue(logText().contains(unauthorized), logText())
        agent.terminate()
        agent.waitUntilExit()
        XCTAssertTrue(logText().contains("the API does not accept the token in \(unknown)"), logText())
        XCTAssertFalse(api.requests.isEmpty)
        for r in api.requests {
            XCTAssertEqual(r["decision"] as? String, "unauthenticated", "\(r)")
            XCTAssertEqual(r["code"] as? Int, 401, "\(r)")
        }
        XCTAssertEqual(NSDictionary(dictionary: try api.nodeObject()), initial, "nothing changed")
        api.stop()

        // daemonset.yaml less its nodes/status rule, made from the real manifest.
        let (manifest, cut, said) = try APIDouble.manifest(without: "nodes/status", in: node)
        XCTAssertEqual(cut, "1\n", said)
        let limited = try APIDouble(node, manifest: manifest, tokens: [known: APIDouble.serviceAccount], port: 6444)
        defer { limited.stop() }
        let limitedInitial = NSDictionary(dictionary: try limited.nodeObject())
        let forbidden =
            #"nodes \"node-1\" is forbidden: User \"system:serviceaccount:node-agent:node-agent\" cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope"#
        let patch = try limited.curl(
            "PATCH", "/api/v1/nodes/node-1/status", token: knownToken, contentType: "application/strategic-merge-patch+json",
            body: #"{"status":{"conditions":[{"type":"RegistryPullReady","status":"True"}]}}"#)
        XCTAssertEqual(patch.code, "403")
        XCTAssertEqual(
            patch.body,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":""# + forbidden
                + #"","reason":"Forbidden","details":{"name":"node-1","kind":"nodes"},"code":403}"#)
        agent = try startReporting(limited, tokenFile: known, heartbeat: 600, log: log)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        let message = forbidden.replacingOccurrences(of: #"\""#, with: "\"")
        let expected =
            "kubernetes: the API answered 403 to the RegistryPullReady condition of node node-1: Forbidden: " + message
            + " (the service account needs patch on nodes/status, or an admission policy refused the change (its message names the policy))"
        try eventually(20, "the agent logs the API's refusal") { logText().contains(expected) }
        XCTAssertTrue(logText().contains(expected), "\(expected)\nnot in\n\(logText())")
        agent.terminate()
        agent.waitUntilExit()
        // The kube-dns watch's requests (its own Role, intact here) apart.
        let decisions = Set(
            limited.requests.compactMap { r -> String? in
                guard let method = r["method"] as? String, let path = r["path"] as? String,
                    !["services", "endpointslices"].contains(r["resource"] as? String)
                else { return nil }
                return "\(method) \(path) \(r["decision"] as? String ?? "-") \(r["code"] as? Int ?? 0)"
            })
        XCTAssertTrue(decisions.contains("PATCH /api/v1/nodes/node-1/status deny 403"), "\(decisions)")
        // The Event of the first report still goes (its rule is there), once.
        XCTAssertTrue(
            decisions.isSubset(of: [
                "GET /api/v1/nodes/node-1 allow 200", "PATCH /api/v1/nodes/node-1/status deny 403",
                "POST /api/v1/namespaces/default/events allow 201",
            ]), "\(decisions)")
        // The agent removes the startup taint only once it could say why (the condition).
        XCTAssertEqual(NSDictionary(dictionary: try limited.nodeObject()), limitedInitial, "nothing changed")
        XCTAssertNil(try limited.condition("RegistryPullReady"))
        XCTAssertEqual(try limited.taints().count, 2)

        // A stale resourceVersion: 409 Conflict; a Content-Type that is no patch type: 415.
        let stale = try limited.curl(
            "PATCH", "/api/v1/nodes/node-1", token: knownToken, contentType: "application/merge-patch+json",
            body: #"{"metadata":{"resourceVersion":"1"},"spec":{"taints":[]}}"#)
        XCTAssertEqual(stale.code, "409")
        XCTAssertEqual(
            stale.body,
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on nodes \"node-1\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"node-1","kind":"nodes"},"code":409}"#
        )
        let json = try limited.curl("PATCH", "/api/v1/nodes/node-1", token: knownToken, contentType: "application/json", body: "{}")
        XCTAssertEqual(json.code, "415")
        XCTAssertTrue(json.body.contains(#""reason":"UnsupportedMediaType""#), json.body)
        XCTAssertEqual(try limited.taints().count, 2, "refused patches change nothing")
    }

    /// kube-dns, the registry and resolved each stop (SIGKILL) and start again while `run` is up:
    /// readiness goes false with that outage's reason, then true again, the agent never restarting.
    func testReadinessFollowsOutagesOfKubeDNSTheRegistryAndResolvedWithoutARestart() throws {
        let (process, log) = try startRun(["--ca", node.caFile, "--timeout", "1"])
        defer {
            if process.isRunning {
                process.interrupt()
                process.terminate()
            }
        }
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
            try get("/readyz").code == "200"
                && (try? JSONReport.decode(try get("/status").body))?.check("dns-host")?.details["source"] == "/etc/hosts"
        }
        XCTAssertEqual(try node.control(["start", "resolved"]), 0)
        try eventually(15, "back to the link, hosts lines gone") {
            try !agentLines() && node.exec(["ip", "link", "show", "nodeagent0"]).status == 0
        }
        try eventually(10, "ready through resolved again") { try get("/readyz").code == "200" }
        XCTAssertTrue(process.isRunning, "the agent stopped: \(logText())")
        XCTAssertEqual(logText().components(separatedBy: "[NodeAgent] starting").count - 1, 1, "the agent restarted")
    }
}
