import Foundation
import HostSystem
import Vocabulary
import XCTest

@testable import AgentCore
@testable import NodeAgent
@testable import Probes

/// What the health endpoint serves after a reconcile: /metrics line by line, /readyz's reason and
/// /status, for a report and for a reconcile that failed.
final class StatusCacheTests: XCTestCase {
    let checks = [
        CheckResult(
            name: "dns-cluster", outcome: .pass, reason: "resolved", durationSeconds: 0.012, phases: [.init(name: "resolve", seconds: 0.01)]
        ),
        CheckResult(
            name: "dns-host", outcome: .warn, reason: "resolved late", durationSeconds: 0.5,
            phases: [.init(name: "resolve", seconds: 0.25), .init(name: "other", seconds: 0.1)]),
        CheckResult(
            name: "tls-os-trust", outcome: .fail, reason: "unable to get local issuer certificate", durationSeconds: 1.5,
            details: ["earliest_cert_expiry": "1767225600", "verified_chain_expiry": "1798761600"]),
        CheckResult(name: "tls-runtime-trust", outcome: .pass, reason: "verified", durationSeconds: 0.25),
        CheckResult(name: "runtime-proxy", outcome: .skip, reason: "no proxy"),
    ]

    func report(ready: Bool) -> Report {
        Report(
            ready: ready, dryRun: false, registry: "registry.svc.cluster.local:443", changes: [], notes: [],
            checks: ready ? checks.filter { $0.outcome != .fail } : checks)
    }

