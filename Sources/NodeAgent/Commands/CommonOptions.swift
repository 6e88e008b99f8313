import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import ResolvedConfig
import TrustStore
import Vocabulary

enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }
enum RuntimePullMode: String, ExpressibleByArgument, CaseIterable { case auto, off }

extension TrustRefreshMode: ExpressibleByArgument {}
extension DNSMode: ExpressibleByArgument {}

/// Options shared by the commands that act on a node and probe it.
struct NodeOptions: ParsableArguments {
    @Option(help: "Folder where the node's / is seen (/host in a pod).")
    var hostRoot: String = "/"

    @Option(help: "The registry as images name it: HOST[:PORT] (port 443 when omitted).")
    var registry: String

    @Option(help: "The cluster DNS (kube-dns Service) IP address (default: clusterDNS of kubelet's config).")
    var clusterDns: String?

    @Option(help: "The cluster domain routed to the cluster DNS.")
    var domain: String = "svc.cluster.local"

    @Option(help: "D-Bus address of the host's system bus (default: the host root's run/dbus/system_bus_socket).")
    var dbusAddress: String?

    @Option(
        help:
            "Another name the registry is used under, e.g. a short form resolved through the host's search list (repeatable; comma-separated in NODE_AGENT_ALIAS)."
    )
    var alias: [String] = []

    @Option(help: "Docker config.json with credentials for the registry (e.g. the pull secret's), to check that auth works.")
    var registryAuth: String?

    @Option(
        help:
            "Hosts besides the registry's own to which a Bearer token realm may take --registry-auth's credentials, over https only (repeatable; comma-separated)."
    )
    var tokenRealmHosts: [String] = []

    @Option(help: "Report format: text or json.")
    var output: OutputFormat = .text

    @Option(help: "Seconds allowed per probe phase.")
    var timeout: Double = 5

    @Option(help: "Seconds allowed for all probes together.")
    var deadline: Double = 30

    @Option(help: "Warn when the registry's certificate chain expires within this many days.")
    var expiryWarningDays: Double = 14

    @Option(
        help:
            "An image the runtime is asked to pull over its CRI socket, as kubelet asks it (default: a reference that cannot exist, whose 'not found' from the registry proves the path)."
    )
    var pullImage: String?

    @Option(
        help:
            "The runtime's CRI socket, as on the node (default: kubelet's containerRuntimeEndpoint, else unix:///run/containerd/containerd.sock)."
    )
    var runtimeEndpoint: String?

    @Option(help: "Ask the runtime to pull (runtime-pull): auto (when its CRI socket exists) or off.")
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
            "How the OS trust bundle is rebuilt: auto (native where that leaves what the host's tool would and no hook would run, the tool otherwise), tool (the host's own, hooks included) or native (Debian family: the agent, in milliseconds, no hooks)."
    )
    var trustRefresh: TrustRefreshMode = .auto

    @Option(help: "How the cluster domain reaches the cluster DNS: auto, link, dropin, delegate or hosts.")
    var dnsMode: DNSMode = .auto

    @Flag(
        help:
            "Restart the container runtime (containerd, crio, docker units, through systemd's D-Bus API) when it started before the CA reached the OS store; once: a restarted runtime is no longer behind."
    )
    var restartRuntime = false

    @Flag(help: "Allow --dns-mode dropin, whose global DNS= gets every host lookup and leaks into resolved's resolv.conf.")
    var acceptGlobalDns = false

    @Option(help: "Seconds a host tool (update-ca-certificates and its hooks, ip) may run before it is stopped and reported.")
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
    init(_ options: NodeOptions, caFile: String?, dryRun: Bool) throws {
        try self.init(options.settings, caFile: caFile, dryRun: dryRun)
    }
}

/// Fills options from `NODE_AGENT_<OPTION>` environment variables.
enum EnvironmentOptions {
    static let options: [String: [String]] = [
        "bootstrap": NodeOptions.environmentNames + ["ca", "trust-refresh", "dns-mode", "tool-timeout"],
        "probe": NodeOptions.environmentNames,
        // status: where the agent listens, and probe's options for --probe.
        "status": NodeOptions.environmentNames + ["listen", "endpoint"],
        "uninstall": [
            "host-root", "registry", "dbus-address", "output", "trust-refresh", "node-name", "kube-api", "kube-token-file",
            "kube-ca-file", "node-condition", "tool-timeout",
        ],
        "run": NodeOptions.environmentNames + [
            "ca", "ca-cluster-trust-bundle-signer", "ca-cluster-trust-bundle-labels", "ca-cluster-trust-bundle-interval",
            "interval", "watch-interval", "dns-mode", "trust-refresh", "listen", "metrics-listen",
            "node-name", "kube-api", "kube-token-file", "kube-ca-file", "node-condition",
            "startup-taint", "condition-heartbeat", "tool-timeout",
        ],
    ]
    static let flags: [String: [String]] = [
        "bootstrap": ["dry-run", "restart-runtime", "accept-global-dns"], "uninstall": ["dry-run"],
        "run": ["restart-runtime", "accept-global-dns"], "status": ["probe"],
    ]

    /// The command line with what it lacks filled from the environment, then from the config file
    /// (`--config FILE` or NODE_AGENT_CONFIG): `NODE_AGENT_<OPTION>=value` lines, the format of a
    /// systemd EnvironmentFile and of a ConfigMap's data. Command line, then environment, then file.
    static func arguments(_ arguments: [String], environment: [String: String]) throws -> [String] {
        var args = arguments
        var path = environment["NODE_AGENT_CONFIG"]
        if let i = args.firstIndex(of: "--config"), i + 1 < args.count {
            path = args[i + 1]
            args.removeSubrange(i...(i + 1))
        } else if let i = args.firstIndex(where: { $0.hasPrefix("--config=") }) {
            path = String(args[i].dropFirst("--config=".count))
            args.remove(at: i)
        }
        var merged = environment
        if let path {
            for (key, value) in try configFile(path) where merged[key] == nil { merged[key] = value }
        }
        return merge(arguments: args, environment: merged)
    }

    /// Parses a config file: `KEY=value` lines, `#` comments, optional quotes around the value.
    static func configFile(_ path: String) throws -> [String: String] {
        let data: [UInt8]
        do {
            data = try HostFiles.readLocalFile(path, what: "config file", limit: 1 << 20)
        } catch var error as AgentError where error.hint == nil {
            error.hint = "check --config or NODE_AGENT_CONFIG"
            throw error
        }
        var out: [String: String] = [:]
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "="), line[..<eq].hasPrefix("NODE_AGENT_"),
                line[..<eq].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" })
            else {
                throw AgentError(
                    .invalidInput, "\(path):\(number + 1): expected NODE_AGENT_<OPTION>=value", hint: "see docs/CONFIGURATION.md")
            }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            out[String(line[..<eq])] = value
        }
        return out
    }

    static func merge(arguments: [String], environment: [String: String]) -> [String] {
        guard let sub = arguments.first, let names = options[sub] else { return arguments }
        var out = arguments
        for name in names {
            let given = arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") }
            if !given, let value = environment[envName(name)] { out += ["--\(name)", value] }
        }
        for name in flags[sub] ?? [] where !arguments.contains("--\(name)") {
            if let value = environment[envName(name)], ["1", "true", "yes"].contains(value.lowercased()) { out.append("--\(name)") }
        }
        return out
    }

    static func envName(_ option: String) -> String {
        "NODE_AGENT_" + option.uppercased().replacing("-", with: "_")
    }
}
