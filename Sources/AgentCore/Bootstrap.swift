import Containerd
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import Transport
import TrustStore
import Vocabulary

/// The whole job on one node: gather the facts, plan from them (purely), apply, prove.
public struct Bootstrap {
    public var config: NodeConfig
    public let runner: CommandRunner
    public let refreshMode: TrustRefreshMode
    public var restartRuntime = false
    public var dnsMode: DNSMode = .auto
    public var acceptGlobalDNS = false
    /// How long a run waits for another agent changing the node (`HostRunLock`) before it gives up.
    public var lockTimeout: Double = 120
    /// A light reconcile (`run` between network proofs): the registry's API at this address and
    /// the node's own checks, no DNS question, no runtime pull (ProbeSettings.lightAt). nil: all.
    public var lightAt: IPAddress?
    /// A light reconcile's word on kube-dns from the cluster (ProbeSettings.kubeDNSWord).
    public var kubeDNSWord: (ready: Int, said: String)?

    public init(config: NodeConfig, runner: CommandRunner, refreshMode: TrustRefreshMode) {
        self.config = config
        self.runner = runner
        self.refreshMode = refreshMode
    }

    /// The runtimes that load the OS trust store once, at start.
    static let runtimeUnits = ["containerd.service", "crio.service", "docker.service"]

    /// The units whose process is (containerd) or starts (k3s, RKE2) the node's containerd.
    static let containerdUnits = ["containerd.service", "k3s.service", "k3s-agent.service", "rke2-server.service", "rke2-agent.service"]

    /// The node's own word on which containerd is its runtime: where systemd runs one of
    /// `containerdUnits`, only a containerd that is that unit's main process or runs below it
    /// is the node's (a CI runner's, root in the node's network and serving the same socket path
    /// in a mount namespace of its own, is not); the others leave the running list and the
    /// processes the checks read, with a note. Unchanged where systemd says nothing (no bus, no
    /// such unit active: the runtime was started otherwise).
    static func confirmedByUnits(_ config: NodeConfig, bus: SystemBus?) -> NodeConfig {
        guard let bus, !config.runningContainerd.isEmpty else { return config }
        let systemd = Systemd1(bus: bus)
        var confirmed = config
        let roots = Set(
            containerdUnits.compactMap { name -> Int? in
                let unit: UnitState?
                do {
                    unit = try systemd.unit(name)
                } catch {
                    // No systemd on the bus says nothing; a unit whose state systemd cannot give
                    // is said, since its containerd cannot be told from another one.
                    if (error as? AgentError)?.cause != .busError("org.freedesktop.DBus.Error.ServiceUnknown") {
                        confirmed.runtimeNotes.append(
                            "\(name)'s state was not read (\(error)): the running containerd processes are not told apart by it")
                    }
                    return nil
                }
                guard let u = unit, u.activeState == "active", u.mainPID > 0 else { return nil }
                return Int(u.mainPID)
            })
        guard !roots.isEmpty else { return confirmed }
        let processes = HostProcesses(files: HostFiles(root: config.hostRoot))
        let units = roots.sorted().map(String.init).joined(separator: ", ")
        for c in config.runningContainerd where !processes.descends(c.pid, from: roots) {
            confirmed.ignore(
                .init(
                    pid: c.pid,
                    why: "containerd (pid \(c.pid)) is not the node's containerd.service, k3s or RKE2 unit's (main pid \(units)): ignored"))
        }
        return confirmed
    }

    /// `node-agent-cri`, the CRI client runtime-pull runs: beside this executable, as the image
    /// and scripts/build-release install them.
    public static let criHelper: String = {
        let exe = readSymlink("/proc/self/exe") ?? CommandLine.arguments[0]
        let folder = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (folder.isEmpty ? "." : folder) + "/node-agent-cri"
    }()

    /// The DNS route wanted: none for a registry named by its IP address.
    var desiredDNS: DNSDesired? {
        guard case .name(let host) = config.registry.host else { return nil }
        return DNSDesired(
            mode: dnsMode, acceptGlobalDNS: acceptGlobalDNS, clusterDNS: config.clusterDNS, domain: config.domain,
            registryHost: host, aliases: config.aliases)
    }

