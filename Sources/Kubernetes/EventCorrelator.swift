import FoundationEssentials
import Vocabulary

/// Decides what each Event becomes on the API server, as client-go's EventCorrelator does for
/// the kubelet and node-problem-detector (tools/record/events_cache.go):
///
/// - the same type, reason and message again is the same Event: its `count` goes up and its
///   `lastTimestamp` moves on (a PATCH), its name and `firstTimestamp` stay. It stays the same
///   Event while the agent remembers it (the last 4096 distinct ones) and the API server keeps
///   it (kube-apiserver's --event-ttl, 1 h by default from its last write; a PATCH of one that
///   is gone is answered 404 and the Event is created again under its name);
/// - a new one is named `<node>.<creation time in Unix nanoseconds, hex>`, as client-go names them;
/// - a token bucket per Event type (client-go's spam key is source + object + type) lets 25
///   through at once, then one more every 5 minutes; what finds the bucket empty is dropped,
///   still counted, so the next write carries the true count.
public struct EventCorrelator: Sendable {
    public struct Occurrence: Equatable, Sendable {
        public var event: NodeEvent
        public var name: String
        public var count: Int
        public var firstTimestamp: Date
        public var lastTimestamp: Date
    }

    public enum Decision: Equatable, Sendable {
        /// A new Event: POST it whole.
        case create(Occurrence)
        /// The same Event again: PATCH its count and lastTimestamp.
        case patch(Occurrence)
        /// Over the rate: not written; `retryAfter` seconds until the bucket has a token again.
        case drop(Occurrence, retryAfter: Double)
    }

    public static let defaultBurst = 25
    public static let defaultRate = 1.0 / 300
    public static let defaultCacheSize = 4096
    /// The longest message written (the API's limit for events.k8s.io notes; the condition's too).
    public static let maximumMessage = 1024

    public let object: String
    public let burst: Int
    public let rate: Double
    public let cacheSize: Int

    struct Entry: Sendable {
        var occurrence: Occurrence
        /// The API server holds it (a create succeeded): the next one is a PATCH.
        var written: Bool
        var lastUse: UInt64
    }

    private(set) var seen: [NodeEvent: Entry] = [:]
    private(set) var buckets: [NodeEvent.Kind: TokenBucket] = [:]
    private var uses: UInt64 = 0
    private var lastNanos: UInt64 = 0

    /// Events about `object` (the node's name), with client-go's defaults unless told otherwise.
    public init(object: String, burst: Int = defaultBurst, rate: Double = defaultRate, cacheSize: Int = defaultCacheSize) {
        self.object = object
        self.burst = burst
        self.rate = rate
        self.cacheSize = max(1, cacheSize)
    }

    /// What `event`, happening at `now`, becomes.
    public mutating func correlate(_ event: NodeEvent, at now: Date) -> Decision {
        var event = event
        event.message = String(event.message.prefix(Self.maximumMessage))
        uses += 1
        var entry: Entry
        if var known = seen[event] {
            known.occurrence.count += 1
            known.occurrence.lastTimestamp = now
            known.lastUse = uses
            entry = known
        } else {
            entry = Entry(
                occurrence: Occurrence(event: event, name: newName(at: now), count: 1, firstTimestamp: now, lastTimestamp: now),
                written: false, lastUse: uses)
            evictIfFull()
        }
        seen[event] = entry
        var bucket = buckets[event.type] ?? TokenBucket(burst: burst, rate: rate)
        let allowed = bucket.take(at: now)
        buckets[event.type] = bucket
        guard allowed else { return .drop(entry.occurrence, retryAfter: bucket.wait(at: now)) }
        return entry.written ? .patch(entry.occurrence) : .create(entry.occurrence)
    }

    /// The API server holds `occurrence` now: the same Event again is a PATCH of it.
    public mutating func written(_ occurrence: Occurrence) {
        seen[occurrence.event]?.written = true
    }

    /// client-go's name: the object's, a dot, the time in Unix nanoseconds in hex; never the
    /// same twice (two Events of one reconcile share its time). A name too long for a DNS
    /// subdomain (253) is a UUID instead, as client-go's GenerateEventName does.
    mutating func newName(at now: Date) -> String {
        let nanos = max(UInt64(max(0, now.timeIntervalSince1970) * 1e9), lastNanos + 1)
        lastNanos = nanos
        let name = object + "." + String(nanos, radix: 16)
        return name.utf8.count <= 253 ? name : UUID().uuidString.lowercased()
    }

    /// Forgets the least recently seen Event when the cache is full (client-go's LRU).
    mutating func evictIfFull() {
        guard seen.count >= cacheSize, let oldest = seen.min(by: { $0.value.lastUse < $1.value.lastUse })?.key else { return }
        seen[oldest] = nil
    }
}
