import AgentCore
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

/// The answers of the health endpoint, rendered after each reconcile. Requests read them and
/// never trigger probes. A lock, not an actor: the endpoint's thread reads it synchronously.
final class StatusCache: @unchecked Sendable {
    struct Snapshot: Sendable {
        var ready = false
        var live = true
        var status = Data("{\"ready\":false,\"reason\":\"no reconcile yet\"}\n".utf8)
        var metrics = Data()
        var readyReason = "no reconcile yet"
    }

    private let lock = PlainLock()
    private var snapshot = Snapshot()
    private var reconciles = 0
    private var failures = 0

    var current: Snapshot { lock.withLock { snapshot } }

    func update(report: Report?, error: String?) {
        lock.withLock {
            reconciles += 1
            if error != nil { failures += 1 }
            var s = Snapshot()
            if let report, error == nil {
                s.ready = report.ready
                s.readyReason =
                    report.ready ? "ready to pull from \(report.registry)" : Readiness.blockers(report.checks).joined(separator: "; ")
                s.status = Data(report.json().utf8)
            } else {
                s.ready = false
                s.readyReason = "reconcile failed: \(error ?? "unknown")"
                let object: JSONValue = ["ready": false, "error": .string(error ?? "unknown")]
                s.status = Data(object.encoded())
            }
            s.metrics = Data(
                Self.metrics(report: error == nil ? report : nil, ready: s.ready, reconciles: reconciles, failures: failures).utf8)
            snapshot = s
        }
    }

    /// Prometheus text exposition, with blackbox_exporter's names where they exist.
    static func metrics(report: Report?, ready: Bool, reconciles: Int, failures: Int) -> String {
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

    static func escape(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
