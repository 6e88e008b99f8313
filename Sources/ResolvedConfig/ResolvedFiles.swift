import HostSystem
import Vocabulary

/// The file-based ways to route the cluster domain: resolved drop-in, resolved DNS delegate,
/// /etc/hosts lines (HostsFile.swift). Each is a plan of file changes (marked as the agent's)
/// plus, for resolved, the unit action that makes it read them.
public enum ResolvedFiles {
    public static let marker = HostFiles.ownershipMarker
    public static let dropIn = try! HostPath("/etc/systemd/resolved.conf.d/node-agent.conf")
    public static let delegate = try! HostPath("/etc/systemd/dns-delegate.d/node-agent.dns-delegate")
    public static let hosts = try! HostPath("/etc/hosts")
    /// Keeps systemd-networkd off the agent's link (networkd uses the first matching file in
    /// order of name, so `00-` wins over a catch-all); resolved refuses per-link settings on a
    /// link networkd manages ("Link … is managed").
    public static let networkdUnmanaged = try! HostPath("/etc/systemd/network/00-node-agent.network")

    /// A global `DNS=` with a routing domain. On resolved the global scope is always a default
    /// route, so every lookup may reach this server, and it is written into resolv.conf.
    public static func renderDropIn(clusterDNS: IPAddress, domain: DomainName) -> String {
        render([("Resolve", "DNS", clusterDNS.description), ("Resolve", "Domains", "~\(domain)")])
    }

    /// A DNS delegate (systemd 258+): the server is asked for the domain only. Routing-only
    /// (`~domain`): a bare domain is also a search domain, which resolved 262 writes into
    /// /etc/resolv.conf and /run/systemd/resolve/resolv.conf (measured on the sid node), from
    /// where kubelet hands it to CoreDNS and dnsPolicy Default pods.
    public static func renderDelegate(clusterDNS: IPAddress, domain: DomainName) -> String {
        render([("Delegate", "DNS", clusterDNS.description), ("Delegate", "Domains", "~\(domain)")])
    }

    /// `[Match] Name=<the agent's links>`, `[Link] Unmanaged=yes`.
    public static func renderNetworkdUnmanaged(linkNames: [String]) -> String {
        render([("Match", "Name", linkNames.joined(separator: " ")), ("Link", "Unmanaged", "yes")])
    }

    /// The marker, then each (section, key, value) in order. The values are validated addresses
    /// and names: no newline or `[` can reach the file.
    static func render(_ entries: [(section: String, key: String, value: String)]) -> String {
        var conf = SystemdConf(parsing: marker + "\n")
        for e in entries { conf.set(e.key, e.value, section: e.section) }
        return conf.text
    }

    public static func isOurs(_ text: String?) -> Bool { HostFiles.isOwned(text) }
}
