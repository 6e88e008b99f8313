import Glibc

/// When the next full reconcile is due, on the monotonic clock (nanoseconds): at once at the
/// start, then `nextDelay` (jittered) after each reconcile ends. A value, so that a test drives
/// it with a clock of its own.
public struct ReconcileSchedule: Equatable, Sendable {
    public let interval: Double
    public let watchInterval: Double
    /// Reconciles in a row that left the node not ready.
    public private(set) var failures = 0
    /// nil: due now (nothing reconciled yet).
    public private(set) var next: UInt64?

    public init(interval: Double, watchInterval: Double) {
        self.interval = interval
        self.watchInterval = watchInterval
    }

    public func due(now: UInt64) -> Bool { next.map { now >= $0 } ?? true }

    public mutating func reconciled(ready: Bool, now: UInt64, jitter: Double) {
        failures = ready ? 0 : failures + 1
        let delay = Self.nextDelay(failures: failures, interval: interval, watchInterval: watchInterval) * jitter
        // At most a day (the longest --interval, jittered), so the sum cannot overflow.
        next = now &+ UInt64(min(max(delay, 0), 2 * 86_400) * 1e9)
    }

    /// Seconds until the next full reconcile, before jitter: the interval while the node is ready;
    /// after `failures` reconciles in a row that left it not ready, twice the watch interval,
    /// doubled with each further one, never more than the interval.
    public static func nextDelay(failures: Int, interval: Double, watchInterval: Double) -> Double {
        guard failures > 0 else { return interval }
        return min(watchInterval * pow(2, Double(min(failures, 1000))), interval)
    }
}
