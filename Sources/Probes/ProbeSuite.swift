import CRIWire
import FoundationEssentials
import Glibc
import HostSystem
import TrustStore
import Vocabulary

/// What to probe on this node, and the bounds to probe it in.
public struct ProbeSettings: Sendable {
    public var registry: RegistryAddress
    public var clusterDNS: IPAddress?
    public var trust: RegistryTrustLocations
    /// The resolv.conf kubelet hands to CoreDNS (its `resolvConf`).
    public var kubeletResolvConf: String
    public var credentials: RegistryCredentials?
    public var timeoutMilliseconds: Int32
    /// The whole run stops probing after this many seconds; what is left fails with that reason.
    public var deadlineSeconds: Double
    public var expiryWarningDays: Double
    /// Other names the registry is used under (short forms resolved through the host's search
    /// list): each must resolve on the host and be in the certificate's SAN.
    public var aliases: [DomainName] = []
    /// `--pull-image`: the image the runtime is asked to pull; nil asks for a reference that
    /// cannot exist (the registry's "not found" proves the path).
    public var pullImage: String?

    public init(
        registry: RegistryAddress, clusterDNS: IPAddress?, trust: RegistryTrustLocations,
        kubeletResolvConf: String = "/run/systemd/resolve/resolv.conf", credentials: RegistryCredentials? = nil,
        timeoutMilliseconds: Int32 = 5000, deadlineSeconds: Double = 30, expiryWarningDays: Double = 14
    ) {
        self.registry = registry
        self.clusterDNS = clusterDNS
        self.trust = trust
        self.kubeletResolvConf = kubeletResolvConf
        self.credentials = credentials
        self.timeoutMilliseconds = timeoutMilliseconds
        self.deadlineSeconds = deadlineSeconds
        self.expiryWarningDays = expiryWarningDays
    }
}

/// Runs every probe in order, within the deadline; `bootstrap`, `probe` and the daemon share it.
public struct ProbeSuite {
    public let files: HostFiles
    /// resolved's own lookup (`ResolveHostname`), when resolved runs on the host.
    public let resolvedLookup: ((String) throws -> [IPAddress])?

    /// The container runtimes systemd runs, when its bus is reachable.
    public let runtimes: (() -> [HazardProbes.RuntimeProcess])?
    /// Asks the node's runtime over its CRI socket to pull a reference (nil: no such check).
    /// It runs on a thread of its own, beside the other checks.
    public let runtimePull: (@Sendable (String, Int32) throws -> CRIPullAnswer)?

    /// The runtimes' processes (containerd, crio, dockerd), when the caller has read /proc
    /// already and none was restarted since (nil: read now).
    public var runtimeProcesses: [HostProcess]?

    public init(
        files: HostFiles, resolvedLookup: ((String) throws -> [IPAddress])?,
        runtimes: (() -> [HazardProbes.RuntimeProcess])? = nil,
        runtimePull: (@Sendable (String, Int32) throws -> CRIPullAnswer)? = nil
    ) {
        self.files = files
        self.resolvedLookup = resolvedLookup
        self.runtimes = runtimes
        self.runtimePull = runtimePull
    }

    /// The names of the runtimes' processes.
    public static let runtimeNames: Set<String> = ["containerd", "crio", "dockerd"]

    /// Starts the runtime's own pull on a thread of its own (nil: no such check). It waits on a
    /// process and on containerd's round trips to the registry, as the other checks wait on
    /// theirs, so the two overlap; `run` takes its outcome last. A real image (--pull-image) gets
    /// the whole deadline (it fetches layers); the probe reference, which fetches nothing, two
    /// phases' worth (resolve, connect, handshake, request: a stalling registry must not hold
    /// the run to its deadline).
    public func startPull(_ s: ProbeSettings) -> BackgroundWork<RuntimePullProbe.Outcome>? {
        guard let runtimePull else { return nil }
        let left = Self.pullMilliseconds(s)
        let (image, registry) = (s.pullImage, s.registry)
        return BackgroundWork { RuntimePullProbe.pull(image: image, registry: registry, milliseconds: left) { try runtimePull($0, left) } }
    }

