import Foundation
import HostSystem
import Probes
import ResolvedConfig
import TrustStore

/// The whole job on one node: plan, apply, prove.
struct Bootstrap {
    let config: BootstrapConfig
    let runner: CommandRunner

    func run() throws -> Report {
        let files = HostFiles(root: config.hostRoot)
        let trust = TrustInstaller(files: files, runner: runner)
        let trustPlan = try trust.plan(registry: config.registry, certificates: config.certificates)

        var notes = trustPlan.notes
        var changes = trustPlan.summary
        var route: ClusterDNSRoute?
        var routePlan: DNSRoutePlan?
        if case .name = config.registry.host {
            let bus = try SystemBus(address: config.dbusAddress)
            let r = ClusterDNSRoute(link: try AgentLink(runner: runner), resolved: Resolve1(bus: bus))
            let plan = try r.plan(clusterDNS: config.clusterDNS, domain: config.domain)
            route = r
            routePlan = plan
            changes += plan.summary
        } else {
            notes.append("the registry is an IP address: no DNS route needed")
        }

        if config.dryRun {
            return Report(ready: false, dryRun: true, registry: config.registry.description, changes: changes, notes: notes, checks: [])
        }

        try trust.apply(trustPlan)
        if let route, let routePlan { try route.apply(routePlan) }

        let checks = probe(files: files, trustPlan: trustPlan)
        return Report(ready: Report.isReady(checks), dryRun: false, registry: config.registry.description,
                      changes: changes, notes: notes, checks: checks)
    }

    func probe(files: HostFiles, trustPlan: TrustPlan) -> [CheckResult] {
        var checks: [CheckResult] = []
        let client = DNSClient(timeoutMilliseconds: config.timeoutMilliseconds)
        var addresses: [IPAddress] = []
        switch config.registry.host {
        case .ip(let ip):
            addresses = [ip]
        case .name(let name):
            let (cluster, clusterAddresses) = DNSProbe.cluster(name: name, server: config.clusterDNS, client: client)
            let (host, hostAddresses) = DNSProbe.host(name: name, resolver: HostResolver(files: files, client: client))
            checks += [cluster, host]
            // Connect where the host's resolver points, as containerd would; fall back to the cluster
            // DNS's answer so that TLS is still examined when only host DNS is broken.
            addresses = hostAddresses.isEmpty ? clusterAddresses : hostAddresses
            checks.append(resolvConfLeakCheck(files: files))
        }
        guard let address = addresses.first else {
            checks.append(CheckResult(name: "tls", outcome: .fail, reason: "not tried: no address for the registry"))
            return checks
        }
        let target = ProbeTarget(registry: config.registry, address: address, timeoutMilliseconds: config.timeoutMilliseconds)
        var runtimeTrust: (file: String, label: String)?
        if let path = trustPlan.runtimeCAFiles.first, let file = try? files.root.resolve(path) {
            runtimeTrust = (file, "containerd's \(path)")
        }
        if let bundle = try? files.root.resolve(trustPlan.osBundle) {
            checks.append(TLSProbe.run(name: "tls-os-trust", target: target, trustFile: bundle, trustLabel: "the OS bundle \(trustPlan.osBundle)"))
        }
        if let runtimeTrust {
            checks.append(TLSProbe.run(name: "tls-runtime-trust", target: target, trustFile: runtimeTrust.file, trustLabel: runtimeTrust.label))
        } else {
            checks.append(CheckResult(name: "tls-runtime-trust", outcome: .warn,
                                      reason: "containerd reads no certs.d CA for this registry: pulls rely on the OS store, which containerd only reads at start (restart it after a CA change)"))
        }
        let apiTrust = runtimeTrust ?? ((try? files.root.resolve(trustPlan.osBundle)) ?? "", "the OS bundle")
        checks.append(RegistryProbe.run(target: target, trustFile: apiTrust.file, trustLabel: apiTrust.label))
        return checks
    }

    /// kubelet is often given resolved's `/run/systemd/resolve/resolv.conf` and hands it to CoreDNS:
    /// the cluster DNS listed there makes CoreDNS forward to itself (its loop plugin then kills it).
    func resolvConfLeakCheck(files: HostFiles) -> CheckResult {
        let path = try! HostPath("/run/systemd/resolve/resolv.conf")
        guard let text = try? files.readString(path) else {
            return CheckResult(name: "coredns-loop-hazard", outcome: .skip, reason: "\(path) does not exist")
        }
        let servers = resolvConfNameservers(text)
        if servers.contains(config.clusterDNS.description) {
            return CheckResult(name: "coredns-loop-hazard", outcome: .fail,
                               reason: "the cluster DNS \(config.clusterDNS) is listed in \(path), which kubelet may hand to CoreDNS: CoreDNS would forward to itself and its loop plugin would stop it; remove the global DNS= entry and use a routing domain",
                               details: ["nameservers": servers.joined(separator: ",")])
        }
        return CheckResult(name: "coredns-loop-hazard", outcome: .pass,
                           reason: "the cluster DNS is not in \(path) (nameservers: \(servers.joined(separator: ", ")))",
                           details: ["nameservers": servers.joined(separator: ",")])
    }
}
