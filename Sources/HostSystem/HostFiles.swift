import FoundationEssentials

#if canImport(Glibc)
    import Vocabulary
    import Glibc
#endif

/// Reads and writes files of the host through its `HostRoot`. Writes are atomic: a crash at
/// any moment leaves either the old file or the new one, never a half-written one.
public struct HostFiles: Sendable {
    public let root: HostRoot
    /// When set, every folder this instance creates is listed in this file, so that uninstall
    /// removes exactly the folders the agent made (when they are empty again) and no other.
    public var ledger: HostPath?

    public static let defaultLedger = try! HostPath("/var/lib/node-agent/created-directories")

    public init(root: HostRoot, ledger: HostPath? = nil) {
        self.root = root
        self.ledger = ledger
    }

    public func exists(_ path: HostPath) throws -> Bool {
        try root.status(path) != nil
    }

    /// When the file at `path` was last modified; nil when it does not exist or cannot be looked at.
    public func modificationTime(_ path: HostPath) -> Date? {
        guard let st = try? root.status(path) else { return nil }
        return Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }

    /// The file's identity and version (device, inode, size, modification time): equal values
    /// mean it was neither replaced nor changed; nil when it does not exist or cannot be looked at.
    public func version(_ path: HostPath) -> [UInt64]? {
        guard let st = try? root.status(path) else { return nil }
        return [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(st.st_size), UInt64(st.st_mtim.tv_sec), UInt64(st.st_mtim.tv_nsec)]
    }

    /// Opens `path` for reading without waiting (O_NONBLOCK: opening a FIFO must not wait for a
    /// writer) and stats it; nil when it does not exist. The caller closes the descriptor.
    private func openForReading(_ path: HostPath) throws -> (fd: Int32, stat: stat)? {
        guard let fd = try root.openForReading(path, flags: O_RDONLY | O_NONBLOCK) else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = AgentError(.io, "cannot read \(path)", errno: errno)
            close(fd)
            throw error
        }
        return (fd, st)
    }

    /// The file's bytes, or nil when it does not exist. Refuses files over `limit` bytes.
    public func read(_ path: HostPath, limit: Int = 16 << 20) throws -> [UInt8]? {
        // Only regular files are read.
        guard let (fd, st) = try openForReading(path) else { return nil }
        defer { close(fd) }
        return try Self.readOpened(fd, st, path, limit: limit)
    }

    /// The bytes of `path` opened as `fd` (`st` its fstat), with `read`'s rules.
    static func readOpened(_ fd: Int32, _ st: stat, _ path: HostPath, limit: Int) throws -> [UInt8] {
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        // A file masked the systemd way (a link to /dev/null) reads as empty.
        case S_IFCHR where st.st_rdev == 0x103: return []  // makedev(1, 3), /dev/null
        default:
            throw AgentError(
                .io, "\(path) is not a regular file (a folder, FIFO, socket or device)",
                hint: "the agent reads only regular files there; replace it with one")
        }
        return try Self.readToEnd(fd, limit: limit, naming: path.description, code: .io, sizeHint: Int(st.st_size))
    }

    /// Up to `count` bytes of a regular file from `offset` (fewer at its end), or nil when it
    /// does not exist: for looking into large files (a runtime's binary) without reading them whole.
    public func readRegion(_ path: HostPath, offset: Int, count: Int) throws -> [UInt8]? {
        guard let (fd, st) = try openForReading(path) else { return nil }
        defer { close(fd) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw AgentError(.io, "\(path) is not a regular file (a folder, FIFO, socket or device)")
        }
        var out = [UInt8](repeating: 0, count: max(0, count))
        var done = 0
        while done < out.count {
            let n = Syscall.pread(fd, into: &out, from: done, at: offset + done)
            if n < 0 { throw AgentError(.io, "cannot read \(path)", errno: errno) }
            if n == 0 { break }
            done += n
        }
        return Array(out.prefix(done))
    }

    public func readString(_ path: HostPath, limit: Int = 16 << 20) throws -> String? {
        guard let bytes = try read(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Names in a folder (not `.`/`..`), sorted; empty when the folder does not exist.
    public func list(_ path: HostPath) throws -> [String] {
        guard let folder = try? root.openDirectory(path) else { return [] }
        return folder.names().sorted()
    }
}

/// Symlinks and folder entries of the host, as a trust store keeps them: the link itself is read,
/// never followed (its folder is resolved under the host root); HostFiles+Writes replaces and
/// removes them.
extension HostFiles {
    public enum Kind: Sendable, Equatable { case directory, regular, other }

    /// The target of the symlink at `path`, as written in it; nil when it is not a symlink.
    public func symlinkTarget(_ path: HostPath) -> String? {
        (try? root.openDirectory(path.parent))??.linkTarget(path.lastComponent)
    }

    /// What `path` is, symlinks followed within the root; nil when it does not exist.
    public func kind(_ path: HostPath) -> Kind? {
        guard let st = try? root.status(path) else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regular
        default: return .other
        }
    }
}
