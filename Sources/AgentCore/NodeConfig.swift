import Containerd
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import TrustStore
import Vocabulary

/// Everything a command needs, validated before anything on the host changes.
public struct NodeConfig: Sendable {
    public var hostRoot: HostRoot
    public var caFile: String?
    public var certificates: [Certificate]
    public var registry: RegistryAddress
    public var clusterDNS: IPAddress
    public var domain: DomainName
    public var dbusAddress: String
    public var kubeletResolvConf: String
    public var credentials: RegistryCredentials?
    public var timeoutMilliseconds: Int32
    public var deadlineSeconds: Double
    public var expiryWarningDays: Double
    public var aliases: [DomainName]
    public var dryRun: Bool
    /// The runtime's CRI socket as a path the agent can open (under the host root), when the
    /// runtime is to be asked to pull.
    public var runtimeSocket: String?
    public var pullImage: String?
    /// The container runtimes' processes (containerd, crio, dockerd) and the containerd that
    /// serves this node, read from /proc once when the settings are: the settings (k3s's
    /// socket), the trust facts and the checks all read them, and nothing restarts a runtime
    /// before the checks unless asked to (`--restart-runtime`, which reads them again).
    public var runtimeProcesses: [HostProcess] = []
    public var runningContainerd: [RunningContainerd] = []
    /// Processes named containerd that were not taken as the node's runtime, and why (for the report).
    public var runtimeNotes: [String] = []

    /// Where the registry's CA comes from: a file (read here), or PEM already read from
    /// elsewhere (the ClusterTrustBundles of `run`), named by `source` in messages. Either goes
    /// through the same parser and checks.
    public enum CAInput: Sendable {
        case file(String)
        case pem([UInt8], source: String)
    }

    public init(
        _ o: NodeSettings, caFile: String?, dryRun: Bool, now: Date = Date(),
        runtimeSettleSeconds: Double = ContainerdPresence.settleSeconds
    ) throws {
        try self.init(o, ca: caFile.map { .file($0) }, dryRun: dryRun, now: now, runtimeSettleSeconds: runtimeSettleSeconds)
    }

    /// The settings validated (`NodeSettings.validated`, reading nothing), then the files they
    /// name (the CA, the registry's credentials), then the node's facts (`NodeHostFacts`): what the
    /// user named is checked before what is worked out from the node, so a missing --ca is the
    /// first thing to fix. With no containerd running, a containerd unit systemd moves between
    /// states is given `runtimeSettleSeconds` (`ContainerdPresence`; 0: the facts as found).
    public init(
        _ o: NodeSettings, ca: CAInput?, dryRun: Bool, now: Date = Date(), runtimeSettleSeconds: Double = ContainerdPresence.settleSeconds
    ) throws {
        let valid = try o.validated()
        registry = valid.registry
        domain = valid.domain
        aliases = valid.aliases
        timeoutMilliseconds = valid.timeoutMilliseconds
        deadlineSeconds = valid.deadlineSeconds
        expiryWarningDays = valid.expiryWarningDays
        pullImage = valid.pullImage
        (caFile, certificates) = try Self.readCA(ca, now: now)
        credentials = try Self.readCredentials(o.registryAuth, registry: registry, realmHosts: valid.tokenRealmHosts)
        self.dryRun = dryRun
        hostRoot = try HostRoot(o.hostRoot)
        dbusAddress = o.dbusAddress ?? SystemBus.address(hostRoot: hostRoot.directory)
        let files = HostFiles(root: hostRoot)
        let node = try ContainerdPresence.settled(
            { NodeHostFacts.gather(files) }, busAddress: dbusAddress, settleSeconds: runtimeSettleSeconds)
        runtimeProcesses = node.runtimeProcesses
        runningContainerd = node.runningContainerd
        guard let dns = valid.clusterDNS ?? node.kubelet?.clusterDNS.first else {
            throw AgentError(
                .invalidInput,
                "the cluster DNS is not known: no --cluster-dns, and "
                    + (node.kubeletProblem.map { "kubelet's config cannot be read: \($0)" }
                        ?? "no clusterDNS in the host's \(KubeletDNSConfig.defaultFile)"),
                hint: "pass --cluster-dns with the kube-dns Service IP")
        }
        clusterDNS = dns
        // The CRI socket kubelet pulls through, where the node says (else, below, the running
        // containerd's or containerd's default).
        let kubeletEndpoint = o.runtimeEndpoint ?? node.kubelet?.containerRuntimeEndpoint ?? node.k3sSocket
        var ignored = node.ignored
        // The node's runtime is the one whose socket kubelet pulls through, where that is known: a
        // second containerd (a nested cluster's, a CI runner's) serves another.
        if let path = kubeletEndpoint.map(Self.socketPath) {
            for other in runningContainerd where other.socket != path {
                ignored.append(
                    .init(
                        pid: other.pid,
                        why: "containerd (pid \(other.pid)) serves \(other.socket), not the socket kubelet uses (\(path)): ignored"))
            }
        }
        kubeletResolvConf = node.kubelet?.resolvConf ?? "/run/systemd/resolve/resolv.conf"
        for containerd in ignored { ignore(containerd) }
        if o.runtimePull {
            // Where kubelet's is not known: the socket of the one containerd running (its -a, or
            // its config's `[grpc] address`), else containerd's default.
            let running = runningContainerd.count == 1 ? runningContainerd[0].socket : RunningContainerd.defaultSocket
            let endpoint = kubeletEndpoint ?? "unix://" + running
            // Whether it exists is seen at each probe: the runtime may start after the agent
            // (bootstrap from cloud-init, before containerd), and the other checks judge until then.
            runtimeSocket = try hostRoot.resolve(try Self.criSocket(endpoint))
        }
    }

