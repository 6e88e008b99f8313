import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import Kubernetes

/// client-go's correlation, with a clock of the test's: the same Event again is one Event with a
/// higher count; a token bucket per type bounds the rate.
final class EventCorrelatorTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let up = NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443")
    let down = NodeEvent(.warning, "RegistryPullNotReady", "dns-host: NXDOMAIN")

    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    func occurrence(_ d: EventCorrelator.Decision) -> EventCorrelator.Occurrence {
        switch d {
        case .create(let o), .patch(let o), .drop(let o, _): o
        }
    }

    func testTheSameEventAgainIsAPatchOfTheOneWrittenWithItsCountAndLastTimestamp() throws {
        var c = EventCorrelator(object: "node-1")
        let first = c.correlate(up, at: at(0))
        guard case .create(let created) = first else { return XCTFail("\(first)") }
        XCTAssertEqual(created.name, "node-1." + String(UInt64(1_800_000_000) * 1_000_000_000, radix: 16))
        XCTAssertEqual(created.count, 1)
        XCTAssertEqual(created.firstTimestamp, at(0))
        c.written(created)
        let again = c.correlate(up, at: at(60))
        XCTAssertEqual(
            again,
            .patch(EventCorrelator.Occurrence(event: up, name: created.name, count: 2, firstTimestamp: at(0), lastTimestamp: at(60))))
        // Another message is another Event, with a name of its own even at the same instant.
        let other = occurrence(c.correlate(NodeEvent(.normal, "RegistryPullReady", "ready to pull from other:443"), at: at(60)))
        let another = occurrence(c.correlate(down, at: at(60)))
        XCTAssertEqual(other.count, 1)
        XCTAssertNotEqual(other.name, another.name)
        XCTAssertNotEqual(other.name, created.name)
    }

    func testAnEventNeverWrittenIsCreatedWithTheCountSoFar() {
        var c = EventCorrelator(object: "node-1")
        let first = occurrence(c.correlate(down, at: at(0)))  // its create failed: not written
        let second = c.correlate(down, at: at(10))
        XCTAssertEqual(
            second,
            .create(EventCorrelator.Occurrence(event: down, name: first.name, count: 2, firstTimestamp: at(0), lastTimestamp: at(10))))
    }

    func testTheRateIs25AtOnceThenOneEveryFiveMinutesPerType() {
        var c = EventCorrelator(object: "node-1")
        var written = 0
        for i in 0..<40 {
            let event = NodeEvent(.warning, "RegistryPullNotReady", "failure \(i)")
            switch c.correlate(event, at: at(0)) {
            case .create(let o):
                c.written(o)
                written += 1
            case .patch: XCTFail("every message differs")
            case .drop(_, let retryAfter): XCTAssertEqual(retryAfter, 300, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(written, 25, "the burst")
        // Normal has a bucket of its own (client-go's spam key has the type).
        guard case .create = c.correlate(up, at: at(0)) else { return XCTFail("Normal is not rate-limited by Warning") }
        // Empty until 5 minutes have passed; then one more, and empty again.
        guard case .drop = c.correlate(down, at: at(299)) else { return XCTFail("no token before 5 minutes") }
        guard case .create = c.correlate(down, at: at(300)) else { return XCTFail("a token after 5 minutes") }
        guard case .drop = c.correlate(down, at: at(301)) else { return XCTFail("one token only") }
    }

    func testADroppedOneStillCountsSoTheNextWriteCarriesTheTrueCount() {
        var c = EventCorrelator(object: "node-1", burst: 2, rate: 1.0 / 300)
        let o = occurrence(c.correlate(up, at: at(0)))
        c.written(o)
        _ = c.correlate(up, at: at(1))  // a patch: count 2, the bucket empty now
        let dropped = c.correlate(up, at: at(2))
        guard case .drop(let d, _) = dropped else { return XCTFail("\(dropped)") }
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(
            c.correlate(up, at: at(400)), .patch(.init(event: up, name: o.name, count: 4, firstTimestamp: at(0), lastTimestamp: at(400))))
    }

    func testTheCacheForgetsTheLeastRecentlySeenAndCapsTheMessage() {
        var c = EventCorrelator(object: "node-1", cacheSize: 2)
        let a = NodeEvent(.normal, "A", "a")
        let b = NodeEvent(.normal, "B", "b")
        let d = NodeEvent(.normal, "D", "d")
        c.written(occurrence(c.correlate(a, at: at(0))))
        c.written(occurrence(c.correlate(b, at: at(1))))
        c.written(occurrence(c.correlate(a, at: at(2))))  // a is the more recent now
        _ = c.correlate(d, at: at(3))  // b goes
        guard case .create = c.correlate(b, at: at(4)) else { return XCTFail("b was forgotten: a new Event") }
        let long = occurrence(c.correlate(NodeEvent(.warning, "L", String(repeating: "x", count: 5000)), at: at(5)))
        XCTAssertEqual(long.event.message.count, 1024)
    }

    func testATooLongNameIsAUUIDAsClientGoMakesIt() {
        var c = EventCorrelator(object: String(repeating: "n", count: 250))
        let name = occurrence(c.correlate(up, at: at(0))).name
        XCTAssertEqual(name.count, 36)
        XCTAssertNotNil(UUID(uuidString: name))
    }

    func testTheTokenBucket() {
        var bucket = TokenBucket(burst: 2, rate: 0.5)
        XCTAssertTrue(bucket.take(at: at(0)))
        XCTAssertTrue(bucket.take(at: at(0)))
        XCTAssertFalse(bucket.take(at: at(1)))
        XCTAssertEqual(bucket.wait(at: at(1)), 1, accuracy: 1e-9)
        XCTAssertTrue(bucket.take(at: at(2)))
        XCTAssertFalse(bucket.take(at: at(1)), "time going back adds nothing")
        XCTAssertTrue(bucket.take(at: at(100)))
        XCTAssertTrue(bucket.take(at: at(100)), "full again, never more than the burst")
        XCTAssertFalse(bucket.take(at: at(100)))
    }
}

/// What the recorder sends: the Event's shape (core/v1, as client-go's recorder makes it for a
/// Node), the PATCH of a repeated one, a 404 answered by creating it again, refusals told and
/// never thrown, and nothing sent when the API did not answer the condition's request.
final class EventRecorderTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    var api = RecordingFakeKubeAPI()

    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// The readiness Event of a reconcile (which Events a reconcile makes is AgentCore's
    /// ReconcileFactsTests').
    func ready(_ yes: Bool) -> [NodeEvent] {
        [
            yes
                ? NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443")
                : NodeEvent(.warning, "RegistryPullNotReady", "registry: connection refused")
        ]
    }

    func testTheEventAsTheKubeletAndNodeProblemDetectorWriteIt() throws {
        let recorder = EventRecorder(api: api, node: "node-1")
        let outcomes = recorder.record(ready(true), now: at(0))
        let name = "node-1." + String(UInt64(1_800_000_000) * 1_000_000_000, radix: 16)
        XCTAssertEqual(outcomes, [.created(NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443"), name: name)])
        let sent = api.take()
        XCTAssertEqual(sent.count, 1)
        guard sent.count == 1 else { return }
        XCTAssertEqual(sent[0].method, "POST")
        XCTAssertEqual(sent[0].path, "/api/v1/namespaces/default/events")
        XCTAssertEqual(sent[0].contentType, "application/json")
        let expected: JSONValue = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": "default"],
            "involvedObject": ["apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "node-1"],
            "reason": "RegistryPullReady", "message": "ready to pull from registry:443", "type": "Normal",
            "source": ["component": "node-agent", "host": "node-1"],
            "firstTimestamp": "2027-01-15T08:00:00Z", "lastTimestamp": "2027-01-15T08:00:00Z", "count": 1,
            "reportingComponent": "node-agent", "reportingInstance": "node-1",
        ]
        XCTAssertEqual(sent[0].body, expected)
    }

    func testTheNodesUIDOnceTheReporterReadTheNode() throws {
        api.node = ["metadata": ["name": "node-1", "uid": "5e1f-uid", "resourceVersion": "41"], "status": ["conditions": []]]
        let reporter = NodeReporter(api: api, node: "node-1", conditionType: "RegistryPullReady", startupTaint: nil)
        _ = try reporter.patchCondition(ready: true, reason: "RegistryPullable", message: "ready", transition: nil, now: at(0))
        XCTAssertEqual(reporter.reportReachedAPI, true)
        _ = api.take()
        XCTAssertEqual(reporter.events.record(ready(true), now: at(0)).count, 1)
        XCTAssertEqual(api.take().first?.body?["involvedObject"]?["uid"], "5e1f-uid")
    }

    func testARepeatedEventIsAPatchOfCountAndLastTimestamp() throws {
        let recorder = EventRecorder(api: api, node: "node-1")
        _ = recorder.record(ready(true), now: at(0))
        _ = recorder.record(ready(false), now: at(10))
        let created = api.take()
        XCTAssertEqual(created.map(\.method), ["POST", "POST"])
        guard created.count == 2 else { return }
        let name = try XCTUnwrap(created[0].body?["metadata"]?["name"]?.string)
        let outcomes = recorder.record(ready(true), now: at(20))
        XCTAssertEqual(
            outcomes, [.patched(NodeEvent(.normal, "RegistryPullReady", "ready to pull from registry:443"), name: name, count: 2)])
        let patch = try XCTUnwrap(api.take().first)
        XCTAssertEqual(patch.method, "PATCH")
        XCTAssertEqual(patch.path, "/api/v1/namespaces/default/events/" + name)
        XCTAssertEqual(patch.contentType, "application/strategic-merge-patch+json")
        XCTAssertEqual(
            patch.body, ["count": 2, "lastTimestamp": "2027-01-15T08:00:20Z", "message": "ready to pull from registry:443"])
    }

    func testAnEventTheServerNoLongerHasIsCreatedAgainUnderItsName() throws {
        let recorder = EventRecorder(api: api, node: "node-1")
        _ = recorder.record(ready(true), now: at(0))
        _ = recorder.record(ready(false), now: at(1))
        let name = try XCTUnwrap(api.take().first?.body?["metadata"]?["name"]?.string)
        api.answers["PATCH /api/v1/namespaces/default/events/" + name] = (404, ["kind": "Status", "reason": "NotFound", "code": 404])
        let outcomes = recorder.record(ready(true), now: at(3700))
        let sent = api.take()
        XCTAssertEqual(sent.map(\.method), ["PATCH", "POST"])
        guard sent.count == 2 else { return }
        XCTAssertEqual(sent[1].body?["metadata"]?["name"]?.string, name)
        XCTAssertEqual(sent[1].body?["count"], 2)
        XCTAssertEqual(sent[1].body?["firstTimestamp"], "2027-01-15T08:00:00Z")
        XCTAssertEqual(sent[1].body?["lastTimestamp"], .string(at(3700).iso8601))
        XCTAssertEqual(outcomes.first?.written, true)
    }

    func testARefusalIsToldNotThrownAndTheNextOneIsCreatedAgain() throws {
        let recorder = EventRecorder(api: api, node: "node-1")
        api.answers["POST /api/v1/namespaces/default/events"] = (
            403,
            [
                "kind": "Status", "reason": "Forbidden",
                "message":
                    "events is forbidden: User \"x\" cannot create resource \"events\" in API group \"\" in the namespace \"default\"",
            ]
        )
        let outcomes = recorder.record(ready(true), now: at(0))
        XCTAssertEqual(outcomes.count, 1)
        XCTAssertEqual(outcomes.first?.written, false)
        XCTAssertEqual(
            outcomes.first?.description,
            "event Normal RegistryPullReady not written: the API answered 403: Forbidden: events is forbidden: User \"x\" cannot create resource \"events\" in API group \"\" in the namespace \"default\" (needs create on events)"
        )
        api.answers = [:]
        _ = api.take()
        _ = recorder.record(ready(false), now: at(1))
        _ = recorder.record(ready(true), now: at(2))
        let sent = api.take()
        XCTAssertEqual(sent.map(\.method), ["POST", "POST"], "never written, so created (with the count so far), not patched")
        guard sent.count == 2 else { return }
        XCTAssertEqual(sent[1].body?["count"], 2)
    }

    func testNothingIsSentWhenTheAPIDidNotAnswerTheConditionAndASilentOneStopsTheRest() throws {
        final class SilentAPI: KubeAPIClient {
            var calls = 0
            func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?)
            {
                calls += 1
                throw AgentError(.io, "timed out")
            }
            func hint(_ status: Int, needs: String) -> String? { nil }
        }
        let silent = SilentAPI()
        let reporter = NodeReporter(api: silent, node: "node-1", conditionType: "RegistryPullReady", startupTaint: nil)
        XCTAssertThrowsError(
            try reporter.patchCondition(ready: true, reason: "RegistryPullable", message: "ready", transition: nil, now: at(0)))
        XCTAssertEqual(reporter.reportReachedAPI, false)
        let calls = silent.calls
        let outcomes = reporter.events.record(ready(true), send: reporter.reportReachedAPI != false, now: at(0))
        XCTAssertEqual(silent.calls, calls, "no request after one that got no answer")
        XCTAssertEqual(outcomes.map(\.written), [false])
        // Several Events, the API silent: one try, the rest not sent.
        let recorder = EventRecorder(api: silent, node: "node-1")
        let events = [
            NodeEvent(.normal, "ContainerRuntimeRestarted", "restarted containerd.service (pid 1 -> 2): why"),
            NodeEvent(.normal, "ContainerRuntimeRestarted", "restarted crio.service (pid 3 -> 4): why"),
        ]
        silent.calls = 0
        XCTAssertEqual(recorder.record(events + ready(true), now: at(0)).map(\.written), [false, false, false])
        XCTAssertEqual(silent.calls, 1)
    }
}
