import FoundationEssentials
import Glibc

// Small text helpers that FoundationEssentials does not have. The agent imports FoundationEssentials
// only, not Foundation: Foundation (with ICU and CoreFoundation) costs ~9 MiB of resident memory in
// a process that has no use for locales (docs/evidence.md, "Steady state").

extension Character {
    /// Foundation's `CharacterSet.whitespaces`: blanks (Unicode `Zs`) and tab, not line breaks.
    @inlinable public var isBlank: Bool { isWhitespace && !isNewline }
}

extension StringProtocol {
    /// The text without leading and trailing characters for which `isTrimmed` is true.
    @inlinable public func trimming(while isTrimmed: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !isTrimmed($0) }) else { return "" }
        let last = lastIndex(where: { !isTrimmed($0) })!
        return String(self[first...last])
    }

    /// Without leading and trailing blanks (spaces and tabs; line breaks stay).
    @inlinable public func trimmingBlanks() -> String { trimming(while: \.isBlank) }

    /// Without leading and trailing white space, line breaks included.
    @inlinable public func trimmingWhitespace() -> String { trimming(while: \.isWhitespace) }

    /// Without leading and trailing characters that occur in `set`.
    @inlinable public func trimming(charactersIn set: String) -> String { trimming(while: { set.contains($0) }) }

    /// The range of the last occurrence of `needle`, if any.
    public func lastRange(of needle: String) -> Range<Index>? {
        guard !needle.isEmpty else { return nil }
        var index = endIndex
        let count = needle.count
        while index != startIndex {
            guard let start = self.index(index, offsetBy: -count, limitedBy: startIndex) else { return nil }
            if self[start..<index].elementsEqual(needle) { return start..<index }
            index = self.index(before: index)
        }
        return nil
    }
}

extension BinaryInteger {
    /// Lower-case hexadecimal, zero-padded to `width` digits (`String(format: "%0*x")`).
    public func hex(width: Int) -> String { digits(radix: 16, width: width) }

    /// Upper-case hexadecimal, zero-padded to `width` digits (`String(format: "%0*X")`).
    public func upperHex(width: Int) -> String { digits(radix: 16, width: width).uppercased() }

    /// The digits in `radix`, zero-padded to `width`.
    func digits(radix: Int, width: Int) -> String {
        let digits = String(self, radix: radix)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension StringProtocol {
    /// The text percent-encoded as a URL query value: what Foundation's `.urlQueryAllowed` keeps,
    /// minus `&`, `=` and `+`, stays; every other byte of the UTF-8 becomes `%XX`.
    public var percentEncodedQueryValue: String {
        var out = ""
        for byte in utf8 {
            let scalar = Unicode.Scalar(byte)
            let keep =
                (byte < 0x80)
                && (("a"..."z").contains(scalar)
                    || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || "-._~!$'()*,;:@/?".unicodeScalars.contains(scalar))
            out += keep ? String(scalar) : "%" + byte.upperHex(width: 2)
        }
        return out
    }
}

/// A mutex for short critical sections (Foundation's `NSLock` without Foundation).
/// What a thread runs: a closure, handed to pthread_create as an opaque pointer.
private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Where the work's thread leaves its result. Written by that thread before it ends, read after
/// pthread_join: the join orders the two.
private final class ResultSlot<Value>: @unchecked Sendable {
    var value: Value?
}

/// One piece of work on a thread of its own, started at once; `wait()` joins the thread and
/// gives its result. Where no thread can be made, the work runs at once on the caller's.
public final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    private let slot = ResultSlot<Value>()
    private var thread = pthread_t()
    private var running = false

    public init(_ body: @escaping @Sendable () -> Value) {
        let slot = self.slot
        let start = Unmanaged.passRetained(ThreadStart { slot.value = body() }).toOpaque()
        running =
            pthread_create(
                &thread, nil,
                { arg in
                    Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue().body()
                    return nil
                }, start) == 0
        if !running {
            Unmanaged<ThreadStart>.fromOpaque(start).release()
            slot.value = body()
        }
    }

    public func wait() -> Value {
        if running {
            pthread_join(thread, nil)
            running = false
        }
        return slot.value!
    }
}

public final class PlainLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

extension Double {
    /// The value with `decimals` digits after the point, rounded half away from zero
    /// (`String(format: "%.Nf")`), left-padded with spaces to `width` characters.
    public func fixed(_ decimals: Int, width: Int = 0) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(self) * scale).rounded()
        var text = description
        if isFinite && scaled < 9.0e18 {
            let units = UInt64(scaled)
            text = String(units / UInt64(scale))
            if decimals > 0 { text += "." + (units % UInt64(scale)).digits(radix: 10, width: decimals) }
            if self < 0 && units != 0 { text = "-" + text }
        }
        return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

/// Nanoseconds of the monotonic clock (unaffected by changes of the wall clock).
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension String {
    /// The text followed by spaces up to `width` characters (never cut).
    public func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

extension Date {
    /// The date as RFC 3339 / ISO 8601 in UTC, to the second (`2026-11-25T02:40:25Z`): what
    /// Kubernetes takes and what the reports show.
    public var iso8601: String { formatted(Date.ISO8601FormatStyle()) }
}

/// The top-level keys of a flat YAML settings file (kubelet's KubeletConfiguration, k3s's and
/// RKE2's config.yaml), in the file's order, each with its value as strings: a scalar, a flow
/// list (`[a, "b"]`) or a block list (`- a` lines, indented or not); quotes and comments
/// dropped. A nested map gives no values. (No YAML library: Yams brings Foundation, which the
/// agent's binary does not load.)
public enum FlatYAML {
    public static func entries(_ text: String) -> [(key: String, values: [String])] {
        var out: [(key: String, values: [String])] = []
        var inList = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            let trimmed = line.trimmingBlanks()
            if trimmed.isEmpty || trimmed == "---" { continue }
            let topLevel = !line.hasPrefix(" ") && !line.hasPrefix("\t") && !trimmed.hasPrefix("-")
            if !topLevel {
                if inList, trimmed.hasPrefix("-") { out[out.count - 1].values.append(unquote(String(trimmed.dropFirst()))) }
                continue
            }
            inList = false
            guard let colon = trimmed.firstIndex(of: ":") else { continue }
            let key = unquote(String(trimmed[..<colon]))
            let value = unquote(String(trimmed[trimmed.index(after: colon)...]))
            if value.isEmpty {
                out.append((key, []))
                inList = true
            } else if value.hasPrefix("[") {
                out.append(
                    (key, value.trimming(charactersIn: "[]").split(separator: ",").map { unquote(String($0)) }.filter { !$0.isEmpty }))
            } else {
                out.append((key, [value]))
            }
        }
        return out
    }

    static func unquote(_ s: String) -> String { s.trimmingBlanks().trimming(charactersIn: "\"'") }
}

/// Bytes as a hash key, hashed as one buffer: a `[UInt8]` key hashes byte by byte (one
/// `Hasher.combine` call each), which for sets of certificates (a node's ~280, ~1.5 KB each) was
/// a tenth of the agent's CPU in bootstrap's trust facts and tls-runtime-trust.
public struct HashedBytes: Hashable, Sendable {
    public let bytes: [UInt8]

    @inlinable public init(_ bytes: [UInt8]) { self.bytes = bytes }

    @inlinable public func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.count)
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
