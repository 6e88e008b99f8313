import FoundationEssentials
import Probes
import Vocabulary

/// The decisions of `run`'s loop, apart from its I/O: when to reconcile (at the start, every
/// interval, sooner with backoff while the node is not ready, at once when the CA, the
/// runtime's certs.d or resolved's bus owner changes), what to log and tell systemd, when to
/// send the node condition (a change, or its heartbeat) and which Events to write.
/// node-problem-detector's condition manager is the model: the state is a value, time an input,
/// the I/O the caller's (ReconcileService in the executable).
///
/// The caller feeds `next` its observations, each with the time it was made: `.tick` every
/// watch interval; after a `.reconcile` action, `.reconciled`; after a `.publish` action,
/// `.published`; after `.settle`, `.settled`. `CA` is the reading of the CA's source, compared between ticks.
public struct Reconciler<CA: Equatable & Sendable>: Sendable {
    public struct Settings: Equatable, Sendable {
        public var interval: Double
        public var watchInterval: Double
        /// Seconds between condition updates when nothing changed.
        public var heartbeat: Double
        /// Whether there is a node and an API to publish the condition and Events to.
        public var publishes: Bool

        public init(interval: Double, watchInterval: Double, heartbeat: Double, publishes: Bool) {
            self.interval = interval
            self.watchInterval = watchInterval
            self.heartbeat = heartbeat
            self.publishes = publishes
        }
    }

    /// One watch tick's readings.
    public struct Watch: Sendable {
        public var ca: CA
        /// Why a reconcile follows when `ca` differs from the last reconcile's.
        public var caChanged: String
        /// resolved's unique bus name (nil: not known now).
        public var owner: String?
        /// The runtime's certs.d folders and files (Report.watchedPaths), fingerprinted.
        public var folders: [[Int64]?]

        public init(ca: CA, caChanged: String, owner: String?, folders: [[Int64]?]) {
            self.ca = ca
            self.caChanged = caChanged
            self.owner = owner
            self.folders = folders
        }
    }

    public enum Observation: Sendable {
        case tick(Watch)
        /// The reconcile ended: its report, or the error that ended it.
        case reconciled(Result<Report, any Error>)
        case published(ConditionPublished)
        /// The reconcile's work is done: the runtime's folders as it left them, and the jitter
        /// of the next delay (0.9-1.1).
        case settled(folders: [[Int64]?], jitter: Double)
    }

    public enum Action: Equatable, Sendable {
        case reconcile(why: String)
        /// The health endpoint's answers for a report, or the error (redacted) that ended it.
        case record(Report?, error: String?, at: Date)
        case log(ReconcileLogLine)
        /// systemd's sd_notify state.
        case notify(String)
        case publish(ConditionPublish)
        /// The reconcile's Events, written unless `send` is false (the API did not answer the
        /// condition's request: another timeout would only hold the loop back).
        case writeEvents([NodeEvent], send: Bool, at: Date)
        /// The reconcile's work is done: observe `.settled`.
        case settle
    }

    public let settings: Settings
    public private(set) var schedule: ReconcileSchedule
    private var lastCA: CA?
    private var lastOwner: String?
    private var lastFolders: [[Int64]?]?
    /// The reconcile under way: why, and whether it left the node ready.
    private var why = ""
    private var ready = false
    /// The condition as last sent, when (monotonic), and its lastTransitionTime.
    public private(set) var sent: NodeCondition?
    private var sentAt: UInt64?
    private var transition: String?
    /// The condition being published, and when it was decided.
    private var sending: (condition: NodeCondition, at: UInt64)?
    /// The last reconcile's facts, and the one under way's.
    private var facts: ReconcileFacts?
    private var current: ReconcileFacts?

    public init(_ settings: Settings) {
        self.settings = settings
        schedule = ReconcileSchedule(interval: settings.interval, watchInterval: settings.watchInterval)
    }

    public mutating func next(_ observation: Observation, now: ReconcileInstant) -> [Action] {
        switch observation {
        case .tick(let watch): return tick(watch, now: now)
        case .reconciled(let outcome): return reconciled(outcome, now: now)
        case .published(let published): return self.published(published, now: now)
        case .settled(let folders, let jitter):
            lastFolders = folders
            schedule.reconciled(ready: ready, now: now.monotonic, jitter: jitter)
            return []
        }
    }