    /// The time the runtime's pull is given (see `startPull`).
    public static func pullMilliseconds(_ s: ProbeSettings) -> Int32 {
        pullMilliseconds(timeoutMilliseconds: s.timeoutMilliseconds, deadlineSeconds: s.deadlineSeconds, realImage: s.pullImage != nil)
    }

    public static func pullMilliseconds(timeoutMilliseconds: Int32, deadlineSeconds: Double, realImage: Bool) -> Int32 {
        let rest = Int32(max(1000, deadlineSeconds * 1000))
        return realImage ? rest : min(rest, 2 * Int32(min(Double(timeoutMilliseconds), deadlineSeconds * 1000)))
    }

    /// The agent's OS-store certificates that the running containerd's Go has not loaded: written
    /// after the process started (Go reads the system roots once, at its first TLS verification,
    /// which for a containerd that pulled before came before them: fail closed). nil when none.
    static func notLoaded(files: HostFiles, trust: RegistryTrustLocations, running: [HostProcess], pid: Int?) -> (
        certificates: Set<[UInt8]>, why: String
    )? {
        guard let pid, let started = running.first(where: { $0.pid == pid })?.started else { return nil }
        var certificates = Set<[UInt8]>()
        var newer: [String] = []
        for file in trust.osStoreFiles {
            guard let path = try? files.root.resolve(file), let written = try? modificationTime(path), written > started,
                let bytes = try? files.read(file)
            else { continue }
            newer.append(file.path)
            certificates.formUnion(GoTrustPool.pemCertificates(bytes))
        }
        guard !certificates.isEmpty else { return nil }
        return (
            certificates,
            "containerd (pid \(pid)) started before \(newer.joined(separator: ", ")) reached the OS store, and its Go reads the system roots once: they are not counted; restart containerd to load them (or let certs.d carry the CA)"
        )
    }

