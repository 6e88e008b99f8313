import AgentCore
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

/// The answers of the health endpoint, rendered after each reconcile. Requests read them and
/// never trigger probes. A lock, not an actor: the endpoint's thread reads it synchronously.
///
/// Every answer exists from the start, before the first reconcile: `/metrics` then says
/// `node_agent_ready 0` with zero counters (a first reconcile that hangs still has a series to
/// alert on), `/status` says when the agent started.
final class StatusCache: @unchecked Sendable {
    struct Snapshot: Sendable {
        var ready = false
        var live = true
        var status = Data()
        var metrics = Data()
        var readyReason = StatusCache.noReconcileYet
    }

    static let noReconcileYet = "no reconcile yet"

    /// The registry as images name it (host:port) and the agent's version: `node_agent_info`'s
    /// labels; the version and commit: `node_agent_build_info`'s.
    let registry: String
    let build: BuildInfo
    private let lock = PlainLock()
    private var snapshot = Snapshot()
    private var reconciles = 0
    private var failures = 0

    init(registry: String = "", build: BuildInfo = .current, now: Date = Date()) {
        self.registry = registry
        self.build = build
        let object: JSONValue = [
            "ready": false, "reason": .string(Self.noReconcileYet), "started_at": .string(now.iso8601),
        ]
        snapshot.status = Data(object.encoded() + [10])
        snapshot.metrics = Data(
            Self.metrics(report: nil, ready: false, reconciles: 0, failures: 0, registry: registry, build: build).utf8)
    }

    var current: Snapshot { lock.withLock { snapshot } }

    /// After a reconcile that ended at `now`: its report, or the error that ended it.
    func update(report: Report?, error: String?, now: Date = Date()) {
        lock.withLock {
            reconciles += 1
            if error != nil { failures += 1 }
            var s = Snapshot()
            if let report, error == nil {
                s.ready = report.ready
                s.readyReason =
                    report.ready ? "ready to pull from \(report.registry)" : Readiness.blockers(report.checks).joined(separator: "; ")
                s.status = Data(Self.statusJSON(report, checkedAt: now).utf8)
            } else {
                s.ready = false
                s.readyReason = "reconcile failed: \(error ?? "unknown")"
                let object: JSONValue = ["ready": false, "error": .string(error ?? "unknown"), "checked_at": .string(now.iso8601)]
                s.status = Data(object.encoded())
            }
            s.metrics = Data(
                Self.metrics(
                    report: error == nil ? report : nil, ready: s.ready, reconciles: reconciles, failures: failures,
                    lastReconcile: now.timeIntervalSince1970, registry: registry, build: build
                ).utf8)
            snapshot = s
        }
    }

    /// /status after a reconcile: the report as `bootstrap --output json` prints it, and
    /// `checked_at`, when the reconcile ended (RFC 3339, UTC).
    static func statusJSON(_ report: Report, checkedAt: Date) -> String {
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

    /// Prometheus text exposition, with blackbox_exporter's names where they exist.
    /// `lastReconcile` (Unix time) is nil before the first reconcile, written as 0.
    static func metrics(
        report: Report?, ready: Bool, reconciles: Int, failures: Int, lastReconcile: Double? = nil, registry: String,
        build: BuildInfo
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
