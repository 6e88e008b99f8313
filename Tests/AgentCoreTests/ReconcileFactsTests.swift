import Vocabulary
import XCTest

@testable import AgentCore

/// Which Events a reconcile makes, from its facts and the previous one's: readiness when it flips
/// (and at the first report), a CA rotation, a runtime restart, a DNS mode change.
final class ReconcileFactsTests: XCTestCase {
    let ca1 = ["aa11" + String(repeating: "0", count: 60): "CN=registry CA 1"]
    let ca2 = ["bb22" + String(repeating: "0", count: 60): "CN=registry CA 2"]
    let link = Report.DNSChoice(mode: "link", reason: "systemd-resolved answers on the bus", replacedAnotherMode: false)
    let hostsMode = Report.DNSChoice(mode: "hosts", reason: "asked for with --dns-mode hosts", replacedAnotherMode: false)

    func facts(
        ready: Bool = true, message: String = "ready to pull from registry:443", certificates: [String: String]? = nil,
        dns: Report.DNSChoice?? = nil, restarts: [Report.RuntimeRestart] = [], changedHost: Bool = false
    ) -> ReconcileFacts {
        ReconcileFacts(
            ready: ready, message: message, certificates: certificates ?? ca1, dnsMode: dns ?? link, runtimeRestarts: restarts,
            changedHost: changedHost || !restarts.isEmpty)
    }

    func testReadinessAtTheFirstReportAndWhenItFlipsOnly() {
        let ready = facts()
        XCTAssertEqual(NodeEvent.between(nil, ready), [NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443")])
        XCTAssertEqual(NodeEvent.between(ready, ready), [], "no flip, no Event")
        let down = facts(ready: false, message: "dns-host: NXDOMAIN")
        XCTAssertEqual(NodeEvent.between(ready, down), [NodeEvent(.warning, "RegistryPullNotReady", "dns-host: NXDOMAIN")])
        XCTAssertEqual(NodeEvent.between(down, facts(ready: false, message: "tls: expired")), [], "still not ready: the condition says why")
        XCTAssertEqual(NodeEvent.between(down, ready).map(\.reason), ["RegistryPullReady"])
        XCTAssertEqual(NodeEvent.between(nil, down).map(\.type), [.warning], "a first report not ready")
    }

    func testAFailedReconcileIsNotReadyAndForgetsNothingItDidNotSee() {
        let ready = facts()
        let failed = ReconcileFacts(failed: "cannot read the CA file")
        XCTAssertEqual(NodeEvent.between(ready, failed), [NodeEvent(.warning, "RegistryPullNotReady", "cannot read the CA file")])
        let kept = failed.keepingKnown(from: ready)
        XCTAssertEqual(kept.certificates, ready.certificates)
        XCTAssertEqual(kept.dnsMode?.mode, "link")
        // Back with the same CA and mode: only readiness, no rotation or mode change.
        XCTAssertEqual(NodeEvent.between(kept, facts(changedHost: true)).map(\.reason), ["RegistryPullReady"])
    }

    func testACARotationIsANewSetOfFingerprintsTheAgentInstalled() {
        let before = facts()
        let rotated = facts(certificates: ca2, changedHost: true)
        XCTAssertEqual(
            NodeEvent.between(before, rotated),
            [
                NodeEvent(
                    .normal, "RegistryCARotated",
                    "installed the registry's new CA CN=registry CA 2 (SHA-256 bb22000000000000) in place of CN=registry CA 1 (SHA-256 aa11000000000000)"
                )
            ])
        XCTAssertEqual(NodeEvent.between(before, facts(certificates: ca2)), [], "nothing installed: not the agent's rotation")
        XCTAssertEqual(NodeEvent.between(nil, rotated).map(\.reason), ["RegistryPullReady"], "no earlier CA to compare")
        XCTAssertEqual(NodeEvent.between(rotated, facts(certificates: ca2, changedHost: true)).map(\.reason), [])
        // A second CA added to the bundle is a change of the set too.
        XCTAssertEqual(
            NodeEvent.between(before, facts(certificates: ca1.merging(ca2) { a, _ in a }, changedHost: true)).map(\.reason),
            ["RegistryCARotated"])
    }

    func testARuntimeRestartIsTheRestartWithItsPids() {
        let restart = Report.RuntimeRestart(
            unit: "containerd.service", pidBefore: 812, pidAfter: 1204, why: "it started before the CA reached the OS store")
        XCTAssertEqual(restart.change, "restart containerd.service (pid 812 -> 1204): it started before the CA reached the OS store")
        XCTAssertEqual(
            NodeEvent.between(facts(), facts(restarts: [restart])),
            [
                NodeEvent(
                    .normal, "ContainerRuntimeRestarted",
                    "restarted containerd.service (pid 812 -> 1204): it started before the CA reached the OS store")
            ])
    }

    func testADNSModeChangeIsAnotherModeOrTheOtherModesThingsTakenAway() {
        let hosts = facts(dns: hostsMode)
        XCTAssertEqual(
            NodeEvent.between(facts(), hosts),
            [NodeEvent(.normal, "ClusterDNSModeChanged", "cluster DNS mode hosts (was link): asked for with --dns-mode hosts")])
        XCTAssertEqual(NodeEvent.between(hosts, hosts), [])
        // The first reconcile of a restarted agent with another --dns-mode: the old mode's link goes.
        var replaced = hostsMode
        replaced.replacedAnotherMode = true
        XCTAssertEqual(
            NodeEvent.between(nil, facts(dns: replaced, changedHost: true)),
            [
                NodeEvent(.normal, "ClusterDNSModeChanged", "cluster DNS mode hosts: asked for with --dns-mode hosts"),
                NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443"),
            ])
        XCTAssertEqual(NodeEvent.between(nil, facts()).map(\.reason), ["RegistryPullReady"], "the first mode is no change")
        // An IP registry has no DNS mode: nothing to compare.
        XCTAssertEqual(NodeEvent.between(facts(), facts(dns: .some(nil))), [])
    }

    func testTheOrderTellsTheStory() {
        let current = facts(
            ready: true, certificates: ca2, dns: Report.DNSChoice(mode: "hosts", reason: "why", replacedAnotherMode: false),
            restarts: [Report.RuntimeRestart(unit: "containerd.service", pidBefore: 1, pidAfter: 2, why: "why")])
        XCTAssertEqual(
            NodeEvent.between(facts(ready: false, message: "tls"), current).map(\.reason),
            ["RegistryCARotated", "ContainerRuntimeRestarted", "ClusterDNSModeChanged", "RegistryPullReady"])
    }
}
