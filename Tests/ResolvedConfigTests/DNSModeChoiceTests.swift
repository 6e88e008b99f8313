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
            ResolvedFiles.hostsEntries(text ?? "").map { "\($0.0) \($0.1)" },
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
        XCTAssertEqual(ResolvedFiles.renderHosts("127.0.0.1 localhost", entries: []), "127.0.0.1 localhost", "nothing of the agent's")
    }

    /// Where there was no /etc/hosts (minimal roots lack it), the file the agent writes says so
    /// and goes with the agent's last line; a file that was there stays, even an empty one.
    func testAFileTheAgentCreatedGoesWithItsLastLineAndOneThatWasThereStays() throws {
        let entries = [(try IPAddress("10.96.5.1"), registry)]
        let created = try XCTUnwrap(ResolvedFiles.renderHosts(nil, entries: entries))
        XCTAssertEqual(
            created,
            """
            # created by node-agent (there was no /etc/hosts): removed with its last node-agent line unless other lines were added
            10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent

            """)
        XCTAssertEqual(ResolvedFiles.renderHosts(created, entries: entries), created, "idempotent")
        XCTAssertEqual(
            ResolvedFiles.renderHosts(created, entries: [(try IPAddress("10.96.5.2"), registry)]),
            ResolvedFiles.hostsCreatedLine + "\n10.96.5.2 registry-service.openfaas.svc.cluster.local # node-agent\n")
        XCTAssertNil(ResolvedFiles.renderHosts(created, entries: []), "no file, as before the agent")
        XCTAssertNil(ResolvedFiles.renderHosts(nil, entries: []), "none made for no lines")
        XCTAssertNil(
            ResolvedFiles.renderHosts(ResolvedFiles.hostsCreatedLine + "\n", entries: []), "the creation line alone is the agent's")

        let empty = try XCTUnwrap(ResolvedFiles.renderHosts("", entries: entries))
        XCTAssertEqual(empty, "10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent\n", "no creation line: it was there")
        XCTAssertEqual(ResolvedFiles.renderHosts(empty, entries: []), "", "there before the agent, empty: it stays")
    }

    /// Lines someone else adds to the file the agent created make it theirs too: it stays when
    /// the agent's lines go, their lines as they are, without the agent's creation line.
    func testOthersLinesInTheFileTheAgentCreatedKeepIt() throws {
        let entries = [(try IPAddress("10.96.5.1"), registry)]
        let created = try XCTUnwrap(ResolvedFiles.renderHosts(nil, entries: entries))
        let appended = created + "10.0.0.9\tdb.internal  \n\n"
        XCTAssertEqual(
            ResolvedFiles.renderHosts(appended, entries: entries),
            ResolvedFiles.hostsCreatedLine
                + "\n10.0.0.9\tdb.internal  \n\n10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent\n",
            "while the agent's lines are there, the creation line stays: the file may be the agent's alone again")
        XCTAssertEqual(ResolvedFiles.renderHosts(appended, entries: []), "10.0.0.9\tdb.internal  \n\n")
        // Written above the creation line: the file no longer starts with it, it is not only the agent's.
        let prepended = "127.0.0.1 localhost\n" + created
        XCTAssertEqual(
            ResolvedFiles.renderHosts(prepended, entries: entries),
            "127.0.0.1 localhost\n10.96.5.1 registry-service.openfaas.svc.cluster.local # node-agent\n")
        XCTAssertEqual(ResolvedFiles.renderHosts(prepended, entries: []), "127.0.0.1 localhost\n")
    }
}

/// nss-mdns's sources on the hosts line, as libnss-mdns 0.15.1 behaves on bookworm (measured in
/// HardenedResolverIntegrationTests with avahi-daemon running): what ends or delays a lookup of
/// the registry's name before DNS is asked, and the mode auto takes for it.
final class MulticastDNSChoiceTests: XCTestCase {
    let registry = try! DomainName("registry-service.openfaas.svc.cluster.local")

    func effect(_ line: String, allow: String?) -> MulticastDNSSources.Effect? {
        MulticastDNSSources(allowFile: allow).effect(of: NSSwitchHosts(parsing: "hosts: \(line)\n"), on: registry)
    }

    func testTheMinimalModulesAndAFullOneWithoutMdnsAllowPassLongerNamesOn() {
        for line in [
            "files mdns4_minimal [NOTFOUND=return] dns", "files mdns_minimal [NOTFOUND=return] dns",
            "files mdns6_minimal [NOTFOUND=return] resolve [!UNAVAIL=return] dns",
        ] {
            XCTAssertNil(effect(line, allow: nil), line)
            XCTAssertNil(effect(line, allow: ".local\n"), "\(line): the minimal modules never read mdns.allow")
        }
        XCTAssertNil(effect("files mdns4 [NOTFOUND=return] dns", allow: nil), "no mdns.allow: two-label names only")
        XCTAssertNil(effect("files mdns4 [NOTFOUND=return] dns", allow: ".example.org\n# .local\n"), "no entry of the name")
        XCTAssertNil(effect("files dns mdns4 [NOTFOUND=return]", allow: "*\n"), "after DNS: DNS answers first")
        XCTAssertNil(effect("files resolve [!UNAVAIL=return] mdns4 [NOTFOUND=return] dns", allow: "*\n"))
        // Two-label .local names are the minimal modules' own.
        XCTAssertTrue(MulticastDNSSources(allow: nil).takes(try! DomainName("printer.local"), module: "mdns4_minimal"))
    }

