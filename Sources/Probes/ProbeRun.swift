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
    /// The TLS connection to the registry's address of the run's first TLS check: the next
    /// checks of the registry's certificate verify its peer chain again with their trust, and
    /// registry-api asks on it (one handshake where there were three).
    var registryConnection: TLSConnection?
    /// Go's system roots as the runtime loads them, read and parsed beside the name checks
    /// (which wait on the node's resolver), after the OS bundle's trust for tls-os-trust.
    var systemRoots: BackgroundWork<GoTrustPool?>?

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
        if let address = s.lightAt { return light(address) }
        // Files only, which nothing changes while the checks run: loaded on a thread of their
        // own while the name checks wait, and taken (or waited for) by the TLS checks.
        let (files, bundle, environment) = (files, s.trust.osBundle, runtime?.environment ?? [:])
        let roots = containerdDecides
        systemRoots = BackgroundWork {
            _ = try? TLSTrust.cached(.hostFile(files, bundle))
            return roots ? GoTrustPool.systemRoots(files: files, environment: environment) : nil
        }
        defer { _ = systemRoots?.wait() }
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

    /// Whether containerd's view of the registry's certificate decides (tls-runtime-trust): where
    /// it is the node's runtime, or where its folders name the registry's CA.
    var containerdDecides: Bool { runtime != nil || !s.trust.runtimeCAFiles.isEmpty }

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
