import Containerd
import FoundationEssentials
import HostSystem
import Transport
import TrustStore
import Vocabulary

/// `tls-runtime-trust`: the registry's certificate verified as containerd verifies it for this
/// registry: the hosts containerd selects (`ContainerdHosts`), each with the pool its Go builds
/// (`GoTrustPool`: the system roots as Go loads them, plus the host's `ca` files, every
/// certificate an anchor), Go's name rule (SAN only). The OS bundle as OpenSSL reads it is the
/// other check, `tls-os-trust`: what the OS's own tools (curl, apt, skopeo's OpenSSL peers) see.
public enum RuntimeTrustProbe {
    /// The check, and the trust that verified the registry (or the first one tried): what the
    /// registry-api check and the aliases verify with.
    /// `name`, `who`: the check and the pulling library it stands for (containerd's by
    /// default; `tls-containers-trust` and containers/image, whose CA files are lenient).
    /// `shared`: the connection to `address` of the run's first TLS check (`TLSProbe`), whose
    /// peer chain each pool verifies again; one is made where there is none.
    package static func run(
        hosts: ContainerdHosts, registry: RegistryAddress, address: IPAddress, files: HostFiles, environment: [String: String],
        timeoutMilliseconds: Int32, warningDays: Double, remedy: String?, systemRoots: GoTrustPool? = nil,
        name: String = "tls-runtime-trust",
        who: String = "containerd", notLoaded: (certificates: Set<[UInt8]>, why: String)? = nil, on shared: inout TLSConnection?
    ) -> (check: CheckResult, trust: TrustSource?, label: String?) {
        let lenient = who != "containerd"
        func result(_ outcome: CheckResult.Outcome, _ reason: String) -> CheckResult {
            var details = ["hosts": hosts.hosts.map { "\($0.scheme)://\($0.host)" }.joined(separator: " ")]
            if let folder = hosts.folder { details["folder"] = folder.path }
            return CheckResult(name: name, outcome: outcome, reason: reason, details: details)
        }
        if let failure = hosts.failure { return (result(.fail, failure + (remedy.map { "; " + $0 } ?? "")), nil, nil) }
        let source = hosts.hostsTOML.map { "\($0)" } ?? hosts.folder.map { "the *.crt files of \($0)" } ?? "no folder of certs.d"
        // containerd builds every host's TLS before it tries any: one CA it cannot load refuses them all.
        // The system roots once for all hosts: each reading walks /etc/ssl/certs.
        // `systemRoots`: read by the caller for this `environment` (ProbeRun, beside the name checks).
        let system = systemRoots ?? GoTrustPool.systemRoots(files: files, environment: environment)
        var pools: [GoTrustPool] = []
        for host in hosts.hosts {
            let pool = GoTrustPool.build(
                files: files, environment: environment, caFiles: host.caFiles, lenient: lenient,
                notLoaded: notLoaded?.certificates ?? [], system: system)
            if let failure = pool.failure { return (result(.fail, failure + (remedy.map { "; " + $0 } ?? "")), nil, nil) }
            pools.append(pool)
        }
        let before = hosts.hosts.prefix { !$0.isEndpoint(of: registry) }.map(\.host)
        let tried = before.isEmpty ? "" : " (containerd tries \(before.joined(separator: ", ")) first)"
        var firstFailure: (CheckResult, TrustSource, String)?
        for (host, pool) in zip(hosts.hosts, pools) where host.isEndpoint(of: registry) {
            guard host.capabilities.contains("pull") || host.capabilities.contains("resolve") else { continue }
            if host.skipVerify == true {
                return (
                    result(
                        .warn,
                        lenient
                            ? "\(who) does not verify \(host.host)'s certificate: \(hosts.notes.joined(separator: "; ")); remove insecure = true once the CA is in certs.d"
                            : "containerd does not verify \(host.host)'s certificate: skip_verify = true in \(source); remove it once the CA is given with ca"
                    ), nil, nil
                )
            }
            if host.scheme == "http" {
                return (
                    result(.skip, "\(who) speaks plain HTTP to \(host.host) (server in \(source)): no certificate to verify"), nil, nil
                )
            }
            let label = "\(who)'s pool for \(host.host) from \(source), \(pool.summary)"
            var tls = TLSProbe.run(
                name: name,
                target: ProbeTarget(registry: registry, address: address, timeoutMilliseconds: timeoutMilliseconds),
                trust: .pool(pool), trustLabel: label, warningDays: warningDays, on: &shared)
            tls.reason += tried
            if let folder = hosts.folder { tls.details["folder"] = folder.path }
            if tls.outcome != .fail { return (tls, .pool(pool), label) }
            if firstFailure == nil { firstFailure = (tls, .pool(pool), label) }
        }
        if let (first, trust, label) = firstFailure {
            var failed = first
            if let why = notLoaded?.why { failed.reason += "; " + why }
            if let remedy { failed.reason += "; " + remedy }
            // Another writer's folder (Spegel's mirror, Dragonfly's _default, an admin's) is what
            // the runtime reads for this registry: what it does with it, and what to change.
            if let folder = hosts.folder, let foreign = foreignFile(in: hosts, files: files) {
                let what = foreign == folder ? "that folder" : "\(foreign)"
                failed.reason +=
                    "; \(who) reads \(folder) for this registry, and \(what) is not the agent's (another program, e.g. Spegel, Dragonfly or k3s, or an admin wrote it): add the registry's CA to its entry for \(registry) (a ca line naming the CA file), or put the CA in the OS store and restart \(who)"
            }
            return (failed, trust, label)
        }
        return (
            result(
                .skip,
                "containerd does not connect to \(registry) itself for its references: \(source) sends them to \(hosts.hosts.map(\.host).joined(separator: ", ")); runtime-pull shows whether that works"
            ), nil, nil
        )
    }

    /// The file of the selected folder that decides, when the agent did not write it.
    static func foreignFile(in hosts: ContainerdHosts, files: HostFiles) -> HostPath? {
        if let toml = hosts.hostsTOML { return HostFiles.isOwned(try? files.readString(toml)) ? nil : toml }
        guard let folder = hosts.folder else { return nil }
        for ca in hosts.hosts.last?.caFiles ?? [] where !HostFiles.isOwned(try? files.readString(ca)) { return ca }
        return hosts.hosts.last?.caFiles == nil ? folder : nil
    }
}
