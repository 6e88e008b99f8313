import Foundation
import SystemBus
import TestSupport
import Vocabulary
import XCTest

/// `Systemd1.unit` through the real SystemBus (sd-bus) against Tests/doubles/systemd1-double, a
/// test double of systemd's manager on a private bus the test starts (dbus-daemon with its own
/// config under a temporary folder; never the machine's system bus). A unit's state is read as
/// systemd defines it, in one GetAll (and MainPID's Get); where it cannot be read so (a property
/// missing, or of another type than systemd's) the answer is an error naming the unit, the
/// property and what was found, as the four Gets' was, never an empty state or a zero time.
final class Systemd1UnitStateTests: XCTestCase {
    func testAUnitsStateIsReadAsSystemdGivesItInOneGetAll() throws {
        let node = try SystemdDoubleBus(["--unit", "containerd.service,4242,1765000000000000", "--unit", "k3s.service,77,1765000001000000"])
        defer { node.close() }
        let systemd = Systemd1(bus: node.bus)
        let containerd = try XCTUnwrap(try systemd.unit("containerd.service"))
        XCTAssertEqual(containerd.name, "containerd.service")
        XCTAssertEqual(containerd.activeState, "active")
        XCTAssertEqual(containerd.subState, "running")
        XCTAssertEqual(containerd.activeEnterTimestamp, 1_765_000_000_000_000)
        XCTAssertEqual(containerd.mainPID, 4242)
        // Three round trips: LoadUnit, the Unit interface's GetAll, MainPID's Get.
        let unitPath = "/org/freedesktop/systemd1/unit/containerd_2eservice"
        XCTAssertEqual(
            try node.calls(),
            [
                "org.freedesktop.systemd1.Manager.LoadUnit /org/freedesktop/systemd1 containerd.service",
                "org.freedesktop.DBus.Properties.GetAll \(unitPath) org.freedesktop.systemd1.Unit",
                "org.freedesktop.DBus.Properties.Get \(unitPath) org.freedesktop.systemd1.Service.MainPID",
            ])
        XCTAssertEqual(try systemd.unit("k3s.service")?.mainPID, 77)
        XCTAssertEqual(try systemd.unit("k3s.service")?.activeEnterTimestamp, 1_765_000_001_000_000)
        // A unit systemd has no file for: LoadState "not-found", so not installed.
        XCTAssertNil(try systemd.unit("crio.service"))
    }

    func testAMissingPropertyIsAnErrorNamingItNotAnEmptyState() throws {
        let node = try SystemdDoubleBus([
            "--unit", "containerd.service", "--missing", "containerd.service:ActiveState",
            "--unit", "k3s.service", "--missing", "k3s.service:LoadState",
            "--unit", "rke2-agent.service", "--missing", "rke2-agent.service:ActiveEnterTimestamp",
            "--unit", "crio.service", "--missing", "crio.service:MainPID",
        ])
        defer { node.close() }
        let systemd = Systemd1(bus: node.bus)
        // Read as "" before: not active, so not the node's containerd and never a stale runtime.
        assertAgentError(try systemd.unit("containerd.service"), .dbus, "containerd.service", "ActiveState", "missing")
        // Read as "" before: not "loaded", so taken as a unit that is not installed (nil).
        assertAgentError(try systemd.unit("k3s.service"), .dbus, "k3s.service", "LoadState", "missing")
        // Read as 0 before: active since 1970, so older than any CA: restarted on every bootstrap.
        assertAgentError(try systemd.unit("rke2-agent.service"), .dbus, "rke2-agent.service", "ActiveEnterTimestamp", "missing")
        // A Get's refusal, named with the unit (it was the bare bus error).
        assertAgentError(try systemd.unit("crio.service"), .dbus, "crio.service", "MainPID", "missing", "UnknownProperty")
    }

    func testAPropertyOfAnotherTypeIsAnErrorNamingItNotAZero() throws {
        let node = try SystemdDoubleBus([
            "--unit", "containerd.service", "--wrong-type", "containerd.service:ActiveEnterTimestamp:s",
            "--unit", "k3s.service", "--wrong-type", "k3s.service:ActiveState:u",
            "--unit", "crio.service", "--wrong-type", "crio.service:MainPID:t",
        ])
        defer { node.close() }
        let systemd = Systemd1(bus: node.bus)
        assertAgentError(
            try systemd.unit("containerd.service"), .dbus, "containerd.service", "ActiveEnterTimestamp", "of type 's'", "systemd's is 't'")
        assertAgentError(try systemd.unit("k3s.service"), .dbus, "k3s.service", "ActiveState", "of type 'u'", "systemd's is 's'")
        assertAgentError(try systemd.unit("crio.service"), .dbus, "crio.service", "MainPID", "of type 't'", "systemd's is 'u'")
    }
}
