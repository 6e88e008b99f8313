import XCTest

@testable import NodeAgent

/// The CRI helper is started before the command line is parsed only for a bootstrap that will
/// pull: not for its help, its version, a dry run (from the command line or, filled in by
/// EnvironmentOptions, from NODE_AGENT_DRY_RUN or the config file), nor another command.
final class HelperAheadTests: XCTestCase {
    func testOnlyABootstrapThatWillPullStartsTheHelperAhead() throws {
        let yes: [[String]] = [
            ["bootstrap", "--ca", "ca.crt", "--registry", "r:5000"],
            ["bootstrap", "--config", "/etc/node-agent/node-agent.env"],
            // After the terminator, words are not options.
            ["bootstrap", "--ca", "c", "--", "--dry-run"],
        ]
        let no: [[String]] = [
            [], ["--help"], ["help", "bootstrap"], ["--version"],
            ["probe", "--registry", "r:5000"], ["run", "--ca", "c"], ["uninstall"], ["status"],
            ["bootstrap", "--help"], ["bootstrap", "-h"], ["bootstrap", "--ca", "c", "--dry-run"],
            ["bootstrap", "--dry-run", "--ca", "c"], ["bootstrap", "--version"],
        ]
        for arguments in yes { XCTAssertTrue(NodeAgent.startsTheHelperAhead(arguments), "\(arguments)") }
        for arguments in no { XCTAssertFalse(NodeAgent.startsTheHelperAhead(arguments), "\(arguments)") }
        // NODE_AGENT_DRY_RUN=true, as EnvironmentOptions fills it in.
        let filled = try EnvironmentOptions.resolve(["bootstrap", "--ca", "c"], environment: ["NODE_AGENT_DRY_RUN": "true"])
        XCTAssertFalse(NodeAgent.startsTheHelperAhead(filled.arguments), "\(filled.arguments)")
    }
}
