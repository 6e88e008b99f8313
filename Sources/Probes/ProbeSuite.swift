import CRIWire
import Containerd
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
    /// A light run (`run`'s cadence between network proofs): nil runs every check; an address
    /// runs only the node's own checks, the cluster DNS asked one question for the registry's
    /// name (that address's family), and a TCP connect to that address (the one the last full
    /// run connected to): no TLS handshake, no request, no runtime pull (ProbeRun+Light).
    public var lightAt: IPAddress?
    /// A light run's word on kube-dns from the cluster (the Service's EndpointSlices, watched):
    /// with at least one ready endpoint, `dns-cluster` takes it and asks no question; nil (or 0
    /// ready) asks the question as without it.
    public var kubeDNSWord: (ready: Int, said: String)?

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
    /// The node's containerd as the trust side picked it from those processes
    /// (`RunningContainerd`), given with them (nil: pick now, by the same rule).
    public var runningContainerd: [RunningContainerd]?

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
        for file in OSStoreWrites(files: files, trust.osStoreFiles).notLoaded(byRuntimeStartedAt: started) {
            guard let bytes = try? files.read(file) else { continue }
            newer.append(file.path)
            certificates.formUnion(GoTrustPool.pemCertificates(bytes))
        }
        guard !certificates.isEmpty else { return nil }
        return (
            certificates,
            "containerd (pid \(pid)) started before \(newer.joined(separator: ", ")) reached the OS store, and its Go reads the system roots once: they are not counted; restart containerd to load them (or let certs.d carry the CA)"
        )
    }

    /// Every check, then the rules between them (`Readiness.settle`). `pull`: the runtime's pull
    /// when the caller started it already (`startPull`).
    public func run(_ s: ProbeSettings, pull started: BackgroundWork<RuntimePullProbe.Outcome>? = nil) -> [CheckResult] {
        let pull = started ?? (s.lightAt == nil ? startPull(s) : nil)
        var run = ProbeRun(self, s)
        return run.all(pull: pull)
    }
}
