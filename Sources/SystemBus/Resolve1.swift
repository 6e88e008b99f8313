import HostSystem
import Vocabulary

/// One route-only or search domain of a link, in resolved's words.
public struct LinkDomain: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// A routing-only domain (`~name`): selects the link for lookups, is not a search suffix.
    public var routeOnly: Bool
    public init(name: String, routeOnly: Bool) {
        self.name = name
        self.routeOnly = routeOnly
    }
    public var description: String { (routeOnly ? "~" : "") + name }
}

/// The DNS settings resolved holds for one link.
public struct LinkDNSSettings: Equatable, Sendable {
    public var servers: [IPAddress]
    public var domains: [LinkDomain]
    public var defaultRoute: Bool
    /// The link's modes as resolved applies them (its `DNSOverTLS`, `DNSSEC`, `LLMNR`,
    /// `MulticastDNS` properties: for the first two the global setting where the link sets none);
    /// nil where a client does not read or set them.
    public var modes: LinkModes?
    public init(servers: [IPAddress], domains: [LinkDomain], defaultRoute: Bool, modes: LinkModes? = nil) {
        self.servers = servers
        self.domains = domains
        self.defaultRoute = defaultRoute
        self.modes = modes
    }
}

/// A link's DNS-over-TLS, DNSSEC, LLMNR and multicast DNS modes, in resolved's words ("no",
/// "yes", "allow-downgrade", "opportunistic", "resolve").
public struct LinkModes: Equatable, Sendable, CustomStringConvertible {
    public var dnsOverTLS: String
    public var dnssec: String
    public var llmnr: String
    public var multicastDNS: String

    public init(dnsOverTLS: String, dnssec: String, llmnr: String, multicastDNS: String) {
        self.dnsOverTLS = dnsOverTLS
        self.dnssec = dnssec
        self.llmnr = llmnr
        self.multicastDNS = multicastDNS
    }

    /// The cluster DNS's link: kube-dns speaks plain DNS on 53 (a link that inherits a global
    /// `DNSOverTLS=yes` asks it on 853, where nothing answers), does not sign cluster zones, and
    /// cluster names are not for link-local multicast.
    public static let clusterDNS = LinkModes(dnsOverTLS: "no", dnssec: "no", llmnr: "no", multicastDNS: "no")

    public var description: String { "DNSOverTLS=\(dnsOverTLS) DNSSEC=\(dnssec) LLMNR=\(llmnr) MulticastDNS=\(multicastDNS)" }
}

/// Client of `org.freedesktop.resolve1` (systemd-resolved's D-Bus API).
public protocol ResolvedClient {
    func linkSettings(ifindex: Int32) throws -> LinkDNSSettings
    func setLinkDefaultRoute(ifindex: Int32, _ value: Bool) throws
    func setLinkDomains(ifindex: Int32, _ domains: [LinkDomain]) throws
    func setLinkDNS(ifindex: Int32, _ servers: [IPAddress]) throws
    func revertLink(ifindex: Int32) throws
    /// Sets the link's own modes (SetLinkDNSOverTLS, SetLinkDNSSEC, SetLinkLLMNR, SetLinkMulticastDNS).
    func setLinkModes(ifindex: Int32, _ modes: LinkModes) throws
}

public final class Resolve1: ResolvedClient {
    static let service = "org.freedesktop.resolve1"
    static let managerPath = "/org/freedesktop/resolve1"
    static let manager = "org.freedesktop.resolve1.Manager"
    static let link = "org.freedesktop.resolve1.Link"

    let bus: SystemBus

    public init(bus: SystemBus) { self.bus = bus }

    func linkPath(_ ifindex: Int32) throws -> String {
        try mapped {
            try bus.call(
                destination: Self.service, path: Self.managerPath, interface: Self.manager, member: "GetLink",
                build: { try $0.append(int32: ifindex) }, read: { try $0.string(type: "o") })
        }
    }

    public func linkSettings(ifindex: Int32) throws -> LinkDNSSettings {
        let path = try linkPath(ifindex)
        return try mapped {
            let servers: [IPAddress] = try bus.property(
                destination: Self.service, path: path, interface: Self.link,
                name: "DNS", signature: "a(iay)"
            ) { try Self.addresses($0, withIfindex: false) }
            let domains: [LinkDomain] = try bus.property(
                destination: Self.service, path: path, interface: Self.link,
                name: "Domains", signature: "a(sb)"
            ) { r in
                var out: [LinkDomain] = []
                try r.enter("a", "(sb)")
                while try r.enter("r", "sb") {
                    let name = try r.string()
                    let routeOnly = try r.bool()
                    try r.exit()
                    out.append(LinkDomain(name: name, routeOnly: routeOnly))
                }
                try r.exit()
                return out
            }
            let defaultRoute: Bool = try bus.property(
                destination: Self.service, path: path, interface: Self.link,
                name: "DefaultRoute", signature: "b"
            ) { try $0.bool() }
            func mode(_ name: String) throws -> String {
                try bus.property(destination: Self.service, path: path, interface: Self.link, name: name, signature: "s") {
                    try $0.string()
                }
            }
            let modes = LinkModes(
                dnsOverTLS: try mode("DNSOverTLS"), dnssec: try mode("DNSSEC"), llmnr: try mode("LLMNR"),
                multicastDNS: try mode("MulticastDNS"))
            return LinkDNSSettings(servers: servers, domains: domains, defaultRoute: defaultRoute, modes: modes)
        }
    }

