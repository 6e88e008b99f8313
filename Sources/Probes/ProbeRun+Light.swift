import HostSystem
import Transport
import Vocabulary

/// A light run: between full proofs, what shows that the node still pulls as the last full
/// run proved, at the least cost to the cluster: kube-dns answering one question, the
/// registry's listener at the proven address (a TCP connect, no TLS), and the node's own checks.
/// The TLS handshakes, the registry's API and the runtime's pull are the full proof's.
extension ProbeRun {
    /// The light run's checks, then the rules between them. `address`: where the last full run
    /// connected to the registry.
    mutating func light(_ address: IPAddress) -> [CheckResult] {
        // kube-dns answering: one question, for the proven address's family (a kube-dns outage
        // breaks the node's pulls as a registry outage does, and is seen as soon).
        if case .name(let name) = s.registry.host, let dns = s.clusterDNS, let word = s.kubeDNSWord, word.ready > 0 {
            // The cluster's own word (its EndpointSlices, watched live): no question.
            step("dns-cluster") { _, _ in
                CheckResult(
                    name: "dns-cluster", outcome: .pass, reason: "\(word.said); \(name) not asked of \(dns) (light check)",
                    details: ["server": "\(dns)", "source": "EndpointSlice watch", "ready_endpoints": "\(word.ready)"])
            }
        } else if case .name(let name) = s.registry.host, let dns = s.clusterDNS {
            step("dns-cluster") { _, t in
                DNSProbe.cluster(name: name, server: dns, client: DNSClient(timeoutMilliseconds: t), family: address.family).0
            }
        }
        registryListening(address)
        nodeChecks()
        return Readiness.settle(checks)
    }

    /// A light run's check of the registry: a TCP connect to the address the last full run
    /// connected to, closed at once. It sees what a stopped registry or a Service without
    /// endpoints breaks (refused, unreachable, no answer); a registry that accepts connections
    /// but fails TLS is seen at the next full proof, or at once when the CA changes.
    mutating func registryListening(_ address: IPAddress) {
        step("tcp") { run, t in
            var r = TCPProbe.run(addresses: [address], port: run.s.registry.port, timeoutMilliseconds: t)
            // Its own words: one connect to the proven address, no name resolved.
            let at = "\(address):\(run.s.registry.port)"
            if r.outcome == .pass {
                r.reason = "connected to the registry at \(at) (light check)"
            } else if let why = r.details[at] {
                r.reason =
                    why.hasPrefix("refused")
                    ? "the registry refused a connection at \(at) (nothing listens; light check)"
                    : "no connection to the registry at \(at): \(why) (light check)"
            }
            r.details["address"] = "\(address)"
            r.details["light"] = "a TCP connect to the proven address; TLS and the registry's API as of the last full proof"
            return r
        }
    }
}
