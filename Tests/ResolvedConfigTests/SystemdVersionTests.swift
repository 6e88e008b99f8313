import Foundation
import HostSystem
import TestSupport
import XCTest

@testable import ResolvedConfig

/// systemd's version when the bus does not say: the number in the name of the node's
/// libsystemd-shared, wherever that node's layout puts it.
final class SystemdVersionTests: XCTestCase {
    func version(withLibraryIn folder: String?) throws -> Int? {
        let root = try makeTemporaryDirectory("systemd-version")
        try FileManager.default.createDirectory(atPath: root + "/usr/lib", withIntermediateDirectories: true)
        if let folder {
            try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: root + folder + "/libsystemd-shared-257.so"))
        }
        return DNSHostFacts.systemdVersion(files: HostFiles(root: try HostRoot(root)), bus: nil)
    }

    func testTheLibraryIsFoundInEveryLayoutANodeHas() throws {
        for folder in [
            "/usr/lib/systemd", "/usr/lib/x86_64-linux-gnu/systemd", "/usr/lib/aarch64-linux-gnu/systemd",
            "/usr/lib/riscv64-linux-gnu/systemd", "/usr/lib/arm-linux-gnueabihf/systemd", "/usr/lib64/systemd",
        ] {
            XCTAssertEqual(try version(withLibraryIn: folder), 257, folder)
        }
    }

    func testNoLibraryIsNoVersion() throws {
        XCTAssertNil(try version(withLibraryIn: nil))
        XCTAssertNil(try version(withLibraryIn: "/usr/lib/riscv64-linux-gnu"))  // not in its systemd folder
    }
}
