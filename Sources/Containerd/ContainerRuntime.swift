import FoundationEssentials
import HostSystem
import Vocabulary

/// The node's containerd as it really runs: its process (from the host's /proc: a DaemonSet pod
/// sees it with hostPID), the environment it was started with, and how its binary was built.
/// These decide how it resolves the registry's name and whether it goes through a proxy.
public struct ContainerRuntime: Sendable {
    public var pid: Int?
    /// NAME=value pairs of the process's environment (empty when no process runs).
    public var environment: [String: String]
    /// The binary, as the node sees it.
    public var binary: HostPath?
    public var build: GoBuildInfo?
    /// Why the running process's environment could not be read, when it could not: another
    /// process's /proc/PID/environ (and exe) needs ptrace access, i.e. CAP_SYS_PTRACE unless the
    /// reader holds every capability the process holds, and the DaemonSet grants neither. Then
    /// `environment` is not the process's: nothing can be said of its proxy from here.
    public var environmentUnreadable: String?

    public init(pid: Int?, environment: [String: String], binary: HostPath?, build: GoBuildInfo?, environmentUnreadable: String? = nil) {
        self.pid = pid
        self.environment = environment
        self.binary = binary
        self.build = build
        self.environmentUnreadable = environmentUnreadable
    }

    /// The running containerd, else its binary where a node keeps it, not yet started; nil when
    /// neither is found. The running one is the node's as `RunningContainerd` decides it, the rule
    /// the trust side writes by: running as root, its socket (its `-a`, else the default)
    /// listening in this network namespace and held by it where that can be read. A process of
    /// another user that names itself containerd, or another node's seen through a shared /proc,
    /// is not modelled: its environment and proxy are not the runtime's.
    /// `running`: the host's runtime processes, from one pass over /proc (`HostProcesses.named`);
    /// `found`: the node's containerd already picked from them (nil: picked here).
    public static func discover(processes: HostProcesses, running: [HostProcess], found: [RunningContainerd]? = nil)
        -> ContainerRuntime?
    {
        let files = processes.files
        let candidates = (found ?? RunningContainerd.find(files, among: running)).map(\.pid)
        if let pid = candidates.first {
            var unreadable: String?
            let environ: [UInt8]?
            do { environ = try processes.environment(pid) } catch {
                environ = nil
                unreadable = "\(error)"
            }
            // /proc/PID/exe names the binary in the process's own mount view: the node's path.
            // Without ptrace access to the process, its command line (readable by all) names it
            // when it was started by an absolute path, as systemd units and k3s start it.
            let exe = (processes.executable(pid) ?? processes.commandLine(pid).first.flatMap { $0.hasPrefix("/") ? $0 : nil })
                .flatMap { try? HostPath($0) }
            return ContainerRuntime(
                pid: pid, environment: parseEnviron(environ ?? []), binary: exe,
                build: exe.flatMap { buildInfo(files, $0) }, environmentUnreadable: unreadable)
        }
        for candidate in ["/usr/bin/containerd", "/usr/local/bin/containerd"] {
            let path = try! HostPath(candidate)
            if (try? files.exists(path)) == true {
                return ContainerRuntime(pid: nil, environment: [:], binary: path, build: buildInfo(files, path))
            }
        }
        return nil
    }

    package static func buildInfo(_ files: HostFiles, _ path: HostPath) -> GoBuildInfo? {
        try? GoBuildInfo.read { offset, count in try files.readRegion(path, offset: offset, count: count) }
    }

    /// /proc/PID/environ: NUL-separated NAME=value entries.
    public static func parseEnviron(_ bytes: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        for entry in bytes.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { continue }
            out[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        return out
    }

    /// The process's description for reports: `containerd (pid 123, go1.19.8, cgo)`.
    public var summary: String {
        var parts: [String] = []
        if let pid { parts.append("pid \(pid)") } else { parts.append("not running") }
        if let build {
            parts.append(build.goVersion)
            parts.append(build.canUseCgo ? "cgo" : "pure Go")
        }
        return "containerd (" + parts.joined(separator: ", ") + ")"
    }
}

/// How a Go program looks a host name up: through the C library (cgo: getaddrinfo, the node's
/// nsswitch.conf and its modules) or with Go's own resolver (/etc/hosts and the resolv.conf
/// servers). Go's `hostLookupOrder` (net/conf.go), as it stands in Go 1.19 to 1.24.
public enum GoHostLookup: Equatable, Sendable {
    case cgo(because: String)
    /// Go's resolver, asking `order` (`files`, `dns`) in turn.
    case go(order: [String], because: String)

