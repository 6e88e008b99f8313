import HostSystem
import Transport
import Vocabulary

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP connect to every address the registry resolves to: tells "the name resolves but the
/// ClusterIP is unreachable" (kube-proxy not ready, a network policy) apart from DNS failures.
public enum TCPProbe {
    public static func run(addresses: [IPAddress], port: UInt16, timeoutMilliseconds: Int32) -> CheckResult {
        var watch = Stopwatch()
        var failures: [String] = []
        var details: [String: String] = [:]
        for address in addresses {
            do {
                _ = try Socket.connect(to: address, port: port, type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: timeoutMilliseconds)
                details["\(address):\(port)"] = "connected"
            } catch let e as SocketError {
                let why = e.isRefused ? "refused (nothing listens)" : e.isTimeout ? "no answer (timeout)" : e.description
                details["\(address):\(port)"] = why
                failures.append("\(address):\(port) \(why)")
            } catch {
                failures.append("\(address):\(port) \(error)")
            }
        }
        watch.lap("connect")
        if addresses.isEmpty {
            return CheckResult(
                name: "tcp", outcome: .fail, reason: "not tried: no address for the registry", durationSeconds: watch.elapsed,
                phases: watch.phases)
        }
        if failures.isEmpty {
            return CheckResult(
                name: "tcp", outcome: .pass, reason: "connected to \(addresses.map { "\($0):\(port)" }.joined(separator: ", "))",
                durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
        return CheckResult(
            name: "tcp", outcome: .fail,
            reason:
                "the registry's name resolves but \(failures.joined(separator: "; ")): is the Service's ClusterIP reachable from the host (kube-proxy ready)?",
            durationSeconds: watch.elapsed, phases: watch.phases, details: details)
    }
}
