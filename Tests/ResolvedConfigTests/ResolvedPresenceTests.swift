import Foundation
import ResolvedConfig
import SystemBus
import TestSupport
import Vocabulary
import XCTest

/// `ResolvedPresence.onBus` through the real SystemBus against Tests/doubles/systemd1-double (a
/// test double of systemd's manager, on a private bus the test starts): resolved's name off the
/// bus while systemd moves its unit between states is waited for, not taken for a node without
/// resolved (a reconcile in that moment went to /etc/hosts lines and back on a booted trixie
/// node); a unit at rest off the bus is absent at once; a unit still moving after the wait is an
/// error that names it.
final class ResolvedPresenceTests: XCTestCase {
    /// Takes resolved's name on the bus, as resolved does once it has started.
    func takeResolvedsName(_ bus: SystemBus) throws {
        let reply = try bus.call(
            destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "RequestName",
            build: {
                try $0.append(string: "org.freedesktop.resolve1")
                try $0.append(uint32: 4)  // DBUS_NAME_FLAG_DO_NOT_QUEUE
            }, read: { try $0.uint32() })
        XCTAssertEqual(reply, 1, "not the name's primary owner")
    }

    /// `systemctl restart systemd-resolved`: stopped, its start job queued; then on the bus.
    func testARestartingResolvedIsWaitedForAndFound() throws {
        let node = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:inactive:dead:77"])
        defer { node.close() }
        let resolved = try SystemBus(address: node.bus.address)
        var pauses = 0
        let on = try ResolvedPresence.onBus(node.bus, settleSeconds: 10) { _ in
            pauses += 1
            guard pauses == 3 else { return }
            do { try self.takeResolvedsName(resolved) } catch { XCTFail("\(error)") }
        }
        XCTAssertTrue(on, "a restarting resolved was taken for a node without it")
        XCTAssertEqual(pauses, 3)
    }

    /// Starting (ActiveState "activating") and never on the bus within the wait: an error naming
    /// resolved and systemd's state, not "not running".
    func testAResolvedStillStartingAfterTheWaitIsAnErrorNotAbsence() throws {
        let (node, pauses) = try waitedFor(state: "activating:start") { node, pause in
            assertAgentError(
                try ResolvedPresence.onBus(node.bus, settleSeconds: 0.3, pause: pause), .unsupportedHost, "systemd-resolved",
                "activating (start)", "no DNS mode is chosen")
        }
        defer { node.close() }
        XCTAssertGreaterThan(pauses, 1, "not waited for")
    }

    /// Active by systemd's word and never on the bus: waited for, then taken as before (not on
    /// the bus), since that is how it stays, not a moment between states.
    func testAnActiveResolvedThatNeverTakesItsNameIsAbsentAfterTheWait() throws {
        let (node, pauses) = try waitedFor(state: "active:running") { node, pause in
            XCTAssertFalse(try ResolvedPresence.onBus(node.bus, settleSeconds: 0.3, pause: pause))
        }
        defer { node.close() }
        XCTAssertGreaterThan(pauses, 1, "not waited for")
    }

    /// `body` with resolved's unit in `state` (ACTIVE:SUB) on the double and resolved never on
    /// the bus, given a pause that sleeps and counts: the double and the pauses taken.
    func waitedFor(state: String, _ body: (SystemdDoubleBus, (Double) -> Void) throws -> Void) throws -> (SystemdDoubleBus, Int) {
        let node = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:\(state)"])
        var pauses = 0
        do {
            try body(node) {
                pauses += 1
                usleep(UInt32($0 * 1e6))
            }
        } catch {
            node.close()
            throw error
        }
        return (node, pauses)
    }

    /// Stopped (no job), not installed, or no systemd to ask: absent at once, no wait.
    func testAResolvedAtRestOffTheBusIsAbsentAtOnce() throws {
        let never: (Double) -> Void = { _ in XCTFail("waited for a resolved that systemd says is not coming") }
        let stopped = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:inactive:dead"])
        defer { stopped.close() }
        XCTAssertFalse(try ResolvedPresence.onBus(stopped.bus, settleSeconds: 10, pause: never))
        let failed = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:failed:failed"])
        defer { failed.close() }
        XCTAssertFalse(try ResolvedPresence.onBus(failed.bus, settleSeconds: 10, pause: never))
        let notInstalled = try SystemdDoubleBus(["--unit", "containerd.service"])
        defer { notInstalled.close() }
        XCTAssertFalse(try ResolvedPresence.onBus(notInstalled.bus, settleSeconds: 10, pause: never))
        notInstalled.stopDouble()
        XCTAssertFalse(try ResolvedPresence.onBus(notInstalled.bus, settleSeconds: 10, pause: never))
    }

