import FoundationEssentials
import Glibc
import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

/// The whole job on one node: plan, apply, prove.
struct Bootstrap {
    let config: NodeConfig
    let runner: CommandRunner
    let refreshMode: TrustRefreshMode
    var restartRuntime = false
    var dnsMode: DNSMode = .auto
    var acceptGlobalDNS = false

    /// The runtimes that load the OS trust store once, at start.
    static let runtimeUnits = ["containerd.service", "crio.service", "docker.service"]

    /// `node-agent-cri`, the CRI client runtime-pull runs: beside this executable, as the image
    /// and scripts/build-release install them.
    static let criHelper: String = {
        let exe = readSymlink("/proc/self/exe") ?? CommandLine.arguments[0]
        let folder = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (folder.isEmpty ? "." : folder) + "/node-agent-cri"
    }()

    func run() throws -> Report {
        var watch = Stopwatch()
        let files = HostFiles(root: config.hostRoot, ledger: HostFiles.defaultLedger)
        let trust = TrustInstaller(files: files, runner: runner, refreshMode: refreshMode)
        let trustPlan = try trust.plan(registry: config.registry, certificates: config.certificates)

        var notes = trustPlan.notes
        var changes = trustPlan.summary
        // The bus is optional: hosts mode and IP registries need none.
        let bus = try? SystemBus(address: config.dbusAddress)
        var dns: (DNSSetup, DNSSetup.Plan)?
        if case .name = config.registry.host {
            let setup = DNSSetup(config: config, files: files, runner: runner, bus: bus, requested: dnsMode, acceptGlobalDNS: acceptGlobalDNS)
            let plan = try setup.plan()
            dns = (setup, plan)
            notes.append("DNS mode \(plan.mode.rawValue): \(plan.reason)")
            notes += plan.notes
            changes += plan.summary
        } else {
            notes.append("the registry is an IP address: no DNS route needed")
        }

        watch.lap("plan")
        if config.dryRun {
            return Report(ready: false, dryRun: true, registry: config.registry.description, changes: changes, notes: notes, checks: [],
                          timings: watch.phases, certificates: config.certificates.map(Report.CertificateFacts.init))
        }

        try trust.apply(trustPlan)
        // Where the trust now lives, read once for the restart check and the probes.
        let locations = try RegistryTrustLocations.discover(files: files, registry: config.registry)
        if restartRuntime {
            changes += try restartStaleRuntimes(files: files, trust: locations, bus: bus)
        }
        watch.lap("trust")
        if let (setup, plan) = dns { try setup.apply(plan) }
        watch.lap("dns")

        let checks = probe(files: files, trust: locations, bus: bus)
        watch.lap("probes")
        return Report(ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
                      changes: changes, notes: notes, checks: checks, timings: watch.phases,
                      certificates: config.certificates.map(Report.CertificateFacts.init))
    }

    /// Restarts each active runtime unit that entered the active state before the newest of the
    /// agent's OS-store CA files was written. Once restarted it is newer, so it is not restarted again.
    func restartStaleRuntimes(files: HostFiles, trust: RegistryTrustLocations, bus: SystemBus?) throws -> [String] {
        let written = trust.osStoreFiles.compactMap { try? modificationTime(files.root.resolve($0)).timeIntervalSince1970 }.max()
        guard let written else { return [] }
        let systemd = Systemd1(bus: try bus ?? SystemBus(address: config.dbusAddress))
        var done: [String] = []
        for name in Self.runtimeUnits {
            guard let unit = try systemd.unit(name), unit.activeState == "active",
                  Double(unit.activeEnterTimestamp) / 1e6 < written else { continue }
            let after = try systemd.restart(name)
            done.append("restart \(name) (pid \(unit.mainPID) -> \(after.mainPID)): it started before the CA reached the OS store")
        }
        return done
    }

    /// The probes alone, changing nothing (`node-agent probe`).
    func probeOnly() throws -> Report {
        let files = HostFiles(root: config.hostRoot)
        let bus = try? SystemBus(address: config.dbusAddress)
        let checks = probe(files: files, trust: try RegistryTrustLocations.discover(files: files, registry: config.registry), bus: bus)
        return Report(ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
                      changes: [], notes: [], checks: checks)
    }

    func probe(files: HostFiles, trust: RegistryTrustLocations, bus: SystemBus?) -> [CheckResult] {
        var settings = ProbeSettings(registry: config.registry, clusterDNS: config.clusterDNS, trust: trust,
                                     kubeletResolvConf: config.kubeletResolvConf, credentials: config.credentials,
                                     timeoutMilliseconds: config.timeoutMilliseconds, deadlineSeconds: config.deadlineSeconds,
                                     expiryWarningDays: config.expiryWarningDays)
        settings.aliases = config.aliases
        settings.pullImage = config.pullImage
        let resolve1 = bus.map { Resolve1(bus: $0) }
        let systemd = bus.map { Systemd1(bus: $0) }
        let suite = ProbeSuite(files: files, resolvedLookup: resolve1.map { r in { try r.resolveHostname($0) } },
                               runtimes: systemd.map { sd in {
                                   Self.runtimeUnits.compactMap { name in
                                       guard let u = try? sd.unit(name), u.activeState == "active" else { return nil }
                                       return HazardProbes.RuntimeProcess(name: name, pid: Int(u.mainPID),
                                                                          started: Date(timeIntervalSince1970: Double(u.activeEnterTimestamp) / 1e6))
                                   }
                               } },
                               runtimePull: config.runtimeSocket.map {
                                   RuntimePullProbe.pullThroughHelper(Self.criHelper, socket: $0, credentials: config.credentials)
                               })
        return suite.run(settings)
    }
}
