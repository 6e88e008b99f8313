import Vocabulary

/// What one reconcile left, as far as the node's Events are concerned, and the Events between
/// two of them: a pure rule a unit test runs.
///
/// The rule compares state between reconciles: a CA rotation is a different set of certificate
/// fingerprints; a DNS mode change is a different mode, or a plan that took away what another
/// mode left (the agent's first reconcile after a restart with another --dns-mode). A runtime
/// restart is the report's own record of it.
public struct ReconcileFacts: Equatable, Sendable {
    public var ready: Bool
    /// The readiness message: the condition's.
    public var message: String
    /// SHA-256 fingerprint -> subject of each CA certificate installed; nil when unknown (the
    /// reconcile failed).
    public var certificates: [String: String]?
    /// The DNS mode in use and why it was chosen; nil when unknown or none (an IP registry).
    public var dnsMode: Report.DNSChoice?
    /// The runtimes the reconcile restarted.
    public var runtimeRestarts: [Report.RuntimeRestart] = []
    /// Whether the reconcile changed anything on the host.
    public var changedHost = false
    /// The reconcile failed before it could report: the CA and the DNS mode are unknown.
    public var failed = false

    /// A reconcile that failed before it could report: not ready, the error as the message.
    public init(failed message: String) {
        ready = false
        self.message = message
        failed = true
    }

    public init(
        ready: Bool, message: String, certificates: [String: String], dnsMode: Report.DNSChoice?,
        runtimeRestarts: [Report.RuntimeRestart] = [], changedHost: Bool
    ) {
        self.ready = ready
        self.message = message
        self.certificates = certificates
        self.dnsMode = dnsMode
        self.runtimeRestarts = runtimeRestarts
        self.changedHost = changedHost
    }

    /// A report's facts, with its readiness message.
    public init(_ report: Report, message: String) {
        self.init(
            ready: report.ready, message: message,
            certificates: Dictionary(report.certificates.map { ($0.sha256, $0.subject) }, uniquingKeysWith: { a, _ in a }),
            dnsMode: report.dnsMode, runtimeRestarts: report.runtimeRestarts, changedHost: !report.changes.isEmpty)
    }

    /// These facts with what they do not know taken from `earlier` (a failed reconcile knows
    /// neither the CA nor the DNS mode: the next comparison is with the last known ones).
    public func keepingKnown(from earlier: ReconcileFacts?) -> ReconcileFacts {
        guard failed, let earlier else { return self }
        var kept = self
        kept.certificates = earlier.certificates
        kept.dnsMode = earlier.dnsMode
        return kept
    }
}

extension NodeEvent {
    /// The Events of a reconcile whose facts are `current`, after one whose facts were `previous`
    /// (nil: the agent's first report), in the order they happened: CA rotated, runtime
    /// restarted, DNS mode changed, then readiness when it flipped (or at the first report).
    public static func between(_ previous: ReconcileFacts?, _ current: ReconcileFacts) -> [NodeEvent] {
        var events: [NodeEvent] = []
        if let before = previous?.certificates, let now = current.certificates, !before.isEmpty, !now.isEmpty,
            Set(before.keys) != Set(now.keys), current.changedHost
        {
            func list(_ certificates: [String: String]) -> String {
                certificates.sorted { $0.key < $1.key }.map { "\($0.value) (SHA-256 \($0.key.prefix(16)))" }.joined(separator: ", ")
            }
            events.append(
                NodeEvent(.normal, Reason.caRotated, "installed the registry's new CA \(list(now)) in place of \(list(before))"))
        }
        for restart in current.runtimeRestarts {
            events.append(NodeEvent(.normal, Reason.runtimeRestarted, "restarted " + restart.what))
        }
        if let dns = current.dnsMode {
            let was = previous?.dnsMode?.mode
            if dns.replacedAnotherMode || (was != nil && was != dns.mode) {
                let from = was.flatMap { $0 != dns.mode ? " (was \($0))" : nil } ?? ""
                events.append(NodeEvent(.normal, Reason.dnsModeChanged, "cluster DNS mode \(dns.mode)\(from): \(dns.reason)"))
            }
        }
        if previous == nil || previous?.ready != current.ready {
            events.append(
                current.ready
                    ? NodeEvent(.normal, Reason.ready, current.message) : NodeEvent(.warning, Reason.notReady, current.message))
        }
        return events
    }
}
