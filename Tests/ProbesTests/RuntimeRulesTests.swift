import Containerd
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Probes
@testable import Transport

/// Go's choice between its own resolver and the C library's (net/conf.go, 1.19 to 1.24), and
/// Go's proxy rule (ProxyFromEnvironment), as the agent predicts them for the node's containerd.
final class RuntimeRulesTests: XCTestCase {
    func build(_ version: String, cgo: Bool = true, tags: String? = nil) -> GoBuildInfo {
        var settings = ["CGO_ENABLED": cgo ? "1" : "0"]
        if let tags { settings["-tags"] = tags }
        return GoBuildInfo(goVersion: version, settings: settings)
    }

    let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"
    let plain = "nameserver 10.0.0.2\nsearch svc.cluster.local\noptions ndots:5\n"

    func decide(
        _ name: String = "registry.ns.svc.cluster.local", build b: GoBuildInfo?, env: [String: String] = [:],
        nsswitch: String? = "hosts: files dns\n", resolv: String? = nil
    ) -> GoHostLookup {
        GoHostLookup.decide(
            name: name, .init(build: b, environment: env, nsswitch: nsswitch, resolvConf: resolv ?? plain, hostname: "node-1"))
    }

    func isCgo(_ d: GoHostLookup) -> Bool { if case .cgo = d { return true } else { return false } }
    func order(_ d: GoHostLookup) -> [String]? { if case .go(let o, _) = d { return o } else { return nil } }

    func testTheGoReleaseTheBuildAndTheEnvironmentDecide() {
        // Debian 12's containerd (go1.19.8, cgo): .local names always go to glibc, and so does
        // every name when resolv.conf has resolved's stub options (Go 1.19 does not know edns0).
        XCTAssertTrue(isCgo(decide(build: build("go1.19.8"))))
        XCTAssertTrue(isCgo(decide("registry.example.com", build: build("go1.19.8"), resolv: stub)))
        XCTAssertEqual(order(decide("registry.example.com", build: build("go1.19.8"))), ["files", "dns"])
        // From 1.20 edns0 and trust-ad are known; from 1.23 .local goes to libc only with an mdns source.
        XCTAssertEqual(order(decide("registry.example.com", build: build("go1.20.2"), resolv: stub)), ["files", "dns"])
        XCTAssertTrue(isCgo(decide(build: build("go1.22.10"))))
        XCTAssertEqual(order(decide(build: build("go1.23.1"))), ["files", "dns"])
        XCTAssertTrue(isCgo(decide(build: build("go1.23.1"), nsswitch: "hosts: files mdns4_minimal [NOTFOUND=return] dns\n")))
        // Sources only the C library knows, and criteria Go leaves to it.
        XCTAssertTrue(isCgo(decide(build: build("go1.24.3"), nsswitch: "hosts: files resolve [!UNAVAIL=return] dns myhostname\n")))
        XCTAssertTrue(isCgo(decide(build: build("go1.24.3"), nsswitch: "hosts: files [NOTFOUND=return] dns\n")))
        XCTAssertEqual(order(decide(build: build("go1.24.3"), nsswitch: "hosts: files dns [NOTFOUND=return]\n")), ["files", "dns"])
        XCTAssertEqual(order(decide(build: build("go1.24.3"), nsswitch: "hosts: dns files\n")), ["dns", "files"])
        XCTAssertEqual(order(decide(build: build("go1.24.3"), nsswitch: nil)), ["files", "dns"])
        XCTAssertTrue(isCgo(decide(build: build("go1.24.3"), resolv: "nameserver 10.0.0.2\noptions inet6\n")))
        XCTAssertTrue(isCgo(decide(build: build("go1.24.3"), resolv: "nameserver 10.0.0.2\nsortlist 10.0.0.0\n")))
        // myhostname matters only for the machine's own names.
        XCTAssertEqual(order(decide(build: build("go1.24.3"), nsswitch: "hosts: files dns myhostname\n")), ["files", "dns"])
        XCTAssertTrue(isCgo(decide("node-1", build: build("go1.24.3"), nsswitch: "hosts: files dns myhostname\n")))
        // The environment and the build tags.
        XCTAssertEqual(order(decide(build: build("go1.19.8"), env: ["GODEBUG": "x=1,netdns=go"])), ["files", "dns"])
        XCTAssertTrue(isCgo(decide("registry.example.com", build: build("go1.24.3"), env: ["GODEBUG": "netdns=cgo+1"])))
        XCTAssertTrue(isCgo(decide("registry.example.com", build: build("go1.24.3"), env: ["LOCALDOMAIN": ""])))
        XCTAssertTrue(isCgo(decide("registry.example.com", build: build("go1.24.3"), env: ["RES_OPTIONS": "ndots:2"])))
        XCTAssertFalse(isCgo(decide("registry.example.com", build: build("go1.24.3"), env: ["RES_OPTIONS": ""])))
        XCTAssertEqual(order(decide(build: build("go1.19.8", cgo: false))), ["files", "dns"])
        XCTAssertEqual(order(decide(build: build("go1.19.8", tags: "netgo,osusergo"))), ["files", "dns"])
        // A pure Go build: what it does not know is skipped (1.21+), or files then DNS (before).
        XCTAssertEqual(order(decide(build: build("go1.24.3", cgo: false), nsswitch: "hosts: dns resolve files\n")), ["dns", "files"])
        XCTAssertEqual(order(decide(build: build("go1.19.8", cgo: false), nsswitch: "hosts: dns resolve files\n")), ["files", "dns"])
        // No build information: a cgo build of a recent Go is assumed.
        XCTAssertTrue(isCgo(decide(build: nil, nsswitch: "hosts: files resolve dns\n")))
    }

