import Containerd
import FoundationEssentials
import HostSystem
import Transport
import TrustStore
import Vocabulary

/// One run of the checks, in the order a pull takes its steps, within one deadline: what the
/// checks found so far (the addresses the name resolved to, the trust the registry verified
/// with) is handed to those that follow. The checks by step: ProbeRun+Name (the name),
/// ProbeRun+Trust (TLS and the registry's API), ProbeRun+Node (the node's own hazards and the
/// runtime's pull); the rules between checks are `Readiness`'s.
struct ProbeRun {
    let suite: ProbeSuite
    let s: ProbeSettings
    let start = Date()
    /// The runtime whose pulls this predicts (how it resolves names, whether it uses a proxy),
    /// and the runtimes' processes from one pass over the host's /proc.
    let runtime: ContainerRuntime?
    let running: [HostProcess]
    var checks: [CheckResult] = []
    var hostAddresses: [IPAddress] = []
    var clusterAddresses: [IPAddress] = []
    /// What the registry's certificate is verified with for the API request and the aliases.
    var trust: (source: TrustSource, label: String)?

    var files: HostFiles { suite.files }

    init(_ suite: ProbeSuite, _ settings: ProbeSettings) {
        self.suite = suite
        s = settings
        let processes = HostProcesses(files: suite.files)
        running = suite.runtimeProcesses ?? processes.named(ProbeSuite.runtimeNames)
        runtime = ContainerRuntime.discover(
            processes: processes, running: running, found: suite.runtimeProcesses == nil ? nil : suite.runningContainerd)
    }

    /// Every check, then the rules between them. `pull`: the runtime's pull, started first.
    mutating func all(pull: BackgroundWork<RuntimePullProbe.Outcome>?) -> [CheckResult] {
        if let address = s.lightAt {
            // kube-dns answering: the one DNS question of a light run (a kube-dns outage breaks
            // the node's pulls as a registry outage does, and is seen as soon).
            if case .name(let name) = s.registry.host, let dns = s.clusterDNS {
                step("dns-cluster") { _, t in DNSProbe.cluster(name: name, server: dns, client: DNSClient(timeoutMilliseconds: t)).0 }
            }
            registryAlive(address)
            nodeChecks()
            return Readiness.settle(checks)
        }
        switch s.registry.host {
        case .ip(let ip): hostAddresses = [ip]
        case .name(let name): nameChecks(name)
        }
        step("runtime-proxy") { $0.runtimeProxy($1) }
        // Connect where the host's resolver points, as containerd would; fall back to the cluster
        // DNS's answer so that TLS is still examined when only the host's DNS is broken.
        let addresses = hostAddresses.isEmpty ? clusterAddresses : hostAddresses
        step("tcp") { run, t in TCPProbe.run(addresses: addresses, port: run.s.registry.port, timeoutMilliseconds: t) }
        trust = (.hostFile(files, s.trust.osBundle), "the OS bundle \(s.trust.osBundle)")
        if let address = addresses.first, checks.last?.outcome == .pass {
            trustChecks(address)
        } else {
            checks.append(CheckResult(name: "tls", outcome: .fail, reason: "not tried: the registry is not reachable over TCP"))
        }
        for alias in s.aliases { step("alias:\(alias)") { $0.alias(alias, $1) } }
        nodeChecks()
        // Last and strongest: the runtime's own pull.
        if let pull { runtimePull(pull) }
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

    /// The time a check has: its timeout, or what is left of the deadline.
    func remainingMilliseconds() -> Int32 {
        Int32(max(0, min(Double(s.timeoutMilliseconds), (s.deadlineSeconds - Date().timeIntervalSince(start)) * 1000)))
    }

    /// Runs `check` with the time it has, or records that the deadline left it none.
    mutating func step(_ name: String, _ check: (inout ProbeRun, Int32) -> CheckResult) {
        let left = remainingMilliseconds()
        guard left > 0 else {
            checks.append(
                CheckResult(name: name, outcome: .fail, reason: "not run: the probes' total deadline of \(s.deadlineSeconds) s was reached")
            )
            return
        }
        let result = check(&self, left)
        checks.append(result)
    }

    /// The node's own lookup, as the runtime makes it.
    func lookup(_ t: Int32) -> RuntimeLookup {
        RuntimeLookup(
            files: files, runtime: runtime, runner: ProcessRunner(timeoutSeconds: Double(t) / 1000),
            client: DNSClient(timeoutMilliseconds: t))
    }
}
