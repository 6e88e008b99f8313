import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// Publishes "can this node pull from the registry" as a node condition, the way
/// node-problem-detector does (a strategic merge patch of nodes/NAME/status, keyed by type); and
/// removes a startup taint once the node is ready, so that pods land only on nodes that can pull
/// (kubernetes-sigs/node-readiness-controller watches such conditions). When to send (a change,
/// the heartbeat) is AgentCore's `Reconciler`'s; this is the requests. What happens to the node
/// is also told as Events (`events`).
public final class NodeReporter: @unchecked Sendable {
    // Used from the reconcile loop only.
    public let api: any KubeAPIClient
    public let node: String
    public let conditionType: String
    public let startupTaint: String?
    private var taintRemoved = false
    /// The Node as the status patch just answered it (the object after the write: its taints and
    /// resourceVersion), for the taint's removal that follows in the same report; read once.
    private var patchedNode: JSONValue?
    /// The node's Events, about the same node through the same API.
    public let events: EventRecorder
    /// Whether the requests since `beginReport` reached the API: nil when none was sent, false
    /// when one got no answer (a timeout, a refused connection).
    public private(set) var reportReachedAPI: Bool?

    public init(
        api: any KubeAPIClient, node: String, conditionType: String, startupTaint: String?, events: EventRecorder? = nil
    ) {
        self.api = api
        self.node = node
        self.conditionType = conditionType
        self.startupTaint = startupTaint
        self.events = events ?? EventRecorder(api: api, node: node)
    }

    /// A request to the API; notes whether it was answered, and the Node's uid when the answer
    /// is the Node (a GET, a patch of it or of its status), for the Events.
    private func send(_ method: String, _ path: String, contentType: String? = nil, body: JSONValue? = nil) throws -> (
        status: Int, json: JSONValue?
    ) {
        do {
            let r = try api.request(method, path, contentType: contentType, body: body)
            reportReachedAPI = true
            if (200..<300).contains(r.status), r.json?["kind"]?.string ?? "Node" == "Node",
                let uid = r.json?["metadata"]?["uid"]?.string, !uid.isEmpty
            {
                events.nodeUID = uid
            }
            return r
        } catch {
            reportReachedAPI = false
            throw error
        }
    }

    /// A reconcile's report begins: no request sent yet.
    public func beginReport() {
        reportReachedAPI = nil
        patchedNode = nil
    }

    /// Patches the condition, `now` its heartbeat. `transition` is its lastTransitionTime
    /// (RFC 3339); nil: the node's own when it already holds this status (a restarted agent),
    /// else `now`. Returns what it did and the transition it sent.
    public func patchCondition(ready: Bool, reason: String, message: String, transition: String?, now: Date) throws -> (
        done: String, transition: String
    ) {
        let status = ready ? "True" : "False"
        let transition = try transition ?? publishedTransition(status: status) ?? now.iso8601
        let condition: JSONValue = [
            "type": .string(conditionType), "status": .string(status), "reason": .string(reason),
            "message": .string(String(message.prefix(1024))),
            "lastHeartbeatTime": .string(now.iso8601), "lastTransitionTime": .string(transition),
        ]
        let r = try send(
            "PATCH", "/api/v1/nodes/\(node)/status", contentType: "application/strategic-merge-patch+json",
            body: ["status": ["conditions": [condition]]])
        guard (200..<300).contains(r.status) else {
            throw AgentError(
                .io, "the API answered \(r.status) to the \(conditionType) condition of node \(node)\(KubeAPI.refusal(r))",
                hint: api.hint(r.status, needs: "patch on nodes/status"))
        }
        patchedNode = readableNode(r.json)
        return ("condition \(conditionType)=\(status) (\(reason)) on node \(node)", transition)
    }

    /// Removes the startup taint (a node that is ready); once gone it is not looked for again.
    public func removeStartupTaint() throws -> [String] {
        guard let key = startupTaint, !taintRemoved else { return [] }
        return try removeTaint(key)
    }

