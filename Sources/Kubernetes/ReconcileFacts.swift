/// What one reconcile left, as far as the node's Events are concerned, and the Events between
/// two of them. Built from a report's plain values (its readiness, the CA certificates it
/// installed, its notes and change lines) so that the rule is a pure function a unit test runs.
///
/// The rule prefers state compared between reconciles to the wording of change lines: a CA
/// rotation is a different set of certificate fingerprints; a DNS mode change is a different
/// mode (the "DNS mode MODE: why" note), or a change line removing what another mode left (the
/// agent's first reconcile after a restart with another --dns-mode). A runtime restart has no
/// state to compare: it is a change line of the form "restart UNIT (pid A -> B): why".
public struct ReconcileFacts: Equatable, Sendable {
    public var ready: Bool
    /// The readiness message: the condition's.
    public var message: String
    /// SHA-256 fingerprint -> subject of each CA certificate installed; nil when unknown (the
    /// reconcile failed).
    public var certificates: [String: String]?
    /// The DNS mode in use and why it was chosen; nil when unknown or none (an IP registry).
    public var dnsMode: String?
    public var dnsReason: String = ""
    /// A change line took away what another DNS mode of the agent's had left.
    public var dnsModeSwitched = false
    /// The change lines that restarted a runtime.
    public var runtimeRestarts: [String] = []
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

    /// A report's facts: its readiness and message, its CA certificates (fingerprint, subject),
    /// its notes and its change lines.
    public init(ready: Bool, message: String, certificates: [(sha256: String, subject: String)], notes: [String], changes: [String]) {
        self.ready = ready
        self.message = message
        self.certificates = Dictionary(certificates.map { ($0.sha256, $0.subject) }, uniquingKeysWith: { a, _ in a })
        changedHost = !changes.isEmpty
        for note in notes where note.hasPrefix(Self.dnsModeNote) {
            let rest = note.dropFirst(Self.dnsModeNote.count)
            guard let colon = rest.firstIndex(of: ":") else { continue }
            dnsMode = String(rest[..<colon])
            dnsReason = String(rest[rest.index(after: colon)...].drop { $0 == " " })
        }
        dnsModeSwitched = changes.contains { $0.contains(Self.otherDNSModeMarker) }
        runtimeRestarts = changes.filter(Self.isRuntimeRestart)
    }

    /// Bootstrap's note naming the DNS mode: "DNS mode link: why".
    static let dnsModeNote = "DNS mode "
    /// What DNSPlan says of the things another mode left, when it takes them away.
    static let otherDNSModeMarker = "(another DNS mode is in use)"

    /// "restart containerd.service (pid 812 -> 1204): it started before the CA reached the OS store"
    static func isRuntimeRestart(_ line: String) -> Bool {
        guard line.hasPrefix("restart ") else { return false }
        let unit = line.dropFirst("restart ".count).prefix { $0 != " " }
        return !unit.isEmpty && line.dropFirst("restart ".count + unit.count).hasPrefix(" (pid ")
    }

    /// These facts with what they do not know taken from `earlier` (a failed reconcile knows
    /// neither the CA nor the DNS mode: the next comparison is with the last known ones).
    public func keepingKnown(from earlier: ReconcileFacts?) -> ReconcileFacts {
        guard failed, let earlier else { return self }
        var kept = self
        kept.certificates = earlier.certificates
        kept.dnsMode = earlier.dnsMode
        kept.dnsReason = earlier.dnsReason
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
        for line in current.runtimeRestarts {
            events.append(NodeEvent(.normal, Reason.runtimeRestarted, "restarted " + line.dropFirst("restart ".count)))
        }
        if let mode = current.dnsMode {
            let was = previous?.dnsMode
            if current.dnsModeSwitched || (was != nil && was != mode) {
                let from = was.flatMap { $0 != mode ? " (was \($0))" : nil } ?? ""
                events.append(NodeEvent(.normal, Reason.dnsModeChanged, "cluster DNS mode \(mode)\(from): \(current.dnsReason)"))
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
