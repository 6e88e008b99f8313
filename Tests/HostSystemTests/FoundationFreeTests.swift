import Foundation
import HostSystem
import TestSupport
import Testing
import Vocabulary
import XCTest

/// The helpers that replace Foundation APIs in the agent (which links FoundationEssentials only),
/// checked against the Foundation APIs they replace on many generated inputs: Foundation is the
/// oracle here, in the tests, where its memory does not matter.
@Suite struct FoundationFreeTests {
    static let pieces = [
        "", " ", "\t", "\n", "\r\n", "a", "é", "&", "=", "+", "/", ":", "?", "%", "~", "[", "]", "\"", "'",
        "\u{00A0}", "\u{2003}", "x y", "-._", "😀", "#", "@", "node-agent-tmp-", ".",
    ]

    static func text(_ generator: inout SplitMix) -> String {
        (0..<Int(generator.next() % 8)).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()
    }

    @Test(arguments: 0..<300)
    func trimmingMatchesFoundation(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let s = Self.text(&g)
        #expect(s.trimmingBlanks() == s.trimmingCharacters(in: .whitespaces), "\(s.debugDescription)")
        #expect(s.trimmingWhitespace() == s.trimmingCharacters(in: .whitespacesAndNewlines), "\(s.debugDescription)")
        #expect(
            s.trimming(charactersIn: "[] \"'") == s.trimmingCharacters(in: CharacterSet(charactersIn: "[] \"'")), "\(s.debugDescription)")
    }

    @Test(arguments: 0..<300)
    func searchAndEncodingMatchFoundation(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let s = Self.text(&g)
        let needle = Self.text(&g)
        let ours = s.lastRange(of: needle).map { s.distance(from: s.startIndex, to: $0.lowerBound) }
        let theirs = s.range(of: needle, options: .backwards).map { s.distance(from: s.startIndex, to: $0.lowerBound) }
        #expect(ours == theirs, "\(s.debugDescription) \(needle.debugDescription)")
        let allowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))
        #expect(s.percentEncodedQueryValue == s.addingPercentEncoding(withAllowedCharacters: allowed), "\(s.debugDescription)")
        #expect(
            s.replacing(needle.isEmpty ? "a" : needle, with: "Z") == s.replacingOccurrences(of: needle.isEmpty ? "a" : needle, with: "Z"))
    }

    @Test(arguments: 0..<500)
    func numbersFormatLikePrintf(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let n = g.next()
        #expect(UInt32(truncatingIfNeeded: n).hex(width: 8) == String(format: "%08x", UInt32(truncatingIfNeeded: n)))
        #expect(UInt8(truncatingIfNeeded: n).upperHex(width: 2) == String(format: "%02X", UInt8(truncatingIfNeeded: n)))
        // Values as the agent prints them: days left and milliseconds, quarters avoided (printf
        // rounds the binary value half-to-even, which no probe figure depends on).
        var value = Double(Int64(bitPattern: n) % 10_000_000) / 1000
        if abs(value * 10 - (value * 10).rounded(.towardZero)) == 0.5 { value += 0.0001 }
        #expect(value.fixed(1) == String(format: "%.1f", value))
        #expect(value.fixed(1, width: 7) == String(format: "%7.1f", value))
    }

    @Test func datesFormatLikeISO8601DateFormatter() {
        for seconds in [0.0, 1.5, 1_795_564_044.95, 4_102_444_800, 253_402_300_799] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(date.iso8601 == ISO8601DateFormatter().string(from: date))
        }
    }

    @Test func jsonValueReadsWhatJSONSerializationReadsAndWritesTheSame() throws {
        let texts = [
            #"{"auths":{"r:443":{"auth":"dTpw"}},"n":-12,"f":1.5,"t":true,"z":null,"a":[1,"2",[{}]]}"#,
            #"[{"ifindex":7,"ifalias":"node-agent","flags":["UP","LOWER_UP"]}]"#,
            #"{"spec":{"taints":[{"key":"k","effect":"NoSchedule","timeAdded":"2026-01-01T00:00:00Z"}]}}"#,
            #""a\/b\u00e9\n""#,
        ]
        for text in texts {
            let ours = try JSONValue.parse(text.utf8)
            let reread = try JSONSerialization.jsonObject(with: Data(ours.encoded()), options: [.fragmentsAllowed])
            let original = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            let a = try JSONSerialization.data(withJSONObject: reread, options: [.sortedKeys, .fragmentsAllowed])
            let b = try JSONSerialization.data(withJSONObject: original, options: [.sortedKeys, .fragmentsAllowed])
            #expect(a == b, "\(text)")
            #expect(try JSONValue.parse(ours.encoded()) == ours)
        }
        #expect(throws: (any Error).self) { try JSONValue.parse("{\"a\":".utf8) }
        let built: JSONValue = ["b": 1, "a": ["x", true, nil]]
        #expect(String(decoding: built.encoded(), as: UTF8.self) == #"{"a":["x",true,null],"b":1}"#)
    }

    @Test func plainLockExcludes() async {
        let lock = PlainLock()
        final class Box: @unchecked Sendable { var n = 0 }
        let box = Box()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { for _ in 0..<10_000 { lock.withLock { box.n += 1 } } } }
        }
        #expect(box.n == 80_000)
    }
}

