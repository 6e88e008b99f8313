internal import CLinux
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// Many files of a few host folders looked at and read, each folder opened inside the root once
/// (`HostRoot.openDirectory`: links on the way followed as a chroot follows them) and each file
/// opened in it by its own name (`openat` with O_NOFOLLOW). A file that is a link is followed by
/// hand with `HostRoot.openForReading`'s rules: an absolute target from the root, `..` never
/// above it, at most 40 links; each folder on the way again opened inside the root. A trust store
/// is ~140 CA files in one folder and ~280 links to them in another: opened this way, a file
/// costs an `openat` and an `fstat` instead of the root's and the path's resolution every time.
/// For one pass on one thread (it keeps the folders open until it goes).
public final class HostFolderReads {
    public let files: HostFiles
    private var folders: [HostPath: HostDirectory?] = [:]

    public init(files: HostFiles) { self.files = files }

    /// The folder `path`, opened inside the root once; nil when it does not exist or cannot be opened.
    public func folder(_ path: HostPath) -> HostDirectory? {
        if let known = folders[path] { return known }
        let opened = (try? files.root.openDirectory(path)) ?? nil
        folders[path] = .some(opened)
        return opened
    }

    /// The target of the link `path` as written in it; nil when it is not a link.
    public func linkTarget(_ path: HostPath) -> String? { folder(path.parent)?.linkTarget(path.lastComponent) }

    /// What `path` is, links followed inside the root (`find`): the last entry looked at, nothing
    /// opened; nil when it does not exist.
    public func status(_ path: HostPath) throws -> stat? { try find(path)?.entry }

    /// The file's bytes, with `HostFiles.read`'s rules (regular files only, a /dev/null mask
    /// empty, `limit`); nil when it does not exist.
    public func read(_ path: HostPath, limit: Int = 16 << 20) throws -> [UInt8]? {
        // A regular file in one pass (kept for the run: `HostReadMemo`); anything else opened
        // (without blocking) so that `readOpened` says what it is, or reads a mask as empty.
        guard let (_, bytes) = try statusAndBytes(path, limit: limit) else { return nil }
        if let bytes { return bytes }
        guard let found = try find(path) else { return nil }
        let fd = found.open(O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw AgentError(.io, "cannot read \(path)", errno: errno) }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw AgentError(.io, "cannot read \(path)", errno: errno) }
        return try HostFiles.readOpened(fd, st, path, limit: limit)
    }

    /// What `path` is and, when it is a regular file, its bytes (`limit` as `read`), links
    /// followed inside the root: one pass for what `status` then `read` give. The last entry is
    /// looked at before it is opened, so a folder, FIFO or device is never opened; a file
    /// swapped for another kind or removed in between is looked for again, not read. Nil when it
    /// does not exist.
    public func statusAndBytes(_ path: HostPath, limit: Int = 16 << 20) throws -> (stat: stat, bytes: [UInt8]?)? {
        for _ in 0...40 {
            guard let found = try find(path) else { return nil }
            guard found.entry.st_mode & S_IFMT == S_IFREG else { return (found.entry, nil) }
            // Read before in this run and unchanged since (identity, size, times): kept.
            if Int(found.entry.st_size) <= limit, let kept = HostReadMemo.bytes(found.entry) { return (found.entry, kept) }
            let fd = found.open(O_RDONLY | O_NONBLOCK)
            guard fd >= 0 else {
                if errno == ENOENT || errno == ELOOP { continue }  // replaced meanwhile: looked for again
                throw AgentError(.io, "cannot read \(path)", errno: errno)
            }
            defer { close(fd) }
            var st = Glibc.stat()
            guard fstat(fd, &st) == 0 else { throw AgentError(.io, "cannot read \(path)", errno: errno) }
            guard st.st_mode & S_IFMT == S_IFREG else { return (st, nil) }
            let bytes = try HostFiles.readOpened(fd, st, path, limit: limit)
            HostReadMemo.keep(bytes, st)
            return (st, bytes)
        }
        throw AgentError(.io, "\(path) kept changing while it was read")
    }

    /// The entry a path leads to: its folder (nil for the root itself), its name, and what it is.
    struct Found {
        let folder: HostDirectory?
        let name: String
        let entry: stat
        let root: HostRoot

        /// The entry opened with `flags` (never following a link: it is not one, or was not when looked at).
        func open(_ flags: Int32) -> Int32 {
            guard let folder else { return (try? root.openForReading(.root, flags: flags)) ?? -1 }
            return openat(folder.fd, name, flags | O_NOFOLLOW | O_CLOEXEC)
        }
    }

    /// Where `path` leads, the one walk of this type: each folder opened inside the root
    /// (`folder`), each last entry looked at itself (`fstatat`), a link followed by hand by
    /// `following`'s rules, at most 40 links. Nil when something on the way does not exist.
    func find(_ path: HostPath) throws -> Found? {
        var current = path.components
        for _ in 0...40 {
            guard !current.isEmpty else {
                guard let fd = try files.root.openForReading(.root, flags: node_agent_o_path()) else { return nil }
                defer { close(fd) }
                var st = Glibc.stat()
                guard fstat(fd, &st) == 0 else { throw AgentError(.io, "cannot read \(path)", errno: errno) }
                return Found(folder: nil, name: "", entry: st, root: files.root)
            }
            let target = HostPath(components: current)
            guard let dir = folder(target.parent) else { return nil }
            let name = target.lastComponent
            guard let entry = try dir.entryStat(name) else { return nil }
            guard entry.st_mode & S_IFMT == S_IFLNK else { return Found(folder: dir, name: name, entry: entry, root: files.root) }
            guard let link = dir.linkTarget(name) else { continue }  // replaced meanwhile: looked at again
            current = Self.following(link, from: current)
        }
        throw AgentError(.io, "too many symlinks while reading \(path)")
    }

    /// Where the link `link` at `path` leads, by the rules below.
    public static func following(_ link: String, from path: HostPath) -> HostPath {
        HostPath(components: following(link, from: path.components))
    }

    /// Where the link `link` at `components` leads, as a chroot reads it: absolute from the root,
    /// relative from the link's folder, `..` never above the root.
    static func following(_ link: String, from components: [String]) -> [String] {
        var next = link.hasPrefix("/") ? [] : Array(components.dropLast())
        for part in link.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                _ = next.popLast()
            } else {
                next.append(String(part))
            }
        }
        return next
    }
}
