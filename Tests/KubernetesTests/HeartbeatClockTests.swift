import Foundation
import Vocabulary
import XCTest

@testable import Kubernetes

/// The condition's heartbeat timed on the monotonic clock when the caller gives it (`run` does):
/// a wall clock stepped back does not hold the heartbeat back, one stepped forward does not
/// bring it early; the times in the condition stay the wall clock's, for people.
final class HeartbeatClockTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let second: UInt64 = 1_000_000_000
    let m0: UInt64 = 7_000 * 1_000_000_000

    func testTheHeartbeatFollowsTheMonotonicClockNotTheWallClock() throws {
        let api = RecordingFakeKubeAPI()
        let r = NodeReporter(api: api, node: "node-1", conditionType: "RegistryPullReady", startupTaint: nil, heartbeat: 300)
        XCTAssertEqual(try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: t0, monotonic: m0).count, 1)
        // The wall clock jumps a day ahead, 10 s pass: no heartbeat yet.
        XCTAssertEqual(
            try r.report(
                ready: true, reason: "RegistryPullable", message: "ready", now: t0.addingTimeInterval(86_400), monotonic: m0 + 10 * second),
            [])
        // The wall clock is stepped back an hour; 300 s have passed since the last patch: the heartbeat.
        let stepped = t0.addingTimeInterval(-3600 + 300)
        let sent = try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: stepped, monotonic: m0 + 300 * second)
        XCTAssertEqual(sent.count, 1, "a wall clock stepped back held the heartbeat back")
        let patch = try XCTUnwrap(api.requests.last?.body?["status"]?["conditions"]?.array?.first)
        XCTAssertEqual(patch["lastHeartbeatTime"]?.string, stepped.iso8601, "people read the wall clock")
    }
}
