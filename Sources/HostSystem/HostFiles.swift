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
        guard let fd = try root.openForReading(path, flags: O_RDONLY | O_NONBLOCK) else { return nil }
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

    /// Creates the folder and its missing parents (mode 0755), recording them in the ledger
    /// before creating them: a kill in between leaves a ledger entry for a folder that may not
    /// exist (uninstall skips it), never a folder of the agent's that the ledger does not know.
    public func makeDirectories(_ path: HostPath) throws { try makeDirectories([path]) }

    /// The folders and their missing parents, recorded in the ledger with one write. Returns the
    /// folders the ledger lists once they are made (the agent's, in which links are refused).
    @discardableResult
    public func makeDirectories(_ paths: [HostPath]) throws -> Set<HostPath> {
        var missing: [HostPath] = []
        for path in paths {
            for folder in try missingDirectories(path) where !missing.contains(folder) { missing.append(folder) }
        }
        var made = Set(try createdDirectories())
        guard !missing.isEmpty else { return made }
        if let ledger {
            var plain = self
            plain.ledger = nil
            // The ledger's own folder exists before the ledger can. Named for the agent, it is
            // always listed, also when a kill came between its creation and the ledger's.
            let forLedger = try missingDirectories(ledger.parent)
            try plain.create(forLedger, made: [])
            made.formUnion(missing)
            made.formUnion(forLedger)
            made.insert(ledger.parent)
            try plain.writeAtomically(ledger, Self.ledgerText(made.sorted()))
        }
        try create(missing, made: made)
        return made
    }

    /// The ledger's text: the marker, then one folder a line.
    static func ledgerText(_ folders: [HostPath]) -> String {
        ownershipMarker + "\n" + folders.map(\.path).joined(separator: "\n") + "\n"
    }

    /// Writes the ledger as listing exactly `folders`.
    public func writeLedger(_ folders: [HostPath]) throws {
        guard let ledger else { return }
        var plain = self
        plain.ledger = nil
        try plain.writeAtomically(ledger, Self.ledgerText(folders))
    }

    /// The folder `path` opened for a change inside it: links on the way are followed inside the
    /// root up to the first folder the agent made (ledger), and refused from there on, so a
    /// folder of the agent's swapped for a link cannot send a write or a removal elsewhere.
    public func directory(_ path: HostPath, created: Set<HostPath>? = nil) throws -> HostDirectory? {
        let made = try created ?? Set(createdDirectories())
        let first = path.components.indices.first { made.contains(HostPath(prefixOf: path, count: $0 + 1)) }
        return try root.openDirectory(path, linksRefusedFrom: first)
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

    /// Makes `folders` in order; `made`: the agent's folders (ledger), where links are refused.
    private func create(_ folders: [HostPath], made: Set<HostPath>) throws {
        for folder in folders {
            guard let parent = try directory(folder.parent, created: made) else {
                throw AgentError(.io, "cannot create folder \(folder): \(folder.parent) is missing")
            }
            if mkdirat(parent.fd, folder.lastComponent, 0o755) == 0 { continue }
            let code = errno
            guard code == EEXIST else {
                throw AgentError(.io, "cannot create folder \(folder)", errno: code, hint: Self.hint(errno: code))
            }
            // Made meanwhile, by another run: it must be a folder, not a link to one.
            guard parent.entryKind(folder.lastComponent) == .directory else {
                throw AgentError(
                    .notOwned, "\(folder) appeared as a link or a file where the agent makes a folder", hint: HostRoot.notOwnedHint)
            }
        }
    }

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
            // The agent replaces regular files only: a link there is someone else's (it would
            // have been followed to its target before), a folder or device is not a file.
            switch try dir.entryStat(path.lastComponent).map({ HostDirectory.EntryKind($0.st_mode) }) {
            case nil, .regular?: break
            case .symlink?:
                throw AgentError(.notOwned, "\(path) is a symbolic link: the agent does not write through it", hint: HostRoot.notOwnedHint)
            default: throw AgentError(.notOwned, "\(path) is not a regular file", hint: HostRoot.notOwnedHint)
            }
            let temp = Self.temporaryName(for: path.lastComponent)
            unlinkat(dir.fd, temp, 0)
            let fd = openat(dir.fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
            guard fd >= 0 else { throw AgentError(.io, "cannot write \(path)", errno: errno, hint: Self.hint(errno: errno)) }
            pending[i] = Pending(fd: fd, temp: temp, dir: dir, path: path)
            let failed = Syscall.writeAll(fd, bytes)
            guard failed == 0 else { throw AgentError(.io, "cannot write \(path)", errno: failed, hint: Self.hint(errno: failed)) }
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
        for dir in touched where synced.insert(ObjectIdentifier(dir)).inserted { dir.sync() }
    }

    /// Removes the file `path` if, at this moment, it is a regular file (not a link) that is the
    /// agent's: its text starts with the ownership marker, or it is the ledger. Anything else is
    /// refused and left as it is; a missing file is not an error.
    private func removeOwnedFile(_ path: HostPath, in dir: HostDirectory, checkOnly: Bool = false) throws {
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
        let marker = Array(Self.ownershipMarker.utf8)
        var head = [UInt8](repeating: 0, count: marker.count)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_ino == before.st_ino, st.st_dev == before.st_dev else {
            throw AgentError(.notOwned, "\(path) changed while it was being removed: left as it is", hint: HostRoot.notOwnedHint)
        }
        guard (n == marker.count && head == marker) || path == ledger else {
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

    /// Removes an empty folder; a missing or non-empty folder is left as it is. True when removed.
    @discardableResult
    public func removeEmptyDirectory(_ path: HostPath) throws -> Bool {
        guard path != .root, let parent = try directory(path.parent) else { return false }
        // The folder itself, not what a link in its place points to.
        guard parent.entryKind(path.lastComponent) == .directory, let folder = try parent.subdirectory(path.lastComponent) else {
            return false
        }
        Self.removeStaleTemporaries(in: folder)
        return unlinkat(parent.fd, path.lastComponent, AT_REMOVEDIR) == 0
    }

    /// Names in a folder (not `.`/`..`), sorted; empty when the folder does not exist.
    public func list(_ path: HostPath) throws -> [String] {
        let real = try root.resolve(path)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: real) else { return [] }
        return names.sorted()
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
            let n = Syscall.read(fd, into: &buffer)
            if n < 0 { throw AgentError(code, "cannot read \(name)", errno: errno) }
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

    /// The target of the symlink at `path`, as written in it; nil when it is not a symlink.
    public func symlinkTarget(_ path: HostPath) -> String? {
        (try? root.openDirectory(path.parent))??.linkTarget(path.lastComponent)
    }

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
