import Foundation
import HostSystem
import Vocabulary
import XCTest

/// The package's root folder (where Package.swift is).
public let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// A new, empty folder under the system's temporary folder.
public func makeTemporaryDirectory(_ label: String = "test") throws -> String {
    let path = NSTemporaryDirectory() + "node-agent-\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs a program and returns its status and output (the test's own environment unless given).
@discardableResult
public func sh(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let r = try ProcessRunner(environment: environment ?? ProcessInfo.processInfo.environment).run(executable, arguments)
    return (r.status, r.stdout, r.stderr)
}

/// The fixtures' folder, removed when the test process exits (a C string: atexit takes no captures).
nonisolated(unsafe) private var fixturesFolderToRemove: UnsafeMutablePointer<CChar>?

/// Certificate fixtures made by scripts/make-test-certs, once per test process.
public enum CertFixtures {
    nonisolated(unsafe) private static var folder: String?
    private static let lock = NSLock()

    /// The path of fixture `name` (e.g. "ca.crt", "expired-ca.crt").
    public static func path(_ name: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if folder == nil {
            let dir = try makeTemporaryDirectory("certs")
            let r = try sh("/usr/bin/env", ["python3", packageRoot.appendingPathComponent("scripts/make-test-certs").path, dir])
            guard r.status == 0 else { throw AgentError(.io, "make-test-certs failed: \(r.stderr)") }
            folder = dir
            fixturesFolderToRemove = strdup(dir)
            atexit {
                if let p = fixturesFolderToRemove { _ = try? FileManager.default.removeItem(atPath: String(cString: p)) }
            }
        }
        return folder! + "/" + name
    }

    public static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: try path(name))))
    }
}

/// Every file, folder and symlink under a folder, with contents or link targets: two snapshots
/// are equal exactly when nothing under the folder changed.
public struct FileTree: Equatable, CustomStringConvertible {
    public var entries: [String: String]

    public init(_ root: String, excluding: Set<String> = []) {
        var entries: [String: String] = [:]
        let fm = FileManager.default
        func walk(_ rel: String) {
            let full = rel.isEmpty ? root : root + "/" + rel
            guard let names = try? fm.contentsOfDirectory(atPath: full) else { return }
            for name in names.sorted() {
                let r = rel.isEmpty ? name : rel + "/" + name
                if excluding.contains(r) { continue }
                let p = root + "/" + r
                if let target = try? fm.destinationOfSymbolicLink(atPath: p) {
                    entries[r] = "link -> " + target
                    continue
                }
                var isDir: ObjCBool = false
                fm.fileExists(atPath: p, isDirectory: &isDir)
                if isDir.boolValue {
                    entries[r] = "dir"
                    walk(r)
                } else {
                    let data = fm.contents(atPath: p) ?? Data()
                    entries[r] = "file " + data.base64EncodedString()
                }
            }
        }
        walk("")
        self.entries = entries
    }

    /// What differs from `other`, one line per path.
    public func difference(from other: FileTree) -> [String] {
        let keys = Set(entries.keys).union(other.entries.keys).sorted()
        return keys.compactMap { k in
            entries[k] == other.entries[k]
                ? nil : "\(k): \((other.entries[k] ?? "absent").prefix(60)) => \((entries[k] ?? "absent").prefix(60))"
        }
    }

    public var description: String { entries.keys.sorted().map { "\($0): \(entries[$0]!)" }.joined(separator: "\n") }
}

/// A command runner for unit tests: records every command and answers from a script
/// (the first rule whose arguments prefix matches), else succeeds with no output.
public final class RecordingRunner: CommandRunner, @unchecked Sendable {
    // Used from the test's thread only.
    public var commands: [[String]] = []
    /// What each command got on its standard input ("" for none), in the order of `commands`.
    public var inputs: [String] = []
    public var rules: [(prefix: [String], result: CommandResult)] = []
    /// Answers a command from its arguments and input, before `rules` are asked (nil: ask them).
    public var answer: (([String], String) -> CommandResult?)?

    public init() {}

    public func run(_ executable: String, _ arguments: [String]) throws -> CommandResult {
        try run(executable, arguments, input: nil)
    }

    public func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult {
        let text = input.map { String(decoding: $0, as: UTF8.self) } ?? ""
        commands.append([executable] + arguments)
        inputs.append(text)
        if let answer, let result = answer(arguments, text) { return result }
        for rule in rules where arguments.starts(with: rule.prefix) { return rule.result }
        return CommandResult(status: 0)
    }
}

/// A host root in a new temporary folder, for one test: `put` lays a file out as a node has it
/// (its folders made), `files` reads it as the agent does; removed with the object.
public final class TemporaryHostRoot {
    public let directory: String
    public let files: HostFiles

    public init(_ label: String) throws {
        directory = try makeTemporaryDirectory(label)
        files = HostFiles(root: try HostRoot(directory))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes `text` at `path` (absolute, as on the node) below the root.
    public func put(_ path: String, _ text: String = "") throws {
        let full = directory + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
}

/// A socket bound to 127.0.0.1 on a port the kernel picks (`SOCK_STREAM` or `SOCK_DGRAM`), for
/// doubles of a peer: closed by `close()` or with the object. Nothing is sent or read here.
public final class LoopbackSocket: @unchecked Sendable {
    public let fd: Int32
    public let port: UInt16
    private let lock = NSLock()
    private var open = true

    public init(_ type: __socket_type) throws {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { throw AgentError(.io, "cannot open a loopback socket: \(String(cString: strerror(errno)))") }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else {
            Glibc.close(fd)
            throw AgentError(.io, "cannot bind a socket on 127.0.0.1")
        }
        self.fd = fd
        port = UInt16(bigEndian: sa.sin_port)
    }

    /// Closes the socket once (later calls do nothing).
    public func close() {
        guard
            lock.withLock({ () -> Bool in
                defer { open = false }
                return open
            })
        else { return }
        Glibc.close(fd)
    }

    deinit { close() }
}

/// A unix stream socket listening at `path` (its folder made beforehand), this process its
/// server, accepting nothing by itself: its descriptor, the caller's to close; the socket's file
/// stays. The test is skipped where `path` is too long for a unix socket address.
public func listeningUnixSocket(at path: String, backlog: Int32 = 16) throws -> Int32 {
    guard var address = UnixSocket.address(path) else { throw XCTSkip("\(path) is too long for a unix address") }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw AgentError(.io, "cannot open a unix socket: \(String(cString: strerror(errno)))") }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let said = String(cString: strerror(errno))
        close(fd)
        throw AgentError(.io, "cannot listen at \(path): \(said)")
    }
    return fd
}
