internal import CLinux
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// An open folder of the host: every change the agent makes under the host root is a call
/// relative to one of these (`openat`, `renameat`, `unlinkat`, `mkdirat`, `symlinkat`), so a link
/// swapped in after the folder was opened cannot redirect it, and the entry's own name is never
/// followed. Opened by `HostRoot.openDirectory`, which keeps every step inside the root.
public final class HostDirectory: @unchecked Sendable {
    // @unchecked: the descriptor is owned here alone, closed once in deinit; the calls on it are
    // thread-safe system calls.
    public let fd: Int32
    /// The folder as the host sees it, for messages.
    public let path: HostPath

    init(fd: Int32, path: HostPath) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// What the entry `name` itself is (a link is not followed); nil when there is none.
    public func entryStat(_ name: String) throws -> stat? {
        var st = stat()
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return st }
        if errno == ENOENT { return nil }
        throw AgentError(.io, "cannot look at \(try path.appending(name))", errno: errno)
    }

    /// The kind of the entry `name` itself; nil when there is none.
    public func entryKind(_ name: String) -> EntryKind? {
        guard let st = try? entryStat(name) else { return nil }
        return EntryKind(st.st_mode)
    }

    public enum EntryKind: Sendable, Equatable {
        case regular, directory, symlink, other
        init(_ mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .symlink
            default: self = .other
            }
        }
    }

    /// The sub-folder `name`, which must be a folder itself, not a link to one.
    public func subdirectory(_ name: String) throws -> HostDirectory? {
        let child = try path.appending(name)
        let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if sub >= 0 { return HostDirectory(fd: sub, path: child) }
        switch errno {
        case ENOENT: return nil
        case ELOOP, ENOTDIR:
            throw AgentError(.notOwned, "\(child) is not a folder (a link or a file)", hint: HostRoot.notOwnedHint)
        default: throw AgentError(.io, "cannot open \(child)", errno: errno)
        }
    }

    /// Names in the folder (not `.`/`..`), unsorted.
    public func names() -> [String] {
        let copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0, let dir = fdopendir(copy) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// The target of the link `name`, as written in it; nil when it is not a link.
    public func linkTarget(_ name: String) -> String? { readSymlink(at: fd, name) }

    /// Makes the folder durable (its entries' renames and removals).
    public func sync() { fsync(fd) }
}

extension HostRoot {
    /// Whether openat2(2) is tried: tests turn it off to run the fallback walk, which is what a
    /// kernel before 5.6 (or a seccomp profile without openat2) gets.
    nonisolated(unsafe) public static var useOpenat2 = true

    static let notOwnedHint = "the agent does not write, replace or remove through links, nor files it did not make; remove or fix it"

    /// The folder `path`, opened inside the root: links on the way are followed as a chroot
    /// would follow them (absolute targets from the root, `..` never above it, no /proc magic
    /// links), except from component `linksRefusedFrom` on, where a link is refused (the folders
    /// the agent made must still be folders). Nil when it does not exist.
    public func openDirectory(_ path: HostPath, linksRefusedFrom: Int? = nil) throws -> HostDirectory? {
        let rootFD = try openRoot()
        defer { close(rootFD) }
        let split = min(linksRefusedFrom ?? path.components.count, path.components.count)
        let followed = Array(path.components[..<split])
        let strict = Array(path.components[split...])
        guard let base = try open(followed, from: rootFD, followLinks: true, naming: path) else { return nil }
        guard !strict.isEmpty else { return HostDirectory(fd: base, path: path) }
        defer { close(base) }
        guard let fd = try open(strict, from: base, followLinks: false, naming: path) else { return nil }
        return HostDirectory(fd: fd, path: path)
    }

    /// The folder `components` below `start`: openat2 where the kernel has it, otherwise one
    /// `openat(O_NOFOLLOW)` per component with links read and followed by hand.
    private func open(_ components: [String], from start: Int32, followLinks: Bool, naming path: HostPath) throws -> Int32? {
        let resolve = RESOLVE_NO_MAGICLINKS | (followLinks ? RESOLVE_IN_ROOT : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        switch Self.openat2(start, components, flags: O_RDONLY | O_DIRECTORY, resolve: resolve) {
        case .opened(let fd): return fd
        case .failed(let code): return try Self.openFailure(code, path: path)
        case .unavailable: return try walk(components, from: start, followLinks: followLinks, naming: path)
        }
    }

    enum Openat2Result {
        case opened(Int32)
        case failed(Int32)
        /// No openat2 here (ENOSYS, or EPERM from a seccomp profile), or turned off: walk by hand.
        case unavailable
    }

    /// openat2(2) of `components` below `start`, retried on EINTR and EAGAIN.
    static func openat2(_ start: Int32, _ components: [String], flags: Int32, resolve: Int32) -> Openat2Result {
        guard useOpenat2 else { return .unavailable }
        let relative = components.isEmpty ? "." : components.joined(separator: "/")
        while true {
            let fd = node_agent_openat2(start, relative, UInt64(flags | O_CLOEXEC), 0, UInt64(resolve))
            if fd >= 0 { return .opened(fd) }
            switch errno {
            case EINTR, EAGAIN: continue
            case ENOSYS, EPERM: return .unavailable
            default: return .failed(errno)
            }
        }
    }

    /// The host root's folder, opened (the caller closes it).
    private func openRoot() throws -> Int32 {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError(.io, "cannot open the host root \(directory)", errno: errno) }
        return fd
    }

