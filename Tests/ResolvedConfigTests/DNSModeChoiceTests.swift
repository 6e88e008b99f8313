import HostSystem
import Vocabulary
import XCTest

@testable import ResolvedConfig

/// `--dns-mode auto`'s choice from the host's facts, and the /etc/hosts lines of the hosts mode.
/// DNSModesIntegrationTests show each mode working on a real resolved.
final class DNSModeChoiceTests: XCTestCase {
    func facts(
        _ mode: ResolvConfMode, nameservers: [String] = ["127.0.0.53"], resolved: Bool = true,
        resolvedConf: String? = nil, nsswitch: String? = nil, systemd: Int = 252
    ) -> DNSHostFacts {
        var conf: ResolvedConfiguration?
        if let resolvedConf {
            conf = ResolvedConfiguration()
            conf?.apply(SystemdConf(parsing: resolvedConf), from: "/etc/systemd/resolved.conf")
        }
        var facts = DNSHostFacts(
            resolvConfMode: mode, nameservers: nameservers, systemdVersion: systemd, resolvedOnBus: resolved,
            resolvedConf: conf, notes: [])
        facts.nsswitchHosts = nsswitch.flatMap { NSSwitchHosts(parsing: "hosts: " + $0 + "\n") }
        return facts
    }

    func choose(_ facts: DNSHostFacts) -> DNSMode { DNSMode.choose(facts).0 }

    func testTheLinkWhenResolvedRunsAndTheHostAsksItsStub() {
        XCTAssertEqual(DNSMode.choose(facts(.stub)).0, .link)
        XCTAssertEqual(
            DNSMode.choose(facts(.stub)).1,
            "systemd-resolved runs and the host's programs ask its stub: a link of the agent's routes ~domain without files or restarts")
        XCTAssertEqual(choose(facts(.static)), .link)
        XCTAssertEqual(choose(facts(.foreign, nameservers: ["127.0.0.53", "10.0.0.2"])), .link, "a copied stub file asks the stub")
        XCTAssertEqual(choose(facts(.stub, resolvedConf: "[Resolve]\nDNSStubListener=yes\n")), .link)
        XCTAssertEqual(choose(facts(.stub, nsswitch: "files resolve [!UNAVAIL=return] dns")), .link)
        XCTAssertEqual(choose(facts(.stub, nsswitch: "files dns")), .link)
    }

    func testHostsWhenResolvedDoesNotRun() {
        let (mode, why) = DNSMode.choose(facts(.stub, resolved: false))
        XCTAssertEqual(mode, .hosts)
        XCTAssertEqual(why, "systemd-resolved is not running: /etc/hosts lines for the registry's names are what every resolver reads")
        XCTAssertEqual(choose(facts(.missing, nameservers: [], resolved: false)), .hosts)
    }

    func testHostsWhenTheHostDoesNotAskTheStub() {
        for mode in [ResolvConfMode.uplink, .foreign, .missing] {
            let (chosen, why) = DNSMode.choose(facts(mode, nameservers: ["10.0.0.2"]))
            XCTAssertEqual(chosen, .hosts, "\(mode)")
            XCTAssertEqual(
                why,
                "the host's programs do not ask resolved's stub (/etc/resolv.conf is \(mode.rawValue)): routing domains would not reach them, /etc/hosts does"
            )
        }
        // The stub file, but nothing listens on 127.0.0.53.
        XCTAssertEqual(
            DNSMode.choose(facts(.stub, resolvedConf: "[Resolve]\nDNSStubListener=no\n")).1,
            "the host's programs do not ask resolved's stub (/etc/resolv.conf is stub): routing domains would not reach them, /etc/hosts does"
        )
    }

    /// A hosts line without `dns` or `resolve` wins over everything: only /etc/hosts is read.
    func testHostsWhenNSSwitchAsksNoDNSSource() {
        let (mode, why) = DNSMode.choose(facts(.stub, nsswitch: "files myhostname"))
        XCTAssertEqual(mode, .hosts)
        XCTAssertEqual(
            why, "nsswitch.conf's hosts line (files myhostname) asks no DNS source: /etc/hosts lines are what the host's lookups read")
        XCTAssertEqual(choose(facts(.stub, nsswitch: "files mdns4_minimal [NOTFOUND=return]")), .hosts)
    }

