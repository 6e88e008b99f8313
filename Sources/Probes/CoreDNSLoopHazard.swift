import FoundationEssentials
import HostSystem
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// coredns-loop-hazard: where the CoreDNS loop hazard is decided.
extension HazardProbes {
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
}
