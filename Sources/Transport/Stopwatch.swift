import Vocabulary

/// One timed phase of a connection or a check (resolve, connect, handshake, request).
public struct TimedPhase: Codable, Sendable, Equatable {
    public var name: String
    public var seconds: Double

    public init(name: String, seconds: Double) {
        self.name = name
        self.seconds = seconds
    }
}

/// Measures phases of a check with a monotonic clock.
public struct Stopwatch {
    private let start = monotonicNanoseconds()
    private var last: UInt64
    public private(set) var phases: [TimedPhase] = []

    public init() { last = start }

    public mutating func lap(_ name: String) {
        let now = monotonicNanoseconds()
        phases.append(.init(name: name, seconds: Double(now - last) / 1e9))
        last = now
    }

    public var elapsed: Double { Double(monotonicNanoseconds() - start) / 1e9 }
}
