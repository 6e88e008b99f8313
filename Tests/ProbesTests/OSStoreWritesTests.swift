import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// A runtime loads the OS store once, when it starts: the agent's CA files written after that are
/// not loaded. runtime-restart-pending and the runtime-trust check judge by this one rule.
final class OSStoreWritesTests: XCTestCase {
    func testAFileWrittenAfterTheRuntimeStartedIsNotLoadedByIt() throws {
        let root = try TemporaryHostRoot("store-writes")
        let ca = "/usr/local/share/ca-certificates/node-agent-r_443.crt"
        try root.put(ca, "x")
        let written = Date(timeIntervalSince1970: 1_800_000_000)
        try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: root.directory + ca)
        let path = try HostPath(ca)
        let writes = OSStoreWrites(files: root.files, [path, try HostPath("/usr/local/share/ca-certificates/missing.crt")])
        XCTAssertEqual(writes.written.map(\.path), [path], "a missing file is not a write")
        XCTAssertEqual(writes.notLoaded(byRuntimeStartedAt: written - 60), [path])
        XCTAssertEqual(writes.notLoaded(byRuntimeStartedAt: written + 60), [])

        let check = { (started: Date, certsD: Bool) in
            HazardProbes.runtimeRestartPending(
                files: root.files, caFiles: [path], certsDInUse: certsD,
                runtimes: [.init(name: "containerd", pid: 42, started: started)]
            ).outcome
        }
        XCTAssertEqual(check(written - 60, false), .fail, "started before the CA and certs.d does not carry it")
        XCTAssertEqual(check(written - 60, true), .warn, "started before the CA; certs.d carries it")
        XCTAssertEqual(check(written + 60, false), .pass, "started after the CA")
        XCTAssertEqual(
            HazardProbes.runtimeRestartPending(files: root.files, caFiles: [], certsDInUse: false).outcome, .skip)
    }
}