    func testAFullModuleThatMdnsAllowOpensEndsOrDelaysTheLookup() {
        for allow in [".local\n", ".local.\n.local\n", "local\n", "cluster.local  # k8s\n", "*\n", ".LOCAL\n"] {
            XCTAssertEqual(
                effect("files mdns4 [NOTFOUND=return] dns", allow: allow), .ends(source: "mdns4", filesFirst: true), allow)
        }
        XCTAssertEqual(effect("files mdns [notfound=RETURN] dns", allow: ".local\n"), .ends(source: "mdns", filesFirst: true))
        // [!UNAVAIL=return] returns on every status but UNAVAIL: NOTFOUND included.
        XCTAssertEqual(effect("files mdns4 [!UNAVAIL=return] dns", allow: "*\n"), .ends(source: "mdns4", filesFirst: true))
        XCTAssertEqual(
            effect("files mdns4_minimal [NOTFOUND=return] mdns4 dns", allow: ".local\n"), .waits(sources: ["mdns4"], filesFirst: true))
        XCTAssertEqual(effect("mdns4 [NOTFOUND=return] files dns", allow: ".local\n"), .ends(source: "mdns4", filesFirst: false))
        XCTAssertNil(effect("files mdns4 [NOTFOUND=return] dns", allow: ".local.\n"), "names are looked up without the final dot")
    }

    func testAutoTakesHostsWhereFilesAnswersBeforeTheSourceThatTakesTheName() {
        var facts = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 262, resolvedOnBus: true)
        facts.nsswitchHosts = NSSwitchHosts(parsing: "hosts: files mdns4 [NOTFOUND=return] dns\n")
        facts.multicastDNS = MulticastDNSSources(allowFile: ".local\n")
        let (mode, why) = DNSMode.choose(facts, for: registry)
        XCTAssertEqual(mode, .hosts)
        XCTAssertEqual(
            why,
            "nsswitch.conf's hosts line (files mdns4 [NOTFOUND=return] dns) asks mdns4 before DNS, and with /etc/mdns.allow (.local) it takes registry-service.openfaas.svc.cluster.local: while avahi-daemon runs it answers not found after 5 s and [NOTFOUND=return] ends the lookup there (containerd's included): /etc/hosts lines, read first (files), answer before it"
        )
        XCTAssertEqual(DNSMode.choose(facts).0, .delegate, "without the name there is nothing to weigh")
        facts.multicastDNS = MulticastDNSSources(allowFile: nil)
        XCTAssertEqual(DNSMode.choose(facts, for: registry).0, .delegate, "Debian's line without mdns.allow: DNS answers")
        facts.nsswitchHosts = NSSwitchHosts(parsing: "hosts: mdns4 [NOTFOUND=return] files dns\n")
        facts.multicastDNS = MulticastDNSSources(allowFile: "*\n")
        XCTAssertEqual(DNSMode.choose(facts, for: registry).0, .delegate, "files after it: hosts lines do not help either")
    }
}

/// resolved's global DNSOverTLS=yes (strict) applies to a dns-delegate's scope (a delegate file
/// has no DNSOverTLS= of its own; measured on 262): auto takes the link, which sets its own.
final class StrictDNSOverTLSChoiceTests: XCTestCase {
    func sid(_ conf: String?) -> DNSHostFacts {
        var facts = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 262, resolvedOnBus: true)
        if let conf {
            var c = ResolvedConfiguration()
            c.apply(SystemdConf(parsing: conf), from: "/etc/systemd/resolved.conf")
            facts.resolvedConf = c
        }
        return facts
    }

    func testAutoTakesTheLinkOverTheDelegateWhereDNSOverTLSIsStrict() {
        let (mode, why) = DNSMode.choose(sid("[Resolve]\nDNSOverTLS=yes\n"))
        XCTAssertEqual(mode, .link)
        XCTAssertEqual(
            why,
            "systemd 262 has dns-delegate.d, but resolved's global DNSOverTLS=yes (from /etc/systemd/resolved.conf) applies to a delegate's scope (a delegate file has DNS=, Domains=, DefaultRoute= and FirewallMark= only, no DNSOverTLS=), so kube-dns would be asked over TLS on port 853: a link of the agent's sets its own DNSOverTLS=no and routes ~domain"
        )
        XCTAssertEqual(DNSMode.choose(sid("[Resolve]\nDNSOverTLS=true\n")).0, .link)
        // Measured on 262: opportunistic falls back to port 53, DNSSEC=yes leaves cluster.local
        // (under resolved's negative trust anchor "local") unvalidated: the delegate works.
        for conf in [nil, "[Resolve]\nDNSOverTLS=opportunistic\n", "[Resolve]\nDNSOverTLS=no\n", "[Resolve]\nDNSSEC=yes\n"] {
            XCTAssertEqual(DNSMode.choose(sid(conf)).0, .delegate, conf ?? "")
        }
        XCTAssertEqual(DNSMode.choose(sid("[Resolve]\nDNSOverTLS=yes\nDNSOverTLS=\n")).0, .delegate, "an empty assignment resets it")
    }
}
