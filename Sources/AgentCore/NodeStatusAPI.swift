import FoundationEssentials
import Vocabulary

/// The node's API as the loop uses it: the condition and the startup taint, then the Events.
public protocol NodeStatusAPI: AnyObject {
    func publish(_ publish: ConditionPublish) -> ConditionPublished
    /// Writes the Events unless `send` is false; what to log of each.
    func write(_ events: [NodeEvent], send: Bool, at: Date) -> [ReconcileLogLine]
}

/// The node condition the agent publishes, as the Reconciler keeps it.
public struct NodeCondition: Equatable, Sendable {
    public var ready: Bool
    public var reason: String
    public var message: String

    public init(ready: Bool, reason: String, message: String) {
        self.ready = ready
        self.reason = reason
        self.message = message
    }
}

/// What to send after a reconcile: the condition when it changed or its heartbeat is due (nil:
/// neither), and whether the node is ready (the startup taint goes then).
public struct ConditionPublish: Equatable, Sendable {
    public var condition: NodeCondition?
    /// The condition's lastTransitionTime (RFC 3339); nil: the node's own when it already holds
    /// this status (the agent's first report), else now.
    public var transition: String?
    public var ready: Bool
    public var at: Date

    public init(condition: NodeCondition?, transition: String?, ready: Bool, at: Date) {
        self.condition = condition
        self.transition = transition
        self.ready = ready
        self.at = at
    }
}

/// What became of a `ConditionPublish`.
public struct ConditionPublished: Equatable, Sendable {
    /// The transition time the condition was sent with; nil: it was not sent (not due, or the
    /// request failed).
    public var transition: String?
    /// Whether the API answered: nil when nothing was sent, false when a request got no answer.
    public var reachedAPI: Bool?
    /// What to log of it.
    public var log: [ReconcileLogLine]

    public init(transition: String?, reachedAPI: Bool?, log: [ReconcileLogLine]) {
        self.transition = transition
        self.reachedAPI = reachedAPI
        self.log = log
    }
}
