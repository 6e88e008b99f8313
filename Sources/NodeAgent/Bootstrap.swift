import Foundation
import HostSystem
import Probes
import ResolvedConfig
import TrustStore

/// The whole job on one node: plan, apply, prove.
struct Bootstrap {
    let config: NodeConfig
    let runner: CommandRunner
    let refreshMode: TrustRefreshMode

    func run() throws -> Report {
        var watch = Stopwatch()
        let files = HostFiles(root: config.hostRoot, ledger: HostFiles.defaultLedger)
        let trust = TrustInstaller(files: files, runner: runner, refreshMode: refreshMode)
        let trustPlan = try trust.plan(registry: config.registry, certificates: config.certificates)

        var notes = trustPlan.notes
        var changes = trustPlan.summary
        var route: ClusterDNSRoute?
        var routePlan: DNSRoutePlan?
        var bus: SystemBus?
        if case .name = config.registry.host {
            let b = try SystemBus(address: config.dbusAddress)
            let r = ClusterDNSRoute(link: try AgentLink(runner: runner), resolved: Resolve1(bus: b))
            let plan = try r.plan(clusterDNS: config.clusterDNS, domain: config.domain)
            route = r
            routePlan = plan
            bus = b
            changes += plan.summary
        } else {
            notes.append("the registry is an IP address: no DNS route needed")
        }

        watch.lap("plan")
        if config.dryRun {
            return Report(ready: false, dryRun: true, registry: config.registry.description, changes: changes, notes: notes, checks: [],
                          timings: watch.phases)
        }

        try trust.apply(trustPlan)
        watch.lap("trust")
        if let route, let routePlan { try route.apply(routePlan) }
        watch.lap("dns")

        let checks = try probe(files: files, bus: bus)
        watch.lap("probes")
        return Report(ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
                      changes: changes, notes: notes, checks: checks, timings: watch.phases)
    }

    /// The probes alone, changing nothing (`node-agent probe`).
    func probeOnly() throws -> Report {
        let files = HostFiles(root: config.hostRoot)
        let bus = try? SystemBus(address: config.dbusAddress)
        let checks = try probe(files: files, bus: bus)
        return Report(ready: Readiness.isReady(checks), dryRun: false, registry: config.registry.description,
                      changes: [], notes: [], checks: checks)
    }

    func probe(files: HostFiles, bus: SystemBus?) throws -> [CheckResult] {
        let trust = try RegistryTrustLocations.discover(files: files, registry: config.registry)
        var settings = ProbeSettings(registry: config.registry, clusterDNS: config.clusterDNS, trust: trust,
                                     kubeletResolvConf: config.kubeletResolvConf, credentials: config.credentials,
                                     timeoutMilliseconds: config.timeoutMilliseconds, deadlineSeconds: config.deadlineSeconds,
                                     expiryWarningDays: config.expiryWarningDays)
        settings.aliases = config.aliases
        let resolve1 = bus.map { Resolve1(bus: $0) }
        let suite = ProbeSuite(files: files, resolvedLookup: resolve1.map { r in { try r.resolveHostname($0) } })
        return suite.run(settings)
    }
}
