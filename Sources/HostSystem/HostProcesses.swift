internal import CLinux
import FoundationEssentials

#if canImport(Glibc)
    import Vocabulary
    import Glibc
#endif

/// One process of the host, as its /proc shows it.
public struct HostProcess: Sendable, Equatable {
    public var pid: Int
    /// The command name (`comm`: the executable's name, at most 15 bytes).
    public var name: String
    /// When it started (boot time + its start time in clock ticks); nil when /proc/stat is unreadable.
    public var started: Date?

    public init(pid: Int, name: String, started: Date?) {
        self.pid = pid
        self.name = name
        self.started = started
    }
}

/// Who serves a unix socket in the node's root (`HostProcesses.server(ofSocket:)`).
public enum SocketServer: Sendable, Equatable {
    /// The process that listens on it, by its pid in the host root's /proc.
    case process(Int)
    /// Nothing listens at that path in the node's root: no file there, not a socket, or refused.
    case nobody
    /// It cannot be told from here (no connection for another reason, a link in its place, a
    /// /proc of another PID namespace, a listener this namespace cannot see).
    case unknown
}

/// The host's processes through the host root's /proc (a DaemonSet pod sees the node's with
/// hostPID; a sandbox node's host root mounts its /proc). What another process lets a reader see
/// depends on the reader: its environment and executable need ptrace access (the same user and
/// every capability it holds, or CAP_SYS_PTRACE); its name, state, start and command line do not.
public struct HostProcesses: Sendable {
    public let files: HostFiles
    private let proc = try! HostPath("/proc")

    public init(files: HostFiles) { self.files = files }