    /// Removes the taint `key` from the node, with its resourceVersion so a concurrent change wins
    /// (409: the error, and the next report reads the node again). The node's taints are the
    /// status patch's answer just before when there is one, else a GET.
    public func removeTaint(_ key: String) throws -> [String] {
        let (taints, version) = try taintsAndVersion()
        let remaining = taints.filter { $0["key"]?.string != key }
        guard remaining.count != taints.count else {
            taintRemoved = true
            return []
        }
        let patch: JSONValue = ["metadata": ["resourceVersion": .string(version)], "spec": ["taints": .array(remaining)]]
        let p = try send("PATCH", "/api/v1/nodes/\(node)", contentType: "application/merge-patch+json", body: patch)
        guard (200..<300).contains(p.status) else {
            throw AgentError(
                .io, "the API answered \(p.status) to removing taint \(key) from node \(node)\(KubeAPI.refusal(p))",
                hint: api.hint(p.status, needs: "patch on nodes"))
        }
        taintRemoved = true
        return ["removed startup taint \(key) from node \(node)"]
    }

    /// The node's taints and resourceVersion: the status patch's answer when this report has one
    /// (the Node after that write: one request fewer), else the node read with a GET.
    private func taintsAndVersion() throws -> (taints: [JSONValue], version: String) {
        defer { patchedNode = nil }
        if let node = patchedNode, let version = node["metadata"]?["resourceVersion"]?.string {
            return (node["spec"]?["taints"]?.array ?? [], version)
        }
        let r = try send("GET", "/api/v1/nodes/\(node)")
        guard r.status == 200, let object = r.json, let version = object["metadata"]?["resourceVersion"]?.string else {
            throw AgentError(
                .io, "cannot read node \(node) from the API: \(r.status)\(KubeAPI.refusal(r))",
                hint: api.hint(r.status, needs: "get on nodes"))
        }
        return (object["spec"]?["taints"]?.array ?? [], version)
    }

    /// An answer that is this Node with a resourceVersion and taints that read as a list (or
    /// none); nil otherwise (no body, a Status, another shape): the taint's removal then GETs.
    private func readableNode(_ json: JSONValue?) -> JSONValue? {
        guard let json, json["kind"]?.string ?? "Node" == "Node", json["metadata"]?["name"]?.string == node,
            let version = json["metadata"]?["resourceVersion"]?.string, !version.isEmpty
        else { return nil }
        if let spec = json["spec"], spec.object == nil { return nil }
        if let taints = json["spec"]?["taints"], taints.array == nil, taints != .null { return nil }
        return json
    }

    /// Deletes the condition (uninstall): the node goes back to not having it at all.
    public func clear() throws {
        let r = try api.request(
            "PATCH", "/api/v1/nodes/\(node)/status", contentType: "application/strategic-merge-patch+json",
            body: ["status": ["conditions": [["type": .string(conditionType), "$patch": "delete"]]]])
        guard (200..<300).contains(r.status) else {
            throw AgentError(
                .io, "the API answered \(r.status) to clearing \(conditionType) of node \(node)\(KubeAPI.refusal(r))",
                hint: api.hint(r.status, needs: "patch on nodes/status"))
        }
    }

    /// The lastTransitionTime of this condition on the node when it already has `status`; nil
    /// when it has not, or the node cannot be read (refused: the condition then starts anew).
    /// Throws when the API cannot be reached, so that a silent API costs one timeout, not two.
    public func publishedTransition(status: String) throws -> String? {
        let r = try send("GET", "/api/v1/nodes/\(node)")
        guard r.status == 200 else { return nil }
        let mine = r.json?["status"]?["conditions"]?.array?.first { $0["type"]?.string == conditionType }
        guard let mine, mine["status"]?.string == status, let time = mine["lastTransitionTime"]?.string, !time.isEmpty else { return nil }
        return time
    }
}
