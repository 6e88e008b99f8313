import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// A containerd process of the node, as its command line started it: the config file it read
/// (`-c`/`--config`) and the socket it serves (`-a`/`--address`). k3s and RKE2 start theirs so
/// (`containerd -c <data-dir>/agent/etc/containerd/config.toml -a /run/k3s/containerd/containerd.sock
/// ...`), a unit may too: what containerd runs with, not where a default would be, is what a
/// pull reads.
public struct RunningContainerd: Sendable, Equatable {
    public var pid: Int
    public var config: HostPath?
    public var address: String?

    /// The running containerd that serves CRI on this node: of the containerd processes, those
    /// running as root whose socket (their `--address`, else containerd's default) listens in
    /// this network namespace, held by them where that can be read: another node's, seen through
    /// a shared /proc, is not; nor is a process of another user that calls itself containerd.
    /// Empty when none runs (before its start) or none can be told.
    /// `among`: the processes by name, when the caller has read /proc already (nil: read now).
    public static func find(_ files: HostFiles, among: [HostProcess]? = nil) -> [RunningContainerd] {
        qualified(files, among: among).found
    }

    /// A process named containerd that is not the node's runtime, and why.
    public struct Ignored: Sendable, Equatable {
        public var pid: Int
        public var why: String

        public init(pid: Int, why: String) {
            self.pid = pid
            self.why = why
        }
    }

    /// The same, with each process named containerd that was not taken, and why.
    public static func qualified(_ files: HostFiles, among: [HostProcess]? = nil) -> (found: [RunningContainerd], ignored: [Ignored]) {
        let processes = HostProcesses(files: files)
        var found: [RunningContainerd] = []
        var ignored: [Ignored] = []
        for process in (among ?? processes.named(["containerd"])) where process.name == "containerd" {
            // The node's runtime runs as root: a process of another user can name itself
            // containerd and point -c at a config of its own, which must not decide where root writes.
            guard let ids = processes.userIDs(process.pid) else { continue }  // gone meanwhile
            guard ids.real == 0, ids.effective == 0 else {
                let uid = ids.real == 0 ? ids.effective : ids.real
                ignored.append(
                    Ignored(
                        pid: process.pid,
                        why: "a process named containerd (pid \(process.pid)) runs as uid \(uid): not the node's runtime, ignored"))
                continue
            }
            var c = parse(pid: process.pid, processes.commandLine(process.pid))
            // Without -a, the socket its config file names (`[grpc] address`), else the default.
            if c.address == nil { c.address = ContainerdRegistryConfig.grpcAddress(configFile: c.config, files: files) }
            let socket = c.socket
            // Listening in this network namespace; and held by this process where its file
            // descriptors can be read (the DaemonSet has no CAP_SYS_PTRACE: there the listening
            // path it names has to do).
            let inodes = processes.listeningUnixSocketInodes(path: socket)
            guard !inodes.isEmpty, processes.holdsSocketIfKnown(process.pid, inodes: inodes) ?? true
            else { continue }
            found.append(c)
        }
        // Each socket asked who serves it in the node's root: a process that listens at the
        // same path in a mount namespace of its own (a nested cluster's containerd, a CI
        // runner's, a pod's with the host's network) is not the node's runtime, whatever it
        // calls itself and however it was started. Unknown (another PID namespace, a server
        // that is none of these processes): they are taken as before.
        var kept: [RunningContainerd] = []
        for socket in Set(found.map(\.socket)).sorted() {
            let here = found.filter { $0.socket == socket }
            switch processes.server(ofSocket: socket) {
            case .process(let pid) where here.contains(where: { $0.pid == pid }):
                kept += here.filter { $0.pid == pid }
                ignored += here.filter { $0.pid != pid }.map {
                    Ignored(
                        pid: $0.pid,
                        why:
                            "containerd (pid \($0.pid)) listens at \(socket) in a mount namespace of its own: the node's \(socket) is served by pid \(pid); not the node's runtime, ignored"
                    )
                }
            case .nobody:
                ignored += here.map {
                    Ignored(
                        pid: $0.pid,
                        why:
                            "containerd (pid \($0.pid)) listens at \(socket) in a mount namespace of its own: nothing serves \(socket) in the node's root; not the node's runtime, ignored"
                    )
                }
            default:
                kept += here
            }
        }
        return (kept.sorted { $0.pid < $1.pid }, ignored)
    }

    /// containerd's socket when its command line names none.
    public static let defaultSocket = "/run/containerd/containerd.sock"

    /// The socket it serves.
    public var socket: String { address ?? Self.defaultSocket }

    /// Its flags, as containerd's command line (urfave/cli) takes them: `-c X`, `--config X`,
    /// `--config=X`, the same for `-a`/`--address`.
    package static func parse(pid: Int, _ argv: [String]) -> RunningContainerd {
        var c = RunningContainerd(pid: pid, config: nil, address: nil)
        var i = 1
        while i < argv.count {
            let arg = argv[i]
            var name = arg
            var value: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                value = String(arg[arg.index(after: eq)...])
            }
            if ["-c", "--config", "-a", "--address"].contains(name) {
                if value == nil, i + 1 < argv.count {
                    value = argv[i + 1]
                    i += 1
                }
                if name == "-c" || name == "--config" {
                    c.config = value.flatMap { try? HostPath($0) }
                } else {
                    c.address = value
                }
            }
            i += 1
        }
        return c
    }
}