    func testNsswitchHostsLines() throws {
        let line = try XCTUnwrap(
            NSSwitchHosts(
                parsing: "# comment\npasswd: files\nhosts:  files mdns4_minimal [NOTFOUND=return] dns [!UNAVAIL=return]myhostname # end\n"))
        XCTAssertEqual(line.sources.map(\.name), ["files", "mdns4_minimal", "dns", "myhostname"])
        XCTAssertEqual(line.sources[1].criteria, [.init(negated: false, status: "notfound", action: "return")])
        XCTAssertEqual(line.sources[2].criteria, [.init(negated: true, status: "unavail", action: "return")])
        XCTAssertEqual(line.description, "files mdns4_minimal [NOTFOUND=return] dns [!UNAVAIL=return] myhostname")
        XCTAssertNil(NSSwitchHosts(parsing: "passwd: files\n"))
        XCTAssertEqual(NSSwitchHosts(parsing: "hosts: files\nhosts: dns\n")?.sources.map(\.name), ["dns"], "the last hosts line wins")
    }

    func testProxyFromEnvironmentAsGoReadsIt() {
        let host = "registry-service.openfaas.svc.cluster.local"
        func proxy(_ env: [String: String], port: Int = 443, host h: String? = nil) -> String? {
            GoProxyRule.proxy(forHost: h ?? host, port: port, environment: env)
        }
        XCTAssertNil(proxy([:]))
        XCTAssertNil(proxy(["HTTP_PROXY": "http://p:3128"]), "HTTP_PROXY is for http:// requests only")
        XCTAssertEqual(proxy(["HTTPS_PROXY": "http://p:3128"]), "http://p:3128")
        XCTAssertEqual(proxy(["https_proxy": "http://q:3128", "HTTPS_PROXY": "http://p:3128"]), "http://p:3128", "upper case first")
        XCTAssertEqual(proxy(["https_proxy": "http://q:3128", "HTTPS_PROXY": ""]), "http://q:3128", "an empty value does not count")
        for exempt in ["*", "svc.cluster.local", ".cluster.local", "*.cluster.local", "foo, \(host)", "\(host):443", "CLUSTER.LOCAL"] {
            XCTAssertNil(proxy(["HTTPS_PROXY": "http://p:3128", "NO_PROXY": exempt]), exempt)
        }
        for not in ["\(host):5000", "cluster.local.example", "10.0.0.0/8", "127.0.0.20", ".openfaas.svc.cluster.loca", "local2"] {
            XCTAssertNotNil(proxy(["HTTPS_PROXY": "http://p:3128", "NO_PROXY": not]), not)
        }
        XCTAssertNil(proxy(["HTTPS_PROXY": "http://p:3128", "no_proxy": ".local"]), "lower-case no_proxy too")
        XCTAssertNil(proxy(["HTTPS_PROXY": "http://p:3128"], host: "localhost"), "loopback is never proxied")
        XCTAssertNil(proxy(["HTTPS_PROXY": "http://p:3128"], host: "127.0.0.20"))
        XCTAssertNil(proxy(["HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.5"], host: "10.0.0.5"))
    }

