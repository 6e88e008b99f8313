import Containerd
import FoundationEssentials
import Glibc
import HTTPWire
import HostSystem
import Transport
import Vocabulary

/// The registry's name resolved the way the node's containerd resolves it. Go decides per name
/// between its own resolver and the C library's (GoHostLookup); on the C library's path the
/// node's own `getent` runs inside the host root, so that the node's glibc, its nsswitch.conf
/// and its NSS modules (resolve, mdns, myhostname...) answer exactly as they answer containerd.
public struct RuntimeLookup {
    public let files: HostFiles
    public let runtime: ContainerRuntime?
    public let runner: CommandRunner
    public let client: DNSClient
    /// Seconds the node's `getent` may take, the probe's budget for the lookup: the runner's
    /// limit (ProcessRunner's), unless given.
    public let budgetSeconds: Double?

    public init(files: HostFiles, runtime: ContainerRuntime?, runner: CommandRunner, client: DNSClient, budgetSeconds: Double? = nil) {
        self.files = files
        self.runtime = runtime
        self.runner = runner
        self.client = client
        self.budgetSeconds = budgetSeconds ?? (runner as? ProcessRunner)?.timeoutSeconds
    }

    /// The node's files that decide a lookup, with the runtime's build and environment: read
    /// once per check, for Go's choice and for the C library's path alike.
    func inputs() -> GoHostLookup.Inputs {
        .init(
            build: runtime?.build, environment: runtime?.environment ?? [:], nsswitch: text("/etc/nsswitch.conf"),
            resolvConf: text("/etc/resolv.conf"), mdnsAllowExists: (try? files.exists(try HostPath("/etc/mdns.allow"))) == true,
            hostname: text("/etc/hostname")?.trimmingWhitespace())
    }

    /// The `dns-host` check (or `alias:NAME`) and the addresses found.
    public func check(name: DomainName, checkName: String = "dns-host") -> (CheckResult, [IPAddress]) {
        let node = inputs()
        let decision = GoHostLookup.decide(name: name.name, node)
        let who = runtime?.summary ?? "containerd (not found on the node; assumed a cgo build)"
        switch decision {
        case .go(let order, let because):
            var (result, found) = DNSProbe.host(
                name: name, resolver: HostResolver(files: files, client: client, order: order), checkName: checkName)
            result.details["resolver"] = "go"
            result.details["why"] = "\(who): Go's own resolver (\(order.joined(separator: " then "))), \(because)"
            return (result, found)
        case .cgo(let because):
            return glibc(
                name: name, checkName: checkName, node: node, why: "\(who) asks the C library (getaddrinfo, nsswitch.conf): \(because)")
        }
    }

    func text(_ path: String) -> String? { try? files.readString(try HostPath(path), limit: 1 << 20) }

    /// The sources of the hosts line that can hold a lookup of `name` (not `files`, not
    /// `myhostname`, which answer from the node's own data), and why, where nss-mdns's rules
    /// (MulticastDNSSources, measured on libnss-mdns 0.15.1) say which one takes it.
    static func waitingSources(_ name: DomainName, nss: NSSwitchHosts?, mdnsAllow: String?) -> (sources: [String], why: String) {
        let mdns = MulticastDNSSources(allowFile: mdnsAllow)
        let allow = mdns.allow.map { "/etc/mdns.allow (\($0.joined(separator: " ")))" } ?? "no /etc/mdns.allow"
        let fix = "leave the registry's domain out of /etc/mdns.allow (its entries are name suffixes)"
        switch mdns.effect(of: nss, on: name) {
        case .waits(let sources, let filesFirst)?:
            return (
                sources,
                "\(sources.joined(separator: ", ")) takes the name before DNS (with \(allow)), and avahi-daemon answers not found only after 5 s per address family, then the lookup goes on; \(fix)\(filesFirst ? ", or let files answer it first (--dns-mode hosts)" : "")"
            )
        case .ends(let source, _)?:
            return (
                [source],
                "\(source) takes the name before DNS (with \(allow)), and avahi-daemon answers not found only after 5 s per address family; its [NOTFOUND=return] then ends the lookup: \(fix), or remove [NOTFOUND=return]"
            )
        case nil:
            let sources = (nss?.sources.map(\.name) ?? ["files", "dns"]).filter { $0 != "files" && $0 != "myhostname" }
            return (
                sources,
                "a source of that line waits (\(sources.joined(separator: ", "))): a DNS server that does not answer (glibc gives each 5 s a try), an NSS module whose service does not answer"
            )
        }
    }