    public struct Inputs: Sendable {
        public var build: GoBuildInfo?
        public var environment: [String: String]
        /// The node's nsswitch.conf text; nil when it does not exist.
        public var nsswitch: String?
        public var resolvConf: String?
        public var mdnsAllowExists: Bool
        public var hostname: String?

        public init(
            build: GoBuildInfo?, environment: [String: String], nsswitch: String?, resolvConf: String?,
            mdnsAllowExists: Bool = false, hostname: String? = nil
        ) {
            self.build = build
            self.environment = environment
            self.nsswitch = nsswitch
            self.resolvConf = resolvConf
            self.mdnsAllowExists = mdnsAllowExists
            self.hostname = hostname
        }
    }

    /// The resolver a Go binary built as `inputs.build` uses for `name` on this node. Without build
    /// information (a binary not found or not readable), cgo is assumed, as Debian's, Ubuntu's
    /// and upstream's dynamic containerd builds have it.
    public static func decide(name: String, _ inputs: Inputs) -> GoHostLookup {
        let build = inputs.build
        let minor = build?.release.map { $0.major == 1 ? $0.minor : 99 } ?? 99
        let canUseCgo = build?.canUseCgo ?? true
        let netdns = godebug(inputs.environment["GODEBUG"], "netdns") ?? godebug(build?.settings["DefaultGODEBUG"], "netdns")
        let nss = inputs.nsswitch.map { NSSwitchHosts(parsing: $0) }
        // Go's own resolver: files then DNS, in the order the nsswitch line gives (1.21+ ignores
        // what it does not know; older releases fall back to files, DNS).
        func pure(_ because: String) -> GoHostLookup {
            var order = (nss ?? nil)?.sources.map(\.name).filter { $0 == "files" || $0 == "dns" } ?? []
            if order.isEmpty || minor < 21 && (nss ?? nil)?.sources.contains(where: { $0.name != "files" && $0.name != "dns" }) == true {
                order = ["files", "dns"]
            }
            return .go(order: order, because: because)
        }
        guard canUseCgo else {
            return pure(
                build.map { "built \($0.settings["CGO_ENABLED"] == "1" ? "with -tags netgo" : "without cgo")" } ?? "built without cgo")
        }
        if let netdns {
            let modes = netdns.split(separator: "+")
            if modes.contains("go") { return pure("GODEBUG=netdns=\(netdns)") }
            if modes.contains("cgo") { return .cgo(because: "GODEBUG=netdns=\(netdns)") }
        }
        if build?.tags.contains("netcgo") == true { return .cgo(because: "built with -tags netcgo") }
        if inputs.environment["LOCALDOMAIN"] != nil { return .cgo(because: "LOCALDOMAIN is set in its environment") }
        for v in ["RES_OPTIONS", "HOSTALIASES"] where inputs.environment[v]?.isEmpty == false {
            return .cgo(because: "\(v) is set in its environment")
        }
        if let resolvConf = inputs.resolvConf, let unknown = unknownResolvConfEntry(resolvConf, goMinor: minor) {
            return .cgo(because: "Go \(build?.goVersion ?? "") does not know `\(unknown)` in /etc/resolv.conf")
        }
        let lower = name.lowercased().hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased()
        let isLocal = lower.hasSuffix(".local")
        if isLocal && minor <= 22 {
            return .cgo(because: "the name ends in .local (Go \(build?.goVersion ?? "before 1.23") hands those to the C library)")
        }
        guard let text = inputs.nsswitch else { return pure("the node has no /etc/nsswitch.conf") }
        guard let hosts = NSSwitchHosts(parsing: text), !hosts.sources.isEmpty else { return pure("nsswitch.conf has no hosts line") }
        for (i, source) in hosts.sources.enumerated() {
            let last = i == hosts.sources.count - 1
            switch source.name {
            case "files", "dns":
                let standard = source.criteria.allSatisfy { c in
                    if c.negated { return false }
                    if last && c.action == "return" { return true }
                    switch c.status {
                    case "success": return c.action == "return"
                    case "notfound", "unavail", "tryagain": return c.action == "continue"
                    default: return false
                    }
                }
                if !standard {
                    return .cgo(because: "nsswitch.conf's hosts line has criteria Go leaves to the C library (\(hosts.description))")
                }
            case "myhostname":
                if ["localhost", "_gateway", "_outbound"].contains(lower) || lower.hasSuffix(".localhost")
                    || lower == inputs.hostname?.lowercased()
                {
                    return .cgo(because: "myhostname answers this name")
                }
            case let s where s.hasPrefix("mdns"):
                if isLocal { return .cgo(because: "the name ends in .local and nsswitch.conf has \(s)") }
                if inputs.mdnsAllowExists { return .cgo(because: "/etc/mdns.allow exists") }
            default:
                return .cgo(because: "nsswitch.conf's hosts line has \(source.name), which only the C library can ask")
            }
        }
        return pure("nsswitch.conf's hosts line (\(hosts.description)) is one Go's resolver handles")
    }

