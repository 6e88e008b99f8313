import FoundationEssentials
import Glibc
import Vocabulary

/// Every change the agent makes to the host's files: atomic (a temporary beside the file, fsync,
/// rename), in batches, only to files that carry the agent's marker or do not exist, symlinks
/// replaced or removed as links.
extension HostFiles {
    /// The first line of every file the agent owns (Go, OpenSSL and systemd read past it). A file
    /// without it is someone else's: the agent neither rewrites nor removes it.
    public static let ownershipMarker = "# managed by node-agent: do not edit, it is rewritten on every run"

    /// Whether a file's text (nil: no file) starts with the agent's marker.
    public static func isOwned(_ text: String?) -> Bool { text?.hasPrefix(ownershipMarker) ?? false }

    /// How the first line of a shared file the agent created (there was none) starts, such as
    /// /etc/hosts: others may add lines, which the agent keeps; the agent removes the file only
    /// when nothing but its own lines is left, so a host without the file gets none back.
    public static let creationMarker = "# created by node-agent"

    /// The temporary name beside `name` that this process writes before renaming. A kill between
    /// the two leaves it behind; the next write into the folder removes it (its process is gone).
    public static func temporaryName(for name: String) -> String { ".\(name).\(temporaryTag)\(getpid())" }
    static let temporaryTag = "node-agent-tmp-"

    /// Removes temporary files of agent processes that no longer run from the folder `dir` (a real path).
    public static func removeStaleTemporaries(in dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        removeStaleTemporaries(in: HostDirectory(fd: fd, path: .root))
    }

