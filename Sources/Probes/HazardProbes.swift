import FoundationEssentials
import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// Conditions of the node that break pulls later, or other workloads, though probes pass now.
public enum HazardProbes {
    /// The cluster DNS in the resolv.conf kubelet hands to CoreDNS (dnsPolicy Default) makes CoreDNS
    /// forward to itself; its `loop` plugin then stops it, at its next restart.
    public static func coreDNSLoop(files: HostFiles, resolvConf: String, clusterDNS: IPAddress?) -> CheckResult {
        let name = "coredns-loop-hazard"
        guard let clusterDNS else {
            return CheckResult(name: name, outcome: .skip, reason: "the cluster DNS is not known")
        }
        guard let path = try? HostPath(resolvConf), let text = try? files.readString(path, limit: 1 << 20) else {
            return CheckResult(name: name, outcome: .skip, reason: "kubelet's resolv.conf \(resolvConf) does not exist on the host")
        }
        let servers = ResolvConf(parsing: text).nameservers.map(\.description)
        let details = ["resolv_conf": resolvConf, "nameservers": servers.joined(separator: ",")]
        if servers.contains(clusterDNS.description) {
            return CheckResult(
                name: name, outcome: .fail,
                reason:
                    "the cluster DNS \(clusterDNS) is in \(resolvConf), which kubelet hands to CoreDNS: CoreDNS would forward to itself and its loop plugin would stop it; remove the global DNS= entry and route only ~<cluster domain> to it",
                details: details)
        }
        return CheckResult(
            name: name, outcome: .pass,
            reason: "the cluster DNS is not in kubelet's resolv.conf \(resolvConf) (nameservers: \(servers.joined(separator: ", ")))",
            details: details)
    }

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
        let mtimes = caFiles.compactMap { try? modificationTime(files.root.resolve($0)) }
        guard let installed = mtimes.max() else {
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
        let stale = runtimes.filter { $0.started < installed }
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

    public static func certsD(runtimeCAFiles: [HostPath], note: String) -> CheckResult {
        if !runtimeCAFiles.isEmpty {
            return CheckResult(
                name: "certs-d", outcome: .pass,
                reason: "containerd reads this registry's CA from \(runtimeCAFiles.map(\.path).joined(separator: ", ")) on every pull")
        }
        return CheckResult(
            name: "certs-d", outcome: .warn,
            reason: note.isEmpty
                ? "containerd's certs.d has no CA for this registry: pulls rely on the OS store, read only when the runtime starts" : note)
    }
}
