import HostSystem
import SystemBus
import TestSupport
import Vocabulary
import XCTest

@testable import ResolvedConfig

/// Records resolve1 calls in order; the real resolved is exercised by the integration tests.
final class FakeResolved: ResolvedClient {
    var calls: [String] = []
    /// A fresh link on a hardened resolved: DNS over TLS and DNSSEC from the global config.
    var settings = LinkDNSSettings(
        servers: [], domains: [], defaultRoute: true,
        modes: LinkModes(dnsOverTLS: "yes", dnssec: "yes", llmnr: "yes", multicastDNS: "no"))

    func linkSettings(ifindex: Int32) throws -> LinkDNSSettings { settings }
    func setLinkDefaultRoute(ifindex: Int32, _ value: Bool) throws {
        calls.append("DefaultRoute=\(value)")
        settings.defaultRoute = value
    }
    func setLinkDomains(ifindex: Int32, _ domains: [LinkDomain]) throws {
        calls.append("Domains=\(domains)")
        settings.domains = domains
    }
    func setLinkDNS(ifindex: Int32, _ servers: [IPAddress]) throws {
        calls.append("DNS=\(servers)")
        settings.servers = servers
    }
    func revertLink(ifindex: Int32) throws { calls.append("Revert") }
    func setLinkModes(ifindex: Int32, _ modes: LinkModes) throws {
        calls.append("\(modes)")
        settings.modes = modes
    }
}

final class ClusterDNSRouteTests: XCTestCase {
    let ours =
        #"[{"ifindex":7,"ifname":"nodeagent0","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"ifalias":"managed by node-agent","addr_info":[{"family":"inet","local":"169.254.53.53","prefixlen":32}]}]"#

    /// The kernel's answer by name, as a fake: these links, none other.
    static func kernel(_ links: [String: Int32]) -> @Sendable (String) -> Int32? { { links[$0] ?? 0 } }

    func testCreatesTheLinkUnderAnInterimNameUntilItIsMarkedAndFallsBackToVeth() throws {
        let runner = RecordingRunner()
        // ip's batch as it answers where the kernel has no dummy driver (measured on this
        // machine): the first line fails, nothing after it runs.
        runner.answer = { arguments, input in
            guard arguments == ["-batch", "-"] else { return nil }
            return input.hasPrefix("link add nodeagent0-new type dummy")
                ? CommandResult(status: 1, stderr: "Error: Unknown device type.\nCommand failed -:1\n") : CommandResult(status: 0)
        }
        // A kernel that may load the driver when asked (nil): ip tries it.
        let link = try AgentLink(runner: runner, kernelIndex: Self.kernel([:]), dummyDriver: { nil })
        let steps = try link.observeAndPlan()
        // Nothing ran to learn that neither name exists: the kernel said so.
        XCTAssertEqual(runner.commands, [])
        XCTAssertEqual(
            steps,
            [
                ["link", "add", "nodeagent0-new", "type", "dummy"],
                ["link", "set", "dev", "nodeagent0-new", "alias", "managed by node-agent"],
                ["link", "set", "dev", "nodeagent0-new", "name", "nodeagent0", "up"],
                ["addr", "add", "169.254.53.53/32", "dev", "nodeagent0"],
            ])
        try link.apply(steps)
        XCTAssertEqual(runner.commands.map { Array($0.dropFirst()) }, [["-batch", "-"], ["-batch", "-"]])
        XCTAssertEqual(
            runner.inputs[1],
            """
            link add nodeagent0-new type veth peer name nodeagent0p
            link set dev nodeagent0p up
            link set dev nodeagent0-new alias "managed by node-agent"
            link set dev nodeagent0-new name nodeagent0 up
            addr add 169.254.53.53/32 dev nodeagent0

            """)
    }

    /// A kernel known to lack the dummy driver (no module support, none built in: this
    /// machine's) is asked for the veth pair at once, in one `ip` run; one that has the driver
    /// gets the dummy link.
    func testAKernelWithoutTheDummyDriverGetsTheVethPairInOneRun() throws {
        let steps = try AgentLink.plan(for: .init(state: .absent))
        let runner = RecordingRunner()
        runner.answer = { arguments, input in
            input.contains("type dummy") ? CommandResult(status: 1, stderr: "Error: Unknown device type.\nCommand failed -:1\n") : nil
        }
        try AgentLink(runner: runner, kernelIndex: Self.kernel([:]), dummyDriver: { false }).apply(steps)
        XCTAssertEqual(runner.commands.count, 1)
        XCTAssertTrue(
            runner.inputs.first?.hasPrefix("link add nodeagent0-new type veth peer name nodeagent0p\n") == true, "\(runner.inputs)")
        let dummy = RecordingRunner()
        try AgentLink(runner: dummy, kernelIndex: Self.kernel([:]), dummyDriver: { true }).apply(steps)
        XCTAssertEqual(dummy.commands.count, 1)
        XCTAssertTrue(dummy.inputs.first?.hasPrefix("link add nodeagent0-new type dummy\n") == true, "\(dummy.inputs)")
        // This machine's kernel, as the agent reads it here.
        if access("/proc/modules", F_OK) != 0 && access("/sys/module/dummy", F_OK) != 0 && access("/sys/module", F_OK) == 0 {
            XCTAssertEqual(AgentLink.dummyDriver(), false)
        }
    }