    public func run() throws -> Report {
        // The bus is optional: hosts mode and IP registries need none.
        let bus = try? SystemBus(address: config.dbusAddress)
        let started = Date()
        let owner = bus.flatMap(ResolvedPresence.owner)
        let first = Result { try attempt(bus) }
        // resolved went away under the run (a package upgrade, `systemctl restart`, a crash
        // systemd restarts): a call in flight got no reply, its name was off the bus, or the
        // runtime's lookup found its stub closed. That is a moment, not the node's state: once
        // resolved is back, the run is made again, once, and that outcome stands. A run that
        // failed or was not ready otherwise is the run's; a ready one is never made again.
        guard let why = Self.endedShort(first), let bus, let moved = ResolvedPresence.moved(since: started, owner: owner, bus: bus)
        else { return try first.get() }
        var report = try attempt(bus)
        report.notes.append("systemd-resolved \(moved) during this run, which \(why); it was run again once resolved was back")
        // What the first run changed is the node's change all the same (the second finds it done).
        if case .success(let firstReport) = first {
            report.changes = firstReport.changes + report.changes
            report.runtimeRestarts = firstReport.runtimeRestarts + report.runtimeRestarts
        }
        return report
    }

    /// What ended a run short, said in the note of the run made again: its error, or the checks
    /// that failed; nil for a ready report, a dry run, or a run that restarted or reloaded
    /// resolved itself (its drop-in or delegate file: that move is its own).
    static func endedShort(_ outcome: Result<Report, any Error>) -> String? {
        switch outcome {
        case .failure(let error): return "ended: \(Redaction.line("\(error)"))"
        case .success(let report) where report.ready || report.dryRun || report.movedResolved: return nil
        case .success(let report):
            return "was not ready (failed: \(report.checks.filter { $0.outcome == .fail }.map(\.name).joined(separator: ", ")))"
        }
    }

    func attempt(_ bus: SystemBus?) throws -> Report {
        var confirmed = self
        confirmed.config = Self.confirmedByUnits(config, bus: bus)
        // The CA files the run reads two or three times, read once while unchanged (HostReadMemo).
        return try HostReadMemo.during { try confirmed.run(confirmed.effects(bus: bus)) }
    }

