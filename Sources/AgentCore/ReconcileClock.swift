import FoundationEssentials
import Vocabulary

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
