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

/// The node condition's requests as the API sees them: what a patch carries (its heartbeat, the
/// transition time given, or the node's own for a restarted agent), and the startup taint's
/// removal once the node is ready. When to send is the Reconciler's (AgentCore's ReconcilerTests).
final class NodeReporterTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    var api = RecordingFakeKubeAPI()

    func reporter(taint: String? = nil) -> NodeReporter {
        NodeReporter(api: api, node: "node-1", conditionType: "RegistryPullReady", startupTaint: taint)
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

    func patch(_ r: NodeReporter, _ ready: Bool, transition: String? = nil, now: Date) throws -> (done: String, transition: String) {
        try r.patchCondition(
            ready: ready, reason: ready ? "RegistryPullable" : "RegistryNotPullable", message: ready ? "ready" : "tcp: refused",
            transition: transition, now: now)
    }

    func testAPatchCarriesTheHeartbeatAndTheTransitionTime() throws {
        let r = reporter()
        // A first report: the node is read for a condition of a previous agent (none), then patched.
        let first = try patch(r, false, now: t0)
        XCTAssertEqual(first.done, "condition RegistryPullReady=False (RegistryNotPullable) on node node-1")
        XCTAssertEqual(first.transition, "2027-01-15T08:00:00Z")
        var sent = api.take()
        XCTAssertEqual(sent.map { "\($0.method) \($0.path)" }, ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1/status"])
        XCTAssertEqual(
            try condition(sent[1]),
            [
                "type": "RegistryPullReady", "status": "False", "reason": "RegistryNotPullable", "message": "tcp: refused",
                "lastHeartbeatTime": "2027-01-15T08:00:00Z", "lastTransitionTime": "2027-01-15T08:00:00Z",
            ])
        // A transition time given: sent as it is, the node not read.
        XCTAssertEqual(try patch(r, false, transition: first.transition, now: at(300)).transition, "2027-01-15T08:00:00Z")
        sent = api.take()
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(try condition(sent[0])["lastHeartbeatTime"], "2027-01-15T08:05:00Z")
        XCTAssertEqual(try condition(sent[0])["lastTransitionTime"], "2027-01-15T08:00:00Z")
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
        _ = try patch(reporter(), true, now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2026-12-24T18:00:00Z")

        _ = try patch(reporter(), false, now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2027-01-15T08:00:00Z")

        // A node that cannot be read (refused): the condition starts anew.
        api.answers["GET /api/v1/nodes/node-1"] = (403, nil)
        _ = try patch(reporter(), true, now: t0)
        XCTAssertEqual(try condition(api.take()[1])["lastTransitionTime"], "2027-01-15T08:00:00Z")
    }

    /// The startup taint goes with the node's resourceVersion, other taints kept; once gone it
    /// is not looked for again.
    func testTheStartupTaintIsRemovedOnce() throws {
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
        XCTAssertEqual(try r.removeStartupTaint(), ["removed startup taint \(taint) from node node-1"])
        let sent = api.take()
        XCTAssertEqual(sent.map { "\($0.method) \($0.path)" }, ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1"])
        XCTAssertEqual(sent[1].contentType, "application/merge-patch+json")
        XCTAssertEqual(
            sent[1].body,
            ["metadata": ["resourceVersion": "41"], "spec": ["taints": [["key": "example.com/other", "effect": "NoExecute"]]]])
        XCTAssertEqual(try r.removeStartupTaint(), [])
        XCTAssertEqual(api.take().count, 0, "known to be gone")
        XCTAssertEqual(try reporter().removeStartupTaint(), [], "no startup taint")
        XCTAssertEqual(api.take().count, 0)
    }

    func testANodeWithoutTheTaintIsNotPatched() throws {
        let r = reporter(taint: "node-agent/registry-not-ready")
        XCTAssertEqual(try r.removeStartupTaint(), [])
        XCTAssertEqual(api.take().map { "\($0.method) \($0.path)" }, ["GET /api/v1/nodes/node-1"])
        XCTAssertEqual(try r.removeStartupTaint(), [])
        XCTAssertEqual(api.take().count, 0, "the taint is known to be gone")
    }

    /// The Node as the API server answers a status patch: the whole object after the write.
    func answered(_ version: String, taints: [JSONValue]) -> (status: Int, json: JSONValue?) {
        (
            200,
            [
                "kind": "Node", "apiVersion": "v1", "metadata": ["name": "node-1", "resourceVersion": .string(version)],
                "spec": ["taints": .array(taints)], "status": ["conditions": []],
            ]
        )
    }

    /// A ready node's first report: the taints and resourceVersion come from the status patch's
    /// answer (the Node after that write), so the taint costs one PATCH, no GET. An answer that
    /// cannot be read (no body, a Status, another node) falls back to the GET. Broken (the GET
    /// always, as at 97e9134), three requests where two do.
    func testTheTaintIsReadFromTheStatusPatchsAnswer() throws {
        let taint = "node-agent/registry-not-ready"
        let other: JSONValue = ["key": "example.com/other", "effect": "NoExecute"]
        api.answers["PATCH /api/v1/nodes/node-1/status"] = answered(
            "42", taints: [["key": .string(taint), "effect": "NoSchedule"], other])
        let r = reporter(taint: taint)
        r.beginReport()
        _ = try patch(r, true, transition: "2027-01-15T08:00:00Z", now: t0)
        XCTAssertEqual(try r.removeStartupTaint(), ["removed startup taint \(taint) from node node-1"])
        let sent = api.take()
        XCTAssertEqual(sent.map { "\($0.method) \($0.path)" }, ["PATCH /api/v1/nodes/node-1/status", "PATCH /api/v1/nodes/node-1"])
        XCTAssertEqual(sent[1].body, ["metadata": ["resourceVersion": "42"], "spec": ["taints": [other]]])

        // Answers that are not this Node: the GET, with the node's own resourceVersion (41).
        api.node = ["metadata": ["resourceVersion": "41"], "spec": ["taints": [["key": .string(taint), "effect": "NoSchedule"]]]]
        let elsewhere: JSONValue = ["kind": "Node", "metadata": ["name": "node-2", "resourceVersion": "42"], "spec": [:]]
        let unreadable: [(status: Int, json: JSONValue?)] = [
            (200, nil), (200, ["kind": "Status", "metadata": ["resourceVersion": "42"]]), (200, elsewhere),
        ]
        for answer in unreadable {
            api.answers["PATCH /api/v1/nodes/node-1/status"] = answer
            let fresh = reporter(taint: taint)
            fresh.beginReport()
            _ = try patch(fresh, true, transition: "2027-01-15T08:00:00Z", now: t0)
            XCTAssertEqual(try fresh.removeStartupTaint().count, 1)
            let sent = api.take()
            XCTAssertEqual(
                sent.map { "\($0.method) \($0.path)" },
                ["PATCH /api/v1/nodes/node-1/status", "GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1"], "\(answer)")
            XCTAssertEqual(sent.last?.body?["metadata"], ["resourceVersion": "41"])
        }
    }

    /// Another writer changes the node's taints between the status patch and the taint's: the
    /// resourceVersion of the answer is stale, the API answers 409 and the removal is an error;
    /// the next report (no condition patch due) reads the node with a GET and removes the taint
    /// from what it holds now, the other writer's taint kept.
    func testATaintChangedAfterTheStatusPatchIsAConflictThenReadAgain() throws {
        let taint = "node-agent/registry-not-ready"
        let startup: JSONValue = ["key": .string(taint), "effect": "NoSchedule"]
        let added: JSONValue = ["key": "example.com/added", "effect": "NoSchedule"]
        api.answers["PATCH /api/v1/nodes/node-1/status"] = answered("42", taints: [startup])
        api.answers["PATCH /api/v1/nodes/node-1"] = (
            409, ["kind": "Status", "reason": "Conflict", "message": #"Operation cannot be fulfilled on nodes "node-1""#]
        )
        let r = reporter(taint: taint)
        r.beginReport()
        _ = try patch(r, true, transition: "2027-01-15T08:00:00Z", now: t0)
        assertAgentError(try r.removeStartupTaint(), .io, "the API answered 409 to removing taint \(taint) from node node-1: Conflict")
        XCTAssertEqual(api.take().map { "\($0.method) \($0.path)" }, ["PATCH /api/v1/nodes/node-1/status", "PATCH /api/v1/nodes/node-1"])

        api.answers["PATCH /api/v1/nodes/node-1"] = nil
        api.node = ["metadata": ["name": "node-1", "resourceVersion": "43"], "spec": ["taints": [startup, added]]]
        r.beginReport()
        XCTAssertEqual(try r.removeStartupTaint(), ["removed startup taint \(taint) from node node-1"])
        let sent = api.take()
        XCTAssertEqual(sent.map { "\($0.method) \($0.path)" }, ["GET /api/v1/nodes/node-1", "PATCH /api/v1/nodes/node-1"])
        XCTAssertEqual(sent[1].body, ["metadata": ["resourceVersion": "43"], "spec": ["taints": [added]]])
    }

    /// A refused patch is an error with the API's own words and what the role needs.
    func testARefusedPatchIsReported() throws {
        let r = reporter()
        api.answers["PATCH /api/v1/nodes/node-1/status"] = (
            403,
            [
                "kind": "Status", "reason": "Forbidden",
                "message": #"nodes "node-1" is forbidden: cannot patch resource "nodes/status""#,
            ]
        )
        assertAgentError(
            try patch(r, true, now: t0), .io,
            #"the API answered 403 to the RegistryPullReady condition of node node-1: Forbidden: nodes "node-1" is forbidden"#,
            "needs patch on nodes/status")
        XCTAssertEqual(r.reportReachedAPI, true, "answered, if refused")
    }
}
