import AgentCore
import CSystemd
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import Logging
import SystemBus
import Vocabulary

/// Keeps the node set up and proven: reconciles at start, then when the CA changes (a Secret
/// volume swaps its `..data` link; a selected ClusterTrustBundle changes, appears or goes), when
/// systemd-resolved restarts (a new owner of its bus name), and every interval (drift of the
/// agent's files and link, and fresh probes: light ones between full network proofs, every
/// --proof-interval), with jitter, and sooner with backoff while the node is not ready. The decisions are AgentCore's `Reconciler`'s; this is their I/O.
struct ReconcileService {
    let options: RunOptions
    /// What the last reconcile found, for the health endpoint.
    let cache: StatusCache
    let logger: Logger
    var clock: any ReconcileClock = SystemReconcileClock()
    /// resolved's bus owner; one connection serves every tick.
    let resolved: any BusOwnerWatch
    /// The node's condition, taint and Events (nil: no node or API known).
    let api: (any NodeStatusAPI)?

    init(options: RunOptions, cache: StatusCache, logger: Logger) {
        self.options = options
        self.cache = cache
        self.logger = logger
        let node = options.node
        resolved = ResolvedOwnerWatch {
            node.dbusAddress ?? (try? HostRoot(node.hostRoot)).map { SystemBus.address(hostRoot: $0.directory) } ?? ""
        }
        api = options.reporter.map(KubernetesNodeStatus.init)
    }

    /// The loop, on the calling thread until `stop` takes SIGTERM or SIGINT. Signals are taken
    /// only while it waits, so a reconcile under way always finishes: no host change is cut in
    /// half by the agent.
    func run(until stop: StopSignals) {
        let ca = CAWatch(options.ca, logger: logger)
        var reconciler = Reconciler<CAWatch.Reading>(
            .init(
                interval: options.interval, watchInterval: options.watchInterval, heartbeat: options.conditionHeartbeat,
                publishes: api != nil, proofInterval: options.proofInterval))
        /// The runtime's paths the last reconcile's report named (Report.watchedPaths).
        var watched: [String] = []
        options.kubeDNS?.start()
        var kubeDNSSaid: String?
        /// The cluster DNS address the last reconcile routed to, for the kube-dns watch's word.
        var lastClusterDNS: IPAddress?
        repeat {
            let reading = ca.read(now: clock.now().monotonic)
            // The cluster's word on kube-dns, said in the log when it changes.
            let word = options.kubeDNS?.reading(for: lastClusterDNS)
            if let word, word.said != kubeDNSSaid {
                logger.info("\(word.said)", metadata: ["taken": "\(word.ready.map { $0 > 0 } ?? false)"])
                kubeDNSSaid = word.said
            }
            let watch = Reconciler.Watch(
                ca: reading, caChanged: ca.changed, owner: resolved.owner(), folders: Self.fingerprint(watched), kubeDNSReady: word?.ready)
            var pending = reconciler.next(.tick(watch), now: clock.now())
            while !pending.isEmpty {
                let action = pending.removeFirst()
                pending += perform(action, ca: ca, watched: &watched, clusterDNS: &lastClusterDNS, reconciler: &reconciler)
            }
        } while stop.wait(seconds: options.watchInterval) == nil
        logger.info("stopping: graceful shutdown")
        notify("STOPPING=1")
    }

    /// Does one action; returns what the reconciler asks next.
    func perform(
        _ action: Reconciler<CAWatch.Reading>.Action, ca: CAWatch, watched: inout [String], clusterDNS: inout IPAddress?,
        reconciler: inout Reconciler<CAWatch.Reading>
    ) -> [Reconciler<CAWatch.Reading>.Action] {
        switch action {
        case .reconcile(_, let proof):
            let outcome = Result {
                let config = try NodeConfig(options.node.settings, ca: try ca.input(), dryRun: false)
                var bootstrap = try options.change.bootstrap(config)
                clusterDNS = config.clusterDNS
                if case .light(let address) = proof {
                    bootstrap.lightAt = address
                    // kube-dns is not asked while the cluster says it has ready endpoints.
                    if let word = options.kubeDNS?.reading(for: config.clusterDNS), let ready = word.ready, ready > 0 {
                        bootstrap.kubeDNSWord = (ready, word.said)
                    }
                }
                return try bootstrap.run()
            }
            if case .success(let report) = outcome { watched = report.watchedPaths }
            return reconciler.next(.reconciled(outcome), now: clock.now())
        case .record(let report, let error, let at):
            cache.update(report: report, error: error, now: at)
            return []
        case .log(let line):
            log(line)
            return []
        case .notify(let state):
            notify(state)
            return []
        case .publish(let publish):
            guard let api else { return [] }
            let published = api.publish(publish)
            published.log.forEach(log)
            return reconciler.next(.published(published), now: clock.now())
        case .writeEvents(let events, let send, let at):
            api?.write(events, send: send, at: at).forEach(log)
            return []
        case .settle:
            return reconciler.next(.settled(folders: Self.fingerprint(watched), jitter: Double.random(in: 0.9...1.1)), now: clock.now())
        }
    }

    func log(_ line: ReconcileLogLine) {
        let metadata = line.metadata.isEmpty ? nil : line.metadata.mapValues { Logger.MetadataValue.string($0) }
        switch line.level {
        case .info: logger.info("\(line.message)", metadata: metadata)
        case .warning: logger.warning("\(line.message)", metadata: metadata)
        case .error: logger.error("\(line.message)", metadata: metadata)
        }
    }

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

    /// Tells systemd (when it started the agent with NOTIFY_SOCKET) how things stand.
    func notify(_ state: String) {
        _ = sd_notify(0, state)
    }
}

/// The node's API through `NodeReporter`: the condition and the startup taint, then the Events,
/// each told in the log as it went.
final class KubernetesNodeStatus: NodeStatusAPI {
    let reporter: NodeReporter

    init(_ reporter: NodeReporter) { self.reporter = reporter }

    func publish(_ publish: ConditionPublish) -> ConditionPublished {
        reporter.beginReport()
        var log: [ReconcileLogLine] = []
        var transition: String?
        do {
            if let c = publish.condition {
                let sent = try reporter.patchCondition(
                    ready: c.ready, reason: c.reason, message: c.message, transition: publish.transition, now: publish.at)
                transition = sent.transition
                log.append(ReconcileLogLine(.info, "kubernetes: \(Redaction.text(sent.done))"))
            }
            if publish.ready {
                log += try reporter.removeStartupTaint().map { ReconcileLogLine(.info, "kubernetes: \(Redaction.text($0))") }
            }
        } catch {
            log.append(ReconcileLogLine(.error, "kubernetes: \(Redaction.text("\(error)"))"))
        }
        return ConditionPublished(transition: transition, reachedAPI: reporter.reportReachedAPI, log: log)
    }

    func write(_ events: [NodeEvent], send: Bool, at: Date) -> [ReconcileLogLine] {
        reporter.events.record(events, send: send, now: at).map { outcome in
            ReconcileLogLine(outcome.written ? .info : .warning, Redaction.text("kubernetes: \(outcome)"))
        }
    }
}
