import HostSystem
import SystemBus
import Vocabulary

/// What routing the cluster domain to the cluster DNS takes on this host.
public struct DNSRoutePlan: Sendable {
    public var linkName: String
    public var linkSteps: [[String]]
    public var current: LinkDNSSettings?
    public var desired: LinkDNSSettings

    public var resolvedChangeNeeded: Bool { current != desired }
    public var isEmpty: Bool { linkSteps.isEmpty && !resolvedChangeNeeded }

    public var summary: [String] {
        var lines = linkSteps.map { "run ip \($0.joined(separator: " "))" }
        if resolvedChangeNeeded {
            lines.append(
                "set resolved link \(linkName): DNS=\(desired.servers.map(\.description).joined(separator: " ")) "
                    + "Domains=\(desired.domains.map(\.description).joined(separator: " ")) DefaultRoute=\(desired.defaultRoute ? "yes" : "no")"
                    + (desired.modes.map { " \($0)" } ?? "")
            )
        }
        return lines
    }
}

/// Routes `~<domain>` to the cluster DNS through a link of the agent's, over resolved's D-Bus API:
/// no file is written, no restart, and only names under the domain go to the cluster DNS.
public struct ClusterDNSRoute {
    public let link: AgentLink
    public let resolved: ResolvedClient

    public init(link: AgentLink, resolved: ResolvedClient) {
        self.link = link
        self.resolved = resolved
    }

    /// Reads the link and resolved's settings of it, then plans from them (`plan`, pure).
    public func observeAndPlan(clusterDNS: IPAddress, domain: DomainName) throws -> DNSRoutePlan {
        let observed = try link.observe()
        var current: LinkDNSSettings?
        if case .ours(let index, _, _) = observed.state { current = try resolved.linkSettings(ifindex: index) }
        return try Self.plan(linkName: link.name, observed: observed, current: current, clusterDNS: clusterDNS, domain: domain)
    }

    /// The route from the link as observed and resolved's settings of it (`current`, nil when
    /// the link is not the agent's yet); reads nothing.
    public static func plan(
        linkName: String = AgentLink.defaultName, observed: AgentLink.Observed, current: LinkDNSSettings?,
        clusterDNS: IPAddress, domain: DomainName
    ) throws -> DNSRoutePlan {
        let desired = LinkDNSSettings(
            servers: [clusterDNS], domains: [LinkDomain(name: domain.name, routeOnly: true)],
            defaultRoute: false, modes: .clusterDNS)
        return DNSRoutePlan(
            linkName: linkName, linkSteps: try AgentLink.plan(name: linkName, for: observed), current: current, desired: desired)
    }

    public func apply(_ plan: DNSRoutePlan) throws {
        try link.apply(plan.linkSteps)
        guard plan.resolvedChangeNeeded || !plan.linkSteps.isEmpty else { return }
        let index = try link.ifindex()
        // Order matters (measured on resolved 252, see DNSModesIntegrationTests): resolved rewrites
        // /run/systemd/resolve/resolv.conf on every change of a usable link's settings, listing the
        // servers of links that are a default route at that moment. The link is made usable (up,
        // with an address) first, then DefaultRoute=no and the routing domain, the servers last: no
        // rewrite ever lists the cluster DNS in the file that kubelet may hand to CoreDNS (which
        // would then forward to itself and be stopped by its loop plugin).
        try resolved.setLinkDefaultRoute(ifindex: index, plan.desired.defaultRoute)
        // Its own modes before it has a server: a hardened resolved's global DNSOverTLS=yes (or
        // DNSSEC=yes) would otherwise apply to the cluster DNS, which speaks neither.
        if let modes = plan.desired.modes { try resolved.setLinkModes(ifindex: index, modes) }
        try resolved.setLinkDomains(ifindex: index, plan.desired.domains)
        try resolved.setLinkDNS(ifindex: index, plan.desired.servers)
    }
}

extension ClusterDNSRoute {
    /// Undoes the route: resolved forgets the link's settings (`RevertLink`), then the link goes.
    /// With the link gone resolved drops its state anyway, so a resolved that is not running does
    /// not stop the removal.
    public func remove(dryRun: Bool) throws -> [String] {
        let steps = try link.planRemoval()
        guard !steps.isEmpty else { return [] }
        var done = ["revert resolved's settings of link \(link.name)"] + steps.map { "run ip \($0.joined(separator: " "))" }
        if dryRun { return done }
        do {
            try resolved.revertLink(ifindex: try link.ifindex())
        } catch {
            done[0] += " (skipped: \(error))"
        }
        try link.apply(steps)
        return done
    }
}