    /// The first resolv.conf keyword or option Go does not know, which sends lookups to cgo.
    package static func unknownResolvConfEntry(_ text: String, goMinor: Int) -> String? {
        var knownOptions: Set<String> = ["rotate", "single-request", "single-request-reopen", "use-vc", "usevc", "tcp"]
        if goMinor >= 20 { knownOptions.formUnion(["edns0", "trust-ad", "no-reload"]) }
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            switch key {
            case "nameserver", "domain", "search", "lookup": continue
            case "options":
                for option in fields.dropFirst() {
                    let name = option.split(separator: ":").first.map(String.init) ?? ""
                    if ["ndots", "timeout", "attempts"].contains(name) && option.contains(":") { continue }
                    if !knownOptions.contains(String(option)) { return "options \(option)" }
                }
            default: return String(key)
            }
        }
        return nil
    }

    /// The value of `key` in a GODEBUG list (`a=1,netdns=go`); the last one wins, as in Go.
    package static func godebug(_ value: String?, _ key: String) -> String? {
        guard let value else { return nil }
        return value.split(separator: ",").compactMap { kv -> String? in
            let p = kv.split(separator: "=", maxSplits: 1)
            return p.count == 2 && p[0] == key ? String(p[1]) : nil
        }.last
    }
}

/// Whether Go's `http.ProxyFromEnvironment` sends a request for `https://host:port` to a proxy,
/// and which: `HTTPS_PROXY` (then `https_proxy`), unless `NO_PROXY` (then `no_proxy`) exempts
/// the host. Loopback hosts are never proxied.
public enum GoProxyRule {
    public static func proxy(forHost host: String, port: Int, environment env: [String: String]) -> String? {
        func any(_ names: String...) -> String? { names.lazy.compactMap { env[$0] }.first { !$0.isEmpty } }
        guard let proxy = any("HTTPS_PROXY", "https_proxy") else { return nil }
        let h = host.lowercased()
        if h == "localhost" || h.hasPrefix("127.") || h == "::1" { return nil }
        let noProxy = any("NO_PROXY", "no_proxy") ?? ""
        for raw in noProxy.split(separator: ",") {
            var entry = raw.trimmingBlanks().lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return nil }
            // host:port entries match only that port.
            if let colon = entry.lastIndex(of: ":"), !entry.contains("]"), entry.filter({ $0 == ":" }).count == 1 {
                guard Int(entry[entry.index(after: colon)...]) == port else { continue }
                entry = String(entry[..<colon])
            }
            if entry.contains("/") || (try? IPAddress(entry)) != nil {
                if entry == h { return nil }
                continue
            }
            if entry.hasPrefix("*.") { entry = String(entry.dropFirst()) }
            if entry.hasPrefix(".") {
                if h.hasSuffix(entry) { return nil }
            } else if h == entry || h.hasSuffix("." + entry) {
                return nil
            }
        }
        return proxy
    }
}