    /// Every check. `pull`: the runtime's pull when the caller started it already (`startPull`).
    public func run(_ s: ProbeSettings, pull started: BackgroundWork<RuntimePullProbe.Outcome>? = nil) -> [CheckResult] {
        let pull = started ?? startPull(s)
        let start = Date()
        var checks: [CheckResult] = []
        func remainingMilliseconds() -> Int32 {
            Int32(max(0, min(Double(s.timeoutMilliseconds), (s.deadlineSeconds - Date().timeIntervalSince(start)) * 1000)))
        }
        /// Runs `body` if time is left, else records why it did not run.
        func step(_ name: String, _ body: (Int32) -> CheckResult) {
            let left = remainingMilliseconds()
            guard left > 0 else {
                checks.append(
                    CheckResult(
                        name: name, outcome: .fail, reason: "not run: the probes' total deadline of \(s.deadlineSeconds) s was reached"))
                return
            }
            checks.append(body(left))
        }

        var hostAddresses: [IPAddress] = []
        var clusterAddresses: [IPAddress] = []
        // The runtime whose pulls this predicts: how it resolves names, whether it uses a proxy.
        // One pass over the host's /proc for the runtimes: containerd's path, and which runtime
        // started before the CA (runtime-restart-pending).
        let processes = HostProcesses(files: files)
        let running = runtimeProcesses ?? processes.named(Self.runtimeNames)
        let runtime = ContainerRuntime.discover(processes: processes, running: running)
        func lookup(_ t: Int32) -> RuntimeLookup {
            RuntimeLookup(
                files: files, runtime: runtime, runner: ProcessRunner(timeoutSeconds: Double(t) / 1000),
                client: DNSClient(timeoutMilliseconds: t))
        }
        switch s.registry.host {
        case .ip(let ip):
            hostAddresses = [ip]
        case .name(let name):
            if let dns = s.clusterDNS {
                step("dns-cluster") { t in
                    let (r, a) = DNSProbe.cluster(name: name, server: dns, client: DNSClient(timeoutMilliseconds: t))
                    clusterAddresses = a
                    return r
                }
            } else {
                checks.append(
                    CheckResult(
                        name: "dns-cluster", outcome: .skip,
                        reason: "the cluster DNS is not known (no --cluster-dns, no clusterDNS in kubelet's config)"))
            }
            step("dns-host") { t in
                let (r, a) = lookup(t).check(name: name)
                hostAddresses = a
                return r
            }
            if let resolvedLookup {
                step("dns-resolved") { _ in
                    var r = ResolvedLookupProbe.run(name: name, lookup: resolvedLookup)
                    // Programs that read /etc/hosts first (containerd, kubelet: Go) find the
                    // registry there, whatever resolved's routing says.
                    if r.outcome == .fail, checks.last?.details["source"] == "/etc/hosts" {
                        r.outcome = .warn
                        r.reason += " (the host's /etc/hosts has the name, and Go programs such as containerd read it first)"
                    }
                    return r
                }
            }
        }
        // A proxy in the runtime's environment: its pulls go there, and the proxy resolves the name.
        step("runtime-proxy") { t in
            if let runtime, let why = runtime.environmentUnreadable {
                return CheckResult(
                    name: "runtime-proxy", outcome: .skip,
                    reason: "cannot tell whether \(runtime.summary) pulls through a proxy: its environment cannot be read (\(why); "
                        + "another process's environment needs CAP_SYS_PTRACE, which the DaemonSet does not grant)"
                        + (runtimePull == nil ? "" : "; runtime-pull asks containerd itself"))
            }
            let resolver = HostResolver(files: files, client: DNSClient(timeoutMilliseconds: t))
            guard
                let r = RuntimeProxyProbe.run(
                    registry: s.registry, runtime: runtime, timeoutMilliseconds: t, resolve: resolver.firstAddress)
            else {
                return CheckResult(
                    name: "runtime-proxy", outcome: .skip, reason: "\(runtime?.summary ?? "containerd") uses no proxy for \(s.registry)")
            }
            if r.outcome == .pass, let i = checks.firstIndex(where: { $0.name == "dns-host" }), checks[i].outcome == .fail {
                checks[i].outcome = .warn
                checks[i].reason += " (containerd does not resolve it itself: the proxy does)"
            }
            return r
        }
        // Connect where the host's resolver points, as containerd would; fall back to the cluster
        // DNS's answer so that TLS is still examined when only the host's DNS is broken.
        let addresses = hostAddresses.isEmpty ? clusterAddresses : hostAddresses
        step("tcp") { t in TCPProbe.run(addresses: addresses, port: s.registry.port, timeoutMilliseconds: t) }

        // The trust the registry's certificate is verified with for the API request and the
        // aliases: containerd's (its pool for the registry) where it is the runtime, else the OS bundle.
        var trust: (source: TrustSource, label: String)? = (try? files.root.resolve(s.trust.osBundle)).map {
            (.file($0), "the OS bundle \(s.trust.osBundle)")
        }
        if let address = addresses.first, checks.last?.outcome == .pass {
            let bundle = try? files.root.resolve(s.trust.osBundle)
            // containerd's view decides where it is the node's runtime, or where its folders
            // name the registry's CA; the OS bundle's (OpenSSL's, the OS's own tools') then
            // only warns.
            let containerdDecides = runtime != nil || !s.trust.runtimeCAFiles.isEmpty
            if let bundle {
                step("tls-os-trust") { t in
                    var tls = TLSProbe.run(
                        name: "tls-os-trust", target: ProbeTarget(registry: s.registry, address: address, timeoutMilliseconds: t),
                        trust: .file(bundle), trustLabel: "the OS bundle \(s.trust.osBundle)", warningDays: s.expiryWarningDays)
                    if containerdDecides, tls.outcome == .fail {
                        tls.outcome = .warn
                        tls.reason +=
                            " (this is what the OS's own tools see: curl, wget, apt; containerd verifies with its own pool: tls-runtime-trust)"
                    }
                    return tls
                }
            }
            if containerdDecides {
                step("tls-runtime-trust") { t in
                    let r = RuntimeTrustProbe.run(
                        hosts: s.trust.runtimeHosts, registry: s.registry, address: address, files: files,
                        environment: runtime?.environment ?? [:], timeoutMilliseconds: t, warningDays: s.expiryWarningDays,
                        remedy: s.trust.remedy, notLoaded: Self.notLoaded(files: files, trust: s.trust, running: running, pid: runtime?.pid)
                    )
                    if let source = r.trust, let label = r.label { trust = (source, label) }
                    return r.check
                }
            }
            // containers/image's view (CRI-O, Podman, skopeo), where its configuration is on the
            // node: decisive where CRI-O is the node's runtime, else a warning for those tools.
            let crioRuns = running.contains { $0.name == "crio" }
            if crioRuns || ContainersImageHosts.present(files) {
                step("tls-containers-trust") { t in
                    guard
                        let hosts = try? ContainersImageHosts.select(
                            files: files, host: s.registry.hostAndPort,
                            repository: RuntimePullProbe.probeRepository(s.registry))
                    else {
                        return CheckResult(
                            name: "tls-containers-trust", outcome: .skip, reason: "containers/image's folders cannot be read")
                    }
                    var r = RuntimeTrustProbe.run(
                        hosts: hosts, registry: s.registry, address: address, files: files, environment: [:], timeoutMilliseconds: t,
                        warningDays: s.expiryWarningDays, remedy: nil, name: "tls-containers-trust", who: "containers/image"
                    ).check
                    if !crioRuns, r.outcome == .fail {
                        r.outcome = .warn
                        r.reason += " (Podman and skopeo on this node would refuse it; CRI-O does not run here)"
                    }
                    return r
                }
            }
            if let trust {
                let resolver = HostResolver(files: files, client: DNSClient(timeoutMilliseconds: s.timeoutMilliseconds))
                step("registry-api") { t in
                    RegistryProbe.run(
                        target: ProbeTarget(registry: s.registry, address: address, timeoutMilliseconds: t),
                        trust: trust.source, trustLabel: trust.label, credentials: s.credentials,
                        resolve: resolver.firstAddress)
                }
            }
        } else {
            checks.append(CheckResult(name: "tls", outcome: .fail, reason: "not tried: the registry is not reachable over TCP"))
        }

        for alias in s.aliases {
            step("alias:\(alias)") { t in
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

        if let (word, disagreement) = s.trust.runtimeConfig {
            checks.append(
                disagreement.map { CheckResult(name: "runtime-config", outcome: .warn, reason: $0) }
                    ?? CheckResult(
                        name: "runtime-config", outcome: .pass,
                        reason:
                            "containerd \(word.version) runs with config_path \"\(word.configPath ?? "")\" (its CRI Status), as its config file gives"
                    ))
        }
        checks.append(
            HazardProbes.certsD(
                runtimeCAFiles: s.trust.runtimeCAFiles, note: [s.trust.note, s.trust.remedy].compactMap { $0 }.joined(separator: "; ")))
        checks.append(
            HazardProbes.runtimeRestartPending(
                files: files, caFiles: s.trust.osStoreFiles, certsDInUse: !s.trust.runtimeCAFiles.isEmpty,
                runtimes: runtimes?(), running: running, containerdPID: runtime?.pid))
        if case .name = s.registry.host {
            checks.append(HazardProbes.coreDNSLoop(files: files, resolvConf: s.kubeletResolvConf, clusterDNS: s.clusterDNS))
        }
        // Last and strongest: the runtime's own pull, started first.
        if let pull {
            var outcome = pull.wait()
            // Cut short by the agent's budget while the node's lookup waits: asked again with
            // the rest of the deadline (RuntimePullProbe.askAgain).
            let left = Int32(max(0, (s.deadlineSeconds - Date().timeIntervalSince(start)) * 1000))
            if let runtimePull, left >= 1000, RuntimePullProbe.askAgain(after: outcome, checks: checks) {
                let first = outcome.seconds
                outcome = RuntimePullProbe.pull(image: s.pullImage, registry: s.registry, milliseconds: left) { try runtimePull($0, left) }
                outcome.earlier = first
            }
            checks.append(RuntimePullProbe.check(outcome, image: s.pullImage, runtime: runtime?.summary ?? "the runtime"))
            RuntimePullProbe.settle(&checks)
        }
        return checks
    }
}
