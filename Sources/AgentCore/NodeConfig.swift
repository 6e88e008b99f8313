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

    public init(_ o: NodeSettings, caFile: String?, dryRun: Bool, now: Date = Date()) throws {
        try self.init(o, ca: caFile.map { .file($0) }, dryRun: dryRun, now: now)
    }

    public init(_ o: NodeSettings, ca: CAInput?, dryRun: Bool, now: Date = Date()) throws {
        registry = try RegistryAddress(o.registry)
        domain = try DomainName(o.domain)
        if case .name(let host) = registry.host, !host.isWithin(domain) {
            throw AgentError(
                .invalidInput, "registry host \(host) is not under the domain \(domain): the host would not send it to the cluster DNS",
                hint: "pass --domain with the registry's cluster domain, e.g. svc.cluster.local")
        }
        for (name, value, range) in [
            ("--timeout", o.timeout, 0.001...120.0), ("--deadline", o.deadline, 0.001...600.0),
            ("--expiry-warning-days", o.expiryWarningDays, 0.0...3650.0),
        ] where !range.contains(value) {
            throw AgentError(.invalidInput, "\(name) \(value) is out of range (\(range.lowerBound)-\(range.upperBound))")
        }
        aliases = try o.aliases.flatMap { $0.split(separator: ",") }.map { try DomainName(String($0), what: "alias") }
        timeoutMilliseconds = Int32(o.timeout * 1000)
        deadlineSeconds = o.deadline
        expiryWarningDays = o.expiryWarningDays
        let explicitDNS = try o.clusterDNS.map { try IPAddress($0) }
        // What the user named (files, addresses, references) is checked before what is worked out
        // from the node (its kubelet's cluster DNS): a missing --ca is the first thing to fix.
        switch ca {
        case .file(let path):
            caFile = path
            certificates = try CertificateParser.parseCAFile(try Self.readCAFile(path), source: path, now: now)
        case .pem(let bytes, let source):
            caFile = nil
            certificates = try CertificateParser.parseCAFile(bytes, source: source, now: now)
        case nil:
            caFile = nil
            certificates = []
        }
        let realmHosts = try RegistryCredentials.tokenRealmHosts(o.tokenRealmHosts)
        if let auth = o.registryAuth {
            let bytes = try Self.readFile(auth, what: "registry auth file", limit: 1 << 20)
            credentials = try RegistryCredentials.fromDockerConfig(bytes, registry: registry, source: auth)
            credentials?.tokenRealmHosts = realmHosts
            if credentials == nil {
                throw AgentError(
                    .invalidInput, "\(auth) has no credentials for \(registry)",
                    hint: "its `auths` needs an entry named \(registry.hostAndPort)")
            }
        }
        if let address = o.dbusAddress {
            guard !address.isEmpty, !address.contains(where: { $0.isNewline }) else {
                throw AgentError(.invalidInput, "the D-Bus address is empty or contains a newline")
            }
        }
        if let image = o.pullImage {
            guard !image.isEmpty, !image.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                throw AgentError(
                    .invalidInput, "--pull-image '\(image)' is not an image reference",
                    hint: "pass e.g. \(registry.hostAndPort)/team/app:1.0")
            }
            pullImage = image
        }
        if o.runtimePull, let endpoint = o.runtimeEndpoint { _ = try Self.criSocket(endpoint) }
        self.dryRun = dryRun
        hostRoot = try HostRoot(o.hostRoot)
        let files = HostFiles(root: hostRoot)
        runtimeProcesses = HostProcesses(files: files).named(ProbeSuite.runtimeNames)
        var ignored: [RunningContainerd.Ignored]
        (runningContainerd, ignored) = RunningContainerd.qualified(files, among: runtimeProcesses)
        var kubelet: KubeletDNSConfig?
        var kubeletProblem: String?
        var k3sSocket: String?
        do {
            kubelet = try KubeletDNSConfig.read(from: files)
            // k3s and RKE2 give their kubelet a drop-in folder of their own (clusterDNS and
            // clusterDomain as their server set them: agents have them from it), or, before
            // v1.31.0, flags from their own config.
            if kubelet == nil, let k3s = try K3sNode.detect(files: files, running: runningContainerd) {
                var settings = try KubeletDNSConfig.read(from: files, directory: k3s.kubeletConfigDir) ?? KubeletDNSConfig()
                if settings.clusterDNS.isEmpty { settings.clusterDNS = try k3s.clusterDNS(files: files) }
                kubelet = settings
                k3sSocket = k3s.socket
            }
        } catch { kubeletProblem = "\(error)" }
        guard let dns = explicitDNS ?? kubelet?.clusterDNS.first else {
            throw AgentError(
                .invalidInput,
                "the cluster DNS is not known: no --cluster-dns, and "
                    + (kubeletProblem.map { "kubelet's config cannot be read: \($0)" }
                        ?? "no clusterDNS in the host's \(KubeletDNSConfig.defaultFile)"),
                hint: "pass --cluster-dns with the kube-dns Service IP")
        }
        clusterDNS = dns
        // The CRI socket kubelet pulls through, where the node says (else containerd's default).
        let kubeletEndpoint = o.runtimeEndpoint ?? kubelet?.containerRuntimeEndpoint ?? k3sSocket
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
        kubeletResolvConf = kubelet?.resolvConf ?? "/run/systemd/resolve/resolv.conf"
        dbusAddress = o.dbusAddress ?? SystemBus.address(hostRoot: hostRoot.directory)
        if o.runtimePull {
            let endpoint = kubeletEndpoint ?? "unix://" + RunningContainerd.defaultSocket
            // Whether it exists is seen at each probe: the runtime may start after the agent
            // (bootstrap from cloud-init, before containerd), and the other checks judge until then.
            runtimeSocket = try hostRoot.resolve(try Self.criSocket(endpoint))
        }
        for containerd in ignored { ignore(containerd) }
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
