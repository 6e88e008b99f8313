import FoundationEssentials
import HostSystem
import SystemBus
import Vocabulary

/// What the `Reconciler` reads and asks for at its edges: the clock, the node's API and the
/// bus-owner watch, as protocols (the executable gives the real ones, a test its fakes), and
/// the values that cross them.

/// A moment on both clocks: the monotonic one (nanoseconds of CLOCK_MONOTONIC) times the
/// schedule, the backoff and the heartbeat, which a step of the wall clock (NTP at boot, an
/// operator's `date -s`) must not move; the wall clock is for the times people read (the
/// condition's, the Events', /status).
public struct ReconcileInstant: Equatable, Sendable {
    public var monotonic: UInt64
    public var wall: Date

    public init(monotonic: UInt64, wall: Date) {
        self.monotonic = monotonic
        self.wall = wall
    }
}

public protocol ReconcileClock: Sendable {
    func now() -> ReconcileInstant
}

/// CLOCK_MONOTONIC and the wall clock.
public struct SystemReconcileClock: ReconcileClock {
    public init() {}
    public func now() -> ReconcileInstant { ReconcileInstant(monotonic: monotonicNanoseconds(), wall: Date()) }
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

/// A line for the agent's log.
public struct ReconcileLogLine: Equatable, Sendable {
    public enum Level: Sendable { case info, warning, error }
    public var level: Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// The node's API as the loop uses it: the condition and the startup taint, then the Events.
public protocol NodeStatusAPI: AnyObject {
    func publish(_ publish: ConditionPublish) -> ConditionPublished
    /// Writes the Events unless `send` is false; what to log of each.
    func write(_ events: [NodeEvent], send: Bool, at: Date) -> [ReconcileLogLine]
}

/// Who owns a bus name now (resolved's: a new owner is a restart).
public protocol BusOwnerWatch: AnyObject {
    /// The unique bus name of the owner (nil: none, or not known now).
    func owner() -> String?
}

/// systemd-resolved's owner on the system bus. One connection serves every tick; a failed call
/// drops it and the next try connects again (the bus itself may have restarted).
public final class ResolvedOwnerWatch: BusOwnerWatch {
    let address: () -> String
    var bus: SystemBus?

    public init(address: @escaping () -> String) { self.address = address }

    public func owner() -> String? {
        for attempt in 0..<2 {
            if bus == nil { bus = try? SystemBus(address: address()) }
            guard let bus else { return nil }
            do {
                return try bus.nameOwner("org.freedesktop.resolve1")
            } catch {
                self.bus = nil
                if attempt == 1 { return nil }
            }
        }
        return nil
    }
}
