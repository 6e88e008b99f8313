import FoundationEssentials
import HostSystem
import SystemBus
import Transport
import Vocabulary

/// What the cluster domain's route should be: the mode asked for and what it routes.
public struct DNSDesired: Sendable, Equatable {
    public var mode: DNSMode
    public var acceptGlobalDNS: Bool
    public var clusterDNS: IPAddress
    public var domain: DomainName
    /// The registry's name, and the other names it is used under (hosts mode writes a line for each).
    public var registryHost: DomainName
    public var aliases: [DomainName]

    public init(
        mode: DNSMode, acceptGlobalDNS: Bool = false, clusterDNS: IPAddress, domain: DomainName,
        registryHost: DomainName, aliases: [DomainName] = []
    ) {
        self.mode = mode
        self.acceptGlobalDNS = acceptGlobalDNS
        self.clusterDNS = clusterDNS
        self.domain = domain
        self.registryHost = registryHost
        self.aliases = aliases
    }
}

/// What the node's DNS is, gathered in one place before anything is planned: the host's resolver
/// setup, the mode chosen from it, the agent's link and resolved's settings of it, the agent's
/// files, and (hosts mode only, never in a dry run) what the cluster DNS answers for the registry.
public struct DNSFacts: Sendable {
    public var host: DNSHostFacts
    /// The mode this run sets up, chosen once (`DNSModeChoice`) from `host`.
    public var mode: DNSModeChoice
    public var link: AgentLink.Observed
    /// resolved's settings of the agent's link (read in link mode, when the link is the agent's).
    public var linkSettings: LinkDNSSettings?
    /// The agent's DNS files as they are now, by path (absent ones have no entry): the drop-in,
    /// the delegate, networkd's Unmanaged file, /etc/hosts.
    public var files: [HostPath: String]
    /// The cluster DNS's answer for the registry's name; nil when it was not asked.
    public var clusterAnswer: DNSAnswer?

    public init(
        host: DNSHostFacts, mode: DNSModeChoice, link: AgentLink.Observed = AgentLink.Observed(state: .absent),
        linkSettings: LinkDNSSettings? = nil,
        files: [HostPath: String] = [:], clusterAnswer: DNSAnswer? = nil
    ) {
        self.host = host
        self.mode = mode
        self.link = link
        self.linkSettings = linkSettings
        self.files = files
        self.clusterAnswer = clusterAnswer
    }

    /// The files a DNS plan reads.
    public static let paths = [ResolvedFiles.dropIn, ResolvedFiles.delegate, ResolvedFiles.networkdUnmanaged, ResolvedFiles.hosts]

    /// Reads the facts and chooses the mode. The cluster DNS is asked only when hosts mode is chosen and
    /// `askClusterDNS` allows it (not in a dry run: a plan sends nothing on the network).
    public static func gather(
        files: HostFiles, link: AgentLink, bus: SystemBus?, desired: DNSDesired,
        askClusterDNS: Bool, timeoutMilliseconds: Int32
    ) throws -> DNSFacts {
        let host = try DNSHostFacts.discover(files: files, bus: bus)
        let choice = DNSModeChoice(asked: desired.mode, host: host, registry: desired.registryHost)
        var facts = DNSFacts(host: host, mode: choice, link: try link.observe())
        for path in paths {
            if let text = try files.readString(path) { facts.files[path] = text }
        }
        let mode = choice.mode
        if mode == .link, let bus, facts.host.resolvedOnBus, case .ours(let index, _, _) = facts.link.state {
            facts.linkSettings = try Resolve1(bus: bus).linkSettings(ifindex: index)
        }
        if mode == .hosts, askClusterDNS {
            facts.clusterAnswer = DNSClient(timeoutMilliseconds: timeoutMilliseconds).lookup(
                desired.registryHost, server: desired.clusterDNS)
        }
        return facts
    }
}
