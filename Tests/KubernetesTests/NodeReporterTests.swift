import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Kubernetes

/// A fake of the Kubernetes API for the reporter: it records every request and answers GET of
/// the node with `node` (which it never changes itself), anything else with 200, unless
/// `answers` holds another answer for "METHOD PATH".
final class RecordingFakeKubeAPI: KubeAPIClient {
    struct Request {
        var method: String
        var path: String
        var contentType: String?
        var body: JSONValue?
    }

    var requests: [Request] = []
    var node: JSONValue = ["metadata": ["name": "node-1", "resourceVersion": "41"], "status": ["conditions": []]]
    var answers: [String: (status: Int, json: JSONValue?)] = [:]

    func request(_ method: String, _ path: String, contentType: String?, body: JSONValue?) throws -> (status: Int, json: JSONValue?) {
        requests.append(Request(method: method, path: path, contentType: contentType, body: body))
        if let answer = answers["\(method) \(path)"] { return answer }
        return method == "GET" ? (200, node) : (200, nil)
    }

    func hint(_ status: Int, needs: String) -> String? { "needs \(needs)" }

    /// The requests since the last call; forgets them.
    func take() -> [Request] {
        defer { requests = [] }
        return requests
    }
}

/// The node condition's transitions as the API sees them: when the reporter patches, what the
/// condition carries (heartbeat, lastTransitionTime kept while the status holds), and the
/// startup taint's removal once the node is ready.
final class NodeReporterTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    var api = RecordingFakeKubeAPI()

    func reporter(taint: String? = nil, heartbeat: TimeInterval = 300) -> NodeReporter {
        NodeReporter(api: api, node: "node-1", conditionType: "RegistryPullReady", startupTaint: taint, heartbeat: heartbeat)
    }

    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// The condition a status patch carried.
    func condition(_ request: RecordingFakeKubeAPI.Request) throws -> [String: String] {
        XCTAssertEqual(request.method, "PATCH")
        XCTAssertEqual(request.path, "/api/v1/nodes/node-1/status")
        XCTAssertEqual(request.contentType, "application/strategic-merge-patch+json")
        let conditions = try XCTUnwrap(request.body?["status"]?["conditions"]?.array)
        XCTAssertEqual(conditions.count, 1)
        return try XCTUnwrap(conditions[0].object).compactMapValues(\.string)
    }

    func testPatchesOnChangeAndHeartbeatKeepingTheTransitionTimeWhileTheStatusHolds() throws {
        let r = reporter()
        // First report: the node is read for a condition of a previous agent (none), then patched.
        XCTAssertEqual(
            try r.report(ready: false, reason: "RegistryNotPullable", message: "tcp: refused", now: t0),
            ["condition RegistryPullReady=False (RegistryNotPullable) on node node-1"])
        var sent = api.take()
        XCTAssertEqual(sent.map { "\($0.method) \($0.path)" }, ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1/status"])
        XCTAssertEqual(
            try condition(sent[1]),
            [
                "type": "RegistryPullReady", "status": "False", "reason": "RegistryNotPullable", "message": "tcp: refused",
                "lastHeartbeatTime": "2027-01-15T08:00:00Z", "lastTransitionTime": "2027-01-15T08:00:00Z",
            ])

        // Nothing changed and the heartbeat is not due: no request at all.
        XCTAssertEqual(try r.report(ready: false, reason: "RegistryNotPullable", message: "tcp: refused", now: at(299)), [])
        XCTAssertEqual(api.take().count, 0)

        // The heartbeat: sent again, the transition time kept.
        XCTAssertEqual(try r.report(ready: false, reason: "RegistryNotPullable", message: "tcp: refused", now: at(300)).count, 1)
        sent = api.take()
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(try condition(sent[0])["lastHeartbeatTime"], "2027-01-15T08:05:00Z")
        XCTAssertEqual(try condition(sent[0])["lastTransitionTime"], "2027-01-15T08:00:00Z")

        // A new message with the same status: sent at once, still the same transition time.
        XCTAssertEqual(try r.report(ready: false, reason: "RegistryNotPullable", message: "dns-host: NXDOMAIN", now: at(310)).count, 1)
        sent = api.take()
        XCTAssertEqual(try condition(sent[0])["message"], "dns-host: NXDOMAIN")
        XCTAssertEqual(try condition(sent[0])["lastTransitionTime"], "2027-01-15T08:00:00Z")

        // The status flips: a new transition time.
        XCTAssertEqual(
            try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: at(320)),
            ["condition RegistryPullReady=True (RegistryPullable) on node node-1"])
        sent = api.take()
        XCTAssertEqual(sent.count, 1, "no taint to remove, no GET")
        XCTAssertEqual(try condition(sent[0])["status"], "True")
        XCTAssertEqual(try condition(sent[0])["lastTransitionTime"], "2027-01-15T08:05:20Z")
        XCTAssertEqual(try condition(sent[0])["lastHeartbeatTime"], "2027-01-15T08:05:20Z")
    }

    /// A restarted agent keeps the transition time the node holds when the status is the same,
    /// and starts anew when it is not.
    func testARestartedAgentKeepsThePublishedTransitionTime() throws {
        api.node = [
            "metadata": ["resourceVersion": "7"],
            "status": [
                "conditions": [
                    ["type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"],
                    ["type": "RegistryPullReady", "status": "True", "lastTransitionTime": "2026-12-24T18:00:00Z"],
                ]
            ],
        ]
        _ = try reporter().report(ready: true, reason: "RegistryPullable", message: "ready", now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2026-12-24T18:00:00Z")

        _ = try reporter().report(ready: false, reason: "RegistryNotPullable", message: "tcp: refused", now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2027-01-15T08:00:00Z")

        // A node that cannot be read (refused): the condition starts anew.
        api.answers["GET /api/v1/nodes/node-1"] = (403, nil)
        _ = try reporter().report(ready: true, reason: "RegistryPullable", message: "ready", now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2027-01-15T08:00:00Z")
    }

    /// The startup taint goes once the node is ready, with the node's resourceVersion, other
    /// taints kept; once gone it is not looked for again.
    func testTheStartupTaintIsRemovedOnceReady() throws {
        let taint = "node-agent/registry-not-ready"
        api.node = [
            "metadata": ["resourceVersion": "41"],
            "spec": [
                "taints": [
                    ["key": .string(taint), "effect": "NoSchedule"], ["key": "example.com/other", "effect": "NoExecute"],
                ]
            ],
        ]
        let r = reporter(taint: taint)
        XCTAssertEqual(try r.report(ready: false, reason: "RegistryNotPullable", message: "tcp: refused", now: t0).count, 1)
        XCTAssertEqual(api.take().map(\.method), ["GET", "PATCH"], "not ready: the taint stays")

        XCTAssertEqual(
            try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: at(10)),
            [
                "condition RegistryPullReady=True (RegistryPullable) on node node-1",
                "removed startup taint \(taint) from node node-1",
            ])
        let sent = api.take()
        XCTAssertEqual(
            sent.map { "\($0.method) \($0.path)" },
            ["PATCH /api/v1/nodes/node-1/status", "GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1"])
        XCTAssertEqual(sent[2].contentType, "application/merge-patch+json")
        XCTAssertEqual(
            sent[2].body,
            ["metadata": ["resourceVersion": "41"], "spec": ["taints": [["key": "example.com/other", "effect": "NoExecute"]]]])

        // Ready again at the heartbeat: the condition only.
        XCTAssertEqual(try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: at(310)).count, 1)
        XCTAssertEqual(api.take().map { "\($0.method) \($0.path)" }, ["PATCH /api/v1/nodes/node-1/status"])
    }

    func testANodeWithoutTheTaintIsNotPatched() throws {
        let r = reporter(taint: "node-agent/registry-not-ready")
        XCTAssertEqual(try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: t0).count, 1)
        XCTAssertEqual(
            api.take().map { "\($0.method) \($0.path)" },
            ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1/status", "GET /api/v1/nodes/node-1"])
        XCTAssertEqual(try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: at(300)).count, 1)
        XCTAssertEqual(api.take().map(\.method), ["PATCH"], "the taint is known to be gone")
    }

    /// A refused patch is an error with the API's own words and what the role needs; the
    /// condition counts as not sent, so the next reconcile sends it again.
    func testARefusedPatchIsReportedAndRetried() throws {
        let r = reporter()
        api.answers["PATCH /api/v1/nodes/node-1/status"] = (
            403,
            [
                "kind": "Status", "reason": "Forbidden",
                "message": #"nodes "node-1" is forbidden: cannot patch resource "nodes/status""#,
            ]
        )
        assertAgentError(
            try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: t0), .io,
            #"the API answered 403 to the RegistryPullReady condition of node node-1: Forbidden: nodes "node-1" is forbidden"#,
            "needs patch on nodes/status")
        api.answers = [:]
        _ = api.take()
        XCTAssertEqual(try r.report(ready: true, reason: "RegistryPullable", message: "ready", now: at(1)).count, 1)
        XCTAssertEqual(api.take().map(\.method), ["GET", "PATCH"], "sent again at once, the node read again as never sent")
    }
}
