import HostSystem
import Transport
import TrustStore
import Vocabulary

/// The registry's certificate, as each client on the node verifies it (the OS's tools,
/// containerd, containers/image), then the registry's API with the runtime's trust.
extension ProbeRun {
    mutating func trustChecks(_ address: IPAddress) {
        // containerd's view decides where it is the node's runtime, or where its folders name the
        // registry's CA; the OS bundle's (OpenSSL's, the OS's own tools') then only warns.
        let containerdDecides = containerdDecides
        step("tls-os-trust") { $0.osTrust(address, containerdDecides: containerdDecides, $1) }
        if containerdDecides {
            step("tls-runtime-trust") { run, t in
                let r = RuntimeTrustProbe.run(
                    hosts: run.s.trust.runtimeHosts, registry: run.s.registry, address: address, files: run.files,
                    environment: run.runtime?.environment ?? [:], timeoutMilliseconds: t, warningDays: run.s.expiryWarningDays,
                    remedy: run.s.trust.remedy, systemRoots: run.systemRoots?.wait() ?? nil,
                    notLoaded: ProbeSuite.notLoaded(files: run.files, trust: run.s.trust, running: run.running, pid: run.runtime?.pid),
                    on: &run.registryConnection)
                if let source = r.trust, let label = r.label { run.trust = (source, label) }
                return r.check
            }
        }
        // containers/image's view (CRI-O, Podman, skopeo), where its configuration is on the
        // node: decisive where CRI-O is the node's runtime, else a warning for those tools.
        let crioRuns = running.contains { $0.name == "crio" }
        if crioRuns || ContainersImageHosts.present(files) {
            step("tls-containers-trust") { $0.containersTrust(address, crioRuns: crioRuns, $1) }
        }
        if let trust {
            let resolver = HostResolver(files: files, client: DNSClient(timeoutMilliseconds: s.timeoutMilliseconds))
            step("registry-api") { run, t in
                var r = RegistryProbe.run(
                    target: ProbeTarget(registry: run.s.registry, address: address, timeoutMilliseconds: t),
                    trust: trust.source, trustLabel: trust.label, credentials: run.s.credentials, resolve: resolver.firstAddress,
                    connection: run.registryConnection)
                // Where a light run asks next (ProbeSettings.lightAt).
                r.details["address"] = "\(address)"
                return r
            }
        }
        // registry-api's request ended it (Connection: close); else closed here.
        registryConnection = nil
    }

    /// What the OS's own tools (curl, wget, apt: OpenSSL with the OS bundle) see.
    mutating func osTrust(_ address: IPAddress, containerdDecides: Bool, _ t: Int32) -> CheckResult {
        var tls = TLSProbe.run(
            name: "tls-os-trust", target: ProbeTarget(registry: s.registry, address: address, timeoutMilliseconds: t),
            trust: .hostFile(files, s.trust.osBundle), trustLabel: "the OS bundle \(s.trust.osBundle)", warningDays: s.expiryWarningDays,
            on: &registryConnection)
        if containerdDecides, tls.outcome == .fail {
            tls.outcome = .warn
            tls.reason +=
                " (this is what the OS's own tools see: curl, wget, apt; containerd verifies with its own pool: tls-runtime-trust)"
        }
        return tls
    }

    /// containers/image's folders for the registry, verified as it verifies.
    mutating func containersTrust(_ address: IPAddress, crioRuns: Bool, _ t: Int32) -> CheckResult {
        guard
            let hosts = try? ContainersImageHosts.select(
                files: files, host: s.registry.hostAndPort, repository: RuntimePullProbe.probeRepository(s.registry))
        else {
            return CheckResult(name: "tls-containers-trust", outcome: .skip, reason: "containers/image's folders cannot be read")
        }
        var r = RuntimeTrustProbe.run(
            hosts: hosts, registry: s.registry, address: address, files: files, environment: [:], timeoutMilliseconds: t,
            warningDays: s.expiryWarningDays, remedy: nil, name: "tls-containers-trust", who: "containers/image", on: &registryConnection
        ).check
        if !crioRuns, r.outcome == .fail {
            r.outcome = .warn
            r.reason += " (Podman and skopeo on this node would refuse it; CRI-O does not run here)"
        }
        return r
    }
}
