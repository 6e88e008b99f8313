import Vocabulary

/// nss-mdns's sources on the hosts line, as Debian's libnss-mdns 0.15.1 behaves (measured on a
/// booted bookworm node with glibc 2.36, avahi-daemon running, for
/// registry-service.openfaas.svc.cluster.local: HardenedResolverIntegrationTests):
/// - the minimal modules (`mdns_minimal`, `mdns4_minimal`, `mdns6_minimal`) never read
///   /etc/mdns.allow and take only two-label `.local` names: a longer name is passed on
///   (UNAVAIL), so `[NOTFOUND=return]` after them does not end its lookup;
/// - the full modules (`mdns`, `mdns4`, `mdns6`) take the same two-label names when there is no
///   /etc/mdns.allow, and otherwise every name ending in one of its lines (`*` is every name):
///   avahi-daemon is asked, answers not found after 5 s per address family (10 s for `mdns`),
///   and `[NOTFOUND=return]` ends the lookup there; without it the lookup goes on to `dns`
///   after the wait. With avahi-daemon stopped the source is passed on.
/// Go sends every `.local` name to the C library (cgo), so containerd's lookups take this path.
public struct MulticastDNSSources: Sendable, Equatable {
    /// /etc/mdns.allow's entries as nss-mdns reads them (up to the first `#`, blank or tab;
    /// empty lines skipped); nil when there is no file.
    public var allow: [String]?

    public init(allow: [String]?) { self.allow = allow }

    public init(allowFile text: String?) {
        allow = text.map { text in
            text.split(separator: "\n").compactMap { line -> String? in
                let entry = line.prefix { $0 != "#" && $0 != " " && $0 != "\t" && $0 != "\r" }
                return entry.isEmpty ? nil : String(entry)
            }
        }
    }

    public static let allowFile = try! HostPath("/etc/mdns.allow")
    static let full: Set<String> = ["mdns", "mdns4", "mdns6"]
    static let minimal: Set<String> = ["mdns_minimal", "mdns4_minimal", "mdns6_minimal"]

    /// What the hosts line's mDNS sources before its first DNS source (`dns`, `resolve`) do to a
    /// lookup of `name` while avahi-daemon runs.
    public enum Effect: Sendable, Equatable {
        /// A source takes the name and its `[NOTFOUND=return]` ends the lookup: DNS is never asked.
        case ends(source: String, filesFirst: Bool)
        /// Sources take the name and the lookup goes on after their wait (5 s each per family).
        case waits(sources: [String], filesFirst: Bool)

        public var filesFirst: Bool {
            switch self {
            case .ends(_, let first), .waits(_, let first): return first
            }
        }
    }

    public func effect(of line: NSSwitchHosts?, on name: DomainName) -> Effect? {
        guard let line else { return nil }
        var filesSeen = false
        var filesFirst: Bool?
        var waiting: [String] = []
        for source in line.sources {
            if source.name == "dns" || source.name == "resolve" { break }
            if source.name == "files" { filesSeen = true }
            guard takes(name, module: source.name) else { continue }
            filesFirst = filesFirst ?? filesSeen
            if Self.returnsOnNotFound(source) { return .ends(source: source.name, filesFirst: filesFirst!) }
            waiting.append(source.name)
        }
        guard let filesFirst else { return nil }
        return .waits(sources: waiting, filesFirst: filesFirst)
    }

    /// Whether the module asks avahi for the name (nss-mdns's verify_name_allowed; the
    /// minimal modules and a node without mdns.allow: two-label `.local` names only).
    public func takes(_ name: DomainName, module: String) -> Bool {
        let text = name.description.lowercased()
        let twoLabelLocal = text.hasSuffix(".local") && text.split(separator: ".").count == 2
        if Self.minimal.contains(module) { return twoLabelLocal }
        guard Self.full.contains(module) else { return false }
        guard let allow else { return twoLabelLocal }
        return allow.contains { entry in
            if entry == "*" { return true }
            let suffix = (entry.hasPrefix(".") ? entry : "." + entry).lowercased()
            return text.hasSuffix(suffix)
        }
    }

    /// glibc's action for NOTFOUND after this source: `[NOTFOUND=return]`, or `[!STATUS=return]`
    /// for another status (it applies to every status but that one).
    static func returnsOnNotFound(_ source: NSSwitchHosts.Source) -> Bool {
        var action = "continue"
        for c in source.criteria where (c.status == "notfound") != c.negated { action = c.action }
        return action == "return"
    }
}
