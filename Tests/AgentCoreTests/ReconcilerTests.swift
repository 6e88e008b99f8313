import Foundation
import Probes
import Vocabulary
import XCTest

@testable import AgentCore

/// `run`'s loop as decisions, driven with a clock of the test's: when it reconciles (the start,
/// the interval, backoff while not ready, a change of the CA, of the runtime's certs.d or of
/// resolved's owner), what it logs and tells systemd, when it sends the condition (a change, the
/// heartbeat on the monotonic clock) and which Events it writes.
final class ReconcilerTests: XCTestCase {
    typealias Loop = Reconciler<String>
    let second: UInt64 = 1_000_000_000
    /// Some monotonic time after boot, and a wall clock time (2027-01-15T08:00:00Z).
    var now = ReconcileInstant(monotonic: 5_000 * 1_000_000_000, wall: Date(timeIntervalSince1970: 1_800_000_000))
    var loop = Loop(.init(interval: 60, watchInterval: 2, heartbeat: 300, publishes: true))

    func advance(_ seconds: Double, wall: Double? = nil) {
        now.monotonic += UInt64(seconds * 1e9)
        now.wall = now.wall.addingTimeInterval(wall ?? seconds)
    }

    /// One watch tick; the reason of the reconcile it starts, or nil.
    func tick(ca: String = "ca-1", owner: String? = ":1.7", folders: [[Int64]?] = [[1]]) -> String? {
        let actions = loop.next(.tick(.init(ca: ca, caChanged: "the CA file changed", owner: owner, folders: folders)), now: now)
        guard case .reconcile(let why)? = actions.first else {
            XCTAssertEqual(actions, [])
            return nil
        }
        XCTAssertEqual(actions.count, 1)
        return why
    }

    /// A reconcile's end with `outcome`, the API answering the condition as `answer` does (by
    /// default: sent, with the node's transition time or the one given); every action in order.
    @discardableResult
    func reconciled(
        _ outcome: Result<Report, any Error>, folders: [[Int64]?] = [[1]],
        answer: (ConditionPublish) -> ConditionPublished = { p in
            ConditionPublished(transition: p.condition.map { _ in p.transition ?? "node's" }, reachedAPI: true, log: [])
        }
    ) -> [Loop.Action] {
        var all: [Loop.Action] = []
        var pending = loop.next(.reconciled(outcome), now: now)
        while !pending.isEmpty {
            let action = pending.removeFirst()
            all.append(action)
            if case .publish(let p) = action { pending += loop.next(.published(answer(p)), now: now) }
            if case .settle = action { pending += loop.next(.settled(folders: folders, jitter: 1), now: now) }
        }
        return all
    }

    func report(ready: Bool, changes: [String] = []) -> Report {
        Report(
            ready: ready, dryRun: false, registry: "registry:443", changes: changes, notes: [],
            checks: [
                CheckResult(name: "dns-cluster", outcome: .pass, reason: "resolved"),
                CheckResult(name: "runtime-pull", outcome: ready ? .pass : .fail, reason: ready ? "pulled" : "tls: unknown authority"),
            ])
    }

    func publishes(_ actions: [Loop.Action]) -> [ConditionPublish] {
        actions.compactMap { if case .publish(let p) = $0 { p } else { nil } }
    }

    func events(_ actions: [Loop.Action]) -> [NodeEvent] {
        actions.flatMap { action -> [NodeEvent] in if case .writeEvents(let e, _, _) = action { e } else { [] } }
    }

    func testTheStartThenTheIntervalOnTheMonotonicClock() {
        XCTAssertEqual(tick(), "start")
        reconciled(.success(report(ready: true)))
        advance(58)
        XCTAssertNil(tick())
        advance(2, wall: -3600)  // the wall clock stepped back an hour: no matter
        XCTAssertEqual(tick(), "interval")
    }

    func testBackoffWhileNotReadyThenTheIntervalOnceReady() {
        var delays: [Int] = []
        var last = now.monotonic
        for ready in [false, false, false, false, false, true, true, false] {
            while tick() == nil { advance(1) }
            delays.append(Int((now.monotonic - last) / second))
            last = now.monotonic
            reconciled(.success(report(ready: ready)))
        }
        XCTAssertEqual(delays, [0, 4, 8, 16, 32, 60, 60, 60])
        while tick() == nil { advance(1) }
        XCTAssertEqual(Int((now.monotonic - last) / second), 4, "not ready again: the backoff starts over")
        XCTAssertEqual(loop.schedule.failures, 1)
    }

    func testAChangeReconcilesAtOnce() {
        XCTAssertEqual(tick(), "start")
        reconciled(.success(report(ready: true)))
        advance(2)
        XCTAssertNil(tick(owner: nil), "no owner (resolved is down): not a restart")
        XCTAssertEqual(tick(owner: ":1.9"), "systemd-resolved restarted")
        reconciled(.success(report(ready: true)))
        XCTAssertNil(tick(owner: ":1.9"))
        XCTAssertEqual(tick(ca: "ca-2", owner: ":1.9"), "the CA file changed")
        reconciled(.success(report(ready: true)), folders: [[1], nil])
        XCTAssertNil(tick(ca: "ca-2", owner: ":1.9", folders: [[1], nil]))
        XCTAssertEqual(tick(ca: "ca-2", owner: ":1.9", folders: [[2], nil]), "the runtime's certs.d changed")
    }