    /// The runtime the checks model is the node's containerd as the trust side decides it: a
    /// process of another user named containerd, listening on a socket of its own with a proxy
    /// in its environment, is not modelled (before, with the node's containerd stopped it was the
    /// only candidate and its environment was taken as the runtime's); the root one serving its
    /// socket here is.
    func testTheModelledRuntimeIsTheNodesContainerdAsTrustDecidesIt() throws {
        let dir = try makeTemporaryDirectory("runtime")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        func process(_ pid: Int, uid: Int, argv: [String], environ: String) throws {
            try files.writeAtomically(try HostPath("/proc/\(pid)/comm"), "containerd\n")
            try files.writeAtomically(
                try HostPath("/proc/\(pid)/stat"), "\(pid) (containerd) S" + String(repeating: " 0", count: 30) + "\n")
            try files.writeAtomically(try HostPath("/proc/\(pid)/status"), "Name:\tcontainerd\nUid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)\n")
            try files.writeAtomically(try HostPath("/proc/\(pid)/cmdline"), argv.joined(separator: "\u{0}") + "\u{0}")
            try files.writeAtomically(try HostPath("/proc/\(pid)/environ"), environ)
        }
        func unix(_ sockets: [(inode: Int, path: String)]) throws {
            try files.writeAtomically(
                try HostPath("/proc/net/unix"),
                "Num       RefCount Protocol Flags    Type St Inode Path\n"
                    + sockets.map { "0000000000000000: 00000002 00000000 00010000 0001 01 \($0.inode) \($0.path)\n" }.joined())
        }
        try process(44, uid: 1000, argv: ["containerd", "-a", "/home/u/c.sock"], environ: "HTTPS_PROXY=http://127.0.0.1:9\u{0}")
        try unix([(4444, "/home/u/c.sock")])
        let processes = HostProcesses(files: files)
        XCTAssertNil(ContainerRuntime.discover(processes: processes, running: processes.named(["containerd"]))?.pid)

        try process(42, uid: 0, argv: ["/usr/bin/containerd"], environ: "PATH=/usr/bin\u{0}")
        try unix([(4444, "/home/u/c.sock"), (4242, "/run/containerd/containerd.sock")])
        let runtime = try XCTUnwrap(ContainerRuntime.discover(processes: processes, running: processes.named(["containerd"])))
        XCTAssertEqual(runtime.pid, 42)
        XCTAssertEqual(runtime.environment, ["PATH": "/usr/bin"])
    }

    func testEnvironParsing() {
        let bytes = Array("PATH=/bin\u{0}HTTPS_PROXY=http://p:1\u{0}EMPTY=\u{0}=bad\u{0}noequals\u{0}".utf8)
        XCTAssertEqual(ContainerRuntime.parseEnviron(bytes), ["PATH": "/bin", "HTTPS_PROXY": "http://p:1", "EMPTY": ""])
    }
}

/// Which source of the hosts line answered (the report's `source`): told from the node's files
/// where nsswitch's modules are known, else by asking `getent -s` for the one source alone.
final class AnsweringSourceTests: XCTestCase {
    func lookup(hosts: String) throws -> (RuntimeLookup, RecordingGetent) {
        let root = try makeTemporaryDirectory("answering-source")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/usr/bin", withIntermediateDirectories: true)
        try hosts.write(toFile: root + "/etc/hosts", atomically: true, encoding: .utf8)
        try "".write(toFile: root + "/usr/bin/getent", atomically: true, encoding: .utf8)
        let runner = RecordingGetent()
        return (RuntimeLookup(files: HostFiles(root: try HostRoot(root)), runtime: nil, runner: runner, client: DNSClient()), runner)
    }

