import XCTest

@testable import AgentCore

/// When `run` reconciles next (before its 10% jitter): the interval while the node is ready;
/// while it is not, sooner, backing off from twice the watch interval up to the interval.
final class ReconcileBackoffTests: XCTestCase {
    func delays(_ failures: ClosedRange<Int>, interval: Double = 60, watchInterval: Double = 2) -> [Double] {
        failures.map { ReconcileSchedule.nextDelay(failures: $0, interval: interval, watchInterval: watchInterval) }
    }

    func testReadyWaitsTheInterval() {
        XCTAssertEqual(ReconcileSchedule.nextDelay(failures: 0, interval: 60, watchInterval: 2), 60)
        XCTAssertEqual(ReconcileSchedule.nextDelay(failures: 0, interval: 0.5, watchInterval: 2), 0.5)
    }

    func testFailuresInARowDoubleTheDelayUpToTheInterval() {
        XCTAssertEqual(delays(1...7), [4, 8, 16, 32, 60, 60, 60])
        XCTAssertEqual(delays(1...4, interval: 2, watchInterval: 0.3), [0.6, 1.2, 2, 2])
        // The defaults' watch interval is longer than a short interval: the interval wins at once.
        XCTAssertEqual(delays(1...2, interval: 1, watchInterval: 2), [1, 1])
    }

    /// An outage of a year of retries stays at the interval (no overflow to infinity or zero).
    func testALongOutageStaysAtTheInterval() {
        XCTAssertEqual(ReconcileSchedule.nextDelay(failures: 1_000_000, interval: 86_400, watchInterval: 3600), 86_400)
        XCTAssertEqual(ReconcileSchedule.nextDelay(failures: Int.max, interval: 60, watchInterval: 0.05), 60)
    }
}