    private mutating func tick(_ watch: Watch, now: ReconcileInstant) -> [Action] {
        var why: String?
        if schedule.due(now: now.monotonic) { why = lastCA == nil ? "start" : "interval" }
        if lastFolders != nil, watch.folders != lastFolders { why = "the runtime's certs.d changed" }
        if lastCA != nil, watch.ca != lastCA { why = watch.caChanged }
        if lastOwner != nil, watch.owner != nil, watch.owner != lastOwner { why = "systemd-resolved restarted" }
        lastOwner = watch.owner ?? lastOwner
        guard let why else { return [] }
        self.why = why
        lastCA = watch.ca
        return [.reconcile(why: why)]
    }

    private mutating func reconciled(_ outcome: Result<Report, any Error>, now: ReconcileInstant) -> [Action] {
        var actions: [Action]
        let condition: NodeCondition
        switch outcome {
        case .success(let report):
            let failed = report.checks.filter { $0.outcome == .fail }.map(\.name)
            actions = [
                .record(report, error: nil, at: now.wall),
                .log(
                    ReconcileLogLine(
                        .info, "reconciled",
                        [
                            "reason": why, "ready": "\(report.ready)", "changes": "\(report.changes.count)",
                            "failed": failed.joined(separator: ","),
                        ])),
            ]
            actions += report.changes.map { .log(ReconcileLogLine(.info, "changed: \($0)")) }
            actions.append(
                .notify(
                    report.ready
                        ? "READY=1\nSTATUS=ready to pull from \(report.registry)"
                        : "READY=1\nSTATUS=not ready: \(failed.joined(separator: ", "))"))
            // Reasons, notes and changes are masked where they are made (CheckResult, Report);
            // this is the last guard before the condition, the Events and the log.
            let message = Redaction.text(
                report.ready ? "ready to pull from \(report.registry)" : Readiness.blockers(report.checks).joined(separator: "; "))
            condition = NodeCondition(
                ready: report.ready, reason: report.ready ? "RegistryPullable" : "RegistryNotPullable", message: message)
            current = ReconcileFacts(report, message: message)
        case .failure(let error):
            let said = Redaction.text("\(error)")
            actions = [
                .record(nil, error: said, at: now.wall),
                .log(ReconcileLogLine(.error, "reconcile failed", ["reason": why, "error": said])),
                .notify("READY=1\nSTATUS=reconcile failed: \(said)"),
            ]
            condition = NodeCondition(ready: false, reason: "AgentError", message: said)
            current = ReconcileFacts(failed: said)
        }
        ready = condition.ready
        // Last: an API server that is slow to answer (10 s per request at most) delays neither
        // the log nor systemd's status.
        guard settings.publishes else { return actions + [.settle] }
        return actions + [.publish(publish(condition, now: now))]
    }

    /// The condition when it changed or its heartbeat is due (on the monotonic clock), with its
    /// transition time: the node's own at the first report, now when the status flips.
    private mutating func publish(_ condition: NodeCondition, now: ReconcileInstant) -> ConditionPublish {
        if let sent, sent.ready != condition.ready { transition = now.wall.iso8601 }
        let heartbeatDue = sentAt.map { now.monotonic < $0 || Double(now.monotonic - $0) / 1e9 >= settings.heartbeat } ?? true
        let due = sent != condition || heartbeatDue
        sending = due ? (condition, now.monotonic) : nil
        return ConditionPublish(
            condition: due ? condition : nil, transition: sent == nil ? nil : transition, ready: condition.ready, at: now.wall)
    }

    private mutating func published(_ published: ConditionPublished, now: ReconcileInstant) -> [Action] {
        if let sending, let sentTransition = published.transition {
            sent = sending.condition
            sentAt = sending.at
            transition = sentTransition
        }
        sending = nil
        guard let current else { return [.settle] }
        let events = NodeEvent.between(facts, current)
        facts = current.keepingKnown(from: facts)
        self.current = nil
        return [.writeEvents(events, send: published.reachedAPI != false, at: now.wall), .settle]
    }
}