    /// /metrics is what the node's network sees (the DaemonSet's metrics listener): nothing of a
    /// report's text (reasons, details, certificates, changes, notes) nor of a failed reconcile's
    /// error reaches it; its labels are check names, the registry's host:port and the version.
    func testMetricsCarryNothingOfTheReportsText() {
        let secrets = [
            "http://builder:s3cret@10.0.0.9:3128", "/host/etc/containerd/certs.d", "CN=Private Registry CA", "/etc/node-agent/ca/ca.crt",
        ]
        let leaky = [
            CheckResult(
                name: "runtime-proxy", outcome: .fail, reason: "proxyconnect \(secrets[0]) refused", durationSeconds: 0.1,
                details: ["proxy": secrets[0], "hosts_toml": secrets[1] + "/hosts.toml"]),
            CheckResult(
                name: "tls-os-trust", outcome: .pass, reason: "verified by \(secrets[2])", durationSeconds: 0.2,
                details: ["verified_chain_expiry": "1798761600", "issuer": secrets[2], "bundle": secrets[1]]),
        ]
        let report = Report(
            ready: false, dryRun: false, registry: "registry.svc.cluster.local:443", changes: ["wrote \(secrets[3])"],
            notes: [secrets[0]], checks: leaky)
        let cache = StatusCache(registry: "registry.svc.cluster.local:443", build: BuildInfo(version: "1.2.3", commit: "0123abc"))
        cache.update(report: report, error: nil)
        let afterReport = String(decoding: cache.current.metrics, as: UTF8.self)
        cache.update(report: nil, error: "cannot read \(secrets[3]) through \(secrets[0])")
        let afterError = String(decoding: cache.current.metrics, as: UTF8.self)
        for text in [afterReport, afterError] {
            for secret in secrets + ["s3cret", "/host", "CN="] { XCTAssertFalse(text.contains(secret), "\(secret) in\n\(text)") }
            let values = Set(text.matches(of: /="([^"]*)"/).map { String($0.output.1) })
            XCTAssertTrue(
                values.isSubset(of: ["runtime-proxy", "tls-os-trust", "registry.svc.cluster.local:443", "1.2.3", "0123abc"]), "\(values)")
        }
        XCTAssertTrue(afterReport.contains(#"probe_success{check="runtime-proxy"} 0"#), afterReport)
        // /status keeps them: it is served to the node's loopback only (HealthServer.answer).
        cache.update(report: report, error: nil)
        XCTAssertTrue(String(decoding: cache.current.status, as: UTF8.self).contains(secrets[1]))
    }

    func testMetricsForPassingWarningFailingAndSkippedChecks() {
        let text = HealthPages.metrics(
            report: report(ready: false), ready: false, reconciles: 3, failures: 1, lastReconcile: 1_764_670_000.25,
            registry: "registry.svc.cluster.local:443", build: HealthPages.Build(version: "1.2.3", commit: "0123abc"))
        XCTAssertEqual(
            text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init),
            [
                "# HELP node_agent_ready 1 when the node can pull from the registry.",
                "# TYPE node_agent_ready gauge",
                "node_agent_ready 0",
                "# HELP node_agent_reconciles_total Reconciles run since start.",
                "# TYPE node_agent_reconciles_total counter",
                "node_agent_reconciles_total 3",
                "# HELP node_agent_reconcile_errors_total Reconciles that failed since start.",
                "# TYPE node_agent_reconcile_errors_total counter",
                "node_agent_reconcile_errors_total 1",
                "# HELP node_agent_last_reconcile_timestamp_seconds When the last reconcile ended (Unix time; 0 before the first).",
                "# TYPE node_agent_last_reconcile_timestamp_seconds gauge",
                "node_agent_last_reconcile_timestamp_seconds 1764670000.25",
                "# HELP node_agent_last_network_proof_timestamp_seconds When the network was last proven in full (Unix time; 0 before the first); light reconciles carry that proof's checks.",
                "# TYPE node_agent_last_network_proof_timestamp_seconds gauge",
                "node_agent_last_network_proof_timestamp_seconds 0",
                "# HELP node_agent_info The registry the agent makes the node pull from (host:port) and the agent's version; always 1.",
                "# TYPE node_agent_info gauge",
                #"node_agent_info{registry="registry.svc.cluster.local:443",version="1.2.3"} 1"#,
                "# HELP node_agent_build_info The agent's version (git describe) and the commit it was built from; always 1.",
                "# TYPE node_agent_build_info gauge",
                #"node_agent_build_info{version="1.2.3",commit="0123abc"} 1"#,
                "# HELP probe_success 1 when the check passed (a warning counts), per check.",
                "# TYPE probe_success gauge",
                #"probe_success{check="dns-cluster"} 1"#,
                #"probe_success{check="dns-host"} 1"#,
                #"probe_success{check="tls-os-trust"} 0"#,
                #"probe_success{check="tls-runtime-trust"} 1"#,
                "# HELP probe_duration_seconds Seconds the check took.",
                "# TYPE probe_duration_seconds gauge",
                #"probe_duration_seconds{check="dns-cluster"} 0.012"#,
                #"probe_duration_seconds{check="dns-host"} 0.5"#,
                #"probe_duration_seconds{check="tls-os-trust"} 1.5"#,
                #"probe_duration_seconds{check="tls-runtime-trust"} 0.25"#,
                #"probe_duration_seconds{check="runtime-proxy"} 0"#,
                "# HELP probe_dns_lookup_time_seconds Seconds the DNS lookup took.",
                "# TYPE probe_dns_lookup_time_seconds gauge",
                #"probe_dns_lookup_time_seconds{check="dns-cluster"} 0.01"#,
                #"probe_dns_lookup_time_seconds{check="dns-host"} 0.25"#,
                "# HELP probe_ssl_earliest_cert_expiry Earliest expiry (Unix time) of the certificates the registry sent.",
                "# TYPE probe_ssl_earliest_cert_expiry gauge",
                #"probe_ssl_earliest_cert_expiry{check="tls-os-trust"} 1767225600"#,
                "# HELP probe_ssl_last_chain_expiry_timestamp_seconds Expiry (Unix time) of the verified chain.",
                "# TYPE probe_ssl_last_chain_expiry_timestamp_seconds gauge",
                #"probe_ssl_last_chain_expiry_timestamp_seconds{check="tls-os-trust"} 1798761600"#,
                "",
            ])
    }

    func testLabelValuesAreEscapedAsPrometheusReadsThem() {
        XCTAssertEqual(HealthPages.escape(#"alias:a"b\c"# + "\nd"), #"alias:a\"b\\c\nd"#)
        let odd = Report(
            ready: true, dryRun: false, registry: "r", changes: [], notes: [],
            checks: [CheckResult(name: "alias:\"x\"", outcome: .pass, reason: "")])
        XCTAssertTrue(
            HealthPages.metrics(
                report: odd, ready: true, reconciles: 1, failures: 0, registry: "r", build: HealthPages.Build(version: "v", commit: "c")
            )
            .contains(#"probe_success{check="alias:\"x\""} 1"# + "\n"))
        // The info gauge's labels too (a registry is validated, a version is not).
        XCTAssertTrue(
            HealthPages.metrics(
                report: nil, ready: false, reconciles: 0, failures: 0, registry: "[fd00::1]:5000",
                build: HealthPages.Build(version: "1.0 \"rc\"\\\n", commit: "c\"")
            )
            .contains(
                #"node_agent_info{registry="[fd00::1]:5000",version="1.0 \"rc\"\\\n"} 1"# + "\n"
                    + #"# HELP node_agent_build_info The agent's version (git describe) and the commit it was built from; always 1."#
                    + "\n# TYPE node_agent_build_info gauge\n" + #"node_agent_build_info{version="1.0 \"rc\"\\\n",commit="c\""} 1"# + "\n"))
    }

    /// The snapshot after each kind of reconcile: not ready, failed (no report), ready.
    func testUpdatesCountReconcilesAndErrorsAndSayWhyNotReady() throws {
        let cache = StatusCache()
        XCTAssertFalse(cache.current.ready)
        XCTAssertEqual(cache.current.readyReason, "no reconcile yet")

        cache.update(report: report(ready: false), error: nil)
        XCTAssertFalse(cache.current.ready)
        XCTAssertEqual(cache.current.readyReason, "tls-os-trust: unable to get local issuer certificate")
        var metrics = String(decoding: cache.current.metrics, as: UTF8.self)
        XCTAssertTrue(metrics.contains("\nnode_agent_ready 0\n"), metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconciles_total 1\n"), metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconcile_errors_total 0\n"), metrics)

        cache.update(report: nil, error: "the D-Bus address is empty", now: Date(timeIntervalSince1970: 1_764_670_000))
        XCTAssertFalse(cache.current.ready)
        XCTAssertEqual(cache.current.readyReason, "reconcile failed: the D-Bus address is empty")
        XCTAssertEqual(
            String(decoding: cache.current.status, as: UTF8.self),
            #"{"checked_at":"2025-12-02T10:06:40Z","error":"the D-Bus address is empty","ready":false}"#)
        metrics = String(decoding: cache.current.metrics, as: UTF8.self)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconciles_total 2\n"), metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconcile_errors_total 1\n"), metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_last_reconcile_timestamp_seconds 1764670000\n"), "a failed one ended too: \(metrics)")
        XCTAssertFalse(metrics.contains("probe_success{"), "a failed reconcile has no checks: \(metrics)")

        cache.update(report: report(ready: true), error: nil)
        XCTAssertTrue(cache.current.ready)
        XCTAssertEqual(cache.current.readyReason, "ready to pull from registry.svc.cluster.local:443")
        XCTAssertTrue(String(decoding: cache.current.status, as: UTF8.self).contains(#""ready" : true"#))
        metrics = String(decoding: cache.current.metrics, as: UTF8.self)
        XCTAssertTrue(
            metrics.hasPrefix(
                "# HELP node_agent_ready 1 when the node can pull from the registry.\n# TYPE node_agent_ready gauge\nnode_agent_ready 1\n"),
            metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconciles_total 3\n"), metrics)
        XCTAssertTrue(metrics.contains("\nnode_agent_reconcile_errors_total 1\n"), metrics)
    }

    /// Before the first reconcile ends (or while it hangs), /metrics already has the series an
    /// alert needs: not ready, no reconcile, no error, and which registry and version.
    func testMetricsAndStatusExistBeforeTheFirstReconcile() throws {
        let cache = StatusCache(
            registry: "registry.svc.cluster.local:443", build: BuildInfo(version: "9.9.9", commit: "fedcba9"),
            now: Date(timeIntervalSince1970: 1_764_670_000))
        XCTAssertEqual(
            String(decoding: cache.current.metrics, as: UTF8.self),
            """
            # HELP node_agent_ready 1 when the node can pull from the registry.
            # TYPE node_agent_ready gauge
            node_agent_ready 0
            # HELP node_agent_reconciles_total Reconciles run since start.
            # TYPE node_agent_reconciles_total counter
            node_agent_reconciles_total 0
            # HELP node_agent_reconcile_errors_total Reconciles that failed since start.
            # TYPE node_agent_reconcile_errors_total counter
            node_agent_reconcile_errors_total 0
            # HELP node_agent_last_reconcile_timestamp_seconds When the last reconcile ended (Unix time; 0 before the first).
            # TYPE node_agent_last_reconcile_timestamp_seconds gauge
            node_agent_last_reconcile_timestamp_seconds 0
            # HELP node_agent_last_network_proof_timestamp_seconds When the network was last proven in full (Unix time; 0 before the first); light reconciles carry that proof's checks.
            # TYPE node_agent_last_network_proof_timestamp_seconds gauge
            node_agent_last_network_proof_timestamp_seconds 0
            # HELP node_agent_info The registry the agent makes the node pull from (host:port) and the agent's version; always 1.
            # TYPE node_agent_info gauge
            node_agent_info{registry="registry.svc.cluster.local:443",version="9.9.9"} 1
            # HELP node_agent_build_info The agent's version (git describe) and the commit it was built from; always 1.
            # TYPE node_agent_build_info gauge
            node_agent_build_info{version="9.9.9",commit="fedcba9"} 1
            # HELP probe_success 1 when the check passed (a warning counts), per check.
            # TYPE probe_success gauge
            # HELP probe_duration_seconds Seconds the check took.
            # TYPE probe_duration_seconds gauge
            # HELP probe_dns_lookup_time_seconds Seconds the DNS lookup took.
            # TYPE probe_dns_lookup_time_seconds gauge
            # HELP probe_ssl_earliest_cert_expiry Earliest expiry (Unix time) of the certificates the registry sent.
            # TYPE probe_ssl_earliest_cert_expiry gauge
            # HELP probe_ssl_last_chain_expiry_timestamp_seconds Expiry (Unix time) of the verified chain.
            # TYPE probe_ssl_last_chain_expiry_timestamp_seconds gauge

            """)
        XCTAssertEqual(
            String(decoding: cache.current.status, as: UTF8.self),
            #"{"ready":false,"reason":"no reconcile yet","started_at":"2025-12-02T10:06:40Z"}"# + "\n")
        XCTAssertEqual(cache.current.readyReason, "no reconcile yet")
        // The default version is the agent's own: a test build's, unstamped.
        let own = String(decoding: StatusCache(registry: "r:443").current.metrics, as: UTF8.self)
        XCTAssertTrue(own.contains(#"node_agent_info{registry="r:443",version="dev"} 1"#), own)
        XCTAssertTrue(own.contains(#"node_agent_build_info{version="dev",commit="unknown"} 1"#), own)
    }

    /// /status after a reconcile is the report's JSON, as bootstrap prints it, and `checked_at`;
    /// /metrics says when it ended.
    func testStatusCarriesTheReportAndWhenItWasChecked() throws {
        let cache = StatusCache(registry: "registry.svc.cluster.local:443")
        let ended = Date(timeIntervalSince1970: 1_764_670_042)
        cache.update(report: report(ready: true), error: nil, now: ended)
        let status = try JSONValue.parse(cache.current.status)
        XCTAssertEqual(status["checked_at"], "2025-12-02T10:07:22Z")
        var object = try XCTUnwrap(status.object)
        object["checked_at"] = nil
        XCTAssertEqual(JSONValue.object(object), try JSONValue.parse(Array(report(ready: true).json().utf8)))
        XCTAssertTrue(
            String(decoding: cache.current.metrics, as: UTF8.self).contains("\nnode_agent_last_reconcile_timestamp_seconds 1764670042\n"))
    }
}
