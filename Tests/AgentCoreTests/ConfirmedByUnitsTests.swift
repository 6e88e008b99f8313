import Glibc
import SystemBus
import TestSupport
import Vocabulary
import XCTest

@testable import AgentCore
@testable import Containerd

/// Which running containerd is the node's, in systemd's word (`Bootstrap.confirmedByUnits`),
/// against Tests/doubles/systemd1-double on a private bus: where systemd cannot give a unit's
/// state (a property missing or of another type than its own), the report says so in a note,
/// not silently as if the unit were absent; no systemd on the bus says nothing.
final class ConfirmedByUnitsTests: XCTestCase {
    let root = try! TemporaryHostRoot("confirmed-by-units")

    func config() throws -> NodeConfig {
        var settings = NodeSettings(registry: "registry-service.openfaas.svc.cluster.local:443")
        settings.hostRoot = root.directory
        settings.clusterDNS = "10.43.0.10"
        settings.runtimePull = false
        var config = try NodeConfig(settings, ca: nil, dryRun: true)
        config.runningContainerd = [RunningContainerd(pid: 4242, config: nil, address: nil)]
        return config
    }

    func testAUnitWhoseStateCannotBeReadIsSaidNotTakenAsAbsent() throws {
        let node = try SystemdDoubleBus([
            "--unit", "containerd.service,4242,1765000000000000", "--wrong-type", "containerd.service:ActiveEnterTimestamp:s",
        ])
        defer { node.close() }
        let confirmed = Bootstrap.confirmedByUnits(try config(), bus: node.bus)
        XCTAssertEqual(confirmed.runningContainerd.map(\.pid), [4242], "no containerd is set aside on a state not read")
        let notes = confirmed.runtimeNotes.filter { $0.contains("containerd.service's state was not read") }
        XCTAssertEqual(notes.count, 1, "\(confirmed.runtimeNotes)")
        XCTAssertTrue(notes.first?.contains("ActiveEnterTimestamp") ?? false, "\(notes)")
    }

    /// A running containerd.service masked since: systemd 252 answers LoadState "masked",
    /// ActiveState "active" and its main process (measured on a booted bookworm node). Read as not
    /// installed before, so the other containerd (pid 9999, not below it) was not set aside.
    func testAMaskedUnitThatStillRunsIsTheNodesContainerd() throws {
        let node = try SystemdDoubleBus(["--unit", "containerd.service,4242,1765000000000000", "--load-state", "containerd.service:masked"])
        defer { node.close() }
        var config = try config()
        config.runningContainerd.append(RunningContainerd(pid: 9999, config: nil, address: nil))
        let confirmed = Bootstrap.confirmedByUnits(config, bus: node.bus)
        XCTAssertEqual(confirmed.runningContainerd.map(\.pid), [4242], "\(confirmed.runtimeNotes)")
        let unit = try XCTUnwrap(try Systemd1(bus: node.bus).unit("containerd.service"))
        XCTAssertEqual(unit.loadState, "masked")
        XCTAssertEqual(unit.activeState, "active")
        XCTAssertEqual(unit.mainPID, 4242)
    }

    func testNoSystemdOnTheBusSaysNothing() throws {
        let node = try SystemdDoubleBus([])
        defer { node.close() }
        // A bus where nobody serves org.freedesktop.systemd1 (the double stopped).
        node.stopDouble()
        let confirmed = Bootstrap.confirmedByUnits(try config(), bus: node.bus)
        XCTAssertEqual(confirmed.runningContainerd.map(\.pid), [4242])
        XCTAssertEqual(confirmed.runtimeNotes, [])
    }
}
