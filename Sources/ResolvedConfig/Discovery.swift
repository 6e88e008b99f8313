import FoundationEssentials
import Glibc
import HostSystem
import SystemBus
import Vocabulary

/// How the host's /etc/resolv.conf relates to systemd-resolved (resolved.8 names four modes).
public enum ResolvConfMode: String, Sendable, Codable {
    /// A link to resolved's stub file: clients ask 127.0.0.53, routing domains work.
    case stub
    /// A link to resolved's full file: clients ask upstream servers in order; routing domains do not apply.
    case uplink
    /// A link to /usr/lib/systemd/resolv.conf: the stub without search domains.
    case `static`
    /// Any other file: resolved does not manage it.
    case foreign
    case missing
}

/// What the node's DNS setup is, read without changing anything.
public struct DNSHostFacts: Sendable {
    public var resolvConfMode: ResolvConfMode
    /// The nameservers of /etc/resolv.conf, as the host's programs see them.
    public var nameservers: [String]
    /// systemd's version (e.g. 252), from systemd1 or the host's libsystemd-shared file.
    public var systemdVersion: Int?
    public var resolvedOnBus: Bool
    /// Network managers that may claim links: resolved refuses per-link settings on a link
    /// systemd-networkd manages ("Link … is managed").
    public var networkdOnBus = false
    public var networkManagerOnBus = false
    /// resolved's configuration files as resolved reads them (nil when they cannot be read).
    public var resolvedConf: ResolvedConfiguration?
    public var notes: [String]
    /// nsswitch.conf's hosts line (nil: no file or no line, which glibc reads as `dns files`).
    public var nsswitchHosts: NSSwitchHosts? = nil
    /// What nss-mdns's sources of that line take (/etc/mdns.allow).
    public var multicastDNS = MulticastDNSSources(allow: nil)

    public init(
        resolvConfMode: ResolvConfMode, nameservers: [String] = [], systemdVersion: Int? = nil, resolvedOnBus: Bool,
        networkdOnBus: Bool = false, networkManagerOnBus: Bool = false, resolvedConf: ResolvedConfiguration? = nil,
        notes: [String] = [], nsswitchHosts: NSSwitchHosts? = nil
    ) {
        self.resolvConfMode = resolvConfMode
        self.nameservers = nameservers
        self.systemdVersion = systemdVersion
        self.resolvedOnBus = resolvedOnBus
        self.networkdOnBus = networkdOnBus
        self.networkManagerOnBus = networkManagerOnBus
        self.resolvedConf = resolvedConf
        self.notes = notes
        self.nsswitchHosts = nsswitchHosts
    }

    /// Whether the C library's lookups (containerd's, for cluster names) ask DNS at all: through
    /// resolv.conf's servers (`dns`) or resolved itself (`resolve`). Without either, only
    /// /etc/hosts reaches them.
    public var hostsLineAsksDNS: Bool {
        guard let nsswitchHosts else { return true }
        return nsswitchHosts.sources.contains { $0.name == "dns" || $0.name == "resolve" }
    }

    /// Routing domains work for the host's programs when they ask resolved's stub.
    public var clientsUseStub: Bool {
        guard resolvedConf?.stubListenerOn ?? true else { return false }
        return resolvConfMode == .stub || resolvConfMode == .static || (resolvConfMode == .foreign && nameservers.first == "127.0.0.53")
    }