    func testFilesAndTheLastSourceNeedNoRun() throws {
        let name = try DomainName("registry.ns.svc.cluster.local")
        let (inHosts, r1) = try lookup(hosts: "127.0.0.1 localhost\n10.1.2.3 Registry.NS.svc.cluster.local registry\n")
        XCTAssertEqual(inHosts.answeringSource(name, sources: ["files", "dns"], hostname: "node-1"), "files")
        let (notInHosts, r2) = try lookup(hosts: "127.0.0.1 localhost\n# 10.1.2.3 registry.ns.svc.cluster.local\n")
        XCTAssertEqual(notInHosts.answeringSource(name, sources: ["files", "dns"], hostname: "node-1"), "dns")
        XCTAssertEqual(r1.commands + r2.commands, [])
    }

    func testASourceThatIsNotLastIsAskedAlone() throws {
        let name = try DomainName("registry.ns.svc.cluster.local")
        let (l, runner) = try lookup(hosts: "127.0.0.1 localhost\n")
        runner.answers = ["hosts:resolve": CommandResult(status: 0, stdout: "10.1.2.3 STREAM registry.ns.svc.cluster.local\n")]
        XCTAssertEqual(l.answeringSource(name, sources: ["files", "myhostname", "resolve", "dns"], hostname: "node-1"), "resolve")
        XCTAssertEqual(runner.commands.compactMap { c in c.firstIndex(of: "-s").map { c[$0 + 1] } }, ["hosts:resolve"])
        runner.answers = [:]
        XCTAssertEqual(l.answeringSource(name, sources: ["files", "myhostname", "resolve", "dns"], hostname: "node-1"), "dns")
        XCTAssertTrue(RuntimeLookup.myhostnameAnswers("NODE-1", hostname: "node-1"))
        XCTAssertTrue(RuntimeLookup.myhostnameAnswers("a.localhost", hostname: nil))
        XCTAssertFalse(RuntimeLookup.myhostnameAnswers(name.name, hostname: "node-1"))
    }
}

/// A getent that overruns the probe's budget is a failing lookup with its reason (how long it
/// ran, which source of the hosts line waits), never a fallback to a model of Go's resolver
/// (which would pass where containerd's lookup waits). A getent that cannot be run at all fails
/// too, saying so.
final class GetentOverrunTests: XCTestCase {
    /// ProcessRunner's answer to a program past its limit, after that limit.
    final class StuckGetent: CommandRunner, @unchecked Sendable {
        let seconds: Double
        init(seconds: Double) { self.seconds = seconds }
        func run(_ executable: String, _ arguments: [String]) throws -> CommandResult { try run(executable, arguments, input: nil) }
        func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult {
            usleep(UInt32(seconds * 1e6))
            throw AgentError(
                .commandFailed, "chroot did not finish within \(Int(seconds)) s and was stopped, with what it started",
                hint: "find what hangs on the node (for update-ca-certificates: a hook in /etc/ca-certificates/update.d, a stuck mount)")
        }
    }

    func lookup(_ hosts: String, allow: String?, runner: CommandRunner, budget: Double) throws -> (CheckResult, [IPAddress]) {
        let root = try makeTemporaryDirectory("getent-overrun")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/usr/bin", withIntermediateDirectories: true)
        try "hosts: \(hosts)\n".write(toFile: root + "/etc/nsswitch.conf", atomically: true, encoding: .utf8)
        if let allow { try allow.write(toFile: root + "/etc/mdns.allow", atomically: true, encoding: .utf8) }
        try "".write(toFile: root + "/usr/bin/getent", atomically: true, encoding: .utf8)
        let lookup = RuntimeLookup(
            files: HostFiles(root: try HostRoot(root)), runtime: nil, runner: runner, client: DNSClient(), budgetSeconds: budget)
        return lookup.glibc(name: try DomainName("registry.ns.svc.cluster.local"), checkName: "dns-host", node: lookup.inputs(), why: "cgo")
    }

