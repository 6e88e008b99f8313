import Containerd
import FoundationEssentials
import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

/// What `Bootstrap` does to the node and asks of it, one value per step, so the order of the
/// steps (`Bootstrap.run(_:)`) is the only thing left in the job and can be tested with a
/// recorder. `Bootstrap.effects(bus:)` gives the real ones.
struct BootstrapEffects {
    /// Starts the CRI helper for the runtime's pull, which asks the runtime's status first
    /// (`RuntimeStatusQuery.expect`): it loads and asks while the agent reads and writes.
    var preparePull: () -> Void
    /// The node's run lock (`HostRunLock`), held until the report is made.
    var lock: () throws -> AnyObject?
    /// Reads the trust facts; what it gives plans from them (`TrustInstaller.plan`, pure).
    var readTrust: () throws -> () throws -> TrustPlan
    /// Reads the DNS facts, the mode chosen among them (`DNSFacts.gather`).
    var readDNS: (DNSDesired) throws -> DNSFacts
    /// Writes the trust plan's files (the CA, containerd's folder).
    var applyTrustFiles: (TrustPlan) throws -> Void
    /// Where the registry's trust lives now (`RegistryTrustLocations.discover`).
    var trustLocations: () throws -> RegistryTrustLocations
    /// Rebuilds the OS store, where the plan says so.
    var refreshStore: (TrustPlan) throws -> Void
    /// Restarts the runtimes that started before the CA reached the OS store.
    var restartStaleRuntimes: (RegistryTrustLocations) throws -> [Report.RuntimeRestart]
    /// Performs the DNS plan (`DNSSetup.apply`).
    var applyDNS: (DNSPlan) throws -> Void
    /// Starts the runtime's pull early, beside the rest of the run.
    var startPull: (RegistryTrustLocations) -> BackgroundWork<RuntimePullProbe.Outcome>?
    /// Runs the checks, with the early pull if one was started; `runtimesRestarted`: read /proc again.
    var probe: (RegistryTrustLocations, BackgroundWork<RuntimePullProbe.Outcome>?, _ runtimesRestarted: Bool) -> [CheckResult]
    /// The paths a change of which makes the run loop reconcile again, as paths on this machine.
    var watchedPaths: (RegistryTrustLocations) -> [String]
}

extension Bootstrap {
    /// The real effects on this node, over `bus` when it could be reached.
    func effects(bus: SystemBus?) -> BootstrapEffects {
        let config = self.config
        let files = HostFiles(root: config.hostRoot, ledger: HostFiles.defaultLedger)
        let helperPull = config.runtimeSocket.map {
            RuntimePullProbe.HelperPull(helper: Self.criHelper, socket: $0, credentials: config.credentials)
        }
        let installer = TrustInstaller(files: files, runner: runner, refreshMode: refreshMode)
        var suite = probeSuite(files: files, bus: bus, helperPull: helperPull)
        suite.runtimeProcesses = config.runtimeProcesses
        suite.runningContainerd = config.runningContainerd
        return BootstrapEffects(
            preparePull: {
                guard let socket = config.runtimeSocket, let helperPull else { return }
                // The runtime's own word on its config (`trustLocations` takes it), unless kept
                // from an earlier run: asked first by the pull's helper, started now (one process
                // for both; its status answer is read when the trust is located, its pull's go
                // given when the files are in place).
                let pid = config.runningContainerd.first?.pid
                let status = RuntimeStatusQuery.needsAsking(socket: socket, pid: pid) ? RuntimeStatusQuery.timeoutSeconds : nil
                helperPull.prepare(
                    reference: config.pullImage ?? RuntimePullProbe.probeReference(config.registry),
                    milliseconds: ProbeSuite.pullMilliseconds(
                        timeoutMilliseconds: config.timeoutMilliseconds, deadlineSeconds: config.deadlineSeconds,
                        realImage: config.pullImage != nil),
                    statusSeconds: status)
                if status != nil {
                    RuntimeStatusQuery.expect(helper: Self.criHelper, socket: socket, pid: pid) { helperPull.status() }
                }
            },
            lock: { [lockTimeout] in try HostRunLock.acquire(files: files, what: "bootstrap", timeout: lockTimeout) },
            readTrust: { [refreshMode] in
                // The running containerd was read with the settings.
                let facts = try TrustFacts.gather(
                    files: files, registry: config.registry, certificates: config.certificates, running: config.runningContainerd)
                return {
                    try TrustInstaller.plan(facts, registry: config.registry, certificates: config.certificates, refreshMode: refreshMode)
                }
            },
            readDNS: { [runner] desired in
                try DNSFacts.gather(
                    files: files, link: try AgentLink(runner: runner), bus: bus, desired: desired,
                    askClusterDNS: !config.dryRun, timeoutMilliseconds: config.timeoutMilliseconds)
            },
            applyTrustFiles: { try installer.applyFiles($0) },
            trustLocations: {
                try RegistryTrustLocations.discover(
                    files: files, registry: config.registry, running: config.runningContainerd, runtime: runtimeWord())
            },
            refreshStore: { try installer.refreshStore($0) },
            restartStaleRuntimes: { try restartStaleRuntimes(files: files, trust: $0, bus: bus) },
            applyDNS: { [runner] in try DNSSetup(files: files, runner: runner, bus: bus, busAddress: config.dbusAddress).apply($0) },
            startPull: { suite.startPull(probeSettings(trust: $0)) },
            probe: { locations, early, restarted in
                var suite = suite
                if restarted { (suite.runtimeProcesses, suite.runningContainerd) = (nil, nil) }
                return suite.run(probeSettings(trust: locations), pull: early)
            },
            watchedPaths: { locations in
                let hosts = locations.runtimeHosts
                let watched = hosts.candidates + [hosts.hostsTOML].compactMap { $0 } + locations.runtimeCAFiles
                return watched.compactMap { try? files.root.resolve($0) }
            })
    }
}

extension BootstrapEffects {
    /// `here` on this thread and `beside` on a thread of its own, at the same time; both have
    /// ended before either's error goes up (`here`'s first), so nothing of the run goes on
    /// behind its error. `hereDone` runs when `here` has ended, `bothDone` when both have.
    @discardableResult
    static func sideBySide<A, B: Sendable>(
        _ here: () throws -> A, beside: (() throws -> B)?, hereDone: () -> Void = {}, bothDone: () -> Void = {}
    ) throws -> (A, B?) {
        // Only this call runs `beside`, on the one thread it starts, and waits for it.
        nonisolated(unsafe) let other = beside
        let work = other == nil ? nil : BackgroundWork { Result { try other!() } }
        let mine = Result { try here() }
        hereDone()
        let theirs = work?.wait()
        bothDone()
        return (try mine.get(), try theirs?.get())
    }
}
