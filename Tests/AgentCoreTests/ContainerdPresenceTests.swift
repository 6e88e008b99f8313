import Glibc
import HostSystem
import SystemBus
import TestSupport
import Vocabulary
import XCTest

@testable import AgentCore
@testable import Containerd

/// `ContainerdPresence.settled` through the real SystemBus against Tests/doubles/systemd1-double
/// (a test double of systemd's manager, on a private bus the test starts): no containerd found
/// while systemd starts, stops or restarts a containerd unit is waited for, not taken for a node
/// whose config files decide; units at rest (stopped, failed, only a start job queued, as at
/// boot behind the agent's own unit) are taken at once; a unit still moving after the wait is
/// an error that names it.
final class ContainerdPresenceTests: XCTestCase {
    let found = RunningContainerd(pid: 4242, config: try! HostPath("/etc/containerd-node/config.toml"), address: nil)

    /// Facts with or without the containerd, as the node's /proc scan gives them.
    func facts(_ running: Bool) -> NodeHostFacts {
        var facts = NodeHostFacts()
        if running { facts.runningContainerd = [found] }
        return facts
    }

    /// `systemctl restart containerd` on a unit that starts it with `-c` elsewhere: while systemd
    /// has it activating, the scan is made again until containerd serves its socket.
    func testAContainerdStartingIsWaitedForAndFound() throws {
        let node = try SystemdDoubleBus(["--unit", "containerd.service,0", "--state", "containerd.service:activating:start"])
        defer { node.close() }
        var scans = 0
        let settled = try ContainerdPresence.settled(
            {
                scans += 1
                return self.facts(scans == 3)
            }, busAddress: node.bus.address, settleSeconds: 10, pause: { _ in })
        XCTAssertEqual(settled.runningContainerd, [found], "a starting containerd was taken for none")
        XCTAssertEqual(scans, 3)
    }

    /// Started between the scan and systemd's answer (the socket served, then ready: systemd says
    /// active): one scan more finds it. Seen on a booted bookworm node, where the last scan of
    /// the wait came a moment before containerd served its socket and the CA went where the
    /// default config says.
    func testAContainerdThatStartedSinceTheScanIsFoundByOneScanMore() throws {
        let node = try SystemdDoubleBus(["--unit", "containerd.service,4242"])
        defer { node.close() }
        var scans = 0
        let settled = try ContainerdPresence.settled(
            {
                scans += 1
                return self.facts(scans == 2)
            }, busAddress: node.bus.address, settleSeconds: 10, pause: { _ in XCTFail("waited for an active unit") })
        XCTAssertEqual(settled.runningContainerd, [found])
    }

    /// Active by systemd's word since a moment (a `Type=simple` unit is so once forked; one that
    /// says ready early) and its main process a containerd that does not serve its socket yet:
    /// waited for; still so after the wait, an error saying so. Active for longer, it is how the
    /// node is (an agent without the host's network sees no socket of it): taken at once.
    func testAnActiveUnitsContainerdNotYetServingIsWaitedFor() throws {
        let now = UInt64(Date().timeIntervalSince1970 * 1e6)
        let node = try SystemdDoubleBus(["--unit", "containerd.service,4242,\(now)"])
        defer { node.close() }
        var started = NodeHostFacts()
        started.runtimeProcesses = [HostProcess(pid: 4242, name: "containerd", started: nil)]
        var scans = 0
        let settled = try ContainerdPresence.settled(
            {
                scans += 1
                return scans == 4 ? self.facts(true) : started
            }, busAddress: node.bus.address, settleSeconds: 10, pause: { _ in })
        XCTAssertEqual(settled.runningContainerd, [found])
        XCTAssertEqual(scans, 4)
        assertAgentError(
            try ContainerdPresence.settled({ started }, busAddress: node.bus.address, settleSeconds: 0.2, activeWithin: 60),
            .unsupportedHost, "containerd.service active, its containerd (pid 4242) not yet serving its socket after 0 s")
        let long = try SystemdDoubleBus(["--unit", "containerd.service,4242,\(now - 60_000_000)"])
        defer { long.close() }
        let settled2 = try ContainerdPresence.settled(
            { started }, busAddress: long.bus.address, settleSeconds: 10, pause: { _ in XCTFail("waited for a containerd active a minute") }
        )
        XCTAssertEqual(settled2.runningContainerd, [])
    }

    /// Stopping (k3s's unit here: it starts the node's containerd) and still so after the wait:
    /// an error naming the unit and systemd's state; the config files do not decide.
    func testAUnitStillMovingAfterTheWaitIsAnErrorNamingIt() throws {
        let node = try SystemdDoubleBus([
            "--unit", "containerd.service,0", "--state", "containerd.service:inactive:dead", "--unit", "k3s.service,0", "--state",
            "k3s.service:deactivating:stop-sigterm",
        ])
        defer { node.close() }
        var pauses = 0
        assertAgentError(
            try ContainerdPresence.settled(
                { self.facts(false) }, busAddress: node.bus.address, settleSeconds: 0.3,
                pause: {
                    pauses += 1
                    usleep(UInt32($0 * 1e6))
                }),
            .unsupportedHost, "k3s.service deactivating (stop-sigterm)", "no containerd serves its socket", "between states")
        XCTAssertGreaterThan(pauses, 1, "not waited for")
    }

    /// At rest, systemd not there, or no bus: the facts as found, no wait. A start job queued
    /// behind another unit (at boot, the agent's own: its unit is `Before=` containerd's) is at
    /// rest: waiting for it would wait for the agent.
    func testUnitsAtRestAreTakenAtOnce() throws {
        let never: (Double) -> Void = { _ in XCTFail("waited for a containerd that systemd says is not coming") }
        for state in ["inactive:dead", "failed:failed", "inactive:dead:12"] {
            let node = try SystemdDoubleBus(["--unit", "containerd.service,0", "--state", "containerd.service:\(state)"])
            defer { node.close() }
            let settled = try ContainerdPresence.settled(
                { self.facts(false) }, busAddress: node.bus.address, settleSeconds: 10, pause: never)
            XCTAssertEqual(settled.runningContainerd, [], state)
        }
        let notInstalled = try SystemdDoubleBus(["--unit", "kubelet.service"])
        defer { notInstalled.close() }
        _ = try ContainerdPresence.settled({ self.facts(false) }, busAddress: notInstalled.bus.address, settleSeconds: 10, pause: never)
        notInstalled.stopDouble()
        _ = try ContainerdPresence.settled({ self.facts(false) }, busAddress: notInstalled.bus.address, settleSeconds: 10, pause: never)
        _ = try ContainerdPresence.settled({ self.facts(false) }, busAddress: "unix:path=/nonexistent/bus", settleSeconds: 10, pause: never)
    }

    /// A containerd found: systemd is not asked (no bus round trip on a node whose runtime runs).
    func testAContainerdFoundIsTakenWithoutAskingSystemd() throws {
        let node = try SystemdDoubleBus(["--unit", "containerd.service,0", "--state", "containerd.service:activating:start"])
        defer { node.close() }
        let settled = try ContainerdPresence.settled(
            { self.facts(true) }, busAddress: node.bus.address, settleSeconds: 10, pause: { _ in XCTFail("waited") })
        XCTAssertEqual(settled.runningContainerd, [found])
        XCTAssertEqual(try node.calls(), [])
    }
}
