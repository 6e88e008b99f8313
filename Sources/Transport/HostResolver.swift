import HostSystem
import Vocabulary

/// Resolves a name the way a Go program on the host (containerd, kubelet) does: the host's
/// `/etc/hosts`, then each candidate name (search list, ndots) asked of the nameservers of its
/// `/etc/resolv.conf` in order. A server's NXDOMAIN is final for that name (Go does not ask the
/// next server), and moves on to the next candidate name.
public struct HostResolver: Sendable {
    public let files: HostFiles
    public let client: DNSClient
    /// The sources in order, as nsswitch.conf's hosts line gives them to Go: `files`, `dns`.
    public let order: [String]

    public init(files: HostFiles, client: DNSClient, order: [String] = ["files", "dns"]) {
        self.files = files
        self.client = client
        self.order = order
    }

    public struct Resolution: Sendable {
        public var answer: DNSAnswer
        /// Where the answer came from: `/etc/hosts` or a nameserver's address.
        public var source: String
        /// The servers asked, as `server` or `name@server` when a search suffix was added.
        public var asked: [String]
        public var name: String
    }

    public func resolve(_ name: DomainName) throws -> Resolution {
        let useFiles = order.contains("files")
        let useDNS = order.contains("dns")
        let hosts = useFiles ? try files.readString(try HostPath("/etc/hosts"), limit: 4 << 20) ?? "" : ""
        if !useDNS {
            let found = hostsEntries(hosts, name: name)
            return Resolution(
                answer: found.isEmpty ? .failure("not in /etc/hosts, and the hosts line asks no DNS") : .addresses(found),
                source: "/etc/hosts", asked: [], name: name.name)
        }
        if order.first == "dns" {
            // DNS first; /etc/hosts only when DNS gives no address.
            let viaDNS = try resolveDNS(name, hosts: "")
            if case .addresses = viaDNS.answer { return viaDNS }
            let found = hostsEntries(hosts, name: name)
            return found.isEmpty
                ? viaDNS : Resolution(answer: .addresses(found), source: "/etc/hosts", asked: viaDNS.asked, name: name.name)
        }
        return try resolveDNS(name, hosts: hosts)
    }

    /// The first address of `host` (an IP literal as it is), or nil: for the hosts a probe is
    /// sent on to (a token realm, a proxy).
    public func firstAddress(_ host: String) -> IPAddress? {
        if let ip = try? IPAddress(host) { return ip }
        guard let n = try? DomainName(host), let r = try? resolve(n), case .addresses(let a) = r.answer else { return nil }
        return a.first
    }

    /// /etc/hosts (`hosts`, empty to skip it) then DNS, per candidate name.
    package func resolveDNS(_ name: DomainName, hosts: String) throws -> Resolution {
        guard let text = try files.readString(try HostPath("/etc/resolv.conf"), limit: 1 << 20) else {
            let found = hostsEntries(hosts, name: name)
            if !found.isEmpty { return Resolution(answer: .addresses(found), source: "/etc/hosts", asked: [], name: name.name) }
            return Resolution(answer: .failure("the host has no /etc/resolv.conf"), source: "", asked: [], name: name.name)
        }
        let conf = ResolvConf(parsing: text)
        var asked: [String] = []
        var last = DNSAnswer.failure("the host's /etc/resolv.conf names no nameserver")
        for candidate in conf.candidates(for: name) {
            let found = hostsEntries(hosts, name: candidate)
            if !found.isEmpty { return Resolution(answer: .addresses(found), source: "/etc/hosts", asked: asked, name: candidate.name) }
            servers: for server in conf.nameservers.prefix(3) {  // glibc and Go use at most three
                asked.append(candidate == name ? server.description : "\(candidate)@\(server)")
                let answer = client.lookup(candidate, server: server)
                switch answer {
                case .addresses:
                    return Resolution(answer: answer, source: server.description, asked: asked, name: candidate.name)
                case .nxdomain, .noData:
                    last = answer
                    break servers
                default:
                    last = answer
                }
            }
        }
        return Resolution(answer: last, source: asked.last ?? "", asked: asked, name: name.name)
    }

    package func hostsEntries(_ text: String, name: DomainName) -> [IPAddress] {
        var out: [IPAddress] = []
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let ip = try? IPAddress(String(fields[0])) else { continue }
            if fields.dropFirst().contains(where: { $0.lowercased() == name.name }) { out.append(ip) }
        }
        return out
    }
}