    func testABatchStepThatFailsIsNamedWithWhatIpSaid() throws {
        let runner = RecordingRunner()
        runner.rules = [(["-batch"], CommandResult(status: 1, stderr: "Error: ipv4: Address already assigned.\nCommand failed -:2\n"))]
        let link = try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0": 7]))
        XCTAssertThrowsError(
            try link.apply([["link", "set", "dev", "nodeagent0", "up"], ["addr", "add", AgentLink.address, "dev", "nodeagent0"]])
        ) {
            XCTAssertEqual(($0 as? AgentError)?.code, .commandFailed)
            XCTAssertTrue(
                "\($0)".contains("ip addr add 169.254.53.53/32 dev nodeagent0 failed: Error: ipv4: Address already assigned."), "\($0)")
        }
        XCTAssertEqual(runner.commands.count, 1)
    }

    func testWhereTheKernelCannotBeAskedByNameIpIs() throws {
        let runner = RecordingRunner()
        runner.rules = [
            (["-j", "-d", "addr", "show"], CommandResult(status: 1, stderr: "Device does not exist")),
            (["link", "show", "dev", "nodeagent0-new"], CommandResult(status: 0)),
        ]
        let link = try AgentLink(runner: runner, kernelIndex: { _ in nil })
        XCTAssertEqual(try link.observe(), AgentLink.Observed(state: .absent, interimPresent: true))
        XCTAssertEqual(runner.commands.count, 2)
    }

    func testALinkLeftUnderTheInterimNameByAKillIsRemovedFirst() throws {
        let runner = RecordingRunner()
        runner.rules = [
            (["-j", "-d", "addr", "show"], CommandResult(status: 1, stderr: "Device does not exist")),
            (["link", "show", "dev", "nodeagent0-new"], CommandResult(status: 0)),
        ]
        let link = try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0-new": 9]))
        XCTAssertEqual(try link.observeAndPlan().first, ["link", "del", "dev", "nodeagent0-new"])
        XCTAssertEqual(try link.planRemoval(), [["link", "del", "dev", "nodeagent0-new"]])
    }

