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
        guard case .reconcile(let why, _)? = actions.first else {
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

    /// A report as a full proof leaves it: proven now.
    func proven(_ report: Report) -> Report {
        var r = report
        r.networkProof = .init(provenAt: now.wall, ageSeconds: 0, thisReconcile: "full")
        return r
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
                .record(proven(report(ready: false, changes: ["write /etc/a", "link /etc/b -> a"])), error: nil, at: now.wall),
                .log(
                    ReconcileLogLine(
                        .info, "reconciled",
                        ["reason": "start", "proof": "full", "ready": "false", "changes": "2", "failed": "runtime-pull"])),
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

    // MARK: The network proof's cadence (--proof-interval)

    let registryAddress = "10.96.0.20"
    var lightProof: Loop.Proof { .light(try! IPAddress(registryAddress)) }

    /// A reconcile's report as the probes leave it: a full one (DNS, TCP, TLS, the registry's API
    /// at its address, the node's own checks, the runtime's pull) or a light one (a TCP connect
    /// to that address and the node's own checks: ProbeRun+Light).
    func probed(
        light: Bool = false, tcp: CheckResult.Outcome = .pass, api: CheckResult.Outcome = .pass,
        certsD: CheckResult.Outcome = .pass, changes: [String] = [], runtime: [String] = ["containerd 812 1799999000.0"],
        dns: String? = nil, pull: CheckResult.Outcome = .pass
    ) -> Report {
        var checks = [
            CheckResult(
                name: "tcp", outcome: tcp, reason: tcp == .pass ? "connected" : "refused",
                details: ["\(registryAddress):443": tcp == .pass ? "connected" : "refused (nothing listens)"]),
            CheckResult(name: "certs-d", outcome: certsD, reason: "hosts.toml"),
        ]
        if light {
            checks[0].details["address"] = registryAddress
            checks[0].reason =
                tcp == .pass
                ? "connected to the registry at \(registryAddress):443 (light check)"
                : "the registry refused a connection at \(registryAddress):443 (nothing listens; light check)"
        }
        if let dns {
            checks.insert(CheckResult(name: "dns-cluster", outcome: .pass, reason: "resolved", details: ["addresses": dns]), at: 0)
        }
        if !light {
            checks.insert(
                CheckResult(name: "dns-cluster", outcome: .pass, reason: "resolved", details: ["addresses": registryAddress]), at: 0)
            checks.insert(CheckResult(name: "tls-runtime-trust", outcome: .pass, reason: "verified"), at: 2)
            checks.insert(
                CheckResult(name: "registry-api", outcome: api, reason: "/v2/ answered", details: ["address": registryAddress]), at: 3)
            checks.append(CheckResult(name: "runtime-pull", outcome: pull, reason: "not found: the path is proven"))
        }
        let settled = Readiness.settle(checks)
        var r = Report(
            ready: Readiness.isReady(settled), dryRun: false, registry: "registry:443", changes: changes, notes: [], checks: settled)
        r.runtimeProcesses = runtime
        return r
    }

    var proofLoop: Loop { Loop(.init(interval: 60, watchInterval: 2, heartbeat: 300, publishes: true, proofInterval: 600)) }

    /// One watch tick's reconcile (why, how much it proves), or nil.
    func due() -> (why: String, proof: Loop.Proof)? {
        let actions = loop.next(.tick(.init(ca: "ca-1", caChanged: "the CA file changed", owner: ":1.7", folders: [[1]])), now: now)
        guard case .reconcile(let why, let proof)? = actions.first else { return nil }
        return (why, proof)
    }

    /// Ticks every watch interval until a reconcile is due; its time since `from` (s), why, proof.
    func nextReconcile(from: UInt64) -> (after: Int, why: String, proof: Loop.Proof) {
        while true {
            if let (why, proof) = due() { return (Int((now.monotonic - from) / second), why, proof) }
            advance(2)
        }
    }

    /// The reconcile's end, with the jitter the settle step draws; every action in order.
    @discardableResult
    func ended(_ report: Report, jitter: Double = 1) -> [Loop.Action] {
        var all: [Loop.Action] = []
        var pending = loop.next(.reconciled(.success(report)), now: now)
        while !pending.isEmpty {
            let action = pending.removeFirst()
            all.append(action)
            if case .publish(let p) = action {
                pending += loop.next(
                    .published(ConditionPublished(transition: p.condition.map { _ in "node's" }, reachedAPI: true, log: [])), now: now)
            }
            if case .settle = action { pending += loop.next(.settled(folders: [[1]], jitter: jitter), now: now) }
        }
        return all
    }

    func recorded(_ actions: [Loop.Action]) -> Report? {
        actions.lazy.compactMap { if case .record(let r, _, _) = $0 { r } else { nil } }.first
    }

    /// Full at the start; light at each interval while the last full proof is younger than
    /// --proof-interval (jittered with the settle step's draw, as the interval is); full again
    /// when it is due. Broken (the age ignored): every interval light, forever.
    func testLightBetweenFullProofsAndTheProofAtItsJitteredAge() {
        let light = lightProof
        for jitter in [1.0, 1.1, 0.9] {
            loop = proofLoop
            var start = now.monotonic
            XCTAssertEqual(nextReconcile(from: start).proof, .full)
            ended(probed(), jitter: jitter)
            var seen: [String] = []
            for _ in 0..<10 {
                let n = nextReconcile(from: start)
                seen.append("\(n.after) \(n.proof == .full ? "full" : "light")")
                if n.proof == .full { break }
                ended(probed(light: true), jitter: jitter)
                XCTAssertEqual(n.proof, light)
            }
            XCTAssertEqual(seen.count, 10, "jitter \(jitter): nine light, then the full proof: \(seen)")
            XCTAssertEqual(seen.last?.hasSuffix("full"), true, "jitter \(jitter): the proof is due at \(600 * jitter) s: \(seen)")
            let at = Double(seen.last!.split(separator: " ")[0])!
            XCTAssertTrue((600 * jitter - 1)...(600 * jitter + 2) ~= at, "jitter \(jitter): \(seen)")
            start = now.monotonic
            ended(probed(), jitter: jitter)
        }
    }

    /// A light reconcile that finds anything moved asks for a full proof at once, and its own
    /// half-verdict is neither recorded nor published: drift it reapplied, a runtime restart,
    /// the registry's listener refusing its TCP connect (the registry stopped: a failure the full
    /// proof's passing pull makes a warning, still a change), a node check whose outcome changed.
    /// The log and the full proof's reason tell the light check as it found it (failed, its own
    /// reason), not as merged (a warning, at 97e9134: "tcp is now warn (was pass)").
    /// Broken (the comparison dropped), each case records a light verdict instead.
    func testALightReconcileThatFindsSomethingMovedProvesInFullAtOnce() {
        let cases: [(String, Report)] = [
            ("the reconcile changed the node (add route ~cluster.local)", probed(light: true, changes: ["add route ~cluster.local"])),
            (
                "the runtime's processes changed (containerd 812 1799999000.0 -> containerd 990 1800000100.0)",
                probed(light: true, runtime: ["containerd 990 1800000100.0"])
            ),
            (
                "tcp failed (was pass): the registry refused a connection at \(registryAddress):443 (nothing listens; light check)",
                probed(light: true, tcp: .fail)
            ),
            ("certs-d failed (was pass): hosts.toml", probed(light: true, certsD: .fail)),
        ]
        for (moved, lightReport) in cases {
            loop = proofLoop
            XCTAssertEqual(due()?.proof, .full)
            ended(probed())
            advance(60)
            XCTAssertEqual(due()?.proof, lightProof)
            let actions = ended(lightReport)
            XCTAssertEqual(
                actions,
                [
                    .log(ReconcileLogLine(.info, "light reconcile: something moved; proving the network now", ["moved": moved])),
                    .reconcile(why: moved, proof: .full),
                ])
            // The full proof's verdict is the one published, with that reason.
            let full = ended(probed(tcp: lightReport.checks[0].outcome, certsD: lightReport.checks[1].outcome))
            guard case .log(let line)? = full.dropFirst().first else { return XCTFail("\(full)") }
            XCTAssertEqual(line.metadata["reason"], moved)
            XCTAssertEqual(line.metadata["proof"], "full")
        }
    }

    /// Drift a light reconcile repaired is logged and reported with the full proof it asks for
    /// (which finds nothing left to change). Broken (the light one's changes dropped), the
    /// repair is never told.
    func testWhatALightReconcileChangedIsToldWithTheFullProof() throws {
        loop = proofLoop
        XCTAssertEqual(due()?.proof, .full)
        ended(probed())
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        ended(probed(light: true, changes: ["set resolved link nodeagent0: DNS=10.96.0.10"]))
        let full = ended(probed())
        XCTAssertEqual(try XCTUnwrap(recorded(full)).changes, ["set resolved link nodeagent0: DNS=10.96.0.10"])
        XCTAssertTrue(full.contains(.log(ReconcileLogLine(.info, "changed: set resolved link nodeagent0: DNS=10.96.0.10"))), "\(full)")
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        XCTAssertEqual(try XCTUnwrap(recorded(ended(probed(light: true)))).changes, [], "told once")
    }

    /// Between proofs the report carries the full proof's network checks with the light ones in
    /// their places, says how old the proof is, and is settled with them: a certs-d failure the
    /// full proof's runtime pull overruled is not "moved" (else every interval would be full).
    func testTheLightReportCarriesTheProofAndItsAge() throws {
        loop = proofLoop
        XCTAssertEqual(due()?.proof, .full)
        let provenAt = now.wall
        // certs-d failed, but the runtime's pull passed: a warning in the full proof.
        let full = probed(certsD: .fail)
        XCTAssertEqual(full.checks.first { $0.name == "certs-d" }?.outcome, .warn)
        XCTAssertEqual(try XCTUnwrap(recorded(ended(full))).networkProof?.thisReconcile, "full")
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        let report = try XCTUnwrap(recorded(ended(probed(light: true, certsD: .fail))), "not moved: no full proof asked")
        XCTAssertEqual(
            report.checks.map(\.name), ["dns-cluster", "tcp", "tls-runtime-trust", "registry-api", "certs-d", "runtime-pull"])
        XCTAssertEqual(report.checks.first { $0.name == "certs-d" }?.outcome, .warn)
        XCTAssertTrue(report.ready)
        XCTAssertEqual(report.networkProof, .init(provenAt: provenAt, ageSeconds: 60, thisReconcile: "light"))
    }

    /// Every change the watch sees is proven in full at once, and so is every reconcile while
    /// the node is not ready (the backoff's retries: recovery is seen by a full proof). Broken
    /// (a change keeps the interval's light proof), the CA rotation is proven light.
    func testChangesAndNotReadyAreProvenInFull() {
        loop = proofLoop
        XCTAssertEqual(due()?.proof, .full)
        ended(probed())
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        ended(probed(light: true))
        advance(60)
        let rotated = loop.next(.tick(.init(ca: "ca-2", caChanged: "the CA file changed", owner: ":1.7", folders: [[1]])), now: now)
        XCTAssertEqual(rotated, [.reconcile(why: "the CA file changed", proof: .full)], "due and changed: the change wins, in full")
        ended(probed(api: .fail))
        for _ in 0..<4 {
            let n = nextReconcile(from: now.monotonic)
            XCTAssertEqual(n.proof, .full, "not ready: \(n)")
            ended(probed(api: .fail))
        }
        let n = nextReconcile(from: now.monotonic)
        XCTAssertEqual(n.proof, .full)
        ended(probed())
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof, "ready again, proven: light")
    }

    /// While the last full proof could not connect to the registry (stopped, no endpoints), the
    /// backoff's retries are light, a TCP connect to where it failed, at the same times as the
    /// full retries were; the one that connects proves in full at once, so recovery is seen as
    /// soon. Broken (not-ready retries always full, as before), each retry is full.
    func testWhileTheRegistryIsUnreachableTheRetriesAreATCPConnectThenTheProof() throws {
        func retries(proofInterval: Double) -> [String] {
            loop = Loop(.init(interval: 60, watchInterval: 2, heartbeat: 300, publishes: true, proofInterval: proofInterval))
            XCTAssertEqual(due()?.proof, .full)
            ended(probed(tcp: .fail, pull: .fail))
            var seen: [String] = []
            for _ in 0..<4 {
                let n = nextReconcile(from: now.monotonic)
                seen.append("\(n.after) \(n.proof == .full ? "full" : "light")")
                let r = recorded(ended(probed(light: n.proof != .full, tcp: .fail, pull: .fail)))
                XCTAssertEqual(r?.ready, false, "recorded, not ready: nothing moved, no full proof asked")
            }
            return seen
        }
        XCTAssertEqual(retries(proofInterval: 60), ["4 full", "8 full", "16 full", "32 full"], "every reconcile full: the cadence before")
        XCTAssertEqual(retries(proofInterval: 600), ["4 light", "8 light", "16 light", "32 light"], "the same times, light")
        // The registry accepts the connection: the full proof at once, at the retry's time.
        let n = nextReconcile(from: now.monotonic)
        XCTAssertEqual(n.proof, lightProof)
        XCTAssertEqual(
            ended(probed(light: true)),
            [
                .log(
                    ReconcileLogLine(
                        .info, "light reconcile: something moved; proving the network now",
                        ["moved": "tcp passed (was fail): connected to the registry at \(registryAddress):443 (light check)"])),
                .reconcile(why: "tcp passed (was fail): connected to the registry at \(registryAddress):443 (light check)", proof: .full),
            ])
        XCTAssertTrue(try XCTUnwrap(recorded(ended(probed()))).ready)
        // Not ready for another reason (the registry's API fails): the retries are full.
        ended(probed(api: .fail))
        XCTAssertEqual(nextReconcile(from: now.monotonic).proof, .full)
    }

    /// kube-dns answering other addresses for the registry than the full proof's (the Service
    /// was recreated): proven in full at once. Broken (the answer not compared), light on.
    func testALightReconcileWhoseDNSAnswerMovedProvesInFull() {
        loop = proofLoop
        XCTAssertEqual(due()?.proof, .full)
        ended(probed())
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        XCTAssertNotNil(recorded(ended(probed(light: true, dns: registryAddress))), "the same answer: light")
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        XCTAssertEqual(
            ended(probed(light: true, dns: "10.96.0.77")).last,
            .reconcile(why: "dns-cluster answers 10.96.0.77 (was 10.96.0.20)", proof: .full))
        // An answer of the other family (the full proof's was A): not compared.
        loop = proofLoop
        XCTAssertEqual(due()?.proof, .full)
        ended(probed())
        advance(60)
        XCTAssertEqual(due()?.proof, lightProof)
        XCTAssertNotNil(recorded(ended(probed(light: true, dns: "fd00::20"))))
    }

    /// --proof-interval at most --interval: every reconcile proves in full (the cadence before).
    func testAProofIntervalNoLongerThanTheIntervalProvesEveryTime() {
        loop = Loop(.init(interval: 60, watchInterval: 2, heartbeat: 300, publishes: true, proofInterval: 60))
        for _ in 0..<5 {
            XCTAssertEqual(nextReconcile(from: now.monotonic).proof, .full)
            ended(probed())
        }
    }
}
