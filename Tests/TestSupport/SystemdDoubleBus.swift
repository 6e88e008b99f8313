import Foundation
import SystemBus
import Vocabulary

/// A private bus (dbus-daemon with its own config, under a temporary folder) with
/// Tests/doubles/systemd1-double serving org.freedesktop.systemd1 on it, started with `arguments`.
public final class SystemdDoubleBus: @unchecked Sendable {
    public let dir: String
    let daemon = Process()
    let double = Process()
    public let bus: SystemBus

    public init(_ arguments: [String]) throws {
        dir = try makeTemporaryDirectory("systemd1")
        let address = "unix:path=\(dir)/bus"
        let config = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig><type>session</type><listen>\(address)</listen><auth>EXTERNAL</auth>
            <policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
            <allow receive_sender="*"/></policy></busconfig>
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/bus.conf"))
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/dbus-daemon")
        daemon.arguments = ["--config-file=\(dir)/bus.conf", "--nofork", "--nopidfile"]
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        // Connected once the daemon listens.
        let deadline = Date().addingTimeInterval(20)
        var bus: SystemBus?
        while bus == nil, Date() < deadline, daemon.isRunning {
            bus = try? SystemBus(address: address)
            if bus == nil { usleep(10_000) }
        }
        guard let bus else {
            daemon.terminate()
            throw AgentError(.io, "dbus-daemon did not listen at \(address) within 20 s")
        }
        self.bus = bus
        // The double: ready once it owns systemd's name (it serves its objects before taking it).
        _ = FileManager.default.createFile(atPath: dir + "/double.log", contents: nil)
        double.executableURL = packageRoot.appendingPathComponent("Tests/doubles/systemd1-double")
        double.arguments = ["--address", address] + arguments
        double.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/double.log"))
        double.standardError = double.standardOutput
        try double.run()
        while !bus.hasOwner("org.freedesktop.systemd1"), Date() < deadline, double.isRunning { usleep(10_000) }
        guard bus.hasOwner("org.freedesktop.systemd1") else {
            let said = (try? String(contentsOfFile: dir + "/double.log", encoding: .utf8)) ?? ""
            close()
            throw AgentError(.io, "the test double systemd1-double did not serve org.freedesktop.systemd1 within 20 s: \(said)")
        }
    }

    /// The calls the double answered, in order (its own test.double.Calls.List).
    public func calls() throws -> [String] {
        try bus.call(
            destination: "org.freedesktop.systemd1", path: "/test/double", interface: "test.double.Calls", member: "List",
            read: { try $0.string() }
        ).split(separator: "\n").map(String.init)
    }

    /// Stops the double and waits until systemd's name has no owner on the bus: a bus without systemd.
    public func stopDouble() {
        guard double.isRunning else { return }
        double.terminate()
        double.waitUntilExit()
        let deadline = Date().addingTimeInterval(10)
        while bus.hasOwner("org.freedesktop.systemd1"), Date() < deadline { usleep(10_000) }
    }

    public func close() {
        for p in [double, daemon] where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
