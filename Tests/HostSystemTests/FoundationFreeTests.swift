import Foundation
import HostSystem
import TestSupport
import Testing

/// The helpers that replace Foundation APIs in the agent (which links FoundationEssentials only),
/// checked against the Foundation APIs they replace on many generated inputs: Foundation is the
/// oracle here, in the tests, where its memory does not matter.
@Suite struct FoundationFreeTests {
    static let pieces = ["", " ", "\t", "\n", "\r\n", "a", "é", "&", "=", "+", "/", ":", "?", "%", "~", "[", "]", "\"", "'",
                         "\u{00A0}", "\u{2003}", "x y", "-._", "😀", "#", "@", "node-agent-tmp-", "."]

    static func text(_ generator: inout SplitMix) -> String {
        (0..<Int(generator.next() % 8)).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()
    }

    @Test(arguments: 0..<300)
    func trimmingMatchesFoundation(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let s = Self.text(&g)
        #expect(s.trimmingBlanks() == s.trimmingCharacters(in: .whitespaces), "\(s.debugDescription)")
        #expect(s.trimmingWhitespace() == s.trimmingCharacters(in: .whitespacesAndNewlines), "\(s.debugDescription)")
        #expect(s.trimming(charactersIn: "[] \"'") == s.trimmingCharacters(in: CharacterSet(charactersIn: "[] \"'")), "\(s.debugDescription)")
    }

    @Test(arguments: 0..<300)
    func searchAndEncodingMatchFoundation(seed: Int) {
        var g = SplitMix(seed: UInt64(seed))
        let s = Self.text(&g), needle = Self.text(&g)
        let ours = s.lastRange(of: needle).map { s.distance(from: s.startIndex, to: $0.lowerBound) }
        let theirs = s.range(of: needle, options: .backwards).map { s.distance(from: s.startIndex, to: $0.lowerBound) }
        #expect(ours == theirs, "\(s.debugDescription) \(needle.debugDescription)")
        let allowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))
        #expect(s.percentEncodedQueryValue == s.addingPercentEncoding(withAllowedCharacters: allowed), "\(s.debugDescription)")
        #expect(s.replacing(needle.isEmpty ? "a" : needle, with: "Z") == s.replacingOccurrences(of: needle.isEmpty ? "a" : needle, with: "Z"))
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

/// The agent's modules import FoundationEssentials, never Foundation: one `import Foundation`
/// would load Foundation, CoreFoundation and ICU again (~9 MiB of resident memory in `run`).
@Suite struct FoundationFreeSources {
    @Test func noAgentModuleImportsFoundation() throws {
        let sources = TestSupport.packageRoot.appendingPathComponent("Sources").path
        let files = try FileManager.default.subpathsOfDirectory(atPath: sources).filter { $0.hasSuffix(".swift") }
        #expect(files.count > 30)
        for file in files where !file.hasPrefix("FuzzParsers/") {
            let text = try String(contentsOfFile: sources + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if let i = words.firstIndex(of: "import"), i + 1 < words.count {
                    #expect(!["Foundation", "FoundationNetworking", "FoundationXML", "FoundationInternationalization"].contains(String(words[i + 1])),
                            "\(file): \(line)")
                }
            }
        }
    }
}