/// The agent's binaries link FoundationEssentials only, never Foundation: one `import Foundation`
/// would load Foundation, CoreFoundation and ICU again (~9 MiB of resident memory in `run`).
/// Checked on the linked binaries, where that cost is paid: an import in a dependency counts as
/// much as one of the agent's own, however it is written.
final class FoundationFreeBinaryTests: XCTestCase {
    /// The libraries of Foundation proper (FoundationEssentials is the one the agent may link).
    static let foundationLibraries = [
        "libFoundation.so", "libFoundationNetworking.so", "libFoundationXML.so",
        "libFoundationInternationalization.so", "lib_FoundationICU.so", "libCoreFoundation.so",
    ]

    /// Symbols that only Foundation proper or CoreFoundation define: Swift symbols of those modules
    /// (mangled `$s<length><module>`), and CoreFoundation's start-up (ICU comes only with them).
    static let foundationSymbolPrefixes = [
        "$s10Foundation", "$s20FoundationNetworking", "$s13FoundationXML",
        "$s30FoundationInternationalization", "__CFInitialize", "CFRunLoopGetCurrent",
    ]

    static let products = ["node-agent", "node-agent-cri"]

    /// A product of this build: beside the test bundle (the debug build `swift test` made), or in
    /// NODE_AGENT_BINARY's folder.
    static func built(_ product: String) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let folder =
            environment["NODE_AGENT_BINARY"].map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let path = folder.appendingPathComponent(product).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw AgentError(.io, "\(path) is not built", hint: "run swift build, or set NODE_AGENT_BINARY")
        }
        return path
    }

    /// The shared libraries `binary` needs (its dynamic section's NEEDED entries).
    static func neededLibraries(_ binary: String) throws -> [String] {
        let r = try sh("/usr/bin/env", ["readelf", "--dynamic", "--wide", binary])
        guard r.status == 0 else { throw AgentError(.commandFailed, "readelf -d \(binary): \(r.stderr)") }
        return r.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    /// The debug build links the Swift libraries dynamically: Foundation would be a NEEDED entry.
    func testTheBuiltBinariesNeedNoFoundationLibrary() throws {
        for product in Self.products {
            let needed = try Self.neededLibraries(try Self.built(product))
            XCTAssertTrue(
                needed.contains("libswiftCore.so") || needed.contains("libc.so.6"), "\(product): no NEEDED entries read: \(needed)")
            // An object compiled while some file of its module imported Foundation keeps asking for
            // it until it is compiled again: after removing such an import, build the module anew.
            XCTAssertEqual(needed.filter(Self.foundationLibraries.contains), [], "\(product) links Foundation: \(needed)")
        }
    }

    /// The release build (scripts/build-release, what the image ships) has the Swift runtime linked
    /// in: Foundation would be code in the binary, found by its symbols.
    func testTheReleaseBinariesContainNoFoundationCode() throws {
        guard let release = ProcessInfo.processInfo.environment["NODE_AGENT_RELEASE_BINARY"] else {
            throw XCTSkip("NODE_AGENT_RELEASE_BINARY is unset (scripts/test builds it with scripts/build-release)")
        }
        let folder = URL(fileURLWithPath: release).deletingLastPathComponent()
        for product in Self.products {
            let binary = folder.appendingPathComponent(product).path
            let r = try sh("/usr/bin/env", ["nm", "--defined-only", binary])
            XCTAssertEqual(r.status, 0, "nm \(binary): \(r.stderr)")
            let symbols = r.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last }
            XCTAssertTrue(
                symbols.contains { $0.hasPrefix("$s20FoundationEssentials") },
                "\(product): FoundationEssentials's symbols not found, the check reads nothing")
            let foundation = symbols.filter { symbol in Self.foundationSymbolPrefixes.contains { symbol.hasPrefix($0) } }
            XCTAssertEqual(foundation.count, 0, "\(product) contains Foundation: \(foundation.prefix(5).joined(separator: ", "))")
        }
    }
}