    func testTheDelegateFromSystemd258WhereTheLinkWouldBeChosen() {
        let (mode, why) = DNSMode.choose(facts(.stub, systemd: 262))
        XCTAssertEqual(mode, .delegate)
        XCTAssertEqual(
            why,
            "systemd 262 has dns-delegate.d and the host's programs ask resolved's stub: a delegate file routes ~domain, in /etc: resolved has it from boot, before anything of the agent's runs"
        )
        XCTAssertEqual(choose(facts(.stub, systemd: 258)), .delegate)
        XCTAssertEqual(choose(facts(.stub, systemd: 257)), .link)
        XCTAssertEqual(choose(facts(.stub, resolved: false, systemd: 262)), .hosts)
        XCTAssertEqual(choose(facts(.uplink, nameservers: ["10.0.0.2"], systemd: 262)), .hosts)
        XCTAssertEqual(choose(facts(.stub, nsswitch: "files", systemd: 262)), .hosts)
    }

    func testAutoNeverPicksTheDropInNorTheDelegateBefore258() {
        for mode in [ResolvConfMode.stub, .uplink, .static, .foreign, .missing] {
            for resolved in [true, false] {
                for nsswitch in [nil, "files dns", "files"] {
                    XCTAssertTrue([.link, .hosts].contains(choose(facts(mode, resolved: resolved, nsswitch: nsswitch))))
                    XCTAssertNotEqual(choose(facts(mode, resolved: resolved, nsswitch: nsswitch, systemd: 262)), .dropin)
                }
            }
        }
    }
}

final class HostsFileTests: XCTestCase {
    let registry = try! DomainName("registry-service.openfaas.svc.cluster.local")
    let alias = try! DomainName("registry.local")

    func testTheAgentsLinesAreAppendedAndEveryOtherLineKeptInPlace() throws {
        let current = "127.0.0.1\tlocalhost\n# the admin's\n\n10.0.0.9 db.internal\n::1 localhost ip6-localhost\n"
        let text = ResolvedFiles.renderHosts(current, entries: [(try IPAddress("10.96.5.1"), registry), (try IPAddress("fd00::5"), alias)])
        XCTAssertEqual(
            text,
            """
            127.0.0.1\tlocalhost
            # the admin's

            10.0.0.9 db.internal
            ::1 localhost ip6-localhost
            10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent
            fd00::5 registry.local # node-agent

            """)
        XCTAssertEqual(
            ResolvedFiles.hostsEntries(text).map { "\($0.0) \($0.1)" },
            ["10.96.5.1 registry-service.openfaas.svc.cluster.local", "fd00::5 registry.local"])
    }

    /// A new address replaces the agent's old lines wherever they were; no entries removes them,
    /// giving back the file as it was before the agent.
    func testRenderingAgainReplacesAndRemovesOnlyTheAgentsLines() throws {
        let before = "127.0.0.1 localhost\n10.0.0.9 db.internal"
        let first = ResolvedFiles.renderHosts(before, entries: [(try IPAddress("10.96.5.1"), registry)])
        XCTAssertEqual(
            first, "127.0.0.1 localhost\n10.0.0.9 db.internal\n10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent\n")
        let edited = "10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent\n" + "127.0.0.1 localhost\n"
        XCTAssertEqual(
            ResolvedFiles.renderHosts(edited, entries: [(try IPAddress("10.96.5.2"), registry)]),
            "127.0.0.1 localhost\n10.96.5.2 registry-service.openfaas.svc.cluster.local # node-agent\n")
        XCTAssertEqual(ResolvedFiles.renderHosts(first, entries: []), "127.0.0.1 localhost\n10.0.0.9 db.internal\n")
        XCTAssertEqual(ResolvedFiles.renderHosts(first, entries: [(try IPAddress("10.96.5.1"), registry)]), first, "idempotent")
        // A line that only mentions the marker elsewhere is the admin's.
        XCTAssertEqual(ResolvedFiles.renderHosts("10.0.0.1 a # node-agent was here\n", entries: []), "10.0.0.1 a # node-agent was here\n")
        XCTAssertEqual(ResolvedFiles.renderHosts("", entries: []), "")
        XCTAssertEqual(ResolvedFiles.renderHosts("\n", entries: []), "\n")
    }
}
