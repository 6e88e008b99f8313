import FoundationEssentials

#if canImport(Glibc)
    import Vocabulary
    import Glibc
#endif

/// A path as the host sees it, e.g. `/etc/ssl/certs`. Always absolute, never with `..`.
public struct HostPath: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let components: [String]

    public init(_ path: String) throws {
        guard path.hasPrefix("/") else {
            throw AgentError(.invalidInput, "host path '\(path)' is not absolute")
        }
        guard !path.contains("\0") else {
            throw AgentError(.invalidInput, "host path contains a NUL byte")
        }
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                throw AgentError(.pathEscapesRoot, "host path '\(path)' contains '..'")
            }
            parts.append(String(part))
        }
        components = parts
    }

    init(components: [String]) { self.components = components }

    /// The first `count` components of `path` (`/a/b/c`, 2 -> `/a/b`).
    public init(prefixOf path: HostPath, count: Int) { components = Array(path.components.prefix(count)) }

    public static let root = HostPath(components: [])

    public var path: String { "/" + components.joined(separator: "/") }
    public var description: String { path }
    public var lastComponent: String { components.last ?? "/" }
    public var parent: HostPath { HostPath(components: Array(components.dropLast())) }

    /// Appends one or more components; each must be a plain name (no `/`, not `.` or `..`).
    public func appending(_ name: String) throws -> HostPath {
        var parts = components
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            guard part != "..", part != "." else {
                throw AgentError(.pathEscapesRoot, "path component '\(name)' is not a plain name")
            }
            parts.append(String(part))
        }
        return HostPath(components: parts)
    }

    public static func < (a: HostPath, b: HostPath) -> Bool { a.path < b.path }
}

/// The folder where the node's root file system is seen: `/` on the node itself, `/host` in a
/// DaemonSet pod, a temporary folder in tests. It is the one place where host paths become
/// paths on this machine, and it refuses symlinks that lead out of the root.
public struct HostRoot: Sendable {
    public let directory: String

    public init(_ directory: String) throws {
        var dir = directory
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw AgentError(
                .invalidInput, "host root '\(directory)' is not a directory",
                hint: "pass --host-root with the folder where the node's / is mounted")
        }
        self.directory = dir
    }

    /// The path on this machine of `path`, with every symlink on the way resolved inside the root
    /// (absolute targets are taken relative to the root, as a chroot would). Components that do
    /// not exist yet are kept as they are. Throws when a symlink would lead out of the root.
    public func resolve(_ path: HostPath) throws -> String {
        var resolved: [String] = []
        var pending = path.components
        var hops = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                guard !resolved.isEmpty else {
                    throw AgentError(
                        .pathEscapesRoot,
                        "'\(path)' leads out of the host root \(directory) through a symlink",
                        hint: "remove or fix the symlink; the agent only writes inside the host root")
                }
                resolved.removeLast()
                continue
            }
            let candidate = machinePath(resolved + [part])
            var st = stat()
            if lstat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                hops += 1
                guard hops <= 40 else {
                    throw AgentError(.io, "too many symlinks while resolving '\(path)'")
                }
                guard let target = readSymlink(candidate) else {
                    throw AgentError(.io, "cannot read symlink \(candidate)", errno: errno)
                }
                let targetParts = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
                if target.hasPrefix("/") { resolved = [] }
                pending = targetParts + pending
                continue
            }
            resolved.append(part)
        }
        return machinePath(resolved)
    }

    private func machinePath(_ parts: [String]) -> String {
        let base = directory == "/" ? "" : directory
        return parts.isEmpty ? (base.isEmpty ? "/" : base) : base + "/" + parts.joined(separator: "/")
    }
}

/// The target of a symlink on this machine, or nil when `path` is not one.
public func readSymlink(_ path: String) -> String? { readSymlink(at: AT_FDCWD, path) }

/// The target of the symlink `name` in the open folder `dir` (`readlinkat`), or nil when it is not one.
public func readSymlink(at dir: Int32, _ name: String) -> String? {
    // A trust store's pass reads a few hundred links: the buffer on the stack, not two arrays a link.
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(PATH_MAX) + 1) { buffer in
        let n = readlinkat(dir, name, buffer.baseAddress!, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<n]), as: UTF8.self)
    }
}

/// A file's identity and version: device, inode, size and modification time. Equal values mean
/// the file was neither replaced nor changed; nil when it cannot be read.
public func fileVersion(_ path: String) -> [UInt64]? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(st.st_size), UInt64(st.st_mtim.tv_sec), UInt64(st.st_mtim.tv_nsec)]
}
