import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The ledger of the folders the agent made, when two threads of one run make folders at once
/// (bootstrap writes its trust files and its DNS files side by side).
final class HostLedgerTests: XCTestCase {
    func testFoldersMadeAtTheSameTimeAreAllInTheLedger() throws {
        let dir = try makeTemporaryDirectory("ledger-root")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        let files = HostFiles(root: try HostRoot(dir), ledger: HostFiles.defaultLedger)
        let rounds = 30
        @Sendable func write(_ side: String) -> [String] {
            var failed: [String] = []
            for i in 0..<rounds {
                do {
                    try files.writeAtomically(try HostPath("/etc/\(side)\(i)/file"), Array((HostFiles.ownershipMarker + "\n").utf8))
                } catch {
                    failed.append("\(error)")
                }
            }
            return failed
        }
        let other = BackgroundWork { write("b") }
        XCTAssertEqual(write("a"), [])
        XCTAssertEqual(other.wait(), [])
        let listed = Set(try files.createdDirectories().map(\.path))
        let made = (0..<rounds).flatMap { ["/etc/a\($0)", "/etc/b\($0)"] }
        XCTAssertEqual(made.filter { !listed.contains($0) }, [], "folders made but not in the ledger")
    }
}
