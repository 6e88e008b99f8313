import ArgumentParser
import Foundation
import XCTest

@testable import NodeAgent

/// `node-agent version` and `--version` say which build this is; a test build is unstamped (dev).
/// The stamped values of a release build are checked on the built binary by
/// ReleaseScriptIntegrationTests.
final class VersionCommandTests: XCTestCase {
    func testVersionPrintsTheBuildAsTextAndJSON() throws {
        let build = BuildInfo(version: "v1.2.3-4-gabcdef0-dirty", commit: "abcdef0123456789abcdef0123456789abcdef01")
        XCTAssertEqual(
            VersionCommand.render(build, .text),
            "Version:  v1.2.3-4-gabcdef0-dirty\nCommit:   abcdef0123456789abcdef0123456789abcdef01\nPlatform: \(BuildInfo.platform)\n")
        let json = try JSONSerialization.jsonObject(with: Data(VersionCommand.render(build, .json).utf8)) as? [String: String]
        XCTAssertEqual(
            json,
            ["version": "v1.2.3-4-gabcdef0-dirty", "commit": "abcdef0123456789abcdef0123456789abcdef01", "platform": BuildInfo.platform])
    }

    func testTheSubcommandAndTheFlagAreThere() throws {
        let parsed = try NodeAgent.parseAsRoot(["version", "-o", "json"])
        XCTAssertEqual((parsed as? VersionCommand)?.output, .json)
        XCTAssertEqual((try NodeAgent.parseAsRoot(["version"]) as? VersionCommand)?.output, .text)
        // --version: the version with the commit; a test build is not stamped.
        XCTAssertThrowsError(try NodeAgent.parseAsRoot(["--version"])) { error in
            XCTAssertEqual(NodeAgent.message(for: error), "dev (commit unknown)")
        }
        XCTAssertEqual(BuildInfo.current, BuildInfo(version: "dev", commit: "unknown"))
    }
}
