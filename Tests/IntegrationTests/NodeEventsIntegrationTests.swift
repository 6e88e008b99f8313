import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The node's Events as Tests/doubles/api-double holds them (created and patched as kube-apiserver takes
/// core/v1 Events, daemonset.yaml's RBAC enforced), written by `node-agent run` on a sandbox node
/// while its registry stops and starts: one Event per reason and message, its count going up.
final class NodeEventsIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// The one Event with `reason` (a failure when there are several: the same one again must be
    /// counted, not written anew).
    func event(_ api: APIDouble, _ reason: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any]? {
        let found = try api.events(reason)
        XCTAssertLessThanOrEqual(found.count, 1, "one \(reason) Event, counted: \(found)", file: file, line: line)
        return found.first
    }

    func count(_ event: [String: Any]?) -> Int { event?["count"] as? Int ?? 0 }

    /// The (verb, group/resource) pairs daemonset.yaml's ClusterRole, Role (Events) and Role
    /// node-agent-kube-dns (the kube-dns watch) grant, read by PyYAML.
    func granted(_ manifest: String) throws -> Set<String> {
        let r = try node.exec([
            "python3", "-c",
            """
            import sys, yaml
            for d in yaml.safe_load_all(open(sys.argv[1])):
                if d and d.get("kind") in ("ClusterRole", "Role") and d["metadata"]["name"] in ("node-agent", "node-agent-kube-dns"):
                    for rule in d["rules"]:
                        for g in rule["apiGroups"]:
                            for res in rule["resources"]:
                                for v in rule["verbs"]:
                                    print(f"{v} {g}/{res}")
            """, manifest,
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        return Set(r.stdout.split(separator: "\n").map(String.init))
    }

    /// Registry down and up twice: RegistryPullReady at the first report, RegistryPullNotReady
    /// when it stops, RegistryPullReady again when it is back; the second outage and recovery
    /// PATCH the same two Events (count 2, then 3 for Ready) instead of creating new ones. The
    /// Events have the shape the kubelet's and node-problem-detector's have; and the agent used
    /// exactly the verbs daemonset.yaml grants, every request allowed.
    func testReadinessChangesAreEventsCountedOnRepeatWithExactlyTheRBACUsed() throws {
        let (tokenPath, _) = try node.tokenFile("serviceaccount")
        let api = try APIDouble(node, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let log = node.folder + "/agent.log"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let started = Date()
        let agent = try node.startReporting(api, tokenFile: tokenPath, heartbeat: 600, log: log)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }

        // The first report: RegistryPullReady, as the kubelet writes NodeReady.
        try eventually(20, "the first report's Event") { try event(api, "RegistryPullReady") != nil }
        let first = try XCTUnwrap(try event(api, "RegistryPullReady"), logText())
        let nodeUID = try XCTUnwrap((try api.nodeObject()["metadata"] as? [String: Any])?["uid"] as? String)
        let metadata = try XCTUnwrap(first["metadata"] as? [String: Any])
        XCTAssertEqual(metadata["namespace"] as? String, "default", "Events about Nodes go to default")
        let name = try XCTUnwrap(metadata["name"] as? String)
        XCTAssertTrue(name.hasPrefix("node-1."), name)
        let nanos = try XCTUnwrap(UInt64(name.dropFirst("node-1.".count), radix: 16), "<node>.<hex Unix nanoseconds>: \(name)")
        let created = Date(timeIntervalSince1970: Double(nanos) / 1e9)
        XCTAssertTrue(created >= started.addingTimeInterval(-1) && created <= Date(), "\(created) \(started)")
        XCTAssertEqual(
            NSDictionary(dictionary: try XCTUnwrap(first["involvedObject"] as? [String: Any])),
            NSDictionary(dictionary: ["apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": nodeUID]))
        XCTAssertEqual(
            NSDictionary(dictionary: try XCTUnwrap(first["source"] as? [String: Any])),
            NSDictionary(dictionary: ["component": "node-agent", "host": "node-1"]))
        XCTAssertEqual(first["type"] as? String, "Normal")
        XCTAssertEqual(first["message"] as? String, "ready to pull from \(node.registry)")
        XCTAssertEqual(count(first), 1)
        XCTAssertEqual(first["firstTimestamp"] as? String, first["lastTimestamp"] as? String)
        XCTAssertEqual(first["reportingComponent"] as? String, "node-agent")
        XCTAssertEqual(first["reportingInstance"] as? String, "node-1")
        // Ready all along: no more Events than that one, however many reconciles.
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertEqual(try api.events().count, 1, "\((try? api.events()) ?? [])")

        // Down: a Warning with the condition's message. Up: the same Ready Event, count 2.
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "the NotReady Event") { try event(api, "RegistryPullNotReady") != nil }
        let down = try XCTUnwrap(try event(api, "RegistryPullNotReady"))
        XCTAssertEqual(down["type"] as? String, "Warning")
        XCTAssertEqual(down["message"] as? String, try api.condition("RegistryPullReady")?["message"], "the condition's message")
        XCTAssertEqual(count(down), 1)
        Thread.sleep(forTimeInterval: 1.1)  // RFC 3339 seconds: lastTimestamp moves on
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        try eventually(20, "the Ready Event counted again") { count(try event(api, "RegistryPullReady")) == 2 }
        let again = try XCTUnwrap(try event(api, "RegistryPullReady"))
        XCTAssertEqual((again["metadata"] as? [String: Any])?["name"] as? String, name, "the same Event")
        XCTAssertEqual(again["firstTimestamp"] as? String, first["firstTimestamp"] as? String)
        XCTAssertGreaterThan(try XCTUnwrap(again["lastTimestamp"] as? String), try XCTUnwrap(first["lastTimestamp"] as? String))

        // The same outage again: both Events counted, none new.
        XCTAssertEqual(try node.control(["stop", "registry"]), 0)
        try eventually(20, "the NotReady Event counted again") { count(try event(api, "RegistryPullNotReady")) == 2 }
        XCTAssertEqual(try node.control(["start", "registry"]), 0)
        try eventually(20, "the Ready Event counted a third time") { count(try event(api, "RegistryPullReady")) == 3 }
        agent.terminate()
        agent.waitUntilExit()
        XCTAssertEqual(try api.events().count, 2, "one Event per reason and message: \((try? api.events()) ?? [])")
        XCTAssertTrue(logText().contains("kubernetes: event Normal RegistryPullReady on node, 3 times (default/\(name))"), logText())

        // Each Event created once (POST, 201), then patched (a strategic merge patch of count,
        // lastTimestamp and message); every request the service account's and allowed.
        let eventRequests = api.requests.filter { ($0["resource"] as? String) == "events" }
        XCTAssertEqual(eventRequests.filter { $0["method"] as? String == "POST" }.count, 2)
        XCTAssertEqual(eventRequests.filter { $0["method"] as? String == "PATCH" }.count, 3)
        for r in eventRequests where r["method"] as? String == "PATCH" {
            XCTAssertEqual(r["content_type"] as? String, "application/strategic-merge-patch+json")
            XCTAssertEqual(Set(((r["body"] as? [String: Any]) ?? [:]).keys), ["count", "lastTimestamp", "message"], "\(r)")
        }
        for r in api.requests {
            XCTAssertEqual(r["identity"] as? String, APIDouble.serviceAccount, "\(r)")
            XCTAssertEqual(r["decision"] as? String, "allow", "\(r)")
        }
        // The RBAC is exactly what was used: every verb on every resource the ClusterRole grants
        // was asked for, and nothing else.
        let used = Set(
            api.requests.compactMap { r -> String? in
                guard let verb = r["verb"] as? String, let resource = r["resource"] as? String else { return nil }
                let sub = (r["subresource"] as? String).map { $0.isEmpty ? "" : "/" + $0 } ?? ""
                return "\(verb) \(r["group"] as? String ?? "")/\(resource)\(sub)"
            })
        XCTAssertEqual(used, try granted(APIDouble.manifest))
    }

    /// The CA file rotated under the running agent (the registry's CA and a second one, as a
    /// Secret holding a bundle while CAs change over): a RegistryCARotated Event naming the new
    /// certificates and the old one; the node stays ready, so no readiness Event.
    func testACARotationIsAnEvent() throws {
        let (tokenPath, _) = try node.tokenFile("serviceaccount")
        let api = try APIDouble(node, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let ca = node.folder + "/rotating-ca.crt"
        try FileManager.default.copyItem(atPath: node.caFile, toPath: ca)
        let other = try node.exec([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=next registry CA", "-keyout", node.folder + "/next-ca.key", "-out", node.folder + "/next-ca.crt",
        ])
        XCTAssertEqual(other.status, 0, other.stderr)
        let log = node.folder + "/agent.log"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let agent = try node.startReporting(api, tokenFile: tokenPath, heartbeat: 600, log: log, ca: ca)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        try eventually(20, "the first report's Event") { try event(api, "RegistryPullReady") != nil }
        XCTAssertEqual(try api.events("RegistryCARotated").count, 0, "the first CA is no rotation")

        // The Secret's new content, swapped in whole as the kubelet does.
        let bundle =
            try String(contentsOfFile: node.caFile, encoding: .utf8) + String(contentsOfFile: node.folder + "/next-ca.crt", encoding: .utf8)
        try bundle.write(toFile: ca + ".new", atomically: true, encoding: .utf8)
        XCTAssertEqual(rename(ca + ".new", ca), 0)
        try eventually(20, "the rotation's Event") { try event(api, "RegistryCARotated") != nil }
        let rotated = try XCTUnwrap(try event(api, "RegistryCARotated"), logText())
        XCTAssertEqual(rotated["type"] as? String, "Normal")
        let message = try XCTUnwrap(rotated["message"] as? String)
        XCTAssertTrue(message.hasPrefix("installed the registry's new CA "), message)
        XCTAssertTrue(message.contains("CN=next registry CA"), message)
        XCTAssertEqual(message.components(separatedBy: " in place of ").count, 2, message)
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(try api.events().map { $0["reason"] as? String ?? "" }.sorted(), ["RegistryCARotated", "RegistryPullReady"])
        XCTAssertEqual(count(try event(api, "RegistryPullReady")), 1, "ready all along")
    }

    /// daemonset.yaml less its events rule: the API server's 403 for the Event reaches the log
    /// (with the verb the service account needs), the reconcile goes on (the condition is
    /// published, the node stays ready), and the double holds no Event. The double's other
    /// refusals of Events have the API server's shapes.
    func testAnEventTheRBACDoesNotGrantIsLoggedAndTheReconcileGoesOn() throws {
        let (tokenPath, token) = try node.tokenFile("serviceaccount")
        let (manifest, cut, said) = try APIDouble.manifest(without: "events", in: node)
        XCTAssertEqual(cut, "1\n", said)
        let api = try APIDouble(node, manifest: manifest, tokens: [tokenPath: APIDouble.serviceAccount])
        defer { api.stop() }
        let log = node.folder + "/agent.log"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let agent = try node.startReporting(api, tokenFile: tokenPath, heartbeat: 600, log: log)
        defer {
            if agent.isRunning {
                agent.terminate()
                agent.waitUntilExit()
            }
        }
        let expected =
            #"kubernetes: event Normal RegistryPullReady not written: the API answered 403: Forbidden: events is forbidden: User "system:serviceaccount:node-agent:node-agent" cannot create resource "events" in API group "" in the namespace "default" (the service account needs create on events, or an admission policy refused the change (its message names the policy))"#
        try eventually(20, "the refused Event logged") { logText().contains(expected) }
        XCTAssertEqual(try api.condition("RegistryPullReady")?["status"], "True", "the condition published all the same")
        let reconciles = logText().components(separatedBy: "reconciled").count
        try eventually(10, "more reconciles after the refusal") { logText().components(separatedBy: "reconciled").count > reconciles + 2 }
        XCTAssertTrue(agent.isRunning)
        XCTAssertEqual(try api.events().count, 0)
        XCTAssertFalse(logText().contains("reconcile failed"), logText())
        agent.terminate()
        agent.waitUntilExit()
        XCTAssertEqual(agent.terminationStatus, 0)
        let refused = api.requests.filter { ($0["resource"] as? String) == "events" }
        XCTAssertEqual(refused.count, 1, "once: the readiness did not change again")
        XCTAssertEqual(refused.first?["decision"] as? String, "deny")

        // What the API server refuses of an Event, the double refuses, with the same answer;
        // asked as the cluster's admin so that RBAC is not what refuses.
        let admin = try APIDouble(
            node, manifest: manifest, tokens: [tokenPath: "admin,system:masters"], port: 6444)
        defer { admin.stop() }
        func post(_ path: String, _ body: String) throws -> (code: String, body: String) {
            try admin.curl("POST", path, token: token, contentType: "application/json", body: body)
        }
        func event(namespace: String = "default", involvedNamespace: String? = nil, name: String = "node-1.1") -> String {
            let involved = involvedNamespace.map { #","namespace":"\#($0)""# } ?? ""
            return
                #"{"apiVersion":"v1","kind":"Event","metadata":{"name":"\#(name)","namespace":"\#(namespace)"},"involvedObject":{"kind":"Node","name":"node-1"\#(involved)},"reason":"R","message":"m","type":"Normal","count":1}"#
        }
        let mismatch = try post("/api/v1/namespaces/default/events", event(namespace: "kube-system"))
        XCTAssertEqual(mismatch.code, "400")
        XCTAssertTrue(
            mismatch.body.contains("the namespace of the provided object does not match the namespace sent on the request"), mismatch.body)
        let notDefault = try post("/api/v1/namespaces/kube-system/events", event(namespace: "kube-system"))
        XCTAssertEqual(notDefault.code, "422", "an Event about a cluster-scoped object goes to default (or none)")
        XCTAssertTrue(
            notDefault.body.contains(
                #"Event \"node-1.1\" is invalid: involvedObject.namespace: Invalid value: \"\": does not match event.namespace"#),
            notDefault.body)
        let otherNamespace = try post("/api/v1/namespaces/default/events", event(involvedNamespace: "kube-system"))
        XCTAssertEqual(otherNamespace.code, "422")
        XCTAssertEqual(try post("/api/v1/events", event()).code, "405", "the cluster path lists only")
        XCTAssertEqual(try post("/api/v1/namespaces/absent/events", event(namespace: "absent")).code, "404")
        let unnamed = try post("/api/v1/namespaces/default/events", event(name: ""))
        XCTAssertEqual(unnamed.code, "422")
        XCTAssertTrue(unnamed.body.contains("metadata.name: Required value: name or generateName is required"), unnamed.body)
        XCTAssertEqual(try post("/api/v1/namespaces/default/events", event()).code, "201")
        XCTAssertEqual(try post("/api/v1/namespaces/default/events", event()).code, "409", "the name is taken")
        let absent = try admin.curl(
            "PATCH", "/api/v1/namespaces/default/events/node-1.2", token: token, contentType: "application/strategic-merge-patch+json",
            body: #"{"count":2}"#)
        XCTAssertEqual(absent.code, "404")
        XCTAssertEqual(try admin.events().count, 1)
    }
}
