import Foundation
import XCTest

@testable import AgentCore

/// `run`'s schedule on the monotonic clock (nanoseconds), driven here by a clock of the test's:
/// due at once at the start, then the interval (or the backoff while not ready) after each
/// reconcile, jittered. The wall clock is not an input, so a step of it cannot stall the loop.
final class ReconcileScheduleTests: XCTestCase {
    let second: UInt64 = 1_000_000_000
    let boot: UInt64 = 5_000 * 1_000_000_000  // some monotonic time after boot

    func testDueAtTheStartThenAfterTheIntervalOnTheMonotonicClock() {
        var s = ReconcileSchedule(interval: 60, watchInterval: 2)
        XCTAssertTrue(s.due(now: boot), "the first reconcile runs at once")
        s.reconciled(ready: true, now: boot, jitter: 1)
        XCTAssertFalse(s.due(now: boot + 59 * second))
        XCTAssertTrue(s.due(now: boot + 60 * second))
        // Jitter stretches or shortens the one delay it is given.
        s.reconciled(ready: true, now: boot, jitter: 1.1)
        XCTAssertFalse(s.due(now: boot + 65 * second))
        XCTAssertTrue(s.due(now: boot + 66 * second))
    }

    func testNotReadyBacksOffAndReadyResetsIt() {
        var s = ReconcileSchedule(interval: 60, watchInterval: 2)
        var now = boot
        var delays: [UInt64] = []
        for ready in [false, false, false, true, false] {
            s.reconciled(ready: ready, now: now, jitter: 1)
            let next = s.next!
            delays.append((next - now) / second)
            now = next
        }
        XCTAssertEqual(delays, [4, 8, 16, 60, 4])
        XCTAssertEqual(s.failures, 1)
    }

    /// The wall clock stepped back an hour between two reconciles (NTP correcting a node that
    /// booted with its clock ahead): with the schedule on the wall clock, the next reconcile, the
    /// condition's heartbeat and the retries of a node that is not ready waited that hour. On
    /// the monotonic clock, 60 s later is 60 s later.
    func testAWallClockStepBackDoesNotStallTheLoop() {
        let wall = Date()
        var s = ReconcileSchedule(interval: 60, watchInterval: 2)
        s.reconciled(ready: true, now: boot, jitter: 1)
        let steppedWall = wall.addingTimeInterval(-3600 + 60)
        XCTAssertLessThan(steppedWall, wall, "the wall clock is behind where it was")
        XCTAssertTrue(s.due(now: boot + 60 * second), "due 60 s later on the monotonic clock")
    }

    /// `run` reads its schedule's clock from SystemReconcileClock, CLOCK_MONOTONIC: it counts
    /// from boot (never 1970) and never goes back.
    func testTheDefaultClockIsMonotonic() throws {
        var a = ReconcileSchedule(interval: 1, watchInterval: 1)
        let first = monotonicNow()
        a.reconciled(ready: true, now: first, jitter: 1)
        XCTAssertLessThan(Double(first) / 1e9, Date().timeIntervalSince1970 - 86_400 * 365, "time since boot, not since 1970")
        XCTAssertGreaterThanOrEqual(monotonicNow(), first)
    }

    func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
