import AgentCore
import Probes
import XCTest

/// The readiness rule: no check failed and at least one passed.
final class ReadinessTests: XCTestCase {
    func testReadyWhenNothingFailedAndSomethingPassed() {
        let pass = CheckResult(name: "a", outcome: .pass, reason: "")
        let warn = CheckResult(name: "b", outcome: .warn, reason: "")
        let fail = CheckResult(name: "c", outcome: .fail, reason: "no route")
        let skip = CheckResult(name: "d", outcome: .skip, reason: "")
        XCTAssertTrue(Readiness.isReady([pass, warn, skip]))
        XCTAssertFalse(Readiness.isReady([pass, fail]))
        XCTAssertFalse(Readiness.isReady([skip]))
        XCTAssertFalse(Readiness.isReady([]))
        XCTAssertEqual(Readiness.blockers([pass, fail]), ["c: no route"])
    }
}