    func testForeignLinkIsRefused() throws {
        let runner = RecordingRunner()
        runner.rules = [
            (["-j", "-d", "addr", "show"], CommandResult(status: 0, stdout: #"[{"ifindex":3,"ifname":"nodeagent0","flags":["UP"]}]"#))
        ]
        XCTAssertThrowsError(try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0": 3])).observeAndPlan()) {
            XCTAssertEqual(($0 as? AgentError)?.code, .unsupportedHost)
        }
    }

    func testSettingsAreAppliedInTheOrderThatKeepsResolvConfClean() throws {
        let runner = RecordingRunner()
        runner.rules = [
            (["-j", "-d", "addr", "show"], CommandResult(status: 0, stdout: ours))
        ]
        let resolved = FakeResolved()
        let route = ClusterDNSRoute(link: try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0": 7])), resolved: resolved)
        let plan = try route.observeAndPlan(clusterDNS: try IPAddress("10.96.0.10"), domain: try DomainName("svc.cluster.local"))
        XCTAssertEqual(plan.linkSteps, [])
        XCTAssertTrue(plan.resolvedChangeNeeded)
        try route.apply(plan)
        XCTAssertEqual(
            resolved.calls,
            ["DefaultRoute=false", "DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no", "Domains=[~svc.cluster.local]", "DNS=[10.96.0.10]"])
        // Applied: the next plan is empty and applying it calls nothing.
        let again = try route.observeAndPlan(clusterDNS: try IPAddress("10.96.0.10"), domain: try DomainName("svc.cluster.local"))
        XCTAssertTrue(again.isEmpty)
        resolved.calls = []
        try route.apply(again)
        XCTAssertEqual(resolved.calls, [])
    }

    /// Servers, domain and default route as wanted, but the link inherits a global
    /// DNSOverTLS=yes: the cluster DNS would be asked on 853. The route is not in place.
    func testALinkThatInheritsDNSOverTLSIsNotInPlace() throws {
        let runner = RecordingRunner()
        runner.rules = [(["-j", "-d", "addr", "show"], CommandResult(status: 0, stdout: ours))]
        let resolved = FakeResolved()
        resolved.settings = LinkDNSSettings(
            servers: [try IPAddress("10.96.0.10")], domains: [LinkDomain(name: "svc.cluster.local", routeOnly: true)], defaultRoute: false,
            modes: LinkModes(dnsOverTLS: "yes", dnssec: "no", llmnr: "no", multicastDNS: "no"))
        let route = ClusterDNSRoute(link: try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0": 7])), resolved: resolved)
        let plan = try route.observeAndPlan(clusterDNS: try IPAddress("10.96.0.10"), domain: try DomainName("svc.cluster.local"))
        XCTAssertTrue(plan.resolvedChangeNeeded)
        XCTAssertTrue(plan.summary.last?.hasSuffix("DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no") == true, "\(plan.summary)")
        try route.apply(plan)
        XCTAssertEqual(resolved.settings.modes, .clusterDNS)
    }

    func testSameServersWithWrongDefaultRouteAreCorrectedInPlace() throws {
        let runner = RecordingRunner()
        runner.rules = [
            (["-j", "-d", "addr", "show"], CommandResult(status: 0, stdout: ours))
        ]
        let resolved = FakeResolved()
        resolved.settings = LinkDNSSettings(servers: [try IPAddress("10.96.0.10")], domains: [], defaultRoute: true)
        let route = ClusterDNSRoute(link: try AgentLink(runner: runner, kernelIndex: Self.kernel(["nodeagent0": 7])), resolved: resolved)
        try route.apply(try route.observeAndPlan(clusterDNS: try IPAddress("10.96.0.10"), domain: try DomainName("svc.cluster.local")))
        XCTAssertEqual(
            resolved.calls,
            ["DefaultRoute=false", "DNSOverTLS=no DNSSEC=no LLMNR=no MulticastDNS=no", "Domains=[~svc.cluster.local]", "DNS=[10.96.0.10]"])
    }

    func testResolvConfNameserversAndBusAddressEscaping() {
        XCTAssertEqual(
            ResolvConf(parsing: "# x\nnameserver 127.0.0.11\nnameserver\t10.96.0.10\nsearch .\n").nameservers.map(\.description),
            ["127.0.0.11", "10.96.0.10"])
        XCTAssertEqual(SystemBus.address(hostRoot: "/"), "unix:path=/run/dbus/system_bus_socket")
        XCTAssertEqual(SystemBus.address(hostRoot: "/tmp/a b,c"), "unix:path=/tmp/a%20b%2Cc/run/dbus/system_bus_socket")
    }

    func testConnectingToAMissingBusSaysWhatToDo() {
        XCTAssertThrowsError(try SystemBus(address: "unix:path=/nonexistent/bus")) {
            XCTAssertEqual(($0 as? AgentError)?.code, .dbus)
            XCTAssertTrue("\($0)".contains("--dbus-address"))
        }
    }
}

final class KubeletConfigTests: XCTestCase {
    func testBlockAndFlowStyles() {
        let block = KubeletDNSConfig.parse(
            """
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            clusterDNS:
            - 10.96.0.10   # kube-dns
            - "fd00::a"
            clusterDomain: cluster.local
            resolvConf: /run/systemd/resolve/resolv.conf
            authentication:
              resolvConf: nested-is-ignored
            """)
        XCTAssertEqual(block.clusterDNS.map(\.description), ["10.96.0.10", "fd00::a"])
        XCTAssertEqual(block.clusterDomain, "cluster.local")
        XCTAssertEqual(block.resolvConf, "/run/systemd/resolve/resolv.conf")
        let flow = KubeletDNSConfig.parse("clusterDNS: [10.43.0.10, junk]\n")
        XCTAssertEqual(flow.clusterDNS.map(\.description), ["10.43.0.10"])
        XCTAssertEqual(KubeletDNSConfig.parse("").clusterDNS, [])
    }

    func testFlagsOfKubeadmAndDistributionFiles() {
        let kubeadm = KubeletDNSConfig.parseFlags(
            #"KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --resolv-conf=/run/systemd/resolve/resolv.conf""#
        )
        XCTAssertEqual(kubeadm["resolv-conf"], "/run/systemd/resolve/resolv.conf")
        XCTAssertEqual(kubeadm["container-runtime-endpoint"], "unix:///run/containerd/containerd.sock")
        let extra = KubeletDNSConfig.parseFlags("KUBELET_EXTRA_ARGS=--cluster-dns 10.43.0.10,fd00::a --node-ip=10.0.0.5\n")
        XCTAssertEqual(extra["cluster-dns"], "10.43.0.10,fd00::a")
        XCTAssertEqual(extra["node-ip"], "10.0.0.5")
    }

    func testFlatYAMLReadsTopLevelKeysInEachStyle() {
        let text = """
            # comment
            "quoted-key": 'one'
            scalar: two # trailing
            flow: [a, "b", ]
            block:
              - c
            - d
            nested:
              inner: x
            empty:
            ---
            after: e
            """
        let e = FlatYAML.entries(text)
        XCTAssertEqual(e.map(\.key), ["quoted-key", "scalar", "flow", "block", "nested", "empty", "after"])
        XCTAssertEqual(e.map(\.values), [["one"], ["two"], ["a", "b"], ["c", "d"], [], [], ["e"]])
    }
}