    private func walk(_ components: [String], from start: Int32, followLinks: Bool, naming path: HostPath) throws -> Int32? {
        var stack: [Int32] = [fcntl(start, F_DUPFD_CLOEXEC, 0)]
        defer { for fd in stack { close(fd) } }
        var pending = components[...]
        var hops = 0
        while let part = pending.popFirst() {
            if part.isEmpty || part == "." { continue }
            if part == ".." {
                if stack.count > 1 { close(stack.removeLast()) }
                continue
            }
            let fd = openat(stack.last!, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd >= 0 {
                stack.append(fd)
                continue
            }
            let code = errno
            guard code == ELOOP || code == ENOTDIR, let target = readSymlink(at: stack.last!, part) else {
                return try Self.openFailure(code, path: path)
            }
            guard followLinks else { return try Self.openFailure(ELOOP, path: path) }
            hops += 1
            guard hops <= 40 else { throw AgentError(.io, "too many symlinks while opening \(path)") }
            if target.hasPrefix("/") {
                while stack.count > 1 { close(stack.removeLast()) }
            }
            pending = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + pending
        }
        return fcntl(stack.last!, F_DUPFD_CLOEXEC, 0)
    }

    private static func openFailure(_ code: Int32, path: HostPath) throws -> Int32? {
        switch code {
        case ENOENT: return nil
        case ELOOP, EXDEV:
            throw AgentError(.notOwned, "\(path) leads through a link the agent does not follow", hint: notOwnedHint)
        default: throw AgentError(.io, "cannot open \(path)", errno: code)
        }
    }

    /// A file of the host opened for reading, links followed inside the root (as `openDirectory`
    /// follows them); nil when it does not exist.
    public func openForReading(_ path: HostPath, flags: Int32) throws -> Int32? {
        if Self.useOpenat2 {
            let rootFD = try openRoot()
            defer { close(rootFD) }
            switch Self.openat2(rootFD, path.components, flags: flags, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) {
            case .opened(let fd): return fd
            case .failed(let code):
                if code == ENOENT || code == ENOTDIR { return nil }
                throw AgentError(.io, "cannot read \(path)", errno: code)
            case .unavailable: break
            }
        }
        // The fallback: the folder by the walk, the file with O_NOFOLLOW, a link in its place
        // followed by hand with the same rules (absolute from the root, `..` never above it).
        var current = path.components
        for _ in 0...40 {
            let target = HostPath(components: current)
            guard let dir = try openDirectory(target.parent) else { return nil }
            let fd = openat(dir.fd, target.lastComponent, flags | O_NOFOLLOW | O_CLOEXEC)
            // O_PATH with O_NOFOLLOW opens a link itself rather than failing: followed as below.
            let openedLink = fd >= 0 && flags & node_agent_o_path() != 0 && Self.isLink(fd)
            if fd >= 0 && !openedLink { return fd }
            if openedLink { close(fd) }
            let code = openedLink ? ELOOP : errno
            guard code == ELOOP || code == ENXIO, let link = dir.linkTarget(target.lastComponent) else {
                if code == ENOENT || code == ENOTDIR { return nil }
                throw AgentError(.io, "cannot read \(path)", errno: code)
            }
            var next = link.hasPrefix("/") ? [] : Array(current.dropLast())
            for part in link.split(separator: "/", omittingEmptySubsequences: true) {
                if part == "." { continue }
                if part == ".." {
                    _ = next.popLast()
                    continue
                }
                next.append(String(part))
            }
            current = next
        }
        throw AgentError(.io, "too many symlinks while reading \(path)")
    }

    private static func isLink(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK
    }

    /// What `path` is, links followed inside the root, looked at through a descriptor of its own
    /// (O_PATH: nothing is opened for reading, a device or FIFO is not touched); nil when it does
    /// not exist.
    public func status(_ path: HostPath) throws -> stat? {
        guard let fd = try openForReading(path, flags: node_agent_o_path()) else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AgentError(.io, "cannot look at \(path)", errno: errno) }
        return st
    }
}
