import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import TrustStore
import Vocabulary

enum RuntimePullMode: String, ExpressibleByArgument, CaseIterable { case auto, off }

extension TrustRefreshMode: ExpressibleByArgument {}
extension DNSMode: ExpressibleByArgument {}

/// Options shared by the commands that act on a node and probe it.
struct NodeOptions: ParsableArguments {
    @Option(help: "Folder where the node's / is seen (/host in a pod). (env: NODE_AGENT_HOST_ROOT)")
    var hostRoot: String = "/"

    @Option(help: "The registry as images name it: HOST[:PORT] (port 443 when omitted). (env: NODE_AGENT_REGISTRY)")
    var registry: String

    @Option(help: "The cluster DNS (kube-dns Service) IP address (default: clusterDNS of kubelet's config). (env: NODE_AGENT_CLUSTER_DNS)")
    var clusterDns: String?

    @Option(help: "The cluster domain routed to the cluster DNS. (env: NODE_AGENT_DOMAIN)")
    var domain: String = "svc.cluster.local"

    @Option(
        help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket). (env: NODE_AGENT_DBUS_ADDRESS)"
    )
    var dbusAddress: String?

    @Option(
        help:
            "Another name the registry is used under, e.g. a short form resolved through the host's search list (repeatable). (env: NODE_AGENT_ALIAS, comma-separated)"
    )
    var alias: [String] = []

    @Option(
        help:
            "Docker config.json with credentials for the registry (e.g. the pull secret's), to check that auth works. (env: NODE_AGENT_REGISTRY_AUTH)"
    )
    var registryAuth: String?

    @Option(
        help:
            "Hosts besides the registry's own to which a Bearer token realm may take --registry-auth's credentials, over https only (repeatable). (env: NODE_AGENT_TOKEN_REALM_HOSTS, comma-separated)"
    )
    var tokenRealmHosts: [String] = []

    @Option(name: [.short, .long], help: "Output format: text, or the report's object as json or yaml. (env: NODE_AGENT_OUTPUT)")
    var output: OutputFormat = .text

    @Option(help: ArgumentHelp("Seconds allowed per probe phase. (env: NODE_AGENT_TIMEOUT)", valueName: "seconds"))
    var timeout: Double = 5

    @Option(help: ArgumentHelp("Seconds allowed for all probes together. (env: NODE_AGENT_DEADLINE)", valueName: "seconds"))
    var deadline: Double = 30

    @Option(
        help: ArgumentHelp(
            "Warn when the registry's certificate chain expires within this many days. (env: NODE_AGENT_EXPIRY_WARNING_DAYS)",
            valueName: "days"))
    var expiryWarningDays: Double = 14

    @Option(
        help:
            "An image the runtime is asked to pull over its CRI socket, as kubelet asks it (default: a reference that cannot exist, whose 'not found' from the registry proves the path). (env: NODE_AGENT_PULL_IMAGE)"
    )
    var pullImage: String?

    @Option(
        help:
            "The runtime's CRI socket, as on the node (default: kubelet's containerRuntimeEndpoint, else unix:///run/containerd/containerd.sock). (env: NODE_AGENT_RUNTIME_ENDPOINT)"
    )
    var runtimeEndpoint: String?

    @Option(help: "Ask the runtime to pull (runtime-pull): auto (when its CRI socket exists) or off. (env: NODE_AGENT_RUNTIME_PULL)")
    var runtimePull: RuntimePullMode = .auto

    /// The options as given, for the core to validate.
    var settings: NodeSettings {
        var s = NodeSettings(registry: registry)
        s.hostRoot = hostRoot
        s.clusterDNS = clusterDns
        s.domain = domain
        s.dbusAddress = dbusAddress
        s.aliases = alias
        s.registryAuth = registryAuth
        s.tokenRealmHosts = tokenRealmHosts
        s.timeout = timeout
        s.deadline = deadline
        s.expiryWarningDays = expiryWarningDays
        s.pullImage = pullImage
        s.runtimeEndpoint = runtimeEndpoint
        s.runtimePull = runtimePull == .auto
        return s
    }

    static let environmentNames = [
        "host-root", "registry", "cluster-dns", "domain", "dbus-address", "registry-auth", "token-realm-hosts",
        "output", "timeout", "deadline", "expiry-warning-days", "alias", "pull-image",
        "runtime-endpoint", "runtime-pull",
    ]
}

/// How `bootstrap` and `run` change the node.
struct ChangeOptions: ParsableArguments {
    @Option(
        help:
            "How the OS trust bundle is rebuilt: auto (native where that leaves what the host's tool would and no hook would run, the tool otherwise), tool (the host's own, hooks included) or native (Debian family: the agent, in milliseconds, no hooks). (env: NODE_AGENT_TRUST_REFRESH)"
    )
    var trustRefresh: TrustRefreshMode = .auto

    @Option(help: "How the cluster domain reaches the cluster DNS: auto, link, dropin, delegate or hosts. (env: NODE_AGENT_DNS_MODE)")
    var dnsMode: DNSMode = .auto

    @Flag(
        help:
            "Restart the container runtime (containerd, crio, docker units, through systemd's D-Bus API) when it started before the CA reached the OS store; once: a restarted runtime is no longer behind. (env: NODE_AGENT_RESTART_RUNTIME)"
    )
    var restartRuntime = false

    @Flag(
        help:
            "Allow --dns-mode dropin, whose global DNS= gets every host lookup and leaks into resolved's resolv.conf. (env: NODE_AGENT_ACCEPT_GLOBAL_DNS)"
    )
    var acceptGlobalDns = false

    @Option(
        help: ArgumentHelp(
            "Seconds a host tool (update-ca-certificates and its hooks, ip) may run before it is stopped and reported. (env: NODE_AGENT_TOOL_TIMEOUT)",
            valueName: "seconds"))
    var toolTimeout: Double = 300

    /// The host tools' runner, after checking --tool-timeout.
    static func runner(toolTimeout: Double) throws -> ProcessRunner {
        guard (1...3600).contains(toolTimeout) else {
            throw AgentError(
                .invalidInput, "--tool-timeout must be 1-3600 s", hint: "update-ca-certificates with 10,000 CAs took 72 s here")
        }
        return ProcessRunner(timeoutSeconds: toolTimeout)
    }

    /// The job on the node, set up as these options say.
    func bootstrap(_ config: NodeConfig) throws -> Bootstrap {
        var b = Bootstrap(config: config, runner: try Self.runner(toolTimeout: toolTimeout), refreshMode: trustRefresh)
        b.dnsMode = dnsMode
        b.restartRuntime = restartRuntime
        b.acceptGlobalDNS = acceptGlobalDns
        return b
    }
}

extension NodeConfig {
    init(_ options: NodeOptions, caFile: String?, dryRun: Bool, runtimeSettleSeconds: Double = ContainerdPresence.settleSeconds) throws {
        try self.init(options.settings, caFile: caFile, dryRun: dryRun, runtimeSettleSeconds: runtimeSettleSeconds)
    }
}
