import HostSystem
import Transport
import Vocabulary

/// The registry's name: the cluster DNS's answer, the node's own lookup (as the runtime makes
/// it), resolved's, the runtime's proxy, and the other names it is used under.
extension ProbeRun {
    mutating func nameChecks(_ name: DomainName) {
        if let dns = s.clusterDNS {
            step("dns-cluster") { run, t in
                let (r, a) = DNSProbe.cluster(name: name, server: dns, client: DNSClient(timeoutMilliseconds: t))
                run.clusterAddresses = a
                return r
            }
        } else {
            checks.append(
                CheckResult(
                    name: "dns-cluster", outcome: .skip,
                    reason: "the cluster DNS is not known (no --cluster-dns, no clusterDNS in kubelet's config)"))
        }
        step("dns-host") { run, t in
            let (r, a) = run.lookup(t).check(name: name)
            run.hostAddresses = a
            return r
        }
        if let resolvedLookup = suite.resolvedLookup {
            step("dns-resolved") { _, _ in ResolvedLookupProbe.run(name: name, lookup: resolvedLookup) }
        }
    }

    /// A proxy in the runtime's environment: its pulls go there, and the proxy resolves the name.
    func runtimeProxy(_ t: Int32) -> CheckResult {
        if let runtime, let why = runtime.environmentUnreadable {
            return CheckResult(
                name: "runtime-proxy", outcome: .skip,
                reason: "cannot tell whether \(runtime.summary) pulls through a proxy: its environment cannot be read (\(why); "
                    + "another process's environment needs CAP_SYS_PTRACE, which the DaemonSet does not grant)"
                    + (suite.runtimePull == nil ? "" : "; runtime-pull asks containerd itself"))
        }
        let resolver = HostResolver(files: files, client: DNSClient(timeoutMilliseconds: t))
        guard let r = RuntimeProxyProbe.run(registry: s.registry, runtime: runtime, timeoutMilliseconds: t, resolve: resolver.firstAddress)
        else {
            return CheckResult(
                name: "runtime-proxy", outcome: .skip, reason: "\(runtime?.summary ?? "containerd") uses no proxy for \(s.registry)")
        }
        return r
    }

    /// Another name of the registry (a short form resolved through the host's search list): it
    /// must resolve on the host and be in the certificate's SAN.
    func alias(_ alias: DomainName, _ t: Int32) -> CheckResult {
        let (dns, found) = lookup(t).check(name: alias, checkName: "alias:\(alias)")
        guard let address = found.first, let trust, let registry = try? RegistryAddress("\(alias):\(s.registry.port)") else {
            var failed = dns
            failed.reason +=
                " (a short name resolves on the host only through a search domain of its /etc/resolv.conf, e.g. svc.cluster.local)"
            return failed
        }
        var tls = TLSProbe.run(
            name: "alias:\(alias)", target: ProbeTarget(registry: registry, address: address, timeoutMilliseconds: t),
            trust: trust.source, trustLabel: trust.label, warningDays: s.expiryWarningDays)
        tls.reason = dns.reason + "; TLS " + tls.reason
        return tls
    }
}
