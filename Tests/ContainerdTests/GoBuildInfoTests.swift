import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd

final class GoBuildInfoTests: XCTestCase {
    /// A `.go.buildinfo` section as Go 1.18+ writes it: header, then two length-prefixed strings.
    func section(version: String, modinfo: String) -> [UInt8] {
        var b = GoBuildInfo.magic + [8, 2] + [UInt8](repeating: 0, count: 16)
        for s in [version, modinfo] {
            var n = s.utf8.count
            while n >= 0x80 {
                b.append(UInt8(n & 0x7f) | 0x80)
                n >>= 7
            }
            b.append(UInt8(n))
            b += Array(s.utf8)
        }
        return b
    }

    func testTheMainModuleNamesTheMajorVersion() throws {
        let v2 = try XCTUnwrap(
            GoBuildInfo.parse(
                section: section(
                    version: "go1.24.4",
                    modinfo: String(repeating: "x", count: 16)
                        + "path\tgithub.com/containerd/containerd/v2/cmd/containerd\nmod\tgithub.com/containerd/containerd/v2\t(devel)\t\nbuild\tCGO_ENABLED=1\n"
                )))
        XCTAssertEqual(v2.mainModule, "github.com/containerd/containerd/v2")
        XCTAssertEqual(v2.mainPath, "github.com/containerd/containerd/v2/cmd/containerd")
        let none = try XCTUnwrap(GoBuildInfo.parse(section: section(version: "go1.19.8", modinfo: "build\tCGO_ENABLED=0\n")))
        XCTAssertNil(none.mainModule)
        XCTAssertNil(none.mainPath)
    }

    func testTheSectionGivesTheVersionAndTheBuildSettings() throws {
        let info = try XCTUnwrap(
            GoBuildInfo.parse(
                section: section(
                    version: "go1.19.8",
                    modinfo: String(repeating: "x", count: 16)
                        + "path\tgithub.com/containerd/containerd/cmd/containerd\nbuild\t-compiler=gc\nbuild\tCGO_ENABLED=1\nbuild\t-tags=netgo,osusergo\n"
                )))
        XCTAssertEqual(info.goVersion, "go1.19.8")
        XCTAssertEqual(info.release?.minor, 19)
        XCTAssertEqual(info.settings["CGO_ENABLED"], "1")
        XCTAssertEqual(info.tags, ["netgo", "osusergo"])
        XCTAssertFalse(info.canUseCgo, "netgo means the pure Go resolver even with cgo on")
        XCTAssertNil(GoBuildInfo.parse(section: Array(section(version: "go1.19.8", modinfo: "").prefix(20))))
        var pre118 = section(version: "go1.17", modinfo: "")
        pre118[15] = 0
        XCTAssertNil(GoBuildInfo.parse(section: pre118), "the pointer layout of Go before 1.18 is not read")
    }

    /// The machine's own containerd (Debian's), read from its ELF section headers as the agent
    /// reads the node's: the same answer as `strings` finds in it.
    func testDebiansContainerdBinary() throws {
        let path = "/usr/bin/containerd"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("no containerd installed") }
        let files = HostFiles(root: try HostRoot("/"))
        let info = try XCTUnwrap(try GoBuildInfo.read { try files.readRegion(try HostPath(path), offset: $0, count: $1) })
        let strings = try sh("/usr/bin/env", ["sh", "-c", "strings \(path) | grep -m1 -E '^go1\\.[0-9]+'"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        XCTAssertEqual(info.goVersion, strings)
        XCTAssertEqual(info.settings["CGO_ENABLED"], "1")
        XCTAssertTrue(info.canUseCgo)
        XCTAssertNil(try GoBuildInfo.read { try files.readRegion(try HostPath("/bin/sh"), offset: $0, count: $1) }, "not a Go binary")
    }
}