    /// The job's steps in their order, each effect taken from `effects` (`BootstrapEffects`):
    /// the facts, the plans (pure), the trust files, the OS store and the runtime restarts
    /// before or after DNS, the early pull, the checks. BootstrapOrderTests records the order.
    func run(_ effects: BootstrapEffects) throws -> Report {
        var watch = Stopwatch()
        // The CRI client for the runtime's pull, started now: it loads while the agent reads and
        // writes, and waits for its input, which comes when the pull is due.
        if !config.dryRun, lightAt == nil { effects.preparePull() }
        // One agent at a time changes the node: held until the proof is done, so no other run's
        // writes come between this run's changes and its verdict. A dry run changes nothing.
        let lock = config.dryRun ? nil : try effects.lock()
        defer { withExtendedLifetime(lock) {} }

        // Facts, read once; a dry run asks nothing on the network. Then the plans, from the facts
        // alone. The trust facts and the DNS facts are read side by side: neither reads what the
        // other reads, and nothing changes before both plans are made.
        let desired = desiredDNS
        let (planTrust, dnsFacts) = try BootstrapEffects.sideBySide(
            effects.readTrust, beside: desired.map { desired in { try effects.readDNS(desired) } })
        let trustPlan = try planTrust()
        var dnsPlan: DNSPlan?
        if let desired, let dnsFacts { dnsPlan = try DNSPlan.make(dnsFacts, desired) }
        var notes = config.runtimeNotes + trustPlan.notes
        // A CA taken within the notBefore tolerance: said, since the runtime refuses it until then.
        notes += config.certificates.compactMap { CertificateParser.earlyWarning($0, what: "CA", now: Date()) }
        notes +=
            dnsPlan.map { ["DNS mode \($0.mode.rawValue): \($0.reason)"] + $0.notes }
            ?? ["the registry is an IP address: no DNS route needed"]
        let changes = trustPlan.summary + (dnsPlan?.summary ?? [])
        watch.lap("plan")
        if config.dryRun {
            return Report(
                ready: false, dryRun: true, registry: config.registry.description, changes: changes, notes: notes, checks: [],
                timings: watch.phases, certificates: config.certificates.map(Report.CertificateFacts.init))
        }

        // Apply: the files (the CA, containerd's folder), and DNS.
        // Where the host's own tool rebuilds the OS store (hooks of its own, which can fail), the
        // store comes before DNS, as it always did: should the tool fail, nothing routes the
        // registry's name yet, and the node is as unable to pull as the report says.
        let storeFirst = trustPlan.refresh != nil && !trustPlan.native
        var restarts: [Report.RuntimeRestart] = []
        // Where the trust now lives, read once for the restart check and the probes. It waits for
        // the runtime's status (asked at the start): otherwise read after DNS, which it overlaps.
        var first: RegistryTrustLocations?
        if storeFirst {
            try effects.applyTrustFiles(trustPlan)
            first = try effects.trustLocations()
            try effects.refreshStore(trustPlan)
            if restartRuntime, let first { restarts = try effects.restartStaleRuntimes(first) }
            watch.lap("trust")
            if let dnsPlan { try effects.applyDNS(dnsPlan) }
            watch.lap("dns")
        } else {
            // Otherwise the trust files and the DNS route are made side by side: the pull that
            // proves them needs both, and neither needs the other (a failure of either still
            // fails the run, as before; the OS store is rebuilt after both, as before).
            try BootstrapEffects.sideBySide(
                { try effects.applyTrustFiles(trustPlan) }, beside: dnsPlan.map { plan in { try effects.applyDNS(plan) } },
                hereDone: { watch.lap("trust") }, bothDone: { watch.lap("dns") })
        }
        let locations = try first ?? effects.trustLocations()

        // The runtime's pull needs only what containerd reads on each pull (its hosts folder)
        // and the DNS route, both in place: started now, it overlaps the native rebuild of the OS
        // store. Not where containerd trusts the registry through the OS store alone: a
        // containerd that has not loaded the system roots yet (Go loads them at its first TLS
        // connection) must not load them before the rebuild; nor when runtimes are to be restarted.
        let early = !restartRuntime && !locations.runtimeCAFiles.isEmpty && lightAt == nil ? effects.startPull(locations) : nil
        if !storeFirst {
            do {
                try effects.refreshStore(trustPlan)
                if restartRuntime { restarts = try effects.restartStaleRuntimes(locations) }
            } catch {
                _ = early?.wait()
                throw error
            }
        }
        watch.lap("trust-store")

        // Prove. A restarted runtime is another process: the checks read /proc again.
        let checks = effects.probe(locations, early, restartRuntime)
        watch.lap("probes")
        var report = Report(
            ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
            changes: changes + restarts.map(\.change), notes: notes, checks: checks, timings: watch.phases,
            certificates: config.certificates.map(Report.CertificateFacts.init))
        report.dnsMode = dnsPlan.map { .init(mode: $0.mode.rawValue, reason: $0.reason, replacedAnotherMode: $0.replacesAnotherMode) }
        report.movedResolved = dnsPlan?.resolvedAction != nil
        report.runtimeRestarts = restarts
        report.watchedPaths = effects.watchedPaths(locations)
        report.runtimeProcesses = runtimeProcessesOfTheNode
        return report
    }

    /// The node's containerd (the one that serves its socket: another sandbox's or a CI runner's
    /// containerd on the same host is not the node's) and the other runtimes, as `run` compares
    /// them between reconciles: name, pid, start.
    var runtimeProcessesOfTheNode: [String] {
        let containerd = Set(config.runningContainerd.map(\.pid))
        return config.runtimeProcesses.filter { $0.name != "containerd" || containerd.contains($0.pid) }
            .map { "\($0.name) \($0.pid) \($0.started?.timeIntervalSince1970 ?? 0)" }
    }