    func glibc(name: DomainName, checkName: String, node: GoHostLookup.Inputs, why: String) -> (CheckResult, [IPAddress]) {
        var watch = Stopwatch()
        let nss = node.nsswitch.flatMap { NSSwitchHosts(parsing: $0) }
        let line = nss?.description ?? "dns files (no hosts line)"
        var details = ["resolver": "glibc", "why": why, "nsswitch_hosts": line]
        func failed(_ reason: String) -> (CheckResult, [IPAddress]) {
            (
                CheckResult(
                    name: checkName, outcome: .fail, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases, details: details),
                []
            )
        }
        let ran: GetentResult?
        do { ran = try getent(name.name, service: nil) } catch {
            // An overrun is an answer, not an absence: the node's getaddrinfo waits as
            // containerd's does (an NSS source that waits, say mDNS for a `.local` name), so the
            // lookup is judged failed with what waits, never by a model instead. A getent that
            // could not be run at all fails too: the lookup containerd makes is not known.
            let seconds = watch.elapsed
            details["answer"] = "\(error)"
            guard let budget = budgetSeconds, seconds + 0.05 >= budget else {
                return failed(
                    "the lookup containerd makes for \(name) cannot be checked: the node's getent (glibc, following nsswitch.conf, hosts: \(line)) could not be run in the host root (\(error))"
                )
            }
            let waits = Self.waitingSources(name, nss: nss, mdnsAllow: node.mdnsAllowExists ? text("/etc/mdns.allow") ?? "" : nil)
            details["overrun_seconds"] = seconds.fixed(1)
            details["budget_seconds"] = budget.fixed(1)
            details["waiting_sources"] = waits.sources.joined(separator: ",")
            return failed(
                "containerd cannot resolve \(name) in time: the node's glibc lookup, as containerd makes it (getent in the host root, hosts: \(line)), had not answered after \(seconds.fixed(1)) s, the probe's budget (--timeout), and was stopped: \(waits.why); containerd's lookup waits as long, and every pull from the registry with it"
            )
        }
        guard let getent = ran else {
            // No getent in the host root (or no chroot here): Go's view is the next best.
            var (r, a) = DNSProbe.host(name: name, resolver: HostResolver(files: files, client: client), checkName: checkName)
            r.details["resolver"] = "go (getent not available in the host root)"
            return (r, a)
        }
        watch.lap("resolve")
        switch getent {
        case .success(let addresses):
            let source = answeringSource(name, sources: nss?.sources.map(\.name) ?? [], hostname: node.hostname)
            let resolv = node.resolvConf.map { ResolvConf(parsing: $0) }
            let label: String
            switch source {
            case "files": label = "/etc/hosts"
            case "dns": label = resolv?.nameservers.first?.description ?? "dns"
            case "resolve": label = "systemd-resolved (nss-resolve)"
            default: label = source
            }
            details["nss_source"] = source
            details["source"] = label
            details["addresses"] = addresses.map(\.description).joined(separator: ",")
            details["answer"] = addresses.map(\.description).joined(separator: ", ")
            return (
                CheckResult(
                    name: checkName, outcome: .pass,
                    reason:
                        "the host resolves \(name) to \(addresses.map(\.description).joined(separator: ", ")) as containerd does (glibc, hosts: \(line); answered by \(label))",
                    durationSeconds: watch.elapsed, phases: watch.phases, details: details), addresses
            )
        case .failure(let why):
            // What the resolv.conf servers say, to tell the person where it breaks.
            let (diagnosis, _) = DNSProbe.host(name: name, resolver: HostResolver(files: files, client: client), checkName: checkName)
            details["answer"] = why
            details["dns_diagnosis"] = diagnosis.reason
            return failed(
                "containerd cannot resolve \(name): glibc, following nsswitch.conf (hosts: \(line)), finds no address (\(why)); \(Self.hint(name, nss: nss, dns: diagnosis, mdnsAllow: node.mdnsAllowExists ? text("/etc/mdns.allow") ?? "" : nil))"
            )
        }
    }

