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
        var st = stat()
        return stat(try root.resolve(path), &st) == 0
    }

    /// The file's bytes, or nil when it does not exist. Refuses files over `limit` bytes.
    /// Opens `path` for reading without waiting (O_NONBLOCK: opening a FIFO must not wait for a
    /// writer) and stats it; nil when it does not exist. The caller closes the descriptor.
    private func openForReading(_ path: HostPath) throws -> (fd: Int32, stat: stat)? {
        let real = try root.resolve(path)
        let fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw AgentError(.io, "cannot read \(path)", errno: errno)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = AgentError(.io, "cannot read \(path)", errno: errno)
            close(fd)
            throw error
        }
        return (fd, st)
    }

    public func read(_ path: HostPath, limit: Int = 16 << 20) throws -> [UInt8]? {
        // Only regular files are read.
        guard let (fd, st) = try openForReading(path) else { return nil }
        defer { close(fd) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        // A file masked the systemd way (a link to /dev/null) reads as empty.
        case S_IFCHR where st.st_rdev == 0x103: return []  // makedev(1, 3), /dev/null
        default:
            throw AgentError(
                .io, "\(path) is not a regular file (a folder, FIFO, socket or device)",
                hint: "the agent reads only regular files there; replace it with one")
        }
        return try Self.readToEnd(fd, limit: limit, naming: path.description, code: .io)
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
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AgentError(.io, "cannot read \(path)", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return Array(out.prefix(done))
    }

    public func readString(_ path: HostPath, limit: Int = 16 << 20) throws -> String? {
        guard let bytes = try read(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Creates the folder and its missing parents (mode 0755), recording them in the ledger
    /// before creating them: a kill in between leaves a ledger entry for a folder that may not
    /// exist (uninstall skips it), never a folder of the agent's that the ledger does not know.
    public func makeDirectories(_ path: HostPath) throws { try makeDirectories([path]) }

    /// The folders and their missing parents, recorded in the ledger with one write.
    public func makeDirectories(_ paths: [HostPath]) throws {
        var missing: [HostPath] = []
        for path in paths {
            for folder in try missingDirectories(path) where !missing.contains(folder) { missing.append(folder) }
        }
        guard !missing.isEmpty else { return }
        if let ledger {
            var plain = self
            plain.ledger = nil
            // The ledger's own folder exists before the ledger can. Named for the agent, it is
            // always listed, also when a kill came between its creation and the ledger's.
            let forLedger = try missingDirectories(ledger.parent)
            try plain.create(forLedger)
            let all = Set(try createdDirectories()).union(missing).union(forLedger).union([ledger.parent])
            try plain.writeAtomically(ledger, all.sorted().map(\.path).joined(separator: "\n") + "\n")
        }
        try create(missing)
    }

    /// The folders recorded in the ledger as created by the agent.
    public func createdDirectories() throws -> [HostPath] {
        guard let ledger, let text = try readString(ledger) else { return [] }
        return text.split(separator: "\n").compactMap { try? HostPath(String($0)) }
    }

    /// The folders of `path` (itself and its parents) that do not exist yet, outermost first.
    private func missingDirectories(_ path: HostPath) throws -> [HostPath] {
        var missing: [HostPath] = []
        var current = HostPath.root
        for part in path.components {
            current = try current.appending(part)
            if try !missing.isEmpty || access(root.resolve(current), F_OK) != 0 { missing.append(current) }
        }
        return missing
    }

    private func create(_ folders: [HostPath]) throws {
        for folder in folders where mkdir(try root.resolve(folder), 0o755) != 0 && errno != EEXIST {
            throw AgentError(.io, "cannot create folder \(folder)", errno: errno, hint: Self.hint(errno: errno))
        }
    }

    /// The temporary name beside `name` that this process writes before renaming. A kill between
    /// the two leaves it behind; the next write into the folder removes it (its process is gone).
    public static func temporaryName(for name: String) -> String { ".\(name).\(temporaryTag)\(getpid())" }
    static let temporaryTag = "node-agent-tmp-"

    /// Removes temporary files of agent processes that no longer run from the folder `dir` (a real path).
    public static func removeStaleTemporaries(in dir: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(".") {
            guard let tag = name.lastRange(of: "." + temporaryTag),
                let pid = Int32(name[tag.upperBound...]), pid != getpid()
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(dir + "/" + name) }
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
    /// about one commit instead of twenty (measured: README, Evidence).
    public func perform(_ operations: [Operation]) throws {
        struct Pending {
            var fd: Int32
            var temp: String
            var real: String
            var path: HostPath
        }
        var pending: [Int: Pending] = [:]
        var committed = false
        defer {
            for p in pending.values {
                if p.fd >= 0 { close(p.fd) }
                if !committed { unlink(p.temp) }
            }
        }
        // Their folders, in one ledger write; then the new files' bytes, beside their targets.
        try makeDirectories(
            operations.compactMap {
                guard case .write(let path, _, _) = $0 else { return nil }
                return path.parent
            })
        for (i, op) in operations.enumerated() {
            guard case .write(let path, let bytes, let mode) = op else { continue }
            let real = try root.resolve(path)
            let dir = try root.resolve(path.parent)
            Self.removeStaleTemporaries(in: dir)
            let temp = dir + "/" + Self.temporaryName(for: path.lastComponent)
            let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
            guard fd >= 0 else { throw AgentError(.io, "cannot write \(path)", errno: errno, hint: Self.hint(errno: errno)) }
            pending[i] = Pending(fd: fd, temp: temp, real: real, path: path)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AgentError(.io, "cannot write \(path)", errno: errno, hint: Self.hint(errno: errno))
                }
                offset += n
            }
            guard fchmod(fd, mode) == 0 else { throw AgentError(.io, "cannot write \(path)", errno: errno) }
        }
        // Durable before any of them replaces a file.
        for i in pending.keys.sorted() {
            guard fsync(pending[i]!.fd) == 0 else {
                throw AgentError(.io, "cannot sync \(pending[i]!.path)", errno: errno, hint: Self.hint(errno: errno))
            }
            close(pending[i]!.fd)
            pending[i]!.fd = -1
        }
        var folders: [String] = []
        for (i, op) in operations.enumerated() {
            switch op {
            case .write(let path, _, _):
                let p = pending[i]!
                guard rename(p.temp, p.real) == 0 else { throw AgentError(.io, "cannot replace \(path)", errno: errno) }
                pending[i] = nil
                folders.append(try root.resolve(path.parent))
            case .remove(let path):
                let real = try root.resolve(path)
                if unlink(real) != 0 && errno != ENOENT { throw AgentError(.io, "cannot remove \(path)", errno: errno) }
                folders.append(try root.resolve(path.parent))
            }
        }
        committed = true
        var synced: Set<String> = []
        for dir in folders where synced.insert(dir).inserted { syncDirectory(dir) }
    }

    public func writeAtomically(_ path: HostPath, _ text: String, mode: mode_t = 0o644) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// Removes a file; a missing file is not an error.
    public func remove(_ path: HostPath) throws { try perform([.remove(path)]) }

    /// Removes an empty folder; a missing or non-empty folder is left as it is. True when removed.
    @discardableResult
    public func removeEmptyDirectory(_ path: HostPath) throws -> Bool {
        let real = try root.resolve(path)
        Self.removeStaleTemporaries(in: real)
        return rmdir(real) == 0
    }

    /// Names in a folder (not `.`/`..`), sorted; empty when the folder does not exist.
    public func list(_ path: HostPath) throws -> [String] {
        let real = try root.resolve(path)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: real) else { return [] }
        return names.sorted()
    }

    private func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
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

extension HostFiles {
    /// The first line of every file the agent owns (Go, OpenSSL and systemd read past it). A file
    /// without it is someone else's: the agent neither rewrites nor removes it.
    public static let ownershipMarker = "# managed by node-agent: do not edit, it is rewritten on every run"

    /// Whether a file's text (nil: no file) starts with the agent's marker.
    public static func isOwned(_ text: String?) -> Bool { text?.hasPrefix(ownershipMarker) ?? false }

    /// A file a person named on this machine (`--ca`, `--registry-auth`, `--config`), not under
    /// the host root, read with the same guards as the host's files: only a regular file (a FIFO
    /// would block the read, a device never end it), at most `limit` bytes. Symlinks are followed
    /// (a Secret volume's `ca.crt` is one). Every error names `what` and the path, with `code`.
    public static func readLocalFile(_ path: String, what: String, limit: Int, code: AgentError.Code = .invalidInput) throws -> [UInt8] {
        let name = "\(what) \(path)"
        func refuse(_ st: stat) -> AgentError? {
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                return st.st_size > limit ? AgentError(code, "\(name) is larger than \(limit) bytes") : nil
            case S_IFDIR: return AgentError(code, "\(name) is a folder", hint: "pass the file inside it")
            default: return AgentError(code, "\(name) is not a regular file (a FIFO, socket or device)", hint: "pass a file")
            }
        }
        // Looked at before it is opened (opening a device can have effects of its own), and again
        // once open, in case it was replaced in between.
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw AgentError(code, "\(name) does not exist") }
            throw AgentError(code, "cannot read \(name)", errno: errno, hint: "check its permissions")
        }
        if let error = refuse(st) { throw error }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw AgentError(code, "cannot read \(name)", errno: errno, hint: "check its permissions")
        }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw AgentError(code, "cannot read \(name)", errno: errno) }
        if let error = refuse(st) { throw error }
        return try readToEnd(fd, limit: limit, naming: name, code: code)
    }

    /// The rest of an open file, refused once it passes `limit` bytes.
    private static func readToEnd(_ fd: Int32, limit: Int, naming name: String, code: AgentError.Code) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AgentError(code, "cannot read \(name)", errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
            if out.count > limit {
                throw AgentError(code, "\(name) is larger than \(limit) bytes")
            }
        }
        return out
    }
}

