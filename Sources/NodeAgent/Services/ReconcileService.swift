import AgentCore
import CSystemd
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import Logging
import Probes
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

/// Keeps the node set up and proven: reconciles at start, then when the CA changes (a Secret
/// volume swaps its `..data` link; a selected ClusterTrustBundle changes, appears or goes), when
/// systemd-resolved restarts (a new owner of its bus name), and every interval (drift of the
/// agent's files and link, and fresh probes), with jitter, and sooner with backoff while the
/// node is not ready.
struct ReconcileService {
    let options: RunOptions
    /// What the last reconcile found, for the health endpoint.
    let cache: StatusCache
    let logger: Logger
    /// The bus connection the watch reuses between ticks.
    let watchBus = WatchBus()
    /// The clock of the loop's schedule, backoff and heartbeat: nanoseconds of CLOCK_MONOTONIC,
    /// which a step of the wall clock (NTP at boot, an operator's `date -s`) does not move. The
    /// wall clock is only for the times people read (the condition's, the Events').
    var clock: @Sendable () -> UInt64 = { monotonicNanoseconds() }

    final class WatchBus {
        var bus: SystemBus?
        /// What the last reconcile's runtime reads for the registry (Report.watchedPaths).
        var runtimePaths: [String] = []
    }

    /// The loop, on the calling thread until `stop` takes SIGTERM or SIGINT. Signals are taken
    /// only while it waits, so a reconcile under way always finishes: no host change is cut in
    /// half by the agent.
    func run(until stop: StopSignals) {
        let ca = CAWatch(options.ca, logger: logger)
        var lastCA: CAWatch.Reading?
        var lastOwner: String?
        var lastFolders: [[Int64]?]?
        var schedule = Schedule(interval: options.interval, watchInterval: options.watchInterval)
        repeat {
            let reading = ca.read(now: clock())
            let owner = resolvedOwner()
            let folders = Self.fingerprint(watchedPaths)
            var why: String?
            if schedule.due(now: clock()) { why = lastCA == nil ? "start" : "interval" }
            if lastFolders != nil, folders != lastFolders { why = "the runtime's certs.d changed" }
            if lastCA != nil, reading != lastCA { why = ca.changed }
            if lastOwner != nil, owner != nil, owner != lastOwner { why = "systemd-resolved restarted" }
            if let why {
                let ready = reconcile(why, ca: ca)
                lastFolders = Self.fingerprint(watchedPaths)
                lastCA = reading
                schedule.reconciled(ready: ready, now: clock(), jitter: Double.random(in: 0.9...1.1))
            }
            lastOwner = owner ?? lastOwner
        } while stop.wait(seconds: options.watchInterval) == nil
        logger.info("stopping: graceful shutdown")
        notify("STOPPING=1")
    }

    private var watchedPaths: [String] { watchBus.runtimePaths }

