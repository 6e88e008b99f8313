import HostSystem

/// Resolves a name the way a Go program on the host (containerd, kubelet) does: the host's
/// `/etc/hosts`, then the nameservers of its `/etc/resolv.conf` in order, stopping at the first
/// answer, NXDOMAIN included (Go does not ask the next server after NXDOMAIN).
public struct HostResolver: Sendable {
    public let files: HostFiles
    public let client: DNSClient

    public init(files: HostFiles, client: DNSClient) {
        self.files = files
        self.client = client
    }

    public struct Resolution: Sendable {
        public var answer: DNSAnswer
        /// Where the answer came from: `/etc/hosts` or a nameserver's address.
        public var source: String
        public var asked: [String]
    }

    public func resolve(_ name: DomainName) throws -> Resolution {
        if let hosts = try files.readString(try HostPath("/etc/hosts"), limit: 4 << 20) {
            let found = hostsEntries(hosts, name: name)
            if !found.isEmpty { return Resolution(answer: .addresses(found), source: "/etc/hosts", asked: []) }
        }
        guard let conf = try files.readString(try HostPath("/etc/resolv.conf"), limit: 1 << 20) else {
            return Resolution(answer: .failure("the host has no /etc/resolv.conf"), source: "", asked: [])
        }
        let servers = resolvConfServers(conf)
        guard !servers.isEmpty else {
            return Resolution(answer: .failure("the host's /etc/resolv.conf names no nameserver"), source: "", asked: [])
        }
        var asked: [String] = []
        var last = DNSAnswer.failure("no nameserver answered")
        for server in servers.prefix(3) {  // glibc and Go use at most three
            asked.append(server.description)
            let answer = client.lookup(name, server: server)
            switch answer {
            case .addresses, .nxdomain, .noData:
                return Resolution(answer: answer, source: server.description, asked: asked)
            default:
                last = answer
            }
        }
        return Resolution(answer: last, source: asked.last ?? "", asked: asked)
    }

    func hostsEntries(_ text: String, name: DomainName) -> [IPAddress] {
        var out: [IPAddress] = []
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let ip = try? IPAddress(String(fields[0])) else { continue }
            if fields.dropFirst().contains(where: { $0.lowercased() == name.name }) { out.append(ip) }
        }
        return out
    }

    func resolvConfServers(_ text: String) -> [IPAddress] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { return nil }
            // A zone index (fe80::1%eth0) is dropped: link-local servers are not used for this.
            return try? IPAddress(String(fields[1].split(separator: "%").first ?? ""))
        }
    }
}

/// The two DNS checks: the cluster DNS asked directly, and the host's own resolution path.
public enum DNSProbe {
    public static func cluster(name: DomainName, server: IPAddress, client: DNSClient) -> (CheckResult, [IPAddress]) {
        var watch = Stopwatch()
        let answer = client.lookup(name, server: server)
        watch.lap("resolve")
        var details = ["server": server.description, "answer": answer.summary]
        switch answer {
        case .addresses(let a):
            details["addresses"] = a.map(\.description).joined(separator: ",")
            return (CheckResult(name: "dns-cluster", outcome: .pass, reason: "the cluster DNS \(server) resolves \(name) to \(answer.summary)",
                                durationSeconds: watch.elapsed, phases: watch.phases, details: details), a)
        case .nxdomain:
            return (fail("dns-cluster", "the cluster DNS \(server) answered NXDOMAIN for \(name): no such Service; check the registry's Service name and namespace", watch, details), [])
        case .timeout, .unreachable:
            return (fail("dns-cluster", "the cluster DNS \(server) did not answer (\(answer.summary)): is the address right (kubelet's clusterDNS) and is kube-proxy ready on this node?", watch, details), [])
        default:
            return (fail("dns-cluster", "the cluster DNS \(server) answered \(answer.summary) for \(name)", watch, details), [])
        }
    }

    public static func host(name: DomainName, resolver: HostResolver) -> (CheckResult, [IPAddress]) {
        var watch = Stopwatch()
        let resolution: HostResolver.Resolution
        do {
            resolution = try resolver.resolve(name)
        } catch {
            watch.lap("resolve")
            return (fail("dns-host", "cannot read the host's resolver configuration: \(error)", watch, [:]), [])
        }
        watch.lap("resolve")
        var details = ["source": resolution.source, "asked": resolution.asked.joined(separator: ","), "answer": resolution.answer.summary]
        switch resolution.answer {
        case .addresses(let a):
            details["addresses"] = a.map(\.description).joined(separator: ",")
            return (CheckResult(name: "dns-host", outcome: .pass,
                                reason: "the host resolves \(name) to \(resolution.answer.summary) (via \(resolution.source))",
                                durationSeconds: watch.elapsed, phases: watch.phases, details: details), a)
        case .nxdomain:
            return (fail("dns-host", "the host's resolver (\(resolution.source)) answered NXDOMAIN for \(name): containerd will not find the registry; the cluster domain is not routed to the cluster DNS", watch, details), [])
        default:
            return (fail("dns-host", "the host cannot resolve \(name): \(resolution.answer.summary) (asked \(resolution.asked.joined(separator: ", ")))", watch, details), [])
        }
    }

    static func fail(_ name: String, _ reason: String, _ watch: Stopwatch, _ details: [String: String]) -> CheckResult {
        CheckResult(name: name, outcome: .fail, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
    }
}
