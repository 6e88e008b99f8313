import FoundationEssentials
import Probes
import Vocabulary

/// The decisions of `run`'s loop, apart from its I/O: when to reconcile (at the start, every
/// interval, sooner with backoff while the node is not ready, at once when the CA, the
/// runtime's certs.d or resolved's bus owner changes) and how much to prove (`Proof`), what to
/// log and tell systemd, when to send the node condition (a change, or its heartbeat) and which
/// Events to write.
///
/// The network is proven in full (every DNS question, each TLS view, the registry's API, the
/// runtime's pull) at the start, on each change above, while the node is not ready, when the
/// last full proof is `proofInterval` old (jittered as the interval is), and at once when a
/// light reconcile finds something moved. Between full proofs, an interval's reconcile is light:
/// the node's files, link and resolved's configuration (the plan, reapplied), the runtimes'
/// processes, the node's own checks, kube-dns asked one question and a TCP connect to the
/// registry at the proven address; the other checks are the last full proof's, and the report
/// says how old (`Report.networkProof`). While the registry is unreachable (the last full proof's
/// TCP connect failed), the backoff's retries are light too, and the full proof follows at once
/// when the registry accepts the connection (Reconciler+Light).
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
        /// Seconds between full network proofs while nothing changes (jittered as the interval
        /// is); at most the interval: every reconcile proves the network in full.
        public var proofInterval: Double

        public init(interval: Double, watchInterval: Double, heartbeat: Double, publishes: Bool, proofInterval: Double = 0) {
            self.interval = interval
            self.watchInterval = watchInterval
            self.heartbeat = heartbeat
            self.publishes = publishes
            self.proofInterval = proofInterval
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
        /// The ready endpoints of the kube-dns Service's EndpointSlices, while the agent's watch
        /// of them is live (nil: not known now).
        public var kubeDNSReady: Int?

        public init(ca: CA, caChanged: String, owner: String?, folders: [[Int64]?], kubeDNSReady: Int? = nil) {
            self.ca = ca
            self.caChanged = caChanged
            self.owner = owner
            self.folders = folders
            self.kubeDNSReady = kubeDNSReady
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

    /// How much a reconcile proves: everything, or (`light`) the node's own state, one DNS
    /// question and a TCP connect to the registry at an address (Reconciler+Light).
    public enum Proof: Equatable, Sendable {
        case full
        case light(IPAddress)
    }

    public enum Action: Equatable, Sendable {
        case reconcile(why: String, proof: Proof)
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
    private var lastKubeDNS: Int?
    /// The reconcile under way: why, and whether it left the node ready.
    private var why = ""
    private var proof = Proof.full
    private var ready = false
    /// The last full proof's report and when it ended; when the next is due (monotonic).
    public private(set) var proven: (report: Report, at: ReconcileInstant)?
    public private(set) var proofDue: UInt64?
    private var provenNow = false
    /// What a light reconcile changed on the node before it asked for a full proof: the full
    /// proof's report carries it (its log lines, /status, the Events), since by then the node
    /// needs no change.
    private var lightChanges: [String] = []
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
            if provenNow {
                // At most a day past the longest --proof-interval, jittered: the sum cannot overflow.
                proofDue = now.monotonic &+ UInt64(min(max(settings.proofInterval * jitter, 0), 2 * 86_400) * 1e9)
                provenNow = false
            }
            return []
        }
    }

    private mutating func tick(_ watch: Watch, now: ReconcileInstant) -> [Action] {
        var why: String?
        var proof = Proof.full
        if schedule.due(now: now.monotonic) {
            why = lastCA == nil ? "start" : "interval"
            if let light = Self.lightProof(settings, ready: ready, proven: proven?.report, due: proofDue, now: now) {
                proof = light
            } else if why == "interval", ready, proven != nil, settings.proofInterval > settings.interval {
                why = "interval, and the network proof is due"
            }
        }
        // Each change below is proven in full.
        if lastFolders != nil, watch.folders != lastFolders { (why, proof) = ("the runtime's certs.d changed", .full) }
        if lastCA != nil, watch.ca != lastCA { (why, proof) = (watch.caChanged, .full) }
        if lastOwner != nil, watch.owner != nil, watch.owner != lastOwner { (why, proof) = ("systemd-resolved restarted", .full) }
        lastOwner = watch.owner ?? lastOwner
        // The cluster's word on kube-dns: no ready endpoint any more is proven at once (not at
        // the next interval), and ready endpoints again while the node is not ready.
        if why == nil, lastCA != nil, let now = watch.kubeDNSReady, now != lastKubeDNS {
            if now == 0 {
                (why, proof) = ("kube-dns has no ready endpoints (EndpointSlice watch)", .full)
            } else if lastKubeDNS == 0, !ready {
                (why, proof) = ("kube-dns has \(now) ready endpoints again (EndpointSlice watch)", .full)
            }
        }
        lastKubeDNS = watch.kubeDNSReady
        guard let why else { return [] }
        self.why = why
        self.proof = proof
        lastCA = watch.ca
        return [.reconcile(why: why, proof: proof)]
    }

    private mutating func reconciled(_ outcome: Result<Report, any Error>, now: ReconcileInstant) -> [Action] {
        var actions: [Action]
        let condition: NodeCondition
        switch outcome {
        case .success(var report):
            if case .light = proof, let proven {
                let merged = Self.merge(report.checks, into: proven.report.checks)
                if let moved = Self.moved(report, merged: merged, since: proven.report) {
                    why = moved
                    proof = .full
                    lightChanges = report.changes
                    return [
                        .log(ReconcileLogLine(.info, "light reconcile: something moved; proving the network now", ["moved": moved])),
                        .reconcile(why: moved, proof: .full),
                    ]
                }
                report.checks = merged
                report.ready = Readiness.isReady(merged)
                report.networkProof = .init(
                    provenAt: proven.at.wall, ageSeconds: Double(now.monotonic &- proven.at.monotonic) / 1e9, thisReconcile: "light")
            } else {
                report.changes = lightChanges + report.changes
                lightChanges = []
                proven = (report, now)
                provenNow = true
                report.networkProof = .init(provenAt: now.wall, ageSeconds: 0, thisReconcile: "full")
            }
            let failed = report.checks.filter { $0.outcome == .fail }.map(\.name)
            actions = [
                .record(report, error: nil, at: now.wall),
                .log(
                    ReconcileLogLine(
                        .info, "reconciled",
                        [
                            "reason": why, "proof": report.networkProof?.thisReconcile ?? "full", "ready": "\(report.ready)",
                            "changes": "\(report.changes.count)",
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
            // this is the last guard before the condition, the Events and the log: one line
            // (a remedy's lines to add to a file read as `\n` there).
            let message = Redaction.oneLine(
                Redaction.text(
                    report.ready ? "ready to pull from \(report.registry)" : Readiness.blockers(report.checks).joined(separator: "; ")))
            condition = NodeCondition(
                ready: report.ready, reason: report.ready ? "RegistryPullable" : "RegistryNotPullable", message: message)
            current = ReconcileFacts(report, message: message)
        case .failure(let error):
            // One line: systemd's STATUS= is one assignment a line.
            let said = Redaction.line("\(error)")
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
