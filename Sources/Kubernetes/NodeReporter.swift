import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

/// Publishes "can this node pull from the registry" as a node condition, the way
/// node-problem-detector does (a strategic merge patch of nodes/NAME/status, keyed by type),
/// only when it changes plus a slow heartbeat; and removes a startup taint once the node is
/// ready, so that pods land only on nodes that can pull (kubernetes-sigs/node-readiness-controller
/// watches such conditions). What happens to the node is also told as Events (`events`).
public final class NodeReporter: @unchecked Sendable {
    // Used from the reconcile loop only.
    public let api: any KubeAPIClient
    public let node: String
    public let conditionType: String
    public let startupTaint: String?
    public let heartbeat: TimeInterval
    private var last: (status: String, reason: String, message: String)?
    /// RFC 3339, as sent: the node's own while the status it holds is the one sent.
    private var lastTransition = ""
    private var lastSent = Date.distantPast
    /// When the condition was last sent on the monotonic clock (nanoseconds), when the caller
    /// gives that clock: a wall clock stepped back must not hold the heartbeat back for as long.
    private var lastSentMonotonic: UInt64?
    private var taintRemoved = false
    /// The node's Events, about the same node through the same API.
    public let events: EventRecorder
    /// Whether the last `report` reached the API: nil when it sent nothing, false when a
    /// request got no answer (a timeout, a refused connection).
    public private(set) var reportReachedAPI: Bool?

    public init(
        api: any KubeAPIClient, node: String, conditionType: String, startupTaint: String?, heartbeat: TimeInterval,
        events: EventRecorder? = nil
    ) {
        self.api = api
        self.node = node
        self.conditionType = conditionType
        self.startupTaint = startupTaint
        self.heartbeat = heartbeat
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

    /// The Events of a reconcile with these facts, written unless this reconcile's condition
    /// request went unanswered; what became of each.
    public func recordEvents(_ facts: ReconcileFacts, now: Date = Date()) -> [EventRecorder.Outcome] {
        events.record(facts, send: reportReachedAPI != false, now: now)
    }

    /// Sends the condition when it changed or the heartbeat is due; returns what it did. `now`
    /// is for the timestamps people read; `monotonic` (nanoseconds of CLOCK_MONOTONIC), when
    /// given, times the heartbeat instead of `now`.
    public func report(ready: Bool, reason: String, message: String, now: Date = Date(), monotonic: UInt64? = nil) throws -> [String] {
        var done: [String] = []
        reportReachedAPI = nil
        let status = ready ? "True" : "False"
        let changed = last.map { $0.status != status || $0.reason != reason || $0.message != message } ?? true
        if last == nil {
            // A restarted agent: the condition may already hold this status since long ago.
            lastTransition = try publishedTransition(status: status) ?? now.iso8601
        } else if last?.status != status {
            lastTransition = now.iso8601
        }
        let heartbeatDue: Bool
        if let monotonic, let sent = lastSentMonotonic {
            heartbeatDue = monotonic < sent || Double(monotonic - sent) / 1e9 >= heartbeat
        } else {
            heartbeatDue = now.timeIntervalSince(lastSent) >= heartbeat
        }
        if changed || heartbeatDue {
            let condition: JSONValue = [
                "type": .string(conditionType), "status": .string(status), "reason": .string(reason),
                "message": .string(String(message.prefix(1024))),
                "lastHeartbeatTime": .string(now.iso8601), "lastTransitionTime": .string(lastTransition),
            ]
            let r = try send(
                "PATCH", "/api/v1/nodes/\(node)/status", contentType: "application/strategic-merge-patch+json",
                body: ["status": ["conditions": [condition]]])
            guard (200..<300).contains(r.status) else {
                throw AgentError(
                    .io, "the API answered \(r.status) to the \(conditionType) condition of node \(node)\(KubeAPI.refusal(r))",
                    hint: api.hint(r.status, needs: "patch on nodes/status"))
            }
            last = (status, reason, message)
            lastSent = now
            lastSentMonotonic = monotonic
            done.append("condition \(conditionType)=\(status) (\(reason)) on node \(node)")
        }
        if ready, let key = startupTaint, !taintRemoved {
            done += try removeTaint(key)
        }
        return done
    }

    /// Removes the taint `key` from the node, with its resourceVersion so a concurrent change wins.
    public func removeTaint(_ key: String) throws -> [String] {
        let r = try send("GET", "/api/v1/nodes/\(node)")
        guard r.status == 200, let object = r.json, let version = object["metadata"]?["resourceVersion"]?.string else {
            throw AgentError(
                .io, "cannot read node \(node) from the API: \(r.status)\(KubeAPI.refusal(r))",
                hint: api.hint(r.status, needs: "get on nodes"))
        }
        let taints = object["spec"]?["taints"]?.array ?? []
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