    /// On the bus: true at once, systemd not asked.
    func testAResolvedOnTheBusIsTakenWithoutAskingSystemd() throws {
        let node = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:activating:start"])
        defer { node.close() }
        let resolved = try SystemBus(address: node.bus.address)
        try takeResolvedsName(resolved)
        XCTAssertTrue(try ResolvedPresence.onBus(node.bus, settleSeconds: 10) { _ in XCTFail("waited") })
        withExtendedLifetime(resolved) {}
        XCTAssertEqual(try node.calls(), [])
    }

    /// After a run that failed: whether resolved moved since the run began. Its name with
    /// another owner or none, restarted since (active, entered after the start) or between states
    /// now is a move, and resolved is waited for until it is back on the bus; the same owner and
    /// active since before the start, stopped, not installed, or no systemd to ask is none, at
    /// once: the failure is the run's own.
    func testAResolvedThatMovedSinceARunBeganIsToldAndWaitedFor() throws {
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let before = "\(UInt64(started.timeIntervalSince1970 * 1e6) - 1)"
        let after = "\(UInt64(started.timeIntervalSince1970 * 1e6) + 1)"
        let never: (Double) -> Void = { _ in XCTFail("waited for a resolved that did not move") }

        let unmoved = try SystemdDoubleBus(["--unit", "systemd-resolved.service,10,\(before)"])
        defer { unmoved.close() }
        XCTAssertNil(ResolvedPresence.moved(since: started, owner: nil, bus: unmoved.bus, pause: never))

        let restarted = try SystemdDoubleBus(["--unit", "systemd-resolved.service,11,\(after)"])
        defer { restarted.close() }
        let onBus = try SystemBus(address: restarted.bus.address)
        try takeResolvedsName(onBus)
        XCTAssertEqual(ResolvedPresence.moved(since: started, owner: nil, bus: restarted.bus, pause: never), "restarted")
        withExtendedLifetime(onBus) {}

        // Stopped by `systemctl restart`, its start job queued: told, and waited for.
        let restarting = try SystemdDoubleBus([
            "--unit", "systemd-resolved.service,0,\(before)", "--state", "systemd-resolved.service:inactive:dead:77",
        ])
        defer { restarting.close() }
        let resolved = try SystemBus(address: restarting.bus.address)
        var pauses = 0
        let moved = ResolvedPresence.moved(since: started, owner: nil, bus: restarting.bus, settleSeconds: 10) { _ in
            pauses += 1
            guard pauses == 2 else { return }
            do { try self.takeResolvedsName(resolved) } catch { XCTFail("\(error)") }
        }
        XCTAssertEqual(moved, "was inactive (dead) with job 77 of systemd's queued")
        XCTAssertEqual(pauses, 2, "the restart under way was not waited for")
        XCTAssertTrue(restarting.bus.hasOwner("org.freedesktop.resolve1"))

        // The agent can learn of resolved's death before systemd does: systemd still says it runs
        // since before the run, but its name has left the bus (or has another owner). Told, and
        // waited for until it is back.
        let died = try SystemdDoubleBus(["--unit", "systemd-resolved.service,12,\(before)"])
        defer { died.close() }
        let back = try SystemBus(address: died.bus.address)
        var waits = 0
        let left = ResolvedPresence.moved(since: started, owner: ":1.40", bus: died.bus, settleSeconds: 10) { _ in
            waits += 1
            guard waits == 2 else { return }
            do { try self.takeResolvedsName(back) } catch { XCTFail("\(error)") }
        }
        XCTAssertEqual(left, "left the system bus")
        XCTAssertEqual(waits, 2, "resolved's return was not waited for")
        let newOwner = ResolvedPresence.owner(died.bus)
        XCTAssertNotNil(newOwner)
        XCTAssertEqual(
            ResolvedPresence.moved(since: started, owner: ":1.40", bus: died.bus, pause: never), "restarted (its bus name has a new owner)")
        XCTAssertNil(ResolvedPresence.moved(since: started, owner: newOwner, bus: died.bus, pause: never))

        let stopped = try SystemdDoubleBus(["--unit", "systemd-resolved.service,0", "--state", "systemd-resolved.service:inactive:dead"])
        defer { stopped.close() }
        XCTAssertNil(ResolvedPresence.moved(since: started, owner: nil, bus: stopped.bus, pause: never))
        let notInstalled = try SystemdDoubleBus(["--unit", "containerd.service"])
        defer { notInstalled.close() }
        XCTAssertNil(ResolvedPresence.moved(since: started, owner: nil, bus: notInstalled.bus, pause: never))
        notInstalled.stopDouble()
        XCTAssertNil(ResolvedPresence.moved(since: started, owner: nil, bus: notInstalled.bus, pause: never))
    }
}