    /// Each path's identity, size and change time (nil: absent), with lstat: a few calls per
    /// watch tick, so that a writer that removes or replaces the runtime's folder (Spegel
    /// clears certs.d when it starts) is answered within a tick, not at the next interval.
    static func fingerprint(_ paths: [String]) -> [[Int64]?] {
        paths.map { path in
            var st = stat()
            guard lstat(path, &st) == 0 else { return nil }
            return [Int64(st.st_ino), Int64(st.st_size), Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec), Int64(st.st_ctim.tv_nsec)]
        }
    }

    /// One bootstrap run; returns whether the node is ready.
    func reconcile(_ why: String, ca: CAWatch) -> Bool {
        let outcome = Result {
            let config = try NodeConfig(options.node.settings, ca: try ca.input(), dryRun: false)
            return try options.change.bootstrap(config).run()
        }
        switch outcome {
        case .success(let report):
            cache.update(report: report, error: nil)
            watchBus.runtimePaths = report.watchedPaths
            let failed = report.checks.filter { $0.outcome == .fail }.map(\.name)
            logger.info(
                "reconciled",
                metadata: [
                    "reason": "\(why)", "ready": "\(report.ready)", "changes": "\(report.changes.count)",
                    "failed": "\(failed.joined(separator: ","))",
                ])
            for change in report.changes { logger.info("changed: \(change)") }
            notify(
                report.ready
                    ? "READY=1\nSTATUS=ready to pull from \(report.registry)"
                    : "READY=1\nSTATUS=not ready: \(failed.joined(separator: ", "))")
            // Last: an API server that is slow to answer (10 s per request at most) delays
            // neither the log nor systemd's status.
            // Reasons, notes and changes are masked where they are made (CheckResult, Report);
            // this is the last guard before the condition, the Events and the log.
            let message = Redaction.text(
                report.ready ? "ready to pull from \(report.registry)" : Readiness.blockers(report.checks).joined(separator: "; "))
            publish(
                ready: report.ready, reason: report.ready ? "RegistryPullable" : "RegistryNotPullable", message: message,
                facts: ReconcileFacts(
                    ready: report.ready, message: message, certificates: report.certificates.map { ($0.sha256, $0.subject) },
                    notes: report.notes, changes: report.changes))
            return report.ready
        case .failure(let error):
            let said = Redaction.text("\(error)")
            cache.update(report: nil, error: said)
            logger.error("reconcile failed", metadata: ["reason": "\(why)", "error": "\(said)"])
            notify("READY=1\nSTATUS=reconcile failed: \(said)")
            publish(ready: false, reason: "AgentError", message: said, facts: ReconcileFacts(failed: said))
            return false
        }
    }

    /// The node condition (and startup taint), then the reconcile's Events (readiness flipped, CA
    /// rotated, runtime restarted, DNS mode changed), when the agent knows its node and the API.
    /// An Event that cannot be written is logged; it never fails the reconcile.
    func publish(ready: Bool, reason: String, message: String, facts: ReconcileFacts) {
        guard let reporter = options.reporter else { return }
        do {
            for line in try reporter.report(ready: ready, reason: reason, message: message, monotonic: clock()) {
                logger.info("kubernetes: \(Redaction.text(line))")
            }
        } catch {
            logger.error("kubernetes: \(Redaction.text("\(error)"))")
        }
        for outcome in reporter.recordEvents(facts) {
            let line = Redaction.text("kubernetes: \(outcome)")
            if outcome.written { logger.info("\(line)") } else { logger.warning("\(line)") }
        }
    }

    /// resolved's unique bus name (nil when it has none). One connection serves every tick; a
    /// failed call drops it and the next try connects again (the bus itself may have restarted).
    func resolvedOwner() -> String? {
        for attempt in 0..<2 {
            if watchBus.bus == nil {
                let address =
                    options.node.dbusAddress ?? (try? HostRoot(options.node.hostRoot)).map { SystemBus.address(hostRoot: $0.directory) }
                    ?? ""
                watchBus.bus = try? SystemBus(address: address)
            }
            guard let bus = watchBus.bus else { return nil }
            do {
                return try bus.nameOwner("org.freedesktop.resolve1")
            } catch {
                watchBus.bus = nil
                if attempt == 1 { return nil }
            }
        }
        return nil
    }

    /// When the next full reconcile is due, on the monotonic clock (nanoseconds): at once at the
    /// start, then `nextDelay` (jittered) after each reconcile ends. A value, so that a test
    /// drives it with a clock of its own.
    struct Schedule: Equatable {
        let interval: Double
        let watchInterval: Double
        /// Reconciles in a row that left the node not ready.
        private(set) var failures = 0
        /// nil: due now (nothing reconciled yet).
        private(set) var next: UInt64?

        init(interval: Double, watchInterval: Double) {
            self.interval = interval
            self.watchInterval = watchInterval
        }

        func due(now: UInt64) -> Bool { next.map { now >= $0 } ?? true }

        mutating func reconciled(ready: Bool, now: UInt64, jitter: Double) {
            failures = ready ? 0 : failures + 1
            let delay = ReconcileService.nextDelay(failures: failures, interval: interval, watchInterval: watchInterval) * jitter
            // At most a day (the longest --interval, jittered), so the sum cannot overflow.
            next = now &+ UInt64(min(max(delay, 0), 2 * 86_400) * 1e9)
        }
    }

    /// Seconds until the next full reconcile, before jitter: the interval while the node is ready;
    /// after `failures` reconciles in a row that left it not ready, twice the watch interval,
    /// doubled with each further one, never more than the interval.
    static func nextDelay(failures: Int, interval: Double, watchInterval: Double) -> Double {
        guard failures > 0 else { return interval }
        return min(watchInterval * pow(2, Double(min(failures, 1000))), interval)
    }

    /// Tells systemd (when it started the agent with NOTIFY_SOCKET) how things stand.
    func notify(_ state: String) {
        _ = sd_notify(0, state)
    }
}
