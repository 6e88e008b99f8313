import FoundationEssentials
import Probes
import Vocabulary

/// What the health endpoint serves of a reconcile, rendered from its report: /status (the
/// report's JSON with `checked_at`, which `node-agent status` decodes back into a Report) and
/// /metrics (Prometheus text, blackbox_exporter's names where they exist).
public enum HealthPages {
    /// /status after a reconcile: the report as `bootstrap --output json` prints it, and
    /// `checked_at`, when the reconcile ended (RFC 3339, UTC).
    public static func statusJSON(_ report: Report, checkedAt: Date) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(StatusDocument(report: report, checkedAt: checkedAt))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The report's own keys and `checked_at`, in one object.
    struct StatusDocument: Encodable {
        var report: Report
        var checkedAt: Date

        enum CodingKeys: String, CodingKey { case checkedAt = "checked_at" }

        func encode(to encoder: Encoder) throws {
            try report.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(checkedAt, forKey: .checkedAt)
        }
    }

    /// The agent's build: `node_agent_info`'s and `node_agent_build_info`'s labels.
    public struct Build: Equatable, Sendable {
        public var version: String
        public var commit: String

        public init(version: String, commit: String) {
            self.version = version
            self.commit = commit
        }
    }

    /// Prometheus text exposition, with blackbox_exporter's names where they exist.
    /// `lastReconcile` (Unix time) is nil before the first reconcile, written as 0.
    public static func metrics(
        report: Report?, ready: Bool, reconciles: Int, failures: Int, lastReconcile: Double? = nil, registry: String, build: Build
    ) -> String {
        var out = ""
        func metric(_ name: String, _ help: String, _ type: String, _ samples: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(format(value))\n" }
        }
        let checks = report?.checks ?? []
        metric("node_agent_ready", "1 when the node can pull from the registry.", "gauge", [("", ready ? 1 : 0)])
        metric("node_agent_reconciles_total", "Reconciles run since start.", "counter", [("", Double(reconciles))])
        metric("node_agent_reconcile_errors_total", "Reconciles that failed since start.", "counter", [("", Double(failures))])
        metric(
            "node_agent_last_reconcile_timestamp_seconds", "When the last reconcile ended (Unix time; 0 before the first).", "gauge",
            [("", lastReconcile ?? 0)])
        metric(
            "node_agent_last_network_proof_timestamp_seconds",
            "When the network was last proven in full (Unix time; 0 before the first); light reconciles carry that proof's checks.",
            "gauge", [("", report?.networkProof?.provenAt.timeIntervalSince1970 ?? 0)])
        metric(
            "node_agent_info", "The registry the agent makes the node pull from (host:port) and the agent's version; always 1.",
            "gauge", [("{registry=\"\(escape(registry))\",version=\"\(escape(build.version))\"}", 1)])
        // The Prometheus convention for what a binary is (as prometheus_build_info, go_build_info):
        // a constant 1 whose labels say it, to join on or count versions across nodes.
        metric(
            "node_agent_build_info", "The agent's version (git describe) and the commit it was built from; always 1.", "gauge",
            [("{version=\"\(escape(build.version))\",commit=\"\(escape(build.commit))\"}", 1)])
        metric(
            "probe_success", "1 when the check passed (a warning counts), per check.", "gauge",
            checks.filter { $0.outcome != .skip }.map {
                ("{check=\"\(escape($0.name))\"}", $0.outcome == .pass || $0.outcome == .warn ? 1 : 0)
            })
        metric(
            "probe_duration_seconds", "Seconds the check took.", "gauge",
            checks.map { ("{check=\"\(escape($0.name))\"}", $0.durationSeconds) })
        let dns = checks.filter { $0.name.hasPrefix("dns-") }.flatMap { c in
            c.phases.filter { $0.name == "resolve" }.map { ("{check=\"\(escape(c.name))\"}", $0.seconds) }
        }
        metric("probe_dns_lookup_time_seconds", "Seconds the DNS lookup took.", "gauge", dns)
        let tls = checks.filter { $0.name.hasPrefix("tls-") }
        metric(
            "probe_ssl_earliest_cert_expiry", "Earliest expiry (Unix time) of the certificates the registry sent.", "gauge",
            tls.compactMap { c in c.details["earliest_cert_expiry"].flatMap(Double.init).map { ("{check=\"\(escape(c.name))\"}", $0) } })
        metric(
            "probe_ssl_last_chain_expiry_timestamp_seconds", "Expiry (Unix time) of the verified chain.", "gauge",
            tls.compactMap { c in c.details["verified_chain_expiry"].flatMap(Double.init).map { ("{check=\"\(escape(c.name))\"}", $0) } })
        return out
    }

    /// A label value as the text format wants it: backslash, double quote and line feed escaped.
    static func escape(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
