import HostSystem
import Probes
import ResolvedConfig
import SystemBus
import TestSupport
import Transport
import Vocabulary
import XCTest

/// The DNS plan from facts alone: each test states a node as a `DNSFacts` value (no bus, no `ip`,
/// no DNS server) and checks the mode chosen and every change.
final class DNSPlanTests: XCTestCase {
    let desired = DNSDesired(
        mode: .auto, clusterDNS: try! IPAddress("10.43.0.10"), domain: try! DomainName("svc.cluster.local"),
        registryHost: try! DomainName("registry-service.openfaas.svc.cluster.local"),
        aliases: [try! DomainName("registry-service.openfaas")])
    /// resolved on the bus and the host's programs asking its stub: the common systemd node.
    let resolvedNode = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 252, resolvedOnBus: true)
    let ours = AgentLink.Observed(state: .ours(ifindex: 7, up: true, hasAddress: true))

    /// The plan for `desired`, the mode chosen from the facts as `DNSFacts.gather` chooses it.
    func planned(_ facts: DNSFacts, _ desired: DNSDesired) throws -> DNSPlan {
        var facts = facts
        facts.mode = DNSModeChoice(asked: desired.mode, host: facts.host, registry: desired.registryHost)
        return try DNSPlan.make(facts, desired)
    }

    func testThePlanTakesTheModeTheFactsCarryAndItsReason() throws {
        var facts = DNSFacts(host: resolvedNode, clusterAnswer: .addresses([try IPAddress("10.43.12.7")]))
        facts.mode = DNSModeChoice(asked: .hosts, host: resolvedNode, registry: desired.registryHost)
        let plan = try DNSPlan.make(facts, desired)
        XCTAssertEqual(plan.mode, .hosts, "chosen once, in the facts: the plan does not choose again for auto")
        XCTAssertEqual(plan.reason, "asked for with --dns-mode hosts")
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.hosts])
    }

    func want(_ mode: DNSMode, accept: Bool = false) -> DNSDesired {
        var d = desired
        d.mode = mode
        d.acceptGlobalDNS = accept
        return d
    }

    func testAutoOnAResolvedNodeRoutesTheDomainThroughANewLinkWithoutFiles() throws {
        let plan = try planned(DNSFacts(host: resolvedNode), desired)
        XCTAssertEqual(plan.mode, .link)
        XCTAssertFalse(plan.replacesAnotherMode, "nothing of another mode's")
        XCTAssertEqual(plan.fileChanges, [])
        XCTAssertFalse(plan.reloadNetworkd)
        XCTAssertNil(plan.resolvedAction)
        XCTAssertEqual(
            plan.routePlan?.linkSteps,
            [
                ["link", "add", "nodeagent0-new", "type", "dummy"],
                ["link", "set", "dev", "nodeagent0-new", "alias", AgentLink.alias],
                ["link", "set", "dev", "nodeagent0-new", "name", "nodeagent0", "up"],
                ["addr", "add", AgentLink.address, "dev", "nodeagent0"],
            ])
        XCTAssertEqual(
            plan.routePlan?.desired,
            LinkDNSSettings(
                servers: [desired.clusterDNS],
                domains: [LinkDomain(name: "svc.cluster.local", routeOnly: true)],
                defaultRoute: false, modes: .clusterDNS))
        XCTAssertEqual(
            plan.summary.last,
            "set resolved link nodeagent0: DNS=10.43.0.10 Domains=~svc.cluster.local DefaultRoute=no DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no"
        )
    }

    func testALinkAlreadyRoutedNeedsNothing() throws {
        let settled = LinkDNSSettings(
            servers: [desired.clusterDNS], domains: [LinkDomain(name: "svc.cluster.local", routeOnly: true)], defaultRoute: false,
            modes: .clusterDNS)
        let plan = try planned(DNSFacts(host: resolvedNode, link: ours, linkSettings: settled), desired)
        XCTAssertEqual(plan.summary, [])
        var drifted = settled
        drifted.defaultRoute = true
        XCTAssertEqual(
            try planned(DNSFacts(host: resolvedNode, link: ours, linkSettings: drifted), desired).summary,
            [
                "set resolved link nodeagent0: DNS=10.43.0.10 Domains=~svc.cluster.local DefaultRoute=no DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no"
            ])
    }

    func testALinkLeftHalfMadeIsRemovedFirstAndADownLinkIsBroughtUp() throws {
        let interim = AgentLink.Observed(state: .absent, interimPresent: true)
        XCTAssertEqual(
            try planned(DNSFacts(host: resolvedNode, link: interim), desired).routePlan?.linkSteps.first,
            ["link", "del", "dev", "nodeagent0-new"])
        let down = AgentLink.Observed(state: .ours(ifindex: 7, up: false, hasAddress: false))
        XCTAssertEqual(
            try planned(DNSFacts(host: resolvedNode, link: down), desired).routePlan?.linkSteps,
            [["link", "set", "dev", "nodeagent0", "up"], ["addr", "add", AgentLink.address, "dev", "nodeagent0"]])
    }

    func testAForeignLinkOfTheAgentsNameIsNeverTouched() {
        assertAgentError(
            try planned(DNSFacts(host: resolvedNode, link: AgentLink.Observed(state: .foreign)), desired),
            .unsupportedHost, "a link named nodeagent0 exists and is not node-agent's", "rename or remove that link")
    }

    func testNetworkdIsToldToLeaveTheLinkAloneBeforeTheLinkIsMade() throws {
        var host = resolvedNode
        host.networkdOnBus = true
        let plan = try planned(DNSFacts(host: host), desired)
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.networkdUnmanaged])
        XCTAssertEqual(plan.fileChanges.first?.kind, .create)
        XCTAssertTrue(plan.reloadNetworkd)
        let text = ResolvedFiles.renderNetworkdUnmanaged(linkNames: ["nodeagent0", "nodeagent0-new", "nodeagent0p"])
        let settled = try planned(DNSFacts(host: host, files: [ResolvedFiles.networkdUnmanaged: text]), desired)
        XCTAssertEqual(settled.fileChanges, [])
        XCTAssertFalse(settled.reloadNetworkd)
    }

    func testTheLinkModeNeedsResolved() {
        let noResolved = DNSHostFacts(resolvConfMode: .foreign, nameservers: ["10.0.0.2"], resolvedOnBus: false)
        assertAgentError(
            try planned(DNSFacts(host: noResolved), want(.link)), .unsupportedHost,
            "systemd-resolved is not on the system bus", "--dns-mode hosts")
    }

    func testDropinNeedsConsentAndRestartsOrReloadsByVersion() throws {
        assertAgentError(try planned(DNSFacts(host: resolvedNode), want(.dropin)), .invalidInput, "global DNS=", "--accept-global-dns")
        let old = try planned(DNSFacts(host: resolvedNode), want(.dropin, accept: true))
        XCTAssertEqual(old.fileChanges.map(\.path), [ResolvedFiles.dropIn])
        XCTAssertEqual(
            String(decoding: old.fileChanges[0].contents, as: UTF8.self),
            ResolvedFiles.renderDropIn(clusterDNS: desired.clusterDNS, domain: desired.domain))
        XCTAssertEqual(old.resolvedAction, "RestartUnit")
        var new = resolvedNode
        new.systemdVersion = 257
        XCTAssertEqual(try planned(DNSFacts(host: new), want(.dropin, accept: true)).resolvedAction, "ReloadOrRestartUnit")
    }

    func testDelegateNeedsSystemd258() throws {
        assertAgentError(
            try planned(DNSFacts(host: resolvedNode), want(.delegate)), .unsupportedHost, "systemd 252 has no dns-delegate.d")
        var sid = resolvedNode
        sid.systemdVersion = 262
        let plan = try planned(DNSFacts(host: sid), want(.delegate))
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.delegate])
        XCTAssertEqual(plan.resolvedAction, "ReloadOrRestartUnit")
    }

    func testAutoOnSystemd262WritesTheDelegateAndTakesTheLinkAway() throws {
        var sid = resolvedNode
        sid.systemdVersion = 262
        let plan = try planned(DNSFacts(host: sid, link: ours), desired)
        XCTAssertEqual(plan.mode, .delegate)
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.delegate])
        XCTAssertEqual(
            String(decoding: plan.fileChanges[0].contents, as: UTF8.self),
            ResolvedFiles.renderDelegate(clusterDNS: desired.clusterDNS, domain: desired.domain))
        XCTAssertEqual(plan.resolvedAction, "ReloadOrRestartUnit")
        XCTAssertTrue(plan.removeLink, "the link of an earlier mode goes")
        let settled = DNSFacts(
            host: sid, files: [ResolvedFiles.delegate: ResolvedFiles.renderDelegate(clusterDNS: desired.clusterDNS, domain: desired.domain)]
        )
        XCTAssertEqual(try planned(settled, desired).summary, [])
    }

    func testHostsModeWritesTheClusterDNSAnswerForTheNameAndItsAliases() throws {
        let address = try IPAddress("10.43.12.7")
        let facts = DNSFacts(
            host: resolvedNode, files: [ResolvedFiles.hosts: "127.0.0.1 localhost\n"], clusterAnswer: .addresses([address]))
        let plan = try planned(facts, want(.hosts))
        XCTAssertEqual(plan.fileChanges.count, 1)
        XCTAssertEqual(plan.fileChanges[0].kind, .replace)
        let text = String(decoding: plan.fileChanges[0].contents, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("127.0.0.1 localhost\n"), text)
        XCTAssertEqual(
            ResolvedFiles.hostsEntries(text).map { "\($0.0) \($0.1)" },
            ["10.43.12.7 registry-service.openfaas.svc.cluster.local", "10.43.12.7 registry-service.openfaas"])
    }

    func testHostsModeKeepsEarlierLinesWhenTheClusterDNSCannotAnswer() throws {
        let earlier = try XCTUnwrap(ResolvedFiles.renderHosts("", entries: [(try IPAddress("10.43.12.7"), desired.registryHost)]))
        var notes: [String] = []
        let facts = DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: earlier], clusterAnswer: .timeout)
        let plan = try planned(facts, want(.hosts))
        XCTAssertEqual(plan.fileChanges, [])
        notes = plan.notes
        XCTAssertEqual(
            notes.last,
            "the cluster DNS answered no answer (timeout) for registry-service.openfaas.svc.cluster.local: the earlier /etc/hosts lines stay"
        )
    }

    /// No /etc/hosts on the node: hosts mode creates it, saying so in it; another mode takes it
    /// away with the agent's lines, unless someone else's lines are in it now.
    func testHostsModeCreatesEtcHostsWhereThereIsNoneAndAnotherModeRemovesIt() throws {
        let answer = DNSAnswer.addresses([try IPAddress("10.43.12.7")])
        let plan = try planned(DNSFacts(host: resolvedNode, clusterAnswer: answer), want(.hosts))
        XCTAssertEqual(plan.fileChanges.map(\.kind), [.create])
        let created = String(decoding: plan.fileChanges[0].contents, as: UTF8.self)
        XCTAssertTrue(created.hasPrefix(ResolvedFiles.hostsCreatedLine + "\n"), created)
        XCTAssertEqual(ResolvedFiles.hostsEntries(created).count, 2)

        let link = try planned(DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: created]), want(.link))
        XCTAssertEqual(
            link.fileChanges,
            [
                FileChange(
                    kind: .remove, path: ResolvedFiles.hosts,
                    reason:
                        "the agent's /etc/hosts lines go (another DNS mode is in use); the agent created the file and nothing else is in it"
                )
            ])
        XCTAssertTrue(link.replacesAnotherMode)
        let shared = try planned(DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: created + "10.0.0.9 db\n"]), want(.link))
        XCTAssertEqual(shared.fileChanges.map(\.kind), [.replace])
        XCTAssertEqual(String(decoding: shared.fileChanges[0].contents, as: UTF8.self), "10.0.0.9 db\n")

        // An empty /etc/hosts is there: the lines are added to it, and it stays when they go.
        let empty = try planned(DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: ""], clusterAnswer: answer), want(.hosts))
        XCTAssertEqual(empty.fileChanges.map(\.kind), [.replace])
        let added = String(decoding: empty.fileChanges[0].contents, as: UTF8.self)
        XCTAssertFalse(added.contains(HostFiles.creationMarker), added)
        let back = try planned(DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: added]), want(.link))
        XCTAssertEqual(back.fileChanges.map(\.kind), [.replace])
        XCTAssertEqual(back.fileChanges[0].contents, [])
    }

    func testADryRunAsksNoDNSServerAndSaysWhatARunWrites() throws {
        let plan = try planned(DNSFacts(host: resolvedNode, clusterAnswer: nil), want(.hosts))
        XCTAssertEqual(plan.fileChanges, [])
        XCTAssertEqual(
            plan.notes.last,
            "the cluster DNS is not asked in a dry run: a run writes /etc/hosts lines for registry-service.openfaas.svc.cluster.local, registry-service.openfaas from its answer"
        )
    }

    func testAutoChoosesHostsWhereNSSwitchAsksNoDNS() throws {
        var host = resolvedNode
        host.nsswitchHosts = NSSwitchHosts(parsing: "hosts: files myhostname\n")
        let plan = try planned(DNSFacts(host: host, clusterAnswer: .nxdomain), desired)
        XCTAssertEqual(plan.mode, .hosts)
        XCTAssertTrue(plan.reason.hasPrefix("nsswitch.conf's hosts line"), plan.reason)
    }

    func testWhatOtherModesOfTheAgentsLeftGoes() throws {
        let dropIn = ResolvedFiles.renderDropIn(clusterDNS: desired.clusterDNS, domain: desired.domain)
        let hosts = try XCTUnwrap(
            ResolvedFiles.renderHosts("127.0.0.1 localhost\n", entries: [(try IPAddress("10.43.12.7"), desired.registryHost)]))
        let facts = DNSFacts(
            host: resolvedNode,
            files: [
                ResolvedFiles.dropIn: dropIn, ResolvedFiles.hosts: hosts,
                ResolvedFiles.delegate: "# a file of someone else's\n",
            ])
        let plan = try planned(facts, want(.link))
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.dropIn, ResolvedFiles.hosts])
        XCTAssertEqual(plan.fileChanges.map(\.kind), [.remove, .replace])
        XCTAssertEqual(String(decoding: plan.fileChanges[1].contents, as: UTF8.self), "127.0.0.1 localhost\n")
        XCTAssertEqual(plan.resolvedAction, "RestartUnit")
        XCTAssertTrue(plan.replacesAnotherMode, "the Event's fact: the mode changed since the agent last set it")
        // The hosts lines alone are another mode's too.
        XCTAssertTrue(try planned(DNSFacts(host: resolvedNode, files: [ResolvedFiles.hosts: hosts]), want(.link)).replacesAnotherMode)
        // From 256 the removal reloads resolved too, as the addition does.
        var new = resolvedNode
        new.systemdVersion = 262
        XCTAssertEqual(try planned(DNSFacts(host: new, files: facts.files), want(.link)).resolvedAction, "ReloadOrRestartUnit")

        let toHosts = try planned(
            DNSFacts(host: resolvedNode, link: ours, clusterAnswer: .addresses([try IPAddress("10.43.12.7")])), want(.hosts))
        XCTAssertTrue(toHosts.removeLink)
        XCTAssertTrue(toHosts.replacesAnotherMode)
        XCTAssertNil(toHosts.routePlan)
    }

    /// resolved's global DNSOverTLS=yes reaches a delegate's scope and the global servers a
    /// drop-in adds (neither file has a mode of its own): asked for, they say why they cannot work.
    func testTheDelegateAndTheDropInAreRefusedWhereDNSOverTLSIsStrict() throws {
        var sid = resolvedNode
        sid.systemdVersion = 262
        sid.resolvedConf = ResolvedConfiguration(texts: [("/etc/systemd/resolved.conf", "[Resolve]\nDNSOverTLS=yes\n")])
        assertAgentError(
            try planned(DNSFacts(host: sid), want(.delegate)), .unsupportedHost,
            "--dns-mode delegate cannot work here: resolved's global DNSOverTLS=yes (from /etc/systemd/resolved.conf) applies to a delegate's scope",
            "use --dns-mode link")
        assertAgentError(
            try planned(DNSFacts(host: sid), want(.dropin, accept: true)), .unsupportedHost,
            "--dns-mode dropin cannot work here: resolved's global DNSOverTLS=yes", "use --dns-mode link")
        // auto: the link, and the agent's delegate file of before goes.
        let delegate = ResolvedFiles.renderDelegate(clusterDNS: desired.clusterDNS, domain: desired.domain)
        let plan = try planned(DNSFacts(host: sid, files: [ResolvedFiles.delegate: delegate]), desired)
        XCTAssertEqual(plan.mode, .link)
        XCTAssertEqual(plan.routePlan?.desired.modes, .clusterDNS)
        XCTAssertEqual(plan.fileChanges.map(\.path), [ResolvedFiles.delegate])
        XCTAssertEqual(plan.fileChanges.map(\.kind), [.remove])
        XCTAssertEqual(plan.resolvedAction, "ReloadOrRestartUnit")
    }

    /// nss-mdns ending the lookup before DNS (a full module that /etc/mdns.allow opens, with
    /// [NOTFOUND=return]): every route through DNS is refused when asked for, hosts mode works.
    func testAModeThroughDNSIsRefusedWhereNssMdnsEndsTheLookupFirst() throws {
        var host = resolvedNode
        host.nsswitchHosts = NSSwitchHosts(parsing: "hosts: files mdns4 [NOTFOUND=return] dns\n")
        host.multicastDNS = MulticastDNSSources(allowFile: ".local\n")
        for mode in [DNSMode.link, .dropin] {
            assertAgentError(
                try planned(DNSFacts(host: host), want(mode, accept: true)), .unsupportedHost,
                "--dns-mode \(mode.rawValue) cannot work here: nsswitch.conf's hosts line (files mdns4 [NOTFOUND=return] dns) asks mdns4 before DNS",
                "use --dns-mode hosts (or auto)")
        }
        let auto = try planned(DNSFacts(host: host, clusterAnswer: .addresses([try IPAddress("10.43.12.7")])), desired)
        XCTAssertEqual(auto.mode, .hosts)
        XCTAssertEqual(auto.fileChanges.map(\.path), [ResolvedFiles.hosts])
        // Without [NOTFOUND=return] the lookup waits and goes on: a note.
        host.nsswitchHosts = NSSwitchHosts(parsing: "hosts: files mdns4 dns\n")
        let waits = try planned(DNSFacts(host: host), want(.link))
        XCTAssertTrue(
            waits.notes.last?.hasSuffix(": --dns-mode hosts (or auto) answers from /etc/hosts before it") == true, "\(waits.notes)")
        // files after it: nothing of the agent's is read in time; auto says so.
        host.nsswitchHosts = NSSwitchHosts(parsing: "hosts: mdns4 [NOTFOUND=return] files dns\n")
        let none = try planned(DNSFacts(host: host), desired)
        XCTAssertEqual(none.mode, .link)
        XCTAssertTrue(
            none.notes.last?.contains("files comes after it, so no DNS mode of the agent's (not even /etc/hosts lines) is read in time")
                == true,
            "\(none.notes)")
    }
}

extension DNSFacts {
    /// A node's facts as the tests state them; `planned(_:_:)` chooses the mode from what is asked.
    init(
        host: DNSHostFacts, link: AgentLink.Observed = AgentLink.Observed(state: .absent), linkSettings: LinkDNSSettings? = nil,
        files: [HostPath: String] = [:], clusterAnswer: DNSAnswer? = nil
    ) {
        self.init(
            host: host, mode: DNSModeChoice(asked: .hosts, host: host, registry: nil), link: link, linkSettings: linkSettings,
            files: files, clusterAnswer: clusterAnswer)
    }
}
