import FoundationEssentials
import Vocabulary

/// Writes the node's Events (core/v1, as the kubelet and node-problem-detector write theirs
/// through client-go's recorder): in namespace "default", about the Node (involvedObject kind
/// Node, apiVersion v1, its name, no namespace, its uid), from source component "node-agent" on
/// host NODE, with firstTimestamp, lastTimestamp and count; de-duplicated and bounded in rate by
/// an `EventCorrelator`. A write that fails is told, never thrown: Events are a courtesy, and a
/// reconcile never fails for one.
public final class EventRecorder: @unchecked Sendable {
    // Used from the reconcile loop only.
    public let api: any KubeAPIClient
    public let node: String
    /// The Node's uid once the agent has read it (as node-problem-detector's Events carry it);
    /// until then the node's name, as the kubelet's node reference has it. `kubectl describe
    /// node` finds either.
    public var nodeUID: String?
    public private(set) var correlator: EventCorrelator

    public static let component = "node-agent"
    /// Where the kubelet's and node-problem-detector's Events about Nodes go: a Node has no
    /// namespace, and client-go's recorder puts such Events in "default".
    public static let namespace = "default"

    public enum Outcome: Equatable, Sendable, CustomStringConvertible {
        case created(NodeEvent, name: String)
        case patched(NodeEvent, name: String, count: Int)
        case dropped(NodeEvent, count: Int, retryAfter: Double)
        case failed(NodeEvent, why: String)

        public var description: String {
            switch self {
            case .created(let e, let name):
                "event \(e.type.rawValue) \(e.reason) on node (\(EventRecorder.namespace)/\(name)): \(e.message)"
            case .patched(let e, let name, let count):
                "event \(e.type.rawValue) \(e.reason) on node, \(count) times (\(EventRecorder.namespace)/\(name)): \(e.message)"
            case .dropped(let e, let count, let retryAfter):
                "event \(e.type.rawValue) \(e.reason) dropped (\(count) times so far): over the rate of \(EventCorrelator.defaultBurst) at once, then one every 5 minutes; the next in \(Int(retryAfter.rounded(.up))) s: \(e.message)"
            case .failed(let e, let why):
                "event \(e.type.rawValue) \(e.reason) not written: \(why)"
            }
        }

        /// Whether the Event reached the API server.
        public var written: Bool {
            switch self {
            case .created, .patched: true
            case .dropped, .failed: false
            }
        }
    }

    public init(api: any KubeAPIClient, node: String, correlator: EventCorrelator? = nil) {
        self.api = api
        self.node = node
        self.correlator = correlator ?? EventCorrelator(object: node)
    }

    /// A reconcile's Events, each written unless `send` is false (the API did not answer this
    /// reconcile's condition request: another timeout would only hold the loop back); what
    /// became of each.
    public func record(_ events: [NodeEvent], send: Bool = true, now: Date = Date()) -> [Outcome] {
        guard send else { return events.map { .failed($0, why: "the API did not answer this reconcile's condition request") } }
        var outcomes: [Outcome] = []
        var silent = false
        for event in events {
            if silent {
                outcomes.append(.failed(event, why: "the API did not answer the Event before it"))
                continue
            }
            do {
                outcomes.append(try write(event, now: now))
            } catch {
                silent = true
                outcomes.append(.failed(event, why: "\(error)"))
            }
        }
        return outcomes
    }

    /// One Event, through the correlator: created, patched, or dropped over the rate. Throws
    /// only when the API cannot be reached; a refusal is a `.failed` outcome.
    public func write(_ event: NodeEvent, now: Date = Date()) throws -> Outcome {
        switch correlator.correlate(event, at: now) {
        case .drop(let o, let retryAfter):
            return .dropped(o.event, count: o.count, retryAfter: retryAfter)
        case .create(let o):
            return try create(o)
        case .patch(let o):
            let r = try api.request(
                "PATCH", Self.collection + "/" + o.name, contentType: "application/strategic-merge-patch+json",
                body: [
                    "count": .int(Int64(o.count)), "lastTimestamp": .string(o.lastTimestamp.iso8601), "message": .string(o.event.message),
                ])
            // Gone (its TTL ran out): made again under its name, as client-go does.
            if r.status == 404 { return try create(o) }
            guard (200..<300).contains(r.status) else { return refused(o, r, verb: "patch") }
            return .patched(o.event, name: o.name, count: o.count)
        }
    }

    static let collection = "/api/v1/namespaces/\(namespace)/events"

    func create(_ o: EventCorrelator.Occurrence) throws -> Outcome {
        let r = try api.request("POST", Self.collection, contentType: "application/json", body: object(o))
        guard (200..<300).contains(r.status) else { return refused(o, r, verb: "create") }
        correlator.written(o)
        return o.count == 1 ? .created(o.event, name: o.name) : .patched(o.event, name: o.name, count: o.count)
    }

    func refused(_ o: EventCorrelator.Occurrence, _ r: (status: Int, json: JSONValue?), verb: String) -> Outcome {
        let hint = api.hint(r.status, needs: "\(verb) on events").map { " (\($0))" } ?? ""
        return .failed(o.event, why: "the API answered \(r.status)\(KubeAPI.refusal(r))\(hint)")
    }

    /// The Event as client-go's recorder makes it (makeEvent, generateEvent).
    public func object(_ o: EventCorrelator.Occurrence) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(o.name), "namespace": .string(Self.namespace)],
            "involvedObject": ["apiVersion": "v1", "kind": "Node", "name": .string(node), "uid": .string(nodeUID ?? node)],
            "reason": .string(o.event.reason), "message": .string(o.event.message), "type": .string(o.event.type.rawValue),
            "source": ["component": .string(Self.component), "host": .string(node)],
            "firstTimestamp": .string(o.firstTimestamp.iso8601), "lastTimestamp": .string(o.lastTimestamp.iso8601),
            "count": .int(Int64(o.count)),
            "reportingComponent": .string(Self.component), "reportingInstance": .string(node),
        ]
    }
}