    /// The log lines and systemd's status of a reconcile, ready, not ready, or failed.
    func testWhatIsLoggedAndToldToSystemd() {
        XCTAssertEqual(tick(), "start")
        let done = reconciled(.success(report(ready: false, changes: ["write /etc/a", "link /etc/b -> a"])))
        XCTAssertEqual(
            done.filter { if case .publish = $0 { false } else if case .writeEvents = $0 { false } else { true } },
            [
                .record(report(ready: false, changes: ["write /etc/a", "link /etc/b -> a"]), error: nil, at: now.wall),
                .log(
                    ReconcileLogLine(.info, "reconciled", ["reason": "start", "ready": "false", "changes": "2", "failed": "runtime-pull"])),
                .log(ReconcileLogLine(.info, "changed: write /etc/a")), .log(ReconcileLogLine(.info, "changed: link /etc/b -> a")),
                .notify("READY=1\nSTATUS=not ready: runtime-pull"), .settle,
            ])
        advance(4)
        XCTAssertEqual(tick(), "interval")
        let failed = reconciled(.failure(AgentError(.io, "cannot read http://u:secret@proxy:3128")))
        XCTAssertEqual(
            Array(failed.prefix(3)),
            [
                .record(nil, error: "cannot read http://***@proxy:3128", at: now.wall),
                .log(ReconcileLogLine(.error, "reconcile failed", ["reason": "interval", "error": "cannot read http://***@proxy:3128"])),
                .notify("READY=1\nSTATUS=reconcile failed: cannot read http://***@proxy:3128"),
            ])
        XCTAssertEqual(publishes(failed).first?.condition?.reason, "AgentError")
    }

    /// node-problem-detector's rule: the condition is sent when it changes, else at the
    /// heartbeat, timed on the monotonic clock; its transition time is the node's own at the
    /// first report and moves only when the status flips.
    func testTheConditionOnChangeAndAtTheHeartbeat() throws {
        XCTAssertEqual(tick(), "start")
        var p = publishes(reconciled(.success(report(ready: false))))
        XCTAssertEqual(
            p,
            [
                ConditionPublish(
                    condition: NodeCondition(ready: false, reason: "RegistryNotPullable", message: "runtime-pull: tls: unknown authority"),
                    transition: nil, ready: false, at: now.wall)
            ], "the first report: the transition time is the node's own")
        advance(299, wall: 86_400)  // the wall clock a day ahead: no heartbeat yet
        p = publishes(reconciled(.success(report(ready: false))))
        XCTAssertNil(try XCTUnwrap(p.first).condition, "nothing changed, the heartbeat not due")
        advance(1, wall: -3600)  // and stepped back an hour: the heartbeat is due all the same
        p = publishes(reconciled(.success(report(ready: false))))
        XCTAssertEqual(try XCTUnwrap(p.first).transition, "node's", "the transition time kept")
        XCTAssertNotNil(try XCTUnwrap(p.first).condition)
        advance(10)
        p = publishes(reconciled(.success(report(ready: true))))
        XCTAssertEqual(try XCTUnwrap(p.first).condition?.ready, true, "a change: at once")
        XCTAssertEqual(try XCTUnwrap(p.first).transition, now.wall.iso8601, "the status flipped: now")
        let flipped = now.wall.iso8601
        advance(10)
        p = publishes(reconciled(.success(report(ready: true))))
        XCTAssertNil(try XCTUnwrap(p.first).condition)
        XCTAssertEqual(try XCTUnwrap(p.first).ready, true, "ready: the startup taint goes (once; the reporter knows)")
        advance(300)
        XCTAssertEqual(try XCTUnwrap(publishes(reconciled(.success(report(ready: true)))).first).transition, flipped)
    }

    /// A condition that was not sent (refused, or no answer) is sent at the next reconcile, as
    /// never sent: the node is read again for its transition time.
    func testAConditionNotSentIsSentAgain() throws {
        XCTAssertEqual(tick(), "start")
        let refused: (ConditionPublish) -> ConditionPublished = { _ in
            ConditionPublished(transition: nil, reachedAPI: true, log: [])
        }
        XCTAssertNotNil(try XCTUnwrap(publishes(reconciled(.success(report(ready: true)), answer: refused)).first).condition)
        advance(60)
        let again = try XCTUnwrap(publishes(reconciled(.success(report(ready: true)))).first)
        XCTAssertNotNil(again.condition)
        XCTAssertNil(again.transition)
        XCTAssertEqual(loop.sent?.ready, true)
    }

    /// Readiness Events at the first report and when it flips; none written after a condition
    /// request that got no answer (and no new ones for what that reconcile saw).
    func testEventsAtTheFirstReportAndAtFlips() {
        XCTAssertEqual(tick(), "start")
        XCTAssertEqual(events(reconciled(.success(report(ready: true)))).map(\.reason), ["RegistryPullReady"])
        XCTAssertEqual(events(reconciled(.success(report(ready: true)))), [], "no flip, no Event")
        let down = reconciled(.success(report(ready: false)))
        XCTAssertEqual(events(down), [NodeEvent(.warning, "RegistryPullNotReady", "runtime-pull: tls: unknown authority")])
        let silent: (ConditionPublish) -> ConditionPublished = { _ in ConditionPublished(transition: nil, reachedAPI: false, log: []) }
        let up = reconciled(.success(report(ready: true)), answer: silent)
        XCTAssertEqual(
            up.last(where: { if case .writeEvents = $0 { true } else { false } }),
            .writeEvents([NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443")], send: false, at: now.wall))
        XCTAssertEqual(events(reconciled(.success(report(ready: true)))), [], "told once, written or not")
    }

    func testWithoutAnAPINothingIsPublished() {
        loop = Loop(.init(interval: 60, watchInterval: 2, heartbeat: 300, publishes: false))
        XCTAssertEqual(tick(), "start")
        let done = reconciled(.success(report(ready: true)))
        XCTAssertEqual(publishes(done), [])
        XCTAssertEqual(events(done), [])
        XCTAssertEqual(done.last, .settle)
    }
}
