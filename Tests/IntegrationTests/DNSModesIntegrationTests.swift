import Foundation
import HostSystem
import TestSupport
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
        XCTAssertTrue(first.report.notes.contains { $0.hasPrefix("DNS mode link: systemd-resolved runs and the host's programs ask its stub") },
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
        let outage = try bootstrap(["--dns-mode", "hosts", "--alias", "registry-service.openfaas.svc", "--timeout", "0.3"],
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

    func testAnUplinkHostGetsHostsLinesBecauseRoutingDomainsWouldNotReachItsPrograms() throws {
        let resolvConf = node.hostRoot + "/etc/resolv.conf"
        try FileManager.default.removeItem(atPath: resolvConf)
        try FileManager.default.createSymbolicLink(atPath: resolvConf, withDestinationPath: "../run/systemd/resolve/resolv.conf")
        let run = try bootstrap([])
        XCTAssertTrue(run.report.notes.contains { $0.hasPrefix("DNS mode hosts: the host's programs do not ask resolved's stub (/etc/resolv.conf is uplink)") },
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
        for args in [["link", "set", "fact0p", "up"], ["link", "set", "fact0", "up"], ["addr", "add", "198.51.100.7/32", "dev", "fact0"]] {
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
}
