import HostSystem
import Transport
import TrustStore
import Vocabulary

/// A light run: between full proofs, what shows that the node still pulls as the last full
/// run proved (kube-dns answering, the registry alive at the proven address) and the node's
/// own checks.
extension ProbeRun {
    /// The light run's checks, then the rules between them. `address`: where the last full run
    /// connected to the registry.
    mutating func light(_ address: IPAddress) -> [CheckResult] {
        // kube-dns answering: the one DNS question of a light run (a kube-dns outage breaks
        // the node's pulls as a registry outage does, and is seen as soon).
        if case .name(let name) = s.registry.host, let dns = s.clusterDNS {
            step("dns-cluster") { _, t in DNSProbe.cluster(name: name, server: dns, client: DNSClient(timeoutMilliseconds: t)).0 }
        }
        registryAlive(address)
        nodeChecks()
        return Readiness.settle(checks)
    }

    /// A light run's check of the registry: its API at the address the last full run
    /// connected to, verified with containerd's pool (the system roots and the runtime's CA
    /// files), one connection.
    mutating func registryAlive(_ address: IPAddress) {
        let pool = GoTrustPool.build(files: files, environment: runtime?.environment ?? [:], caFiles: s.trust.runtimeCAFiles)
        // Where containerd's pool cannot be built, the OS bundle (read inside the host root).
        let trust: (TrustSource, String) =
            pool.failure == nil
            ? (.pool(pool), "containerd's pool (the system roots and the runtime's CA files), \(pool.summary)")
            : (.hostFile(files, s.trust.osBundle), "the OS bundle \(s.trust.osBundle)")
        step("registry-api") { run, t in
            var r = RegistryProbe.run(
                target: ProbeTarget(registry: run.s.registry, address: address, timeoutMilliseconds: t), trust: trust.0,
                trustLabel: trust.1, credentials: run.s.credentials,
                resolve: HostResolver(files: run.files, client: DNSClient(timeoutMilliseconds: t)).firstAddress)
            r.details["address"] = "\(address)"
            return r
        }
    }
}
