import FoundationEssentials
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// One agent at a time on a host root: the boot unit, the DaemonSet's pod and a person's
/// `bootstrap` or `uninstall` each hold this lock while they change the node, so that two of
/// them never interleave their writes and rebuilds (ten bootstraps and five uninstalls at once
/// left a bundle without the system CAs before it). An `flock(2)` on a file under the host's
/// `/run` (the same inode from the node and from a pod that mounts it at /host, and gone at
/// reboot); the kernel drops it when its holder dies, so a killed agent never leaves it held.
/// The holder writes who it is into the file, for the message a waiting agent gives up with.
public final class HostRunLock: @unchecked Sendable {
    // @unchecked: the descriptor is owned here alone and closed once, in deinit.
    private let fd: Int32
    public let path: HostPath

    /// Takes the lock, waiting up to `timeout` seconds for another agent to let it go. `what`
    /// names this run for the one that waits on it (e.g. "bootstrap"). The lock is
    /// `/run/node-agent.lock`; on a host root without `/run` (a prepared image, a test's folder)
    /// the root folder itself is locked, and nothing is written.
    public static func acquire(files: HostFiles, what: String, timeout: Double) throws -> HostRunLock {
        let run = try! HostPath("/run")
        let path: HostPath
        let dir: HostDirectory
        if let opened = try files.root.openDirectory(run) {
            (path, dir) = (try run.appending("node-agent.lock"), opened)
        } else if let opened = try files.root.openDirectory(.root) {
            (path, dir) = (.root, opened)
        } else {
            throw AgentError(.io, "cannot take the agent's lock: the host root cannot be opened")
        }
        // O_NOFOLLOW: a link planted at the lock's name must not make root create or truncate its target.
        let fd =
            path == .root
            ? openat(dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            : openat(dir.fd, path.lastComponent, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard fd >= 0 else {
            if errno == ELOOP {
                throw AgentError(.notOwned, "\(path) is a symbolic link: the agent does not lock through it", hint: HostRoot.notOwnedHint)
            }
            throw AgentError(.io, "cannot open the agent's lock \(path)", errno: errno, hint: HostFiles.hint(errno: errno))
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == (path == .root ? S_IFDIR : S_IFREG) else {
            close(fd)
            throw AgentError(.notOwned, "\(path) is not a regular file", hint: HostRoot.notOwnedHint)
        }
        let deadline = monotonicNanoseconds() + UInt64(max(0, timeout) * 1e9)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw AgentError(.io, "cannot take the agent's lock \(path)", errno: code)
            }
            let now = monotonicNanoseconds()
            guard now < deadline else {
                let holder = Self.holder(fd)
                close(fd)
                throw AgentError(
                    .io,
                    "another node-agent is changing this node (\(holder.isEmpty ? "holder unknown" : holder)); waited \(Int(timeout)) s for \(path)",
                    hint: "wait for it to finish, or stop it; two agents must not change a node at once")
            }
            usleep(UInt32(min(50_000_000, deadline - now) / 1000))
        }
        let lock = HostRunLock(fd: fd, path: path)
        guard path != .root else { return lock }
        let started = Int(Date().timeIntervalSince1970)
        let text = Array("pid \(getpid()) (\(what)), since \(started) (Unix time)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return lock
    }

    private init(fd: Int32, path: HostPath) {
        self.fd = fd
        self.path = path
    }

    /// Who holds it, as its holder wrote (the first line, at most 200 bytes).
    private static func holder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 200)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "" }
        let line = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").first ?? ""
        return String(line.filter { !$0.isNewline && $0.asciiValue.map { $0 >= 32 } ?? true })
    }

    deinit {
        if path != .root { _ = ftruncate(fd, 0) }
        flock(fd, LOCK_UN)
        close(fd)
    }
}
