import HostSystem
import Testing

/// Properties of host paths over many generated inputs (Swift Testing, beside the XCTest suites).
@Suite struct HostPathPropertyTests {
    static let parts = ["etc", "ssl", ".", "..", "a b", "", "certs.d", "x:443", "~", "\n"]

    @Test(arguments: 0..<200)
    func pathsNeverEscapeAndNormaliseStably(seed: Int) throws {
        var generator = SplitMix(seed: UInt64(seed))
        let count = Int(generator.next() % 6)
        let text = "/" + (0..<count).map { _ in Self.parts[Int(generator.next() % UInt64(Self.parts.count))] }.joined(separator: "/")
        if let path = try? HostPath(text) {
            #expect(!path.components.contains(".."))
            #expect(!path.components.contains("."))
            #expect(!path.components.contains(""))
            #expect(try HostPath(path.path) == path)
        } else {
            #expect(text.split(separator: "/").contains(".."))
        }
    }
}

/// A small deterministic generator, so that every run tries the same inputs.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
