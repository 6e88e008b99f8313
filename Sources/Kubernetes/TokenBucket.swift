import FoundationEssentials

/// A token bucket as client-go's spam filter keeps one per event source and object: full at
/// first (`burst` tokens), one token back every `1 / rate` seconds up to `burst`; an event
/// takes one token or is dropped. Time comes from the caller, so tests need no waiting.
public struct TokenBucket: Equatable, Sendable {
    public let burst: Double
    /// Tokens per second.
    public let rate: Double
    public private(set) var tokens: Double
    private var last: Date?

    public init(burst: Int, rate: Double) {
        self.burst = Double(burst)
        self.rate = rate
        tokens = Double(burst)
    }

    /// Takes a token at `now` when there is one; false when the bucket is empty.
    public mutating func take(at now: Date) -> Bool {
        if let last, now > last { tokens = min(burst, tokens + now.timeIntervalSince(last) * rate) }
        if last.map({ now > $0 }) ?? true { last = now }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Seconds until the next token, at `now` (0 when one is there).
    public func wait(at now: Date) -> Double {
        let have = min(burst, tokens + (last.map { max(0, now.timeIntervalSince($0)) } ?? 0) * rate)
        return have >= 1 ? 0 : (1 - have) / rate
    }
}