/// Symlinks and folder entries of the host, as a trust store keeps them: the link itself is read,
/// replaced or removed, never followed (its folder is resolved under the host root).
extension HostFiles {
    public enum Kind: Sendable, Equatable { case directory, regular, other }

    /// The entry itself: its folder resolved under the root, its own name not followed.
    private func entry(_ path: HostPath) throws -> String {
        try root.resolve(path.parent) + "/" + path.lastComponent
    }

    /// The target of the symlink at `path`, as written in it; nil when it is not a symlink.
    public func symlinkTarget(_ path: HostPath) -> String? {
        (try? entry(path)).flatMap(readSymlink)
    }

    /// Points the symlink at `path` to `target` atomically: a temporary link renamed over what is
    /// there, so that a reader sees the old link or the new one.
    public func replaceSymlink(_ path: HostPath, target: String) throws {
        let real = try entry(path)
        let temp = try root.resolve(path.parent) + "/" + Self.temporaryName(for: path.lastComponent)
        unlink(temp)
        guard symlink(target, temp) == 0, rename(temp, real) == 0 else {
            let code = errno
            unlink(temp)
            throw AgentError(.io, "cannot link \(path)", errno: code, hint: Self.hint(errno: code))
        }
    }

    /// Removes the entry at `path` (a symlink itself, not what it points to); a missing one is
    /// not an error.
    public func removeEntry(_ path: HostPath) throws {
        if unlink(try entry(path)) != 0 && errno != ENOENT {
            let code = errno
            throw AgentError(.io, "cannot remove \(path)", errno: code, hint: Self.hint(errno: code))
        }
    }

    /// What `path` is, symlinks followed within the root; nil when it does not exist.
    public func kind(_ path: HostPath) -> Kind? {
        guard let real = try? root.resolve(path) else { return nil }
        var st = stat()
        guard stat(real, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regular
        default: return .other
        }
    }
}