    /// The CA's certificates, from its file or PEM already read (none without a CA).
    static func readCA(_ ca: CAInput?, now: Date) throws -> (file: String?, certificates: [Certificate]) {
        switch ca {
        case .file(let path):
            return (path, try CertificateParser.parseCAFile(try Self.readCAFile(path), source: path, now: now))
        case .pem(let bytes, let source):
            return (nil, try CertificateParser.parseCAFile(bytes, source: source, now: now))
        case nil:
            return (nil, [])
        }
    }

    /// The registry's credentials from a Docker config file (`--registry-auth`), refused when it has none for it.
    static func readCredentials(_ auth: String?, registry: RegistryAddress, realmHosts: [String]) throws -> RegistryCredentials? {
        guard let auth else { return nil }
        let bytes = try Self.readFile(auth, what: "registry auth file", limit: 1 << 20)
        guard var credentials = try RegistryCredentials.fromDockerConfig(bytes, registry: registry, source: auth) else {
            throw AgentError(
                .invalidInput, "\(auth) has no credentials for \(registry)",
                hint: "its `auths` needs an entry named \(registry.hostAndPort)")
        }
        credentials.tokenRealmHosts = realmHosts
        return credentials
    }

    /// A CRI endpoint's socket as a path on the node; refused when it is not a unix socket path.
    static func criSocket(_ endpoint: String) throws -> HostPath {
        let path = socketPath(endpoint)
        guard path.hasPrefix("/"), let hostPath = try? HostPath(path) else {
            throw AgentError(
                .invalidInput, "--runtime-endpoint \(endpoint) is not a unix socket path",
                hint: "pass unix:///run/containerd/containerd.sock or a path")
        }
        return hostPath
    }

    /// A CRI endpoint's socket path (`unix:///run/x.sock` or the path itself).
    static func socketPath(_ endpoint: String) -> String { endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst(7)) : endpoint }

    /// Takes a process named containerd out of what the agent follows (its config, its socket)
    /// and of what the checks model (its proxy, its resolver), with the reason for the report:
    /// it is not the node's runtime, only a process that calls itself containerd.
    mutating func ignore(_ containerd: RunningContainerd.Ignored) {
        runtimeNotes.append(containerd.why)
        runningContainerd.removeAll { $0.pid == containerd.pid }
        runtimeProcesses.removeAll { $0.name == "containerd" && $0.pid == containerd.pid }
    }

    /// Where the CA file comes from, in the words of whoever mounted it (the DaemonSet's
    /// NODE_AGENT_CA_ORIGIN, e.g. "Secret openfaas/registry-tls, key ca.crt"): a Secret volume
    /// with `optional: true` leaves the file out when the Secret or its key is missing, and the
    /// error then names the Secret and key to fix, not only a path inside the pod.
    public static let caOriginVariable = "NODE_AGENT_CA_ORIGIN"

    /// The CA file; when it does not exist and its origin is known, an error naming that origin.
    public static func readCAFile(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8] {
        do {
            return try readFile(path, what: "CA file", limit: CertificateParser.maximumFileSize)
        } catch let error as AgentError where error.message.hasSuffix("does not exist") {
            guard let origin = environment[caOriginVariable], !origin.isEmpty else { throw error }
            throw AgentError(
                error.code, "\(error.message): it comes from \(origin), which is missing (no such Secret, or no such key in it)",
                hint:
                    "create it, or mount the key the Secret has: one made by `kubectl create secret tls` has tls.crt, not ca.crt (docs/install-openfaas.md); the agent starts again once it is there"
            )
        }
    }

    /// A file named on the command line, through HostSystem's guarded reader (regular files
    /// only, bounded); a CA file's problems are certificate errors.
    public static func readFile(_ path: String, what: String, limit: Int) throws -> [UInt8] {
        try HostFiles.readLocalFile(path, what: what, limit: limit, code: what == "CA file" ? .invalidCertificate : .invalidInput)
    }
}