    /// Which source of the hosts line answered, for the report: the first, in order, that has
    /// the name when asked alone. `files` (the node's /etc/hosts) and `myhostname` (only the
    /// host's own names) are told without running anything; the last source left needs no
    /// asking either (the whole line answered, so it is that one); any other is asked alone
    /// with `getent -s`.
    func answeringSource(_ name: DomainName, sources: [String], hostname: String?) -> String {
        for (i, source) in sources.enumerated() {
            switch source {
            case "files":
                let hosts = (try? files.readString(try HostPath("/etc/hosts"), limit: 4 << 20)) ?? nil
                if !HostResolver(files: files, client: client).hostsEntries(hosts ?? "", name: name).isEmpty { return source }
            case "myhostname":
                if Self.myhostnameAnswers(name.name, hostname: hostname) { return source }
            default:
                if i == sources.count - 1 { return source }
                if case .success(let a)? = try? getent(name.name, service: source), !a.isEmpty { return source }
            }
        }
        return "nss"
    }

    /// The names nss-myhostname answers (nss-myhostname(8)): the host's name, `localhost` and
    /// names under `.localhost`, `_gateway`, `_outbound`, and resolved's stub names.
    static func myhostnameAnswers(_ name: String, hostname: String?) -> Bool {
        let n = name.lowercased()
        let local = ["localhost", "localhost.localdomain", "_gateway", "_outbound", "_localdnsstub", "_localdnsproxy"]
        return local.contains(n) || n.hasSuffix(".localhost") || n.hasSuffix(".localhost.localdomain")
            || hostname.map { $0.lowercased() == n } == true
    }

    static func hint(_ name: DomainName, nss: NSSwitchHosts?, dns: CheckResult, mdnsAllow: String?) -> String {
        let names = nss?.sources.map(\.name) ?? ["dns", "files"]
        if !names.contains("dns") && !names.contains("resolve") {
            return "the hosts line asks no DNS source: add `dns` (or `resolve`) to it, or use --dns-mode hosts"
        }
        if dns.outcome == .pass, case .ends? = MulticastDNSSources(allowFile: mdnsAllow).effect(of: nss, on: name) {
            return "yet the resolv.conf servers answer it (\(dns.reason)): "
                + waitingSources(name, nss: nss, mdnsAllow: mdnsAllow).why
        }
        if dns.outcome == .pass {
            return
                "yet the resolv.conf servers answer it (\(dns.reason)): a source before dns ends the lookup (a [NOTFOUND=return] or mdns4_minimal), fix the hosts line"
        }
        return dns.reason
    }

    enum GetentResult {
        case success([IPAddress])
        case failure(String)
    }

    /// `getent -A ahosts NAME` in the host root (`-s hosts:SERVICE` to ask one source); nil when
    /// it cannot run there. Go's cgo lookup asks getaddrinfo without AI_ADDRCONFIG, hence -A.
    func getent(_ name: String, service: String?) throws -> GetentResult? {
        guard (try? files.exists(try HostPath("/usr/bin/getent"))) == true, let chroot = findExecutable("chroot") else { return nil }
        let args = [files.root.directory, "/usr/bin/getent", "-A"] + (service.map { ["-s", "hosts:" + $0] } ?? []) + ["ahosts", name]
        let r = try runner.run(chroot, args)
        switch r.status {
        case 0:
            var seen: [IPAddress] = []
            for line in r.stdout.split(separator: "\n") {
                guard let field = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first,
                    let ip = try? IPAddress(String(field)), !seen.contains(ip)
                else { continue }
                seen.append(ip)
            }
            return seen.isEmpty ? .failure("no address") : .success(seen)
        case 2: return .failure("not found, or no source answered")
        default:
            if r.stderr.isEmpty && r.stdout.isEmpty { return .failure("getent exited \(r.status)") }
            return .failure((r.stderr + r.stdout).trimmingWhitespace())
        }
    }
}