    func testAnOverrunFailsTheCheckWithItsTimeAndTheSourceThatWaits() throws {
        let (result, addresses) = try lookup("files mdns4 dns", allow: ".local.\n.local\n", runner: StuckGetent(seconds: 0.3), budget: 0.3)
        XCTAssertEqual(result.outcome, .fail)
        XCTAssertEqual(addresses, [])
        XCTAssertEqual(result.details["resolver"], "glibc")
        XCTAssertEqual(result.details["waiting_sources"], "mdns4")
        XCTAssertEqual(result.details["overrun_seconds"], "0.3")
        for said in [
            "had not answered after 0.3 s, the probe's budget (--timeout), and was stopped", "hosts: files mdns4 dns",
            "mdns4 takes the name before DNS (with /etc/mdns.allow (.local. .local))",
            "avahi-daemon answers not found only after 5 s per address family, then the lookup goes on",
            "leave the registry's domain out of /etc/mdns.allow", "or let files answer it first (--dns-mode hosts)",
        ] {
            XCTAssertTrue(result.reason.contains(said), "\(said): \(result.reason)")
        }
        // Not ProcessRunner's words for a hung host tool.
        XCTAssertFalse(result.reason.contains("update-ca-certificates"), result.reason)
        XCTAssertFalse(result.reason.contains("chroot"), result.reason)

        let (ends, _) = try lookup("files mdns4 [NOTFOUND=return] dns", allow: ".local\n", runner: StuckGetent(seconds: 0.3), budget: 0.3)
        XCTAssertTrue(ends.reason.contains("its [NOTFOUND=return] then ends the lookup"), ends.reason)
        // No mDNS source takes the name: every source that can wait is named.
        let (other, _) = try lookup("files myhostname resolve dns", allow: nil, runner: StuckGetent(seconds: 0.3), budget: 0.3)
        XCTAssertEqual(other.details["waiting_sources"], "resolve,dns")
        XCTAssertTrue(other.reason.contains("a source of that line waits (resolve, dns)"), other.reason)
    }

    func testAGetentThatCannotRunFailsWithoutAModel() throws {
        final class NoChroot: CommandRunner, @unchecked Sendable {
            func run(_ executable: String, _ arguments: [String]) throws -> CommandResult { try run(executable, arguments, input: nil) }
            func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult {
                throw AgentError(.commandFailed, "cannot run \(executable)", errno: EACCES)
            }
        }
        let (result, _) = try lookup("files mdns4 dns", allow: nil, runner: NoChroot(), budget: 2)
        XCTAssertEqual(result.outcome, .fail)
        XCTAssertEqual(result.details["resolver"], "glibc")
        XCTAssertNil(result.details["overrun_seconds"])
        XCTAssertTrue(result.reason.contains("cannot be checked: the node's getent"), result.reason)
        XCTAssertTrue(result.reason.contains("Permission denied"), result.reason)
    }

    /// A lookup that ends at nss-mdns's not found says which source ends it and why.
    func testALookupEndedByMDNSNamesTheSource() throws {
        let r = RuntimeLookup.hint(
            try DomainName("registry.ns.svc.cluster.local"), nss: NSSwitchHosts(parsing: "hosts: files mdns4 [NOTFOUND=return] dns\n"),
            dns: CheckResult(name: "dns-host", outcome: .pass, reason: "the host resolves it"), mdnsAllow: ".local\n")
        XCTAssertTrue(r.hasPrefix("yet the resolv.conf servers answer it (the host resolves it): mdns4 takes the name before DNS"), r)
        XCTAssertTrue(r.contains("its [NOTFOUND=return] then ends the lookup"), r)
    }
}

/// `chroot ROOT getent -A -s hosts:SOURCE ahosts NAME`, answered per source (exit 2, getent's
/// "not found", for a source not listed).
final class RecordingGetent: CommandRunner, @unchecked Sendable {
    var commands: [[String]] = []
    var answers: [String: CommandResult] = [:]
    func run(_ executable: String, _ arguments: [String]) throws -> CommandResult { try run(executable, arguments, input: nil) }
    func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult {
        commands.append(arguments)
        guard let i = arguments.firstIndex(of: "-s") else { return CommandResult(status: 2) }
        return answers[arguments[i + 1]] ?? CommandResult(status: 2)
    }
}
