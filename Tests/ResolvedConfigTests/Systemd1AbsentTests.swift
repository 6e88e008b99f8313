import Foundation
import SystemBus
import TestSupport
import Vocabulary
import XCTest

/// A bus that no systemd serves (a node's bus without it, the sandbox's): the bus daemon says so
/// once, and the units asked after are told the same without another round trip (bootstrap asks
/// after eight units).
final class Systemd1AbsentTests: XCTestCase {
    func testABusWithoutSystemdIsAskedOnce() throws {
        let dir = try makeTemporaryDirectory("bus")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A bus as the sandbox node's: no service files, so nothing is activated for a name.
        let config = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig><type>system</type><listen>unix:path=\(dir)/bus</listen><auth>EXTERNAL</auth>
            <policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
            <allow receive_sender="*"/></policy></busconfig>
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/bus.conf"))
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/dbus-daemon")
        daemon.arguments = ["--config-file=\(dir)/bus.conf", "--nofork", "--nopidfile"]
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        // Connected once the daemon listens.
        let deadline = Date().addingTimeInterval(10)
        var bus: SystemBus?
        while bus == nil, Date() < deadline {
            bus = try? SystemBus(address: "unix:path=\(dir)/bus")
            if bus == nil { usleep(10_000) }
        }
        let systemd = Systemd1(bus: try XCTUnwrap(bus))
        XCTAssertThrowsError(try systemd.unit("containerd.service")) {
            XCTAssertTrue("\($0)".contains("not running on this bus"), "\($0)")
        }
        // The bus is gone: only an answer kept from the first ask can say the same again.
        daemon.terminate()
        daemon.waitUntilExit()
        XCTAssertThrowsError(try systemd.unit("k3s.service")) {
            XCTAssertTrue("\($0)".contains("not running on this bus"), "asked the bus again: \($0)")
        }
    }
}