    public func setLinkModes(ifindex: Int32, _ modes: LinkModes) throws {
        for (member, value) in [
            ("SetLinkDNSOverTLS", modes.dnsOverTLS), ("SetLinkDNSSEC", modes.dnssec), ("SetLinkLLMNR", modes.llmnr),
            ("SetLinkMulticastDNS", modes.multicastDNS),
        ] {
            try managerCall(member) {
                try $0.append(int32: ifindex)
                try $0.append(string: value)
            }
        }
    }

    public func setLinkDefaultRoute(ifindex: Int32, _ value: Bool) throws {
        try managerCall("SetLinkDefaultRoute") {
            try $0.append(int32: ifindex)
            try $0.append(bool: value)
        }
    }

    public func setLinkDomains(ifindex: Int32, _ domains: [LinkDomain]) throws {
        try managerCall("SetLinkDomains") { w in
            try w.append(int32: ifindex)
            try w.open("a", "(sb)")
            for d in domains {
                try w.open("r", "sb")
                try w.append(string: d.name)
                try w.append(bool: d.routeOnly)
                try w.close()
            }
            try w.close()
        }
    }

    public func setLinkDNS(ifindex: Int32, _ servers: [IPAddress]) throws {
        try managerCall("SetLinkDNS") { w in
            try w.append(int32: ifindex)
            try w.open("a", "(iay)")
            for s in servers {
                try w.open("r", "iay")
                try w.append(int32: s.family.rawValue)
                try w.append(bytes: s.bytes)
                try w.close()
            }
            try w.close()
        }
    }

    public func revertLink(ifindex: Int32) throws {
        try managerCall("RevertLink") { try $0.append(int32: ifindex) }
    }

    /// Resolves a name as resolved does for its own clients (all links, routing domains).
    /// Throws `AgentError` whose message carries resolved's error (e.g. NXDOMAIN).
    public func resolveHostname(_ name: String) throws -> [IPAddress] {
        try mapped {
            try bus.call(
                destination: Self.service, path: Self.managerPath, interface: Self.manager, member: "ResolveHostname",
                build: { w in
                    try w.append(int32: 0)
                    try w.append(string: name)
                    try w.append(int32: 0)
                    try w.append(uint64: 0)
                },
                read: { try Self.addresses($0, withIfindex: true) })
        }
    }

    /// Reads resolve1's arrays of addresses: `a(iay)` (family, bytes), or `a(iiay)` with an
    /// interface index first, as ResolveHostname answers.
    static func addresses(_ r: MessageReader, withIfindex: Bool) throws -> [IPAddress] {
        let element = withIfindex ? "iiay" : "iay"
        var out: [IPAddress] = []
        try r.enter("a", "(\(element))")
        while try r.enter("r", element) {
            if withIfindex { _ = try r.int32() }
            let family = try r.int32()
            let bytes = try r.bytes()
            try r.exit()
            if let f = IPAddress.Family(rawValue: family) { out.append(IPAddress(family: f, bytes: bytes)) }
        }
        try r.exit()
        return out
    }

    private func managerCall(_ member: String, build: (MessageWriter) throws -> Void) throws {
        try mapped {
            try bus.call(
                destination: Self.service, path: Self.managerPath, interface: Self.manager, member: member,
                build: build, read: { _ in () })
        }
    }

    /// Turns resolved's error names into messages that say what to do.
    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as PropertyMismatch {
            throw AgentError(.dbus, "resolved's settings cannot be read: \(e.text(expectedAs: "resolved's")) (\(e.interface) at \(e.path))")
        } catch let e as BusCallError {
            switch e.name {
            case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
                throw AgentError(
                    .dbus, "systemd-resolved is not running on the bus \(bus.address)",
                    hint: "start systemd-resolved, or choose another DNS mode", cause: .busError(e.name))
            case "org.freedesktop.resolve1.LinkBusy":
                throw AgentError(
                    .dbus, "resolved refuses per-link DNS for this link: \(e.message)",
                    hint: "the link is managed by systemd-networkd; configure it there", cause: .busError(e.name))
            case let name
            where name.hasPrefix("org.freedesktop.resolve1.DnsError.") || name == "org.freedesktop.resolve1.NoSuchRR"
                || name == "org.freedesktop.resolve1.NoNameServers":
                throw AgentError(.dbus, "resolved: \(e.message) [\(name.split(separator: ".").last ?? "")]", cause: .busError(e.name))
            case "org.freedesktop.resolve1.NoSuchLink":
                throw AgentError(.dbus, "resolved does not know the link: \(e.message)", cause: .busError(e.name))
            case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired":
                throw AgentError(
                    .dbus, "resolved denied \(e.member): \(e.message)", hint: "run the agent as root", cause: .busError(e.name))
            default:
                throw AgentError(.dbus, e.description, cause: e.name.isEmpty ? nil : .busError(e.name))
            }
        }
    }
}

/// Stands in for resolved when its bus cannot be reached, so that the link can still be removed
/// (uninstall) and a plan still be made: every call fails, naming the bus.
public struct UnreachableResolved: ResolvedClient {
    public let address: String
    public init(address: String) { self.address = address }
    func fail() -> AgentError { AgentError(.dbus, "the system bus at \(address) cannot be reached") }
    public func linkSettings(ifindex: Int32) throws -> LinkDNSSettings { throw fail() }
    public func setLinkDefaultRoute(ifindex: Int32, _ value: Bool) throws { throw fail() }
    public func setLinkDomains(ifindex: Int32, _ domains: [LinkDomain]) throws { throw fail() }
    public func setLinkDNS(ifindex: Int32, _ servers: [IPAddress]) throws { throw fail() }
    public func revertLink(ifindex: Int32) throws { throw fail() }
    public func setLinkModes(ifindex: Int32, _ modes: LinkModes) throws { throw fail() }
}
