import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The health endpoint as monitoring meets it: Debian's Prometheus (scripts/prometheus-bin)
/// scrapes `node-agent run` on a sandbox node with deploy/monitoring's rules loaded, and what it
/// stores follows the agent's own /status as the registry goes and comes back; `promtool check
/// metrics` passes the endpoint's output; and `node-agent status` shows the running agent's report.
/// Everything runs inside the node's network namespace, laid out as the DaemonSet's ConfigMap lays
/// it out: the agent's endpoint on 127.0.0.1:9808, its metrics listener (/metrics alone) on
/// 0.0.0.0:9809, which Prometheus (127.0.0.1:9090 there) scrapes as the PodMonitor does.
final class MonitoringIntegrationTests: XCTestCase {
    var node: SandboxNode!
    /// Processes of the test's own, stopped in tearDown whatever happened.
    var processes: [Process] = []

    override func setUpWithError() throws { node = try SandboxNode() }

    override func tearDown() {
        for p in processes.reversed() where p.isRunning {
            p.terminate()
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        processes = []
        // A registry the test froze must not outlive it frozen.
        try? thawRegistry()
        node?.down()
    }

    static let prometheusFolder: String = {
        (try? sh(packageRoot.appendingPathComponent("scripts/prometheus-bin").path, []).stdout)?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }()
    var promtool: String { Self.prometheusFolder + "/usr/bin/promtool" }

    /// `node-agent run` on the node: reconciles every 2 s, probe phases of 2 s at most, /metrics
    /// alone on port 9809 (the DaemonSet's NODE_AGENT_METRICS_LISTEN).
    func startAgent() throws -> String {
        let (process, log) = try node.startRun(["--ca", node.caFile, "--timeout", "2", "--metrics-listen", "0.0.0.0:9809"])
        processes.append(process)
        return log
    }

    /// The registry's process stopped with SIGSTOP: connections are accepted (by the kernel) and
    /// never answered, so a reconcile's TLS checks wait their timeout: a reconcile that hangs.
    func freezeRegistry() throws { XCTAssertEqual(kill(try registryPID(), SIGSTOP), 0) }
    func thawRegistry() throws { _ = kill(try registryPID(), SIGCONT) }
    func registryPID() throws -> pid_t {
        let text = try String(contentsOfFile: node.folder + "/pids/registry", encoding: .utf8)
        return try XCTUnwrap(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// The agent's endpoint, from inside the node.
    func get(_ path: String) throws -> (code: String, body: String) { try node.endpoint(path) }

    func statusObject() throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try get("/status").body.utf8)) as? [String: Any])
    }

    /// `promtool check metrics` on what the metrics listener serves now: no problem may be reported.
    func assertPromtoolPasses(_ what: String, line: UInt = #line) throws {
        let r = try node.exec(["sh", "-c", "curl -sf http://127.0.0.1:9809/metrics | \(promtool) check metrics"])
        XCTAssertEqual(r.status, 0, "promtool check metrics (\(what)): \(r.stdout)\(r.stderr)", line: line)
        XCTAssertEqual(r.stdout + r.stderr, "", "promtool check metrics (\(what))", line: line)
    }

    // MARK: Prometheus

    /// Debian's Prometheus in the node, on 127.0.0.1:9090 with storage of its own, scraping the
    /// agent every second as job node-agent with the labels the PodMonitor gives (node,
    /// namespace), and deploy/monitoring's rule file loaded.
    func startPrometheus() throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: Self.prometheusFolder + "/usr/bin/prometheus") else {
            throw AgentError(.io, "scripts/prometheus-bin gave no prometheus (it downloads Debian's package with apt-get download)")
        }
        let folder = node.folder + "/prometheus"
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        let rules = packageRoot.appendingPathComponent("deploy/monitoring/node-agent.rules.yaml").path
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        rule_files:
          - \(rules)
        scrape_configs:
          - job_name: node-agent
            metrics_path: /metrics
            static_configs:
              - targets: ["127.0.0.1:9809"]
                labels:
                  node: node-1
                  namespace: node-agent

        """.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        let log = folder + "/prometheus.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: node.script)
        p.arguments = [
            "exec", Self.prometheusFolder + "/usr/bin/prometheus", "--config.file=\(folder)/prometheus.yml",
            "--storage.tsdb.path=\(folder)/data", "--web.listen-address=127.0.0.1:9090", "--log.level=warn",
        ]
        p.environment = node.scriptEnvironment
        p.standardOutput = output
        p.standardError = output
        p.standardInput = FileHandle.nullDevice
        try p.run()
        processes.append(p)
        try eventually(30, "Prometheus ready") {
            guard p.isRunning else { throw AgentError(.io, "prometheus exited: \(prometheusLog)") }
            return try node.exec(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:9090/-/ready"]).status == 0
        }
        return p
    }

    var prometheusLog: String { (try? String(contentsOfFile: node.folder + "/prometheus/prometheus.log", encoding: .utf8)) ?? "" }

    /// GET of Prometheus' HTTP API: its `data`.
    func api(_ path: String, _ parameters: [String] = []) throws -> Any {
        var arguments = ["curl", "-s", "-m", "5", "-G"]
        for p in parameters { arguments += ["--data-urlencode", p] }
        let r = try node.exec(arguments + ["http://127.0.0.1:9090/api/v1/" + path])
        let object = try XCTUnwrap(
            (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any], "\(path): \(r.stdout)\(r.stderr)")
        XCTAssertEqual(object["status"] as? String, "success", "\(path): \(r.stdout)")
        return object["data"] ?? [:]
    }

    struct Sample: CustomStringConvertible {
        var labels: [String: String]
        var value: Double
        var description: String { "\(labels) \(value)" }
    }

    /// An instant query's vector, as Prometheus evaluates it now.
    func query(_ expression: String) throws -> [Sample] {
        let data = try XCTUnwrap(try api("query", ["query=" + expression]) as? [String: Any])
        XCTAssertEqual(data["resultType"] as? String, "vector")
        return ((data["result"] as? [[String: Any]]) ?? []).map { r in
            let value = (r["value"] as? [Any])?.last as? String ?? "NaN"
            return Sample(labels: r["metric"] as? [String: String] ?? [:], value: Double(value) ?? .nan)
        }
    }

    /// `metric`'s samples by their check label.
    func byCheck(_ metric: String) throws -> [String: Double] {
        Dictionary(try query(metric + #"{job="node-agent"}"#).map { ($0.labels["check"] ?? "", $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// What Prometheus has for the agent agrees with the agent's /status of the same reconcile:
    /// probe_success per check (checks skipped have none), the certificate-expiry series of the
    /// TLS checks with the values the checks found, node_agent_ready, and the info gauge.
    func assertPrometheusAgreesWithStatus(line: UInt = #line) throws {
        // The checks' outcomes and expiry are stable while nothing changes; reconciles in between
        // are fine, as long as /status is read again after a mismatch.
        var last = ""
        for _ in 0..<20 {
            let status = try statusObject()
            let checks = try XCTUnwrap(status["checks"] as? [[String: Any]])
            var success: [String: Double] = [:]
            var earliest: [String: Double] = [:]
            var chain: [String: Double] = [:]
            for c in checks {
                let name = try XCTUnwrap(c["name"] as? String)
                let outcome = try XCTUnwrap(c["outcome"] as? String)
                if outcome != "skip" { success[name] = outcome == "pass" || outcome == "warn" ? 1 : 0 }
                let details = c["details"] as? [String: String] ?? [:]
                if name.hasPrefix("tls-"), let e = details["earliest_cert_expiry"].flatMap(Double.init) { earliest[name] = e }
                if name.hasPrefix("tls-"), let e = details["verified_chain_expiry"].flatMap(Double.init) { chain[name] = e }
            }
            let ready = try XCTUnwrap(status["ready"] as? Bool) ? 1.0 : 0.0
            let seen = (
                try byCheck("probe_success"), try byCheck("probe_ssl_earliest_cert_expiry"),
                try byCheck("probe_ssl_last_chain_expiry_timestamp_seconds"), try query(#"node_agent_ready{job="node-agent"}"#).map(\.value)
            )
            if seen.0 == success && seen.1 == earliest && seen.2 == chain && seen.3 == [ready] { return }
            last =
                "/status: success \(success) earliest \(earliest) chain \(chain) ready \(ready)\nPrometheus: success \(seen.0) earliest \(seen.1) chain \(seen.2) ready \(seen.3)"
            Thread.sleep(forTimeInterval: 0.5)
        }
        XCTFail("Prometheus does not agree with /status:\n\(last)", line: line)
    }

    /// The real scrape: the target up with the agent's series and deploy/monitoring's rules
    /// loaded; the registry stopped: node_agent_ready and the registry checks' probe_success go to
    /// 0 in Prometheus (and the not-ready alert goes pending for the node), the chain's expiry
    /// series goes away; started: all back to 1. The endpoint's /metrics passes `promtool check
    /// metrics` before the first reconcile (a reconcile that hangs on a frozen registry), when
    /// ready and when not.
    func testPrometheusScrapesTheAgentAndFollowsTheRegistry() throws {
        let begun = Date()
        try freezeRegistry()
        let log = try startAgent()
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        // Before the first reconcile ends: the series alerts need are there already.
        try eventually(10, "the endpoint answers") { try get("/healthz").code == "200" }
        let early = try get("/metrics").body
        for line in [
            "node_agent_ready 0", "node_agent_reconciles_total 0", "node_agent_reconcile_errors_total 0",
            "node_agent_last_reconcile_timestamp_seconds 0",
        ] {
            XCTAssertTrue(early.contains("\n" + line + "\n") || early.hasPrefix(line + "\n"), "missing \(line) in\n\(early)")
        }
        XCTAssertTrue(early.contains("\nnode_agent_info{registry=\""), early)
        try assertPromtoolPasses("before the first reconcile")
        try thawRegistry()

        let prometheus = try startPrometheus()
        try eventually(30, "ready") { try get("/readyz").code == "200" }
        try assertPromtoolPasses("ready")

        // The target is up, scraped at its address with the job the rules select.
        var target: [String: Any] = [:]
        try eventually(20, "the target scraped and up") {
            let data = try XCTUnwrap(try api("targets") as? [String: Any])
            let active = data["activeTargets"] as? [[String: Any]] ?? []
            guard active.count == 1 else { return false }
            target = active[0]
            return target["health"] as? String == "up"
        }
        XCTAssertEqual(target["scrapeUrl"] as? String, "http://127.0.0.1:9809/metrics", "\(target)")
        XCTAssertEqual(target["lastError"] as? String, "", "\(target)")
        XCTAssertEqual(
            target["labels"] as? [String: String],
            ["job": "node-agent", "instance": "127.0.0.1:9809", "node": "node-1", "namespace": "node-agent"])
        XCTAssertEqual(try query(#"up{job="node-agent"}"#).map(\.value), [1])

        // deploy/monitoring's rules loaded and evaluated without error.
        let groups = try XCTUnwrap((try api("rules") as? [String: Any])?["groups"] as? [[String: Any]])
        let rules = groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }
        XCTAssertEqual(Set(groups.compactMap { $0["name"] as? String }), ["node-agent", "node-agent-kube-state-metrics"])
        XCTAssertTrue(rules.contains { $0["name"] as? String == "NodeAgentRegistryPullNotReady" }, "\(rules)")
        try eventually(10, "every rule evaluated, health ok") {
            let now = try XCTUnwrap((try api("rules") as? [String: Any])?["groups"] as? [[String: Any]])
            return now.flatMap { $0["rules"] as? [[String: Any]] ?? [] }.allSatisfy { $0["health"] as? String == "ok" }
        }

        // The agent's series, with their labels and the values /status has.
        try eventually(10, "node_agent_ready 1 in Prometheus") { try query(#"node_agent_ready{job="node-agent"}"#).map(\.value) == [1] }
        try assertPrometheusAgreesWithStatus()
        let success = try byCheck("probe_success")
        for check in ["dns-cluster", "dns-host", "tcp", "tls-os-trust", "registry-api", "runtime-pull"] {
            XCTAssertEqual(success[check], 1, "probe_success{check=\"\(check)\"}: \(success)")
        }
        let chain = try byCheck("probe_ssl_last_chain_expiry_timestamp_seconds")
        XCTAssertNotNil(chain["tls-os-trust"], "\(chain)")
        // The sandbox's registry certificate is issued for 30 days.
        for (_, expiry) in chain { XCTAssertEqual(expiry - Date().timeIntervalSince1970, 30 * 86400, accuracy: 2 * 86400) }
        let status = try statusObject()
        // The version and commit the agent says (`version -o json`) label its series.
        let build = try JSONValue.parse(Array(try node.agent(["version", "-o", "json"]).stdout.utf8))
        let version = try XCTUnwrap(build["version"]?.string)
        let commit = try XCTUnwrap(build["commit"]?.string)
        let info = try query(#"node_agent_info{job="node-agent"}"#)
        XCTAssertEqual(info.count, 1, "\(info)")
        XCTAssertEqual(info.first?.labels["registry"], status["registry"] as? String)
        XCTAssertEqual(info.first?.labels["version"], version)
        XCTAssertEqual(info.first?.labels["node"], "node-1")
        XCTAssertEqual(info.first?.value, 1)
        let buildInfo = try query(#"node_agent_build_info{job="node-agent"}"#)
        XCTAssertEqual(buildInfo.count, 1, "\(buildInfo)")
        XCTAssertEqual(buildInfo.first?.labels["version"], version)
        XCTAssertEqual(buildInfo.first?.labels["commit"], commit)
        XCTAssertEqual(buildInfo.first?.value, 1)
        let last = try XCTUnwrap(try query(#"node_agent_last_reconcile_timestamp_seconds{job="node-agent"}"#).first?.value)
        XCTAssertEqual(last, Date().timeIntervalSince1970, accuracy: 10, "a reconcile ended within the last interval")
        XCTAssertGreaterThan(last, begun.timeIntervalSince1970)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(try query(#"node_agent_reconciles_total{job="node-agent"}"#).first?.value), 1)
        XCTAssertEqual(try query(#"node_agent_reconcile_errors_total{job="node-agent"}"#).map(\.value), [0])

        // The registry goes away: not ready, the checks that need it fail, the verified chain's
        // expiry is gone; the not-ready alert is pending for the node (it fires after 10 minutes).
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "node_agent_ready 0 in Prometheus") { try query(#"node_agent_ready{job="node-agent"}"#).map(\.value) == [0] }
        try eventually(10, "probe_success of tcp 0 in Prometheus") { try byCheck("probe_success")["tcp"] == 0 }
        try assertPrometheusAgreesWithStatus()
        // With nothing listening the TLS checks give way to one `tls` check that fails, and the
        // runtime's pull fails too: no check that needs the registry says 1.
        let down = try byCheck("probe_success")
        for check in ["tcp", "tls", "runtime-pull"] { XCTAssertEqual(down[check], 0, "\(check): \(down)") }
        for check in ["tls-os-trust", "tls-runtime-trust", "registry-api"] { XCTAssertNotEqual(down[check], 1, "\(check): \(down)") }
        for check in ["dns-cluster", "dns-host"] { XCTAssertEqual(down[check], 1, "\(check) needs no registry: \(down)") }
        XCTAssertEqual(try byCheck("probe_ssl_last_chain_expiry_timestamp_seconds"), [:], "no chain was verified")
        try assertPromtoolPasses("not ready")
        try eventually(10, "NodeAgentRegistryPullNotReady pending for node-1") {
            let alerts = try XCTUnwrap((try api("alerts") as? [String: Any])?["alerts"] as? [[String: Any]])
            return alerts.contains {
                let labels = $0["labels"] as? [String: String] ?? [:]
                return labels["alertname"] == "NodeAgentRegistryPullNotReady" && labels["node"] == "node-1"
                    && labels["namespace"] == "node-agent" && $0["state"] as? String == "pending"
            }
        }

        // Back: ready, every check passing again, the chain's expiry back.
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        try eventually(20, "node_agent_ready 1 again in Prometheus") {
            try query(#"node_agent_ready{job="node-agent"}"#).map(\.value) == [1]
        }
        try assertPrometheusAgreesWithStatus()
        let up = try byCheck("probe_success")
        for check in ["tcp", "tls-os-trust", "registry-api", "runtime-pull"] { XCTAssertEqual(up[check], 1, "\(check): \(up)") }
        XCTAssertNil(up["tls"], "the failure's own check is gone: \(up)")
        XCTAssertNotNil(try byCheck("probe_ssl_last_chain_expiry_timestamp_seconds")["tls-os-trust"])
        try eventually(10, "the alert gone") {
            let alerts = try XCTUnwrap((try api("alerts") as? [String: Any])?["alerts"] as? [[String: Any]])
            return !alerts.contains { ($0["labels"] as? [String: String])?["alertname"] == "NodeAgentRegistryPullNotReady" }
        }
        XCTAssertEqual(try query(#"up{job="node-agent"}"#).map(\.value), [1])
        XCTAssertTrue(prometheus.isRunning, prometheusLog)
        XCTAssertFalse(logText().contains("reconcile failed"), logText())
    }

    // MARK: node-agent status

    /// `node-agent status` on the node: `status ARGS` as a person runs it there.
    func status(_ arguments: [String], environment: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try node.exec(["env"] + environment + [SandboxNode.binary, "status"] + arguments)
    }

    /// Against a running agent: no report before its first reconcile ends (exit 4), its report
    /// as bootstrap's table with the age (exit 0 ready, 1 not ready), JSON with the same, the
    /// endpoint from --endpoint or the agent's NODE_AGENT_LISTEN, a fresh probe only when asked,
    /// and what it says where no agent answers.
    func testStatusShowsTheRunningAgentsReport() throws {
        try freezeRegistry()
        let log = try startAgent()
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try eventually(10, "the endpoint answers") { try get("/healthz").code == "200" }
        let early = try status([])
        XCTAssertEqual(early.status, 4, early.stdout + early.stderr)
        XCTAssertEqual(early.stdout, "")
        XCTAssertTrue(
            early.stderr.hasPrefix(
                "node-agent: no report: the agent at http://127.0.0.1:9808 has not finished its first reconcile yet (it started "),
            early.stderr)
        XCTAssertTrue(early.stderr.contains("node-agent status --probe"), early.stderr)
        try thawRegistry()
        try eventually(30, "ready") { try get("/readyz").code == "200" }

        // The table: bootstrap's, under whose report it is and how old.
        let shown = try status([])
        XCTAssertEqual(shown.status, 0, shown.stdout + shown.stderr)
        let lines = shown.stdout.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first)
        let age = try XCTUnwrap(
            header.wholeMatch(of: /The agent at http:\/\/127\.0\.0\.1:9808, checked (\d+) s ago \((\S+)\):/), header)
        XCTAssertLessThanOrEqual(try XCTUnwrap(Int(age.1)), 5, "the agent reconciles every 2 s")
        let checkedAt = try XCTUnwrap(try? Date(String(age.2), strategy: .iso8601), header)
        XCTAssertEqual(checkedAt.timeIntervalSinceNow, -Double(age.1)!, accuracy: 2)
        XCTAssertEqual(lines.last, "READY: this node can pull from \(node.registry).")
        let report = try statusObject()
        let checks = try XCTUnwrap(report["checks"] as? [[String: Any]])
        XCTAssertTrue(lines.contains("Checks:"), shown.stdout)
        for c in checks {
            let name = try XCTUnwrap(c["name"] as? String)
            let mark = (c["outcome"] as? String ?? "").uppercased()
            XCTAssertTrue(
                lines.contains { $0.hasPrefix("  \(mark.padding(toLength: 4, withPad: " ", startingAt: 0))  \(name) ") },
                "\(name) in\n\(shown.stdout)")
        }
        XCTAssertTrue(lines.contains("CA certificates:"), shown.stdout)

        // JSON: the agent's /status, with where it came from and how old it is.
        let json = try status(["--output", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["ready"] as? Bool, true)
        XCTAssertEqual(object["source"] as? String, "http://127.0.0.1:9808")
        XCTAssertLessThanOrEqual(try XCTUnwrap(object["age_seconds"] as? Int), 5)
        XCTAssertNotNil(try? Date(try XCTUnwrap(object["checked_at"] as? String), strategy: .iso8601))
        XCTAssertEqual((object["checks"] as? [Any])?.count, checks.count)

        // The endpoint: the agent's own NODE_AGENT_LISTEN (0.0.0.0 asked on loopback); --endpoint
        // wins; one where nothing listens is no report (4); a malformed one is bad input (2).
        XCTAssertEqual(try status([], environment: ["NODE_AGENT_LISTEN=0.0.0.0:9808"]).status, 0)
        let elsewhere = try status([], environment: ["NODE_AGENT_LISTEN=127.0.0.1:9807"])
        XCTAssertEqual(elsewhere.status, 4)
        XCTAssertTrue(
            elsewhere.stderr.contains("no agent answers at http://127.0.0.1:9807 (connect: Connection refused)"), elsewhere.stderr)
        XCTAssertEqual(try status(["--endpoint", "http://127.0.0.1:9808"], environment: ["NODE_AGENT_LISTEN=127.0.0.1:9807"]).status, 0)
        // The metrics listener has no report to give, even on loopback.
        let metricsOnly = try status(["--endpoint", "http://127.0.0.1:9809"])
        XCTAssertEqual(metricsOnly.status, 4)
        XCTAssertTrue(
            metricsOnly.stderr.contains("http://127.0.0.1:9809/status answered 404 without node-agent's report"), metricsOnly.stderr)
        let malformed = try status(["--endpoint", "127.0.0.1:9808"])
        XCTAssertEqual(malformed.status, 2)
        XCTAssertTrue(malformed.stderr.contains("--endpoint '127.0.0.1:9808' is not an http:// URL"), malformed.stderr)
        XCTAssertTrue(malformed.stderr.contains("http://IP:PORT"), malformed.stderr)

        // The registry stopped: the agent's report says not ready (1), and why.
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "not ready") { try get("/readyz").code == "503" }
        let notReady = try status([])
        XCTAssertEqual(notReady.status, 1, notReady.stdout + notReady.stderr)
        XCTAssertTrue(notReady.stdout.contains("\nNot ready because:\n  - tcp: "), notReady.stdout)
        XCTAssertTrue(notReady.stdout.hasSuffix("NOT READY: this node cannot pull from \(node.registry) yet.\n"), notReady.stdout)
        // A fresh probe only when asked, saying so; it takes probe's options.
        let probe = ["--probe", "--host-root", node.hostRoot, "--registry", node.registry, "--timeout", "1"]
        let fresh = try status(probe)
        XCTAssertEqual(fresh.status, 1, fresh.stdout + fresh.stderr)
        XCTAssertTrue(fresh.stdout.hasPrefix("A fresh probe of this node (--probe), not the running agent's report:\n"), fresh.stdout)
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        let freshReady = try status(probe + ["--output", "json"])
        XCTAssertEqual(freshReady.status, 0, freshReady.stdout + freshReady.stderr)
        let freshObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(freshReady.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(freshObject["source"] as? String, "probe")
        XCTAssertEqual(freshObject["ready"] as? Bool, true)

        // The agent gone: no report (4), both ways on named; nothing probed behind the user's back.
        let agent = try XCTUnwrap(processes.first)
        agent.terminate()
        agent.waitUntilExit()
        let gone = try status([])
        XCTAssertEqual(gone.status, 4, gone.stdout + gone.stderr)
        XCTAssertEqual(gone.stdout, "")
        XCTAssertTrue(gone.stderr.contains("no agent answers at http://127.0.0.1:9808 (connect: Connection refused)"), gone.stderr)
        XCTAssertTrue(gone.stderr.contains("--endpoint http://IP:PORT") && gone.stderr.contains("node-agent status --probe"), gone.stderr)
        XCTAssertFalse(logText().contains("reconcile failed"), logText())
    }
}