    /// `settleSeconds`: how long resolved is waited for while systemd moves it between states
    /// (`ResolvedPresence`); a throw when it has not settled by then.
    public static func discover(files: HostFiles, bus: SystemBus?, settleSeconds: Double = ResolvedPresence.settleSeconds) throws
        -> DNSHostFacts
    {
        var notes: [String] = []
        let resolvConf = try! HostPath("/etc/resolv.conf")
        var mode = ResolvConfMode.missing
        if let target = files.symlinkTarget(resolvConf) {
            if target.hasSuffix("systemd/resolve/stub-resolv.conf") {
                mode = .stub
            } else if target.hasSuffix("systemd/resolve/resolv.conf") {
                mode = .uplink
            } else if target.hasSuffix("lib/systemd/resolv.conf") {
                mode = .static
            } else {
                mode = .foreign
            }
        } else if (try? files.exists(resolvConf)) == true {
            mode = .foreign
        }
        let servers =
            ((try? files.readString(resolvConf, limit: 1 << 20)) ?? nil).map { ResolvConf(parsing: $0).nameservers.map(\.description) }
            ?? []
        var onBus = false
        var networkd = false
        var networkManager = false
        if let bus {
            onBus = try ResolvedPresence.onBus(bus, settleSeconds: settleSeconds)
            networkd = bus.hasOwner(Network1.service)
            networkManager = bus.hasOwner("org.freedesktop.NetworkManager")
        }
        let version = systemdVersion(files: files, bus: bus)
        let conf = try? ResolvedConfiguration(files: files)
        if let conf, !conf.stubListenerOn {
            notes.append(
                "resolved's stub listener is off (DNSStubListener= in \(conf.settings["DNSStubListener"]?.files.joined(separator: ", ") ?? "its files")): nothing answers at 127.0.0.53"
            )
        }
        if mode == .uplink {
            notes.append(
                "/etc/resolv.conf points at resolved's uplink file: the host's programs ask upstream servers directly, so routing domains do not reach them"
            )
        }
        if networkd {
            notes.append(
                "systemd-networkd runs: resolved refuses per-link settings on links it manages, so the link mode keeps it off the agent's link with \(ResolvedFiles.networkdUnmanaged)"
            )
        }
        if networkManager {
            notes.append("NetworkManager runs: it leaves links it did not create unmanaged unless configured to take them")
        }
        let nss = ((try? files.readString(try! HostPath("/etc/nsswitch.conf"), limit: 1 << 20)) ?? nil).flatMap {
            NSSwitchHosts(parsing: $0)
        }
        var facts = DNSHostFacts(
            resolvConfMode: mode, nameservers: servers, systemdVersion: version, resolvedOnBus: onBus,
            networkdOnBus: networkd, networkManagerOnBus: networkManager, resolvedConf: conf, notes: notes)
        facts.nsswitchHosts = nss
        if nss?.sources.contains(where: { $0.name.hasPrefix("mdns") }) == true {
            facts.multicastDNS = MulticastDNSSources(
                allowFile: (try? files.readString(MulticastDNSSources.allowFile, limit: 1 << 20)) ?? nil)
        }
        if !facts.hostsLineAsksDNS {
            facts.notes.append(
                "nsswitch.conf's hosts line (\(nss?.description ?? "")) asks no DNS source: the C library, which containerd uses for cluster names, reads only /etc/hosts"
            )
        }
        return facts
    }

    /// The node's systemd version: its manager's `Version` on the bus, else the number in the
    /// name of its shared library (libsystemd-shared-252.so).
    public static func systemdVersion(files: HostFiles, bus: SystemBus?) -> Int? {
        if let bus,
            let text = try? bus.property(
                destination: "org.freedesktop.systemd1", path: "/org/freedesktop/systemd1",
                interface: "org.freedesktop.systemd1.Manager", name: "Version", signature: "s", read: { try $0.string() }),
            let version = leadingNumber(text)
        {
            return version
        }
        // systemd's own folder, the node's multiarch folders (Debian's x86_64-linux-gnu,
        // aarch64-linux-gnu, riscv64-linux-gnu...: as the node names them, none written in) and
        // the lib64 of RHEL-family nodes.
        let multiarch = ((try? files.list(try! HostPath("/usr/lib"))) ?? []).filter { $0.contains("-linux-gnu") }.sorted()
        for dir in ["/usr/lib/systemd"] + multiarch.map { "/usr/lib/\($0)/systemd" } + ["/usr/lib64/systemd"] {
            if let path = try? HostPath(dir), let names = try? files.list(path),
                let lib = names.first(where: { $0.hasPrefix("libsystemd-shared-") && $0.hasSuffix(".so") })
            {
                return leadingNumber(String(lib.dropFirst("libsystemd-shared-".count)))
            }
        }
        return nil
    }

    static func leadingNumber(_ text: String) -> Int? { Int(text.prefix { $0.isNumber }) }

    /// What a dns-delegate file can say (systemd 258-262, measured in 262's resolved): no
    /// DNSOverTLS= or DNSSEC= of its own.
    public static let delegateKeys = "a delegate file has DNS=, Domains=, DefaultRoute= and FirewallMark= only, no DNSOverTLS="

    /// Why nss-mdns ends or delays the C library's lookup of `name` before DNS is asked.
    public func multicastDNSReason(_ effect: MulticastDNSSources.Effect, _ name: DomainName) -> String {
        let line = "nsswitch.conf's hosts line (\(nsswitchHosts?.description ?? ""))"
        let allow = multicastDNS.allow.map { "/etc/mdns.allow (\($0.joined(separator: " ")))" } ?? "no /etc/mdns.allow"
        switch effect {
        case .ends(let source, _):
            return
                "\(line) asks \(source) before DNS, and with \(allow) it takes \(name): while avahi-daemon runs it answers not found after 5 s and [NOTFOUND=return] ends the lookup there (containerd's included)"
        case .waits(let sources, _):
            return
                "\(line) asks \(sources.joined(separator: ", ")) before DNS, and with \(allow) they take \(name): while avahi-daemon runs every lookup waits 5 s per address family before DNS is asked (containerd's included)"
        }
    }
}
