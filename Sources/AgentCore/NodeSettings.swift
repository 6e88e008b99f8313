import Probes
import Vocabulary

/// What a command was given about the node, as given (command line, environment, config file):
/// nothing validated yet. `NodeConfig` checks it.
public struct NodeSettings: Sendable {
    public var hostRoot = "/"
    public var registry: String
    public var clusterDNS: String?
    public var domain = "svc.cluster.local"
    public var dbusAddress: String?
    /// Other names the registry is used under; each entry may hold several, comma-separated.
    public var aliases: [String] = []
    public var registryAuth: String?
    /// Hosts a Bearer token realm may be on besides the registry's (`--token-realm-hosts`);
    /// each entry may hold several, comma-separated.
    public var tokenRealmHosts: [String] = []
    public var timeout: Double = 5
    public var deadline: Double = 30
    public var expiryWarningDays: Double = 14
    public var pullImage: String?
    public var runtimeEndpoint: String?
    /// Ask the runtime to pull when its CRI socket exists (runtime-pull).
    public var runtimePull = true

    public init(registry: String) { self.registry = registry }
}

extension NodeSettings {
    /// The settings checked on their own, reading nothing (no file, no host): each mistake in
    /// them is named before the node is read. `NodeConfig` adds the files they name and the node's facts.
    public struct Validated: Sendable {
        public var registry: RegistryAddress
        public var domain: DomainName
        public var aliases: [DomainName]
        public var timeoutMilliseconds: Int32
        public var deadlineSeconds: Double
        public var expiryWarningDays: Double
        /// `--cluster-dns`, when given (else kubelet's, read from the node).
        public var clusterDNS: IPAddress?
        public var tokenRealmHosts: [String]
        public var pullImage: String?
    }

    /// Every check of the settings that needs nothing but them.
    public func validated() throws -> Validated {
        let registry = try RegistryAddress(registry)
        let domain = try DomainName(domain)
        if case .name(let host) = registry.host, !host.isWithin(domain) {
            throw AgentError(
                .invalidInput, "registry host \(host) is not under the domain \(domain): the host would not send it to the cluster DNS",
                hint: "pass --domain with the registry's cluster domain, e.g. svc.cluster.local")
        }
        for (name, value, range) in [
            ("--timeout", timeout, 0.001...120.0), ("--deadline", deadline, 0.001...600.0),
            ("--expiry-warning-days", expiryWarningDays, 0.0...3650.0),
        ] where !range.contains(value) {
            throw AgentError(.invalidInput, "\(name) \(value) is out of range (\(range.lowerBound)-\(range.upperBound))")
        }
        let aliases = try aliases.flatMap { $0.split(separator: ",") }.map { try DomainName(String($0), what: "alias") }
        let clusterDNS = try clusterDNS.map { try IPAddress($0) }
        let realmHosts = try RegistryCredentials.tokenRealmHosts(tokenRealmHosts)
        if let address = dbusAddress {
            guard !address.isEmpty, !address.contains(where: { $0.isNewline }) else {
                throw AgentError(.invalidInput, "the D-Bus address is empty or contains a newline")
            }
        }
        if let image = pullImage, image.isEmpty || image.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw AgentError(
                .invalidInput, "--pull-image '\(image)' is not an image reference",
                hint: "pass e.g. \(registry.hostAndPort)/team/app:1.0")
        }
        if runtimePull, let endpoint = runtimeEndpoint { _ = try NodeConfig.criSocket(endpoint) }
        return Validated(
            registry: registry, domain: domain, aliases: aliases, timeoutMilliseconds: Int32(timeout * 1000), deadlineSeconds: deadline,
            expiryWarningDays: expiryWarningDays, clusterDNS: clusterDNS, tokenRealmHosts: realmHosts, pullImage: pullImage)
    }
}
