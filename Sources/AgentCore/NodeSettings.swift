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
