import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// HostProcesses.named reads every /proc/PID/comm of the node through /proc's one descriptor
/// (openat2 beneath it), and by the root's rules on a kernel without openat2: the same processes
/// either way, zombies left out, in pid order.
final class HostProcessesTests: XCTestCase {
    func testNamedFindsTheRuntimesEitherWay() throws {
        let dir = try makeTemporaryDirectory("processes")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        func process(_ pid: Int, _ name: String, state: String = "S") throws {
            try files.writeAtomically(try HostPath("/proc/\(pid)/comm"), name + "\n")
            try files.writeAtomically(
                try HostPath("/proc/\(pid)/stat"), "\(pid) (\(name)) \(state)" + String(repeating: " 7", count: 30) + "\n")
        }
        try files.writeAtomically(try HostPath("/proc/stat"), "cpu 1 2 3\nbtime 1000\n")
        try process(300, "containerd")
        try process(12, "crio")
        try process(13, "dockerd", state: "Z")
        try process(14, "bash")
        try FileManager.default.createSymbolicLink(atPath: dir + "/proc/self", withDestinationPath: "14")
        defer { HostRoot.useOpenat2 = true }
        for openat2 in [true, false] {
            HostRoot.useOpenat2 = openat2
            let found = HostProcesses(files: files).named(["containerd", "crio", "dockerd"])
            XCTAssertEqual(found.map(\.pid), [12, 300], "openat2 \(openat2)")
            XCTAssertEqual(found.map(\.name), ["crio", "containerd"])
            XCTAssertNotNil(found.first?.started)
        }
    }
}
