import AgentCore
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

/// The answers of the health endpoint, rendered after each reconcile (by AgentCore's HealthPages). Requests read them and
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
            HealthPages.metrics(report: nil, ready: false, reconciles: 0, failures: 0, registry: registry, build: build.pages).utf8)
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
                s.status = Data(HealthPages.statusJSON(report, checkedAt: now).utf8)
            } else {
                s.ready = false
                s.readyReason = "reconcile failed: \(error ?? "unknown")"
                let object: JSONValue = ["ready": false, "error": .string(error ?? "unknown"), "checked_at": .string(now.iso8601)]
                s.status = Data(object.encoded())
            }
            s.metrics = Data(
                HealthPages.metrics(
                    report: error == nil ? report : nil, ready: s.ready, reconciles: reconciles, failures: failures,
                    lastReconcile: now.timeIntervalSince1970, registry: registry, build: build.pages
                ).utf8)
            snapshot = s
        }
    }
}
