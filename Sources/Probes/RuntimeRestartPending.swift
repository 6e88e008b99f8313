import FoundationEssentials
import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's CA files in the OS store and when each was written. A runtime loads the store once,
/// when it starts (containerd's Go at its first TLS verification after that): a file written
/// later is not loaded by it. The one rule behind runtime-restart-pending and the runtime-trust
/// check's `ProbeSuite.notLoaded`.
struct OSStoreWrites {
    let written: [(path: HostPath, at: Date)]

    init(files: HostFiles, _ paths: [HostPath]) {
        written = paths.compactMap { path in files.modificationTime(path).map { (path, $0) } }
    }

    /// The files a runtime started at `started` has not loaded.
    func notLoaded(byRuntimeStartedAt started: Date) -> [HostPath] {
        written.filter { $0.at > started }.map(\.path)
    }
}

/// runtime-restart-pending: a runtime that started before the agent's CA reached the OS store.
extension HazardProbes {
    /// containerd, CRI-O and Docker load the OS trust store once, at start: a CA added to the store
    /// later reaches pulls only after a restart, unless certs.d carries it for the registry.
    /// A running container runtime and when it started.
    public struct RuntimeProcess: Sendable {
        public var name: String
        public var pid: Int
        public var started: Date
        public init(name: String, pid: Int, started: Date) {
            self.name = name
            self.pid = pid
            self.started = started
        }
    }

    /// `runtimes`: the runtimes as systemd knows them (unit and active-since time), when its bus is
    /// reachable; otherwise the host's /proc is read (a DaemonSet pod sees it with hostPID).
    /// `containerdPID`: the node's own containerd, when known; other containerd processes seen in
    /// /proc (another node's, through a shared /proc) are not this node's runtime.
    /// `running`: the runtime processes of the host's /proc (`HostProcesses.named`).
    public static func runtimeRestartPending(
        files: HostFiles, caFiles: [HostPath], certsDInUse: Bool,
        runtimes known: [RuntimeProcess]? = nil, running: [HostProcess] = [],
        containerdPID: Int? = nil
    ) -> CheckResult {
        let name = "runtime-restart-pending"
        let writes = OSStoreWrites(files: files, caFiles)
        guard !writes.written.isEmpty else {
            return CheckResult(name: name, outcome: .skip, reason: "no CA of the agent's is in the OS trust store")
        }
        let runtimes =
            (known?.isEmpty == false ? known : nil)
            ?? running.compactMap { p in p.started.map { RuntimeProcess(name: p.name, pid: p.pid, started: $0) } }
            .filter { $0.name != "containerd" || containerdPID == nil || $0.pid == containerdPID }
        guard !runtimes.isEmpty else {
            return CheckResult(
                name: name, outcome: .skip,
                reason: "no container runtime (containerd, crio, dockerd) is running: neither systemd nor the host's /proc shows one")
        }
        let stale = runtimes.filter { !writes.notLoaded(byRuntimeStartedAt: $0.started).isEmpty }
        let details = Dictionary(
            uniqueKeysWithValues: runtimes.map { ("\($0.name)[\($0.pid)]", "started \(Int($0.started.timeIntervalSince1970))") })
        if stale.isEmpty {
            return CheckResult(
                name: name, outcome: .pass, reason: "the runtime started after the CA was installed: it trusts it", details: details)
        }
        let who = stale.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", ")
        if certsDInUse {
            return CheckResult(
                name: name, outcome: .warn,
                reason:
                    "\(who) started before the CA reached the OS store; pulls use certs.d and work, other uses of the OS store wait for a restart",
                details: details)
        }
        return CheckResult(
            name: name, outcome: .fail,
            reason:
                "\(who) started before the CA reached the OS store and certs.d does not carry it: restart the runtime (or enable containerd's config_path)",
            details: details)
    }
}
