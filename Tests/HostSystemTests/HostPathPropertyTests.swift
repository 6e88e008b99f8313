import Foundation
import HostSystem
import TestSupport
import Testing
import Vocabulary

/// Properties of host paths over many generated inputs (Swift Testing, beside the XCTest suites).
@Suite struct HostPathPropertyTests {
    static let parts = ["etc", "ssl", ".", "..", "...", ".x", "a b", "", "certs.d", "x:443", "~", "\n"]

    static func text(_ generator: inout SplitMix, count: Int) -> String {
        (0..<count).map { _ in parts[Int(generator.next() % UInt64(parts.count))] }.joined(separator: "/")
    }

    /// `path` with `.` and `..` applied and doubled slashes dropped, by text alone (no file system):
    /// where a path string really points.
    static func lexicallyNormalized(_ path: String) -> String {
        var kept: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = kept.popLast() } else { kept.append(part) }
        }
        return "/" + kept.joined(separator: "/")
    }

    /// Whether the machine path `path` really points at the root folder or below it.
    static func isUnder(_ root: HostRoot, _ path: String) -> Bool {
        let real = lexicallyNormalized(path)
        let top = lexicallyNormalized(root.directory)
        return real == top || real.hasPrefix(top + "/")
    }

    /// A host path is accepted exactly when it has no `..`; then it is its text without `.` and
    /// empty components, and the host root turns it into a path under the root folder, that
    /// path's own components appended (no symlinks here). `appending` keeps to the same rule.
    @Test(arguments: 0..<300)
    func pathsNormaliseAndNeverLeaveTheRoot(seed: Int) throws {
        var generator = SplitMix(seed: UInt64(seed))
        let text = "/" + Self.text(&generator, count: Int(generator.next() % 7))
        let expected = text.split(separator: "/").map(String.init).filter { $0 != "." }
        let folder = try makeTemporaryDirectory("hostpath")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let root = try HostRoot(folder)

        let path: HostPath
        do {
            path = try HostPath(text)
        } catch let error as AgentError {
            #expect(expected.contains(".."), "refused \(text.debugDescription): \(error)")
            #expect(error.code == .pathEscapesRoot, "\(error)")
            return
        }
        #expect(!expected.contains(".."), "accepted \(text.debugDescription) as \(path)")
        #expect(path.components == expected, "\(text.debugDescription)")
        #expect(try HostPath(path.path) == path)

        let machine = try root.resolve(path)
        #expect(machine == ([root.directory] + expected).joined(separator: "/"), "\(text.debugDescription)")
        #expect(Self.isUnder(root, machine), "\(text.debugDescription) leads to \(machine), outside \(root.directory)")

        let name = Self.text(&generator, count: 1 + Int(generator.next() % 3))
        let added = name.split(separator: "/").map(String.init)
        do {
            let longer = try path.appending(name)
            #expect(!added.contains("..") && !added.contains("."), "appended \(name.debugDescription)")
            #expect(longer.components == expected + added)
            let machine = try root.resolve(longer)
            #expect(Self.isUnder(root, machine), "\(longer) leads to \(machine), outside \(root.directory)")
        } catch let error as AgentError {
            #expect(added.contains("..") || added.contains("."), "refused \(name.debugDescription): \(error)")
            #expect(error.code == .pathEscapesRoot)
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