    /// Restarts each active runtime unit that entered the active state before the newest of the
    /// agent's OS-store CA files was written. Once restarted it is newer, so it is not restarted again.
    func restartStaleRuntimes(files: HostFiles, trust: RegistryTrustLocations, bus: SystemBus?) throws -> [Report.RuntimeRestart] {
        let written = trust.osStoreFiles.compactMap { files.modificationTime($0)?.timeIntervalSince1970 }.max()
        guard let written else { return [] }
        let systemd = Systemd1(bus: try bus ?? SystemBus(address: config.dbusAddress))
        var done: [Report.RuntimeRestart] = []
        for name in Self.runtimeUnits {
            guard let unit = try systemd.unit(name), unit.activeState == "active",
                Double(unit.activeEnterTimestamp) / 1e6 < written
            else { continue }
            let after = try systemd.restart(name)
            done.append(
                .init(unit: name, pidBefore: unit.mainPID, pidAfter: after.mainPID, why: "it started before the CA reached the OS store"))
        }
        return done
    }

    /// The probes alone, changing nothing (`node-agent probe`).
    public func probeOnly() throws -> Report {
        let files = HostFiles(root: config.hostRoot)
        let bus = try? SystemBus(address: config.dbusAddress)
        let config = Self.confirmedByUnits(self.config, bus: bus)
        var suite = probeSuite(files: files, bus: bus)
        suite.runtimeProcesses = config.runtimeProcesses
        suite.runningContainerd = config.runningContainerd
        let trust = try RegistryTrustLocations.discover(
            files: files, registry: config.registry, running: config.runningContainerd, runtime: runtimeWord(config))
        let checks = suite.run(probeSettings(trust: trust))
        return Report(
            ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
            changes: [], notes: config.runtimeNotes, checks: checks)
    }

    /// The node's containerd asked for its own config over its CRI socket (nil: not asked, as
    /// with `--runtime-pull off`, or no answer).
    func runtimeWord(_ config: NodeConfig? = nil) -> RuntimeWord? {
        let config = config ?? self.config
        guard let socket = config.runtimeSocket else { return nil }
        return RuntimeStatusQuery.ask(helper: Self.criHelper, socket: socket, pid: config.runningContainerd.first?.pid)
    }

    func probeSettings(trust: RegistryTrustLocations) -> ProbeSettings {
        var settings = ProbeSettings(
            registry: config.registry, clusterDNS: config.clusterDNS, trust: trust,
            kubeletResolvConf: config.kubeletResolvConf, credentials: config.credentials,
            timeoutMilliseconds: config.timeoutMilliseconds, deadlineSeconds: config.deadlineSeconds,
            expiryWarningDays: config.expiryWarningDays)
        settings.aliases = config.aliases
        settings.pullImage = config.pullImage
        settings.lightAt = lightAt
        settings.kubeDNSWord = kubeDNSWord
        return settings
    }

    func probeSuite(files: HostFiles, bus: SystemBus?, helperPull: RuntimePullProbe.HelperPull? = nil) -> ProbeSuite {
        let resolve1 = bus.map { Resolve1(bus: $0) }
        let systemd = bus.map { Systemd1(bus: $0) }
        return ProbeSuite(
            files: files, resolvedLookup: resolve1.map { r in { try r.resolveHostname($0) } },
            runtimes: systemd.map { sd in
                {
                    Self.runtimeUnits.compactMap { name in
                        guard let u = try? sd.unit(name), u.activeState == "active" else { return nil }
                        return HazardProbes.RuntimeProcess(
                            name: name, pid: Int(u.mainPID),
                            started: Date(timeIntervalSince1970: Double(u.activeEnterTimestamp) / 1e6))
                    }
                }
            },
            runtimePull: helperPull.map { pull in { try pull.pull($0, $1) } }
                ?? config.runtimeSocket.map {
                    RuntimePullProbe.pullThroughHelper(Self.criHelper, socket: $0, credentials: config.credentials)
                })
    }
}
