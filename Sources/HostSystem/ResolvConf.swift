import Vocabulary

/// Parsing of resolv.conf(5), shared by the probes and the DNS setup.

/// The resolver settings of a resolv.conf, as Go's resolver reads them.
public struct ResolvConf: Equatable, Sendable {
    public var nameservers: [IPAddress] = []
    public var search: [String] = []
    public var ndots = 1

    public init(parsing text: String) {
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            switch key {
            case "nameserver" where fields.count >= 2:
                // A zone index (fe80::1%eth0) is dropped: link-local servers are not used for this.
                if let ip = try? IPAddress(String(fields[1].split(separator: "%").first ?? "")) { nameservers.append(ip) }
            case "search", "domain":
                // The last search or domain line wins, as in glibc and Go.
                search = fields.dropFirst().map { $0.hasSuffix(".") ? String($0.dropLast()) : String($0) }.filter { !$0.isEmpty }
            case "options":
                for option in fields.dropFirst() where option.hasPrefix("ndots:") {
                    if let n = Int(option.dropFirst(6)) { ndots = min(max(n, 0), 15) }
                }
            default: break
            }
        }
    }

    /// The names Go tries, in order: as given first when it has at least `ndots` dots, else the
    /// search list first.
    public func candidates(for name: DomainName) -> [DomainName] {
        let searched = search.compactMap { try? DomainName(name.name + "." + $0) }
        return name.labels.count - 1 >= ndots ? [name] + searched : searched + [name]
    }
}