    /// The same in an open folder: only entries named as this agent's temporaries whose process is gone.
    public static func removeStaleTemporaries(in dir: HostDirectory) {
        for name in dir.names() where name.hasPrefix(".") {
            guard let tag = name.lastRange(of: "." + temporaryTag),
                let pid = Int32(name[tag.upperBound...]), pid != getpid()
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlinkat(dir.fd, name, 0) }
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
    /// the folder. Missing parent folders are created.
    public func writeAtomically(_ path: HostPath, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        try perform([.write(path, bytes, mode: mode)])
    }

    /// A change `perform` makes.
    public enum Operation: Sendable {
        case write(HostPath, [UInt8], mode: mode_t)
        case remove(HostPath)
    }

    /// Makes the changes in their order, each atomic, as one batch: every new file's bytes are
    /// written to a temporary file beside it and made durable before the first rename, then the
    /// renames and removals happen in order, then each folder touched is synced once. A crash
    /// at any point leaves each file old or new, never half written (stray temporaries are
    /// removed by the next write in their folder); a failure before the renames changes nothing.
    /// On ext4 the first fsync commits the journal for every file of the batch, so ten files cost
    /// about one commit instead of twenty (measured: docs/evidence.md, "Journal commits").
    public func perform(_ operations: [Operation]) throws {
        struct Pending {
            var fd: Int32
            var temp: String
            var dir: HostDirectory
            var path: HostPath
        }
        var pending: [Int: Pending] = [:]
        var committed = false
        defer {
            for p in pending.values {
                if p.fd >= 0 { close(p.fd) }
                if !committed { unlinkat(p.dir.fd, p.temp, 0) }
            }
        }
        // Their folders, in one ledger write; then the new files' bytes, beside their targets.
        let made = try makeDirectories(
            operations.compactMap {
                guard case .write(let path, _, _) = $0 else { return nil }
                return path.parent
            })
        var folders: [HostPath: HostDirectory] = [:]
        func folder(_ path: HostPath) throws -> HostDirectory {
            if let open = folders[path.parent] { return open }
            guard let open = try directory(path.parent, created: made) else {
                throw AgentError(.io, "cannot change \(path): \(path.parent) is missing")
            }
            folders[path.parent] = open
            Self.removeStaleTemporaries(in: open)
            return open
        }
        // Removals are checked first too (and again when they happen): a refused one fails the
        // batch before anything of it changed.
        for case .remove(let path) in operations { try removeOwnedFile(path, in: try folder(path), checkOnly: true) }
        for (i, op) in operations.enumerated() {
            guard case .write(let path, let bytes, let mode) = op else { continue }
            let dir = try folder(path)
            let (fd, temp) = try Self.openTemporary(for: path, in: dir, mode: mode)
            pending[i] = Pending(fd: fd, temp: temp, dir: dir, path: path)
            let failed = Syscall.writeAll(fd, bytes)
            guard failed == 0 else { throw AgentError(.io, "cannot write \(path)", errno: failed, hint: Self.hint(errno: failed)) }
            guard fchmod(fd, mode) == 0 else { throw AgentError(.io, "cannot write \(path)", errno: errno) }
        }
        // Durable before any of them replaces a file: synced together (`syncTogether`).
        let order = pending.keys.sorted()
        for (i, code) in zip(order, Self.syncTogether(order.map { pending[$0]!.fd })) where code != 0 {
            throw AgentError(.io, "cannot sync \(pending[i]!.path)", errno: code, hint: Self.hint(errno: code))
        }
        for i in order {
            close(pending[i]!.fd)
            pending[i]!.fd = -1
        }
        var touched: [HostDirectory] = []
        for (i, op) in operations.enumerated() {
            switch op {
            case .write(let path, _, _):
                let p = pending[i]!
                // renameat replaces the entry itself: a link planted since is replaced, not followed.
                guard renameat(p.dir.fd, p.temp, p.dir.fd, path.lastComponent) == 0 else {
                    throw AgentError(.io, "cannot replace \(path)", errno: errno)
                }
                pending[i] = nil
                touched.append(p.dir)
            case .remove(let path):
                let dir = try folder(path)
                try removeOwnedFile(path, in: dir)
                touched.append(dir)
            }
        }
        committed = true
        var synced: Set<ObjectIdentifier> = []
        _ = Self.syncTogether(touched.filter { synced.insert(ObjectIdentifier($0)).inserted }.map(\.fd))
    }

    /// fsync of every descriptor at once, one thread each (the first on this one), and each one's
    /// errno (0: synced). ext4's journal commits concurrent fsyncs together, and the device
    /// flushes once for them: one after another, each file or folder waited for a commit and a
    /// flush of its own (measured here, 10 new files of a batch: 33 ms one after another, 4.4 ms
    /// together, medians of 15; docs/evidence.md).
    static func syncTogether(_ fds: [Int32]) -> [Int32] {
        @Sendable func sync(_ fd: Int32) -> Int32 { fsync(fd) == 0 ? 0 : errno }
        guard fds.count > 1 else { return fds.map(sync) }
        let others = fds.dropFirst().map { fd in BackgroundWork { sync(fd) } }
        let first = sync(fds[0])
        return [first] + others.map { $0.wait() }
    }

    /// A new temporary file beside `path` in `dir`, opened for writing: its descriptor and name.
    /// The agent replaces regular files only: a link at `path` is someone else's (it would have
    /// been followed to its target before), a folder or device is not a file.
    private static func openTemporary(for path: HostPath, in dir: HostDirectory, mode: mode_t) throws -> (fd: Int32, temp: String) {
        switch try dir.entryStat(path.lastComponent).map({ HostDirectory.EntryKind($0.st_mode) }) {
        case nil, .regular?: break
        case .symlink?:
            throw AgentError(.notOwned, "\(path) is a symbolic link: the agent does not write through it", hint: HostRoot.notOwnedHint)
        default: throw AgentError(.notOwned, "\(path) is not a regular file", hint: HostRoot.notOwnedHint)
        }
        let temp = temporaryName(for: path.lastComponent)
        unlinkat(dir.fd, temp, 0)
        let fd = openat(dir.fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw AgentError(.io, "cannot write \(path)", errno: errno, hint: hint(errno: errno)) }
        return (fd, temp)
    }

    /// Removes the file `path` if, at this moment, it is a regular file (not a link) that is the
    /// agent's: its text starts with the ownership marker or the creation marker, or it is the
    /// ledger. Anything else is refused and left as it is; a missing file is not an error.
    func removeOwnedFile(_ path: HostPath, in dir: HostDirectory, checkOnly: Bool = false) throws {
        let name = path.lastComponent
        guard let before = try dir.entryStat(name) else { return }
        guard before.st_mode & S_IFMT == S_IFREG else {
            throw AgentError(
                .notOwned, "\(path) is not a regular file of the agent's (a link or a folder): not removed", hint: HostRoot.notOwnedHint)
        }
        let fd = openat(dir.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw AgentError(.io, "cannot read \(path) before removing it", errno: errno)
        }
        defer { close(fd) }
        let markers = [Self.ownershipMarker, Self.creationMarker].map { Array($0.utf8) }
        var head = [UInt8](repeating: 0, count: markers.map(\.count).max()!)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_ino == before.st_ino, st.st_dev == before.st_dev else {
            throw AgentError(.notOwned, "\(path) changed while it was being removed: left as it is", hint: HostRoot.notOwnedHint)
        }
        guard markers.contains(where: { n >= $0.count && head.starts(with: $0) }) || path == ledger else {
            throw AgentError(.notOwned, "\(path) does not carry the agent's marker: not removed", hint: HostRoot.notOwnedHint)
        }
        if checkOnly { return }
        if unlinkat(dir.fd, name, 0) != 0 && errno != ENOENT {
            throw AgentError(.io, "cannot remove \(path)", errno: errno, hint: Self.hint(errno: errno))
        }
    }

    public func writeAtomically(_ path: HostPath, _ text: String, mode: mode_t = 0o644) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// Removes a file; a missing file is not an error.
    public func remove(_ path: HostPath) throws { try perform([.remove(path)]) }

    /// Points the symlink at `path` to `target` atomically: a temporary link renamed over what is
    /// there, so that a reader sees the old link or the new one. Only a link or nothing is
    /// replaced: a regular file there is not the agent's to turn into a link.
    public func replaceSymlink(_ path: HostPath, target: String) throws {
        guard let dir = try directory(path.parent) else { throw AgentError(.io, "cannot link \(path): \(path.parent) is missing") }
        switch dir.entryKind(path.lastComponent) {
        case nil, .symlink?: break
        default: throw AgentError(.notOwned, "\(path) is not a link: not replaced", hint: HostRoot.notOwnedHint)
        }
        let temp = Self.temporaryName(for: path.lastComponent)
        unlinkat(dir.fd, temp, 0)
        guard symlinkat(target, dir.fd, temp) == 0, renameat(dir.fd, temp, dir.fd, path.lastComponent) == 0 else {
            let code = errno
            unlinkat(dir.fd, temp, 0)
            throw AgentError(.io, "cannot link \(path)", errno: code, hint: Self.hint(errno: code))
        }
    }

    /// Removes the entry at `path` (a symlink itself, not what it points to, or a file carrying
    /// the agent's marker); a missing one is not an error.
    public func removeEntry(_ path: HostPath) throws {
        guard let dir = try directory(path.parent) else { return }
        if dir.entryKind(path.lastComponent) == .regular { return try removeOwnedFile(path, in: dir) }
        if unlinkat(dir.fd, path.lastComponent, 0) != 0 && errno != ENOENT {
            let code = errno
            throw AgentError(.io, "cannot remove \(path)", errno: code, hint: Self.hint(errno: code))
        }
    }

    /// What to do about a failed write, by its errno: a read-only or a full file system.
    public static func hint(errno code: Int32) -> String? {
        switch code {
        case EROFS: return "the host file system is read-only: this node type does not allow host changes"
        case ENOSPC, EDQUOT: return "free space on the node's disk; the file was left as it was"
        default: return nil
        }
    }
}
