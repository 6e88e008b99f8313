import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The DNS modes against the real systemd-resolved of a sandbox node.
final class DNSModesIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    func bootstrap(_ extra: [String], clusterDNS: String? = nil) throws -> (status: Int32, report: JSONReport, output: String) {
        let run = try node.agent(node.bootstrapArguments(clusterDNS: clusterDNS, extra: extra + ["--output", "json"]))
        guard run.status <= 1 else { throw AgentError(.io, "bootstrap failed (\(run.status)): \(run.stderr)") }
        return (run.status, try JSONReport.decode(run.stdout), run.stdout + run.stderr)
    }

    func testAutoPicksTheLinkOnAStubHostAndTheSettingsSurviveAResolvedRestart() throws {
        let first = try bootstrap([])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(
            first.report.notes.contains { $0.hasPrefix("DNS mode link: systemd-resolved runs and the host's programs ask its stub") },
            first.report.notes.joined(separator: "\n"))
        // resolved keeps per-link settings across its own restart (in /run/systemd/resolve/netif/).
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        XCTAssertNotEqual(try node.exec(node.resolvectl + ["status"]).status, 0, "resolved still answers")
        XCTAssertEqual(try node.control(["start", "resolved"]), 0)
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertTrue(query.stdout.contains("127.0.0.20"), query.stdout + query.stderr)
        XCTAssertFalse(try node.exec(["cat", "/run/systemd/resolve/resolv.conf"]).stdout.contains("127.0.0.10"))
        let again = try bootstrap([])
        XCTAssertEqual(again.status, 0)
        XCTAssertEqual(again.report.changes, [], "nothing to re-apply after the restart")
    }

    /// A hardened resolved (global DNSOverTLS=yes, DNSSEC=yes, LLMNR and mDNS on): a link that
    /// inherits strict DNS over TLS asks kube-dns on 853, where nothing answers. The agent's link
    /// sets its own modes: the registry's name resolves on the host and the node pulls.
    func testTheLinkWorksOnAResolvedWithStrictDNSOverTLS() throws {
        try configureResolved([
            "/etc/systemd/resolved.conf.d/50-hardened.conf": "[Resolve]\nDNSOverTLS=yes\nDNSSEC=yes\nLLMNR=yes\nMulticastDNS=yes\n"
        ])
        let run = try bootstrap([])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no"), run.output)
        XCTAssertTrue(run.report.notes.contains { $0.hasPrefix("resolved's global DNSOverTLS=yes DNSSEC=yes would apply") }, run.output)
        let link = try node.exec(node.resolvectl + ["dnsovertls", "nodeagent0"])
        XCTAssertTrue(link.stdout.hasSuffix("(nodeagent0): no\n"), link.stdout + link.stderr)
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertTrue(query.stdout.contains("127.0.0.20"), query.stdout + query.stderr)
        let pull = try node.pull(node.testImage)
        XCTAssertTrue(pull.ok, pull.error)
        // In place, nothing to redo; and the global policy is the admin's, untouched.
        XCTAssertEqual(try bootstrap([]).report.changes, [])
        XCTAssertTrue(try node.exec(node.resolvectl + ["dnsovertls"]).stdout.contains("Global: yes"))
    }

    func testAutoPicksHostsWhenResolvedIsNotRunning() throws {
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        let run = try bootstrap([])
        XCTAssertTrue(run.report.notes.contains { $0.hasPrefix("DNS mode hosts: systemd-resolved is not running") }, run.output)
        XCTAssertEqual(run.report.check("dns-host")?.details["source"], "/etc/hosts")
        XCTAssertEqual(run.report.check("dns-host")?.outcome, "pass")
    }

    func testHostsModeWritesMarkedLinesKeepsThemThroughAnOutageAndGivesWayToTheLink() throws {
        let hostsFile = node.hostRoot + "/etc/hosts"
        let original = try String(contentsOfFile: hostsFile, encoding: .utf8)
        let before = node.snapshot()
        let run = try bootstrap(["--dns-mode", "hosts", "--alias", "registry-service.openfaas.svc"])
        XCTAssertEqual(run.status, 0, run.output)
        let hosts = try String(contentsOfFile: hostsFile, encoding: .utf8)
        XCTAssertTrue(hosts.hasPrefix(original), "the host's own lines moved:\n\(hosts)")
        XCTAssertTrue(hosts.contains("127.0.0.20 registry-service.openfaas.svc.cluster.local # node-agent\n"), hosts)
        XCTAssertTrue(hosts.contains("127.0.0.20 registry-service.openfaas.svc # node-agent\n"), hosts)
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0, "hosts mode made a link")

        // The cluster DNS stops answering: the lines stay, the host still resolves the registry.
        let outage = try bootstrap(
            ["--dns-mode", "hosts", "--alias", "registry-service.openfaas.svc", "--timeout", "0.3"],
            clusterDNS: node.vars["SILENT_DNS"]!)
        XCTAssertEqual(try String(contentsOfFile: hostsFile, encoding: .utf8), hosts)
        XCTAssertTrue(outage.report.notes.contains { $0.contains("the earlier /etc/hosts lines stay") }, outage.output)
        XCTAssertEqual(outage.report.check("dns-host")?.outcome, "pass")

        // Another mode takes over: the lines go, the link comes.
        let link = try bootstrap(["--dns-mode", "link"])
        XCTAssertEqual(link.status, 0, link.output)
        XCTAssertEqual(try String(contentsOfFile: hostsFile, encoding: .utf8), original)
        XCTAssertEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0)

        XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot]).status, 0)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
    }

    /// A root without /etc/hosts (minimal roots lack it, as the booted Debian test nodes do):
    /// hosts mode creates it, saying so in it; the link taking over and uninstall leave no
    /// /etc/hosts behind, not even an empty one.
    func testHostsModeTakesAwayTheEtcHostsItCreated() throws {
        let hostsFile = node.hostRoot + "/etc/hosts"
        try FileManager.default.removeItem(atPath: hostsFile)
        let before = node.snapshot()
        let run = try bootstrap(["--dns-mode", "hosts"])
        XCTAssertEqual(run.status, 0, run.output)
        let hosts = try String(contentsOfFile: hostsFile, encoding: .utf8)
        XCTAssertTrue(hosts.hasPrefix(HostFiles.creationMarker + " (there was no /etc/hosts)"), hosts)
        XCTAssertTrue(hosts.hasSuffix("127.0.0.20 registry-service.openfaas.svc.cluster.local # node-agent\n"), hosts)
        let dry = try node.agent(["uninstall", "--host-root", node.hostRoot, "--dry-run"])
        XCTAssertTrue(
            dry.stdout.contains("remove /etc/hosts: the agent created it, and its lines were all it held"), dry.stdout + dry.stderr)
        XCTAssertEqual(try String(contentsOfFile: hostsFile, encoding: .utf8), hosts, "a dry run changes nothing")

        let link = try bootstrap(["--dns-mode", "link"])
        XCTAssertEqual(link.status, 0, link.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: hostsFile), "another mode: the file goes with the agent's lines")
        XCTAssertEqual(try bootstrap(["--dns-mode", "hosts"]).status, 0)
        XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot]).status, 0)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
    }

    func testAnUplinkHostGetsHostsLinesBecauseRoutingDomainsWouldNotReachItsPrograms() throws {
        let resolvConf = node.hostRoot + "/etc/resolv.conf"
        try FileManager.default.removeItem(atPath: resolvConf)
        try FileManager.default.createSymbolicLink(atPath: resolvConf, withDestinationPath: "../run/systemd/resolve/resolv.conf")
        let run = try bootstrap([])
        XCTAssertTrue(
            run.report.notes.contains {
                $0.hasPrefix("DNS mode hosts: the host's programs do not ask resolved's stub (/etc/resolv.conf is uplink)")
            },
            run.report.notes.joined(separator: "\n"))
        XCTAssertEqual(run.status, 0, run.output)
    }

    func testDropInIsRefusedWithoutConsentAndDelegateBeforeSystemd258() throws {
        let before = node.snapshot()
        let dropin = try node.agent(node.bootstrapArguments(extra: ["--dns-mode", "dropin"]))
        XCTAssertEqual(dropin.status, 2, dropin.stdout + dropin.stderr)
        XCTAssertTrue(dropin.stderr.contains("gets every lookup of the host"), dropin.stderr)
        XCTAssertTrue(dropin.stderr.contains("--accept-global-dns"))
        let delegate = try node.agent(node.bootstrapArguments(extra: ["--dns-mode", "delegate"]))
        XCTAssertEqual(delegate.status, 3, delegate.stdout + delegate.stderr)
        XCTAssertTrue(delegate.stderr.contains("systemd 252 has no dns-delegate.d"), delegate.stderr)
        XCTAssertEqual(node.snapshot().difference(from: before), [])
        XCTAssertNotEqual(try node.exec(["ip", "link", "show", "nodeagent0"]).status, 0)
    }

    /// The facts the link's call order rests on (resolved 252): resolved rewrites resolv.conf on
    /// every change of a usable link's settings, listing the servers of links that are a default
    /// route at that moment; a link with only `~` domains is not one. Setting the servers first
    /// lists them until the domain arrives; DefaultRoute=no and the domain first never do.
    func testResolvedListsALinksServerOnlyWhileItIsADefaultRoute() throws {
        XCTAssertEqual(try node.exec(["ip", "link", "add", "fact0", "type", "veth", "peer", "name", "fact0p"]).status, 0)
        for args in [
            ["link", "set", "fact0p", "up"], ["link", "set", "fact0", "up"], ["addr", "add", "198.51.100.7/32", "dev", "fact0"],
        ] {
            XCTAssertEqual(try node.exec(["ip"] + args).status, 0, "\(args)")
        }
        func listed() throws -> Bool {
            Thread.sleep(forTimeInterval: 0.2)
            return try node.exec(["cat", "/run/systemd/resolve/resolv.conf"]).stdout.contains("nameserver 127.0.0.10")
        }
        func resolvectl(_ args: [String]) throws { XCTAssertEqual(try node.exec(node.resolvectl + args).status, 0, "\(args)") }
        // Servers first: listed (the link is a default route), until the routing domain arrives.
        try resolvectl(["dns", "fact0", "127.0.0.10"])
        XCTAssertTrue(try listed())
        try resolvectl(["domain", "fact0", "~svc.cluster.local"])
        XCTAssertFalse(try listed())
        // The agent's order: never listed, at any step.
        try resolvectl(["revert", "fact0"])
        try resolvectl(["default-route", "fact0", "no"])
        XCTAssertFalse(try listed())
        try resolvectl(["domain", "fact0", "~svc.cluster.local"])
        XCTAssertFalse(try listed())
        try resolvectl(["dns", "fact0", "127.0.0.10"])
        XCTAssertFalse(try listed())
        let query = try node.exec(node.resolvectl + ["query", "registry-service.openfaas.svc.cluster.local"])
        XCTAssertTrue(query.stdout.contains("127.0.0.20"), query.stdout + query.stderr)
    }

    /// Writes resolved config files inside the node (its /run is the node's own) and restarts resolved.
    func configureResolved(_ files: [String: String]) throws {
        for (path, text) in files {
            let write = try node.exec(["sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"$2\" > \"$1\"", "sh", path, text])
            XCTAssertEqual(write.status, 0, write.stderr)
        }
        XCTAssertEqual(try node.control(["stop", "resolved"]), 0)
        XCTAssertEqual(try node.control(["start", "resolved"]), 0)
    }

    /// resolved's global servers as resolved itself holds them (Manager.DNS). Measured on 252: a
    /// global server with a loopback address is reported with lo's index (1), others with 0; the
    /// node has no link servers on lo, so both are global here.
    func resolvedGlobalDNS() throws -> [String] {
        let out = try node.exec([
            "busctl", "--json=short", "get-property", "org.freedesktop.resolve1", "/org/freedesktop/resolve1",
            "org.freedesktop.resolve1.Manager", "DNS",
        ])
        XCTAssertEqual(out.status, 0, out.stderr)
        struct Property: Decodable { var data: [[Value]] }
        enum Value: Decodable {
            case int(Int)
            case bytes([UInt8])
            init(from d: Decoder) throws {
                let c = try d.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .bytes(try c.decode([UInt8].self)) }
            }
        }
        let property = try JSONDecoder().decode(Property.self, from: Data(out.stdout.utf8))
        return property.data.compactMap { entry in
            guard case .int(let ifindex) = entry[0], ifindex <= 1, case .int(2) = entry[1], case .bytes(let b) = entry[2] else {
                return nil
            }
            return b.map(String.init).joined(separator: ".")
        }
    }

    /// The agent reads resolved.conf and its drop-ins as resolved does (order by file name, /etc
    /// hiding /run's file of the same name, continuation lines, `DNS=` resetting the list): the
    /// global servers it names are the ones the real resolved loaded. A manual recipe's drop-in
    /// with the cluster DNS is named in the report and left alone.
    func testTheAgentReadsResolvedsFilesAsResolvedDoesAndNamesAManualRecipesGlobalDNS() throws {
        let manual = "/etc/systemd/resolved.conf.d/50-manual.conf"
        try configureResolved([
            node.hostRoot + manual: "# the seed's manual recipe\n[Resolve]\nDNS=127.0.0.10\nDomains=~svc.cluster.local\n",
            "/run/systemd/resolved.conf.d/50-manual.conf": "[Resolve]\nDNS=\n",
            "/run/systemd/resolved.conf.d/60-more.conf": "[Resolve]\n# more\nDNS=127.0.0.31 \\\n   127.0.0.32\n",
        ])
        let live = try resolvedGlobalDNS()
        XCTAssertEqual(live, ["127.0.0.11", "127.0.0.10", "127.0.0.31", "127.0.0.32"])
        let run = try bootstrap([])
        let note = run.report.notes.first { $0.hasPrefix("resolved's global DNS= is ") }
        XCTAssertEqual(
            note?.hasPrefix(
                "resolved's global DNS= is \(live.joined(separator: " ")) (from /etc/systemd/resolved.conf, \(manual), /run/systemd/resolved.conf.d/60-more.conf): it holds the cluster DNS 127.0.0.10"
            ), true,
            run.report.notes.joined(separator: "\n"))
        XCTAssertTrue(try String(contentsOfFile: node.hostRoot + manual, encoding: .utf8).hasPrefix("# the seed's manual recipe"))
        XCTAssertEqual(try node.agent(["uninstall", "--host-root", node.hostRoot]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: node.hostRoot + manual), "uninstall removed a file not the agent's")

        // A later drop-in resets the list: no cluster DNS globally, no note.
        try configureResolved(["/run/systemd/resolved.conf.d/70-reset.conf": "[Resolve]\nDNS=\nDNS=127.0.0.11\n"])
        XCTAssertEqual(try resolvedGlobalDNS(), ["127.0.0.11"])
        let clean = try bootstrap([])
        XCTAssertEqual(clean.status, 0, clean.output)
        XCTAssertFalse(
            clean.report.notes.contains { $0.hasPrefix("resolved's global DNS= is ") }, clean.report.notes.joined(separator: "\n"))
    }

    /// With DNSStubListener=no nothing answers at 127.0.0.53, so a stub resolv.conf reaches no
    /// one: auto writes /etc/hosts lines instead of a link that no program would ask.
    func testAutoPicksHostsWhenResolvedsStubListenerIsOff() throws {
        try configureResolved([node.hostRoot + "/etc/systemd/resolved.conf.d/40-nostub.conf": "[Resolve]\nDNSStubListener=no\n"])
        XCTAssertNotEqual(try node.exec(["dig", "+time=1", "+tries=1", "@127.0.0.53", "example.org"]).status, 0, "the stub still answers")
        let run = try bootstrap([])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(
            run.report.notes.contains {
                $0.hasPrefix("resolved's stub listener is off (DNSStubListener= in /etc/systemd/resolved.conf.d/40-nostub.conf)")
            },
            run.report.notes.joined(separator: "\n"))
        XCTAssertTrue(
            run.report.notes.contains { $0.hasPrefix("DNS mode hosts: the host's programs do not ask resolved's stub") }, run.output)
        XCTAssertEqual(run.report.check("dns-host")?.details["source"], "/etc/hosts")
    }
}