    /// The processes whose command name is in `names`, zombies (exited, not reaped) left out,
    /// in pid order. One pass over /proc.
    public func named(_ names: Set<String>) -> [HostProcess] {
        let bootTime = (try? files.readString(try proc.appending("stat"), limit: 1 << 20))?
            .split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Double($0) } }  // "btime" alone: no index 1
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var found: [HostProcess] = []
        // /proc opened inside the root once: a node runs hundreds of processes, each comm read.
        let folder = (try? files.root.openDirectory(proc)) ?? nil
        let pids = folder.map { $0.names() } ?? ((try? files.list(proc)) ?? [])
        var buffer = [UInt8](repeating: 0, count: 64)
        for pid in pids.compactMap(Int.init).sorted() {
            guard let comm = comm(in: folder, pid, &buffer)?.trimmingWhitespace(),
                names.contains(comm),
                let stat = read(in: folder, pid, "stat"),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command name: state (field 3 of the line), starttime (22).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard let state = fields.first, state != "Z", state != "X" else { continue }
            let started =
                fields.count > 19
                ? Double(fields[19]).flatMap { start in bootTime.map { Date(timeIntervalSince1970: $0 + start / ticks) } } : nil
            found.append(HostProcess(pid: pid, name: comm, started: started))
        }
        return found
    }

    /// /proc/PID/comm through /proc's descriptor in one read (the kernel gives the name and its
    /// line break whole, at most 16 bytes): opened, read, closed, nothing more for each of the
    /// node's hundreds of processes. By the root's rules where the kernel has no openat2.
    private func comm(in folder: HostDirectory?, _ pid: Int, _ buffer: inout [UInt8]) -> String? {
        guard let folder else { return read(in: nil, pid, "comm") }
        switch HostRoot.openat2(
            folder.fd, [String(pid), "comm"], flags: O_RDONLY | O_NONBLOCK,
            resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        {
        case .opened(let fd):
            defer { close(fd) }
            let n = Syscall.read(fd, into: &buffer)
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
        case .failed: return nil
        case .unavailable: return read(in: nil, pid, "comm")
        }
    }

    /// /proc/PID/`name` (at most 4 KB) through /proc's descriptor: openat2 beneath it, no link
    /// followed (comm and stat are plain files of a plain folder); by the root's rules where the
    /// kernel has no openat2. Nil when the process is gone or the file cannot be read.
    private func read(in folder: HostDirectory?, _ pid: Int, _ name: String) -> String? {
        if let folder {
            switch HostRoot.openat2(
                folder.fd, [String(pid), name], flags: O_RDONLY | O_NONBLOCK,
                resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
            {
            case .opened(let fd):
                defer { close(fd) }
                var st = stat()
                guard fstat(fd, &st) == 0, let path = try? proc.appending(String(pid)).appending(name),
                    let bytes = try? HostFiles.readOpened(fd, st, path, limit: 4096)
                else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            case .failed: return nil
            case .unavailable: break
            }
        }
        return (try? files.readString(try proc.appending(String(pid)).appending(name), limit: 4096)) ?? nil
    }

    /// Its environment (`/proc/PID/environ`, NUL-separated NAME=value). Throws when it cannot be
    /// read (no ptrace access: "Permission denied"); nil when the process is gone.
    public func environment(_ pid: Int) throws -> [UInt8]? {
        try files.read(try proc.appending(String(pid)).appending("environ"), limit: 1 << 20)
    }

    /// Its executable, as the process's own mount view names it (`/proc/PID/exe`); nil without
    /// ptrace access or when it is gone. A replaced binary's " (deleted)" is dropped.
    public func executable(_ pid: Int) -> String? {
        guard let process = try? files.root.openDirectory(try proc.appending(String(pid))), let target = process.linkTarget("exe") else {
            return nil
        }
        return target.hasSuffix(" (deleted)") ? String(target.dropLast(10)) : target
    }

    /// Its command line (readable by all): argv.
    public func commandLine(_ pid: Int) -> [String] {
        guard let bytes = (try? files.read(try proc.appending(String(pid)).appending("cmdline"), limit: 65536)) ?? nil else { return [] }
        return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Its real and effective user IDs (`Uid:` of /proc/PID/status, readable by all); nil when
    /// it is gone or the line cannot be read.
    public func userIDs(_ pid: Int) -> (real: Int, effective: Int)? { status(pid).flatMap(Self.userIDs(status:)) }

    /// Its parent's pid (`PPid:` of /proc/PID/status); nil when it is gone.
    public func parentPID(_ pid: Int) -> Int? {
        guard let line = status(pid)?.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }) else { return nil }
        return Int(String(line.dropFirst(5)).trimmingWhitespace())
    }

    /// Its /proc/PID/status text (readable by all); nil when it is gone.
    private func status(_ pid: Int) -> String? {
        (try? files.readString(try proc.appending(String(pid)).appending("status"), limit: 65536)) ?? nil
    }

    /// Whether `pid` is one of `roots` or runs below one of them (its parents, at most 16 up).
    public func descends(_ pid: Int, from roots: Set<Int>) -> Bool {
        var current = pid
        for _ in 0..<16 {
            if roots.contains(current) { return true }
            guard let parent = parentPID(current), parent > 0, parent != current else { return false }
            current = parent
        }
        return false
    }

    /// The `Uid:` line of a /proc/PID/status text: real, effective, saved, file system.
    public static func userIDs(status text: String) -> (real: Int, effective: Int)? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
        let ids = line.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }).map { Int($0) }
        guard ids.count >= 2, let real = ids[0], let effective = ids[1] else { return nil }
        return (real, effective)
    }

    /// Whether it holds a socket with one of these inodes open (its /proc/PID/fd links,
    /// `socket:[N]`); nil when its /proc/PID/fd cannot be read (another user's process without
    /// CAP_SYS_PTRACE, as in the DaemonSet's pod). Root without CAP_SYS_PTRACE can list a root
    /// process's fd folder (its owner's bits) and still not read one link in it (that takes
    /// ptrace access, measured on a booted node with setpriv): links that cannot be read are
    /// unknown, not "not held", or the node's own containerd would be taken for another's.
    public func holdsSocketIfKnown(_ pid: Int, inodes: Set<String>) -> Bool? {
        guard let fds = try? files.root.openDirectory(try proc.appending(String(pid)).appending("fd")) else { return nil }
        var unreadable = false
        for entry in fds.names() {
            guard let target = fds.linkTarget(entry) else {
                if errno == EACCES || errno == EPERM { unreadable = true }
                continue
            }
            if target.hasPrefix("socket:["), target.hasSuffix("]"), inodes.contains(String(target.dropFirst(8).dropLast())) { return true }
        }
        return unreadable ? nil : false
    }

    /// Who serves the unix socket at `path` in the node's root, by the kernel's word rather than
    /// by what a process calls itself: a connection to the socket there, and the pid SO_PEERCRED
    /// gives for it (the process that listened on it). Nothing is sent; the connection is closed
    /// at once (grpc-go logs nothing for a connection that ends before its preface). The
    /// socket's folder is opened inside the root (links on the way as a chroot takes them); a
    /// link as the socket itself is not followed.
    public func server(ofSocket path: String) -> SocketServer {
        guard let socketPath = try? HostPath(path), !socketPath.components.isEmpty else { return .unknown }
        // SO_PEERCRED's pid is in this process's PID namespace: it names a process of this
        // /proc only where this /proc is of the same namespace (a DaemonSet with hostPID).
        guard let procFolder = (try? files.root.openDirectory(proc)) ?? nil, procFolder.linkTarget("self") == String(getpid()) else {
            return .unknown
        }
        let folder: HostDirectory
        do {
            guard let opened = try files.root.openDirectory(socketPath.parent) else { return .nobody }
            folder = opened
        } catch { return .unknown }
        let name = socketPath.lastComponent
        var st = stat()
        guard fstatat(folder.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return errno == ENOENT ? .nobody : .unknown }
        switch st.st_mode & S_IFMT {
        case S_IFSOCK: break
        case S_IFLNK: return .unknown
        default: return .nobody  // a file that is not a socket: nothing listens there
        }
        // Through the folder's descriptor: no second walk of the path, and no unix address
        // length limit on the node's own path. Non-blocking: a listener whose backlog is full
        // answers EAGAIN instead of holding the agent. The folder's descriptor must stay open
        // until the connection is made: the path names it by number, and an optimised build may
        // otherwise release the folder after its last use (its number then taken by the socket
        // just made).
        let connection = withExtendedLifetime(folder) {
            UnixSocket.connect(to: "/proc/self/fd/\(folder.fd)/\(name)", nonBlocking: true)
        }
        switch connection {
        case .success(let fd):
            defer { close(fd) }
            let pid = node_agent_peer_pid(fd)
            return pid > 0 ? .process(Int(pid)) : .unknown
        case .failure(.failed(ECONNREFUSED)): return .nobody
        case .failure: return .unknown  // the path too long, no socket, or no connection for another reason
        }
    }

    /// The inodes of the listening unix sockets bound at `path`, from /proc/net/unix: this network
    /// namespace's sockets (a DaemonSet pod with hostNetwork sees the node's). Several where
    /// processes in other mount namespaces of the same network bind the same path (a nested
    /// cluster's containerd, a CI runner's): /proc/net/unix lists each, in no order of theirs.
    public func listeningUnixSocketInodes(path: String) -> Set<String> {
        guard let text = try? files.readString(try HostPath("/proc/net/unix"), limit: 16 << 20) else { return [] }
        var inodes: Set<String> = []
        for line in text.split(separator: "\n").dropFirst() {
            // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening.
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 8, f[7] == path, f[3] == "00010000" { inodes.insert(String(f[6])) }
        }
        return inodes
    }
}
