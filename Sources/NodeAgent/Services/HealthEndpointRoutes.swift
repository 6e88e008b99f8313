import FoundationEssentials
import Glibc
import Vocabulary

/// What the health endpoint answers on each path (/healthz, /readyz, /status, /metrics), by
/// listener and peer: where /readyz is served. The connections are HealthServer's.
extension HealthServer {
    /// What a request gets, decided from its method, path, the listener's scope and whether the
    /// peer is on this node. `/status` (the registry, CA subjects, host paths, proxies, reasons)
    /// and `/readyz`'s reasons are for the node only: `node-agent status` asks on loopback.
    static func answer(method: String, path: String, scope: Scope, local: Bool, snapshot s: StatusCache.Snapshot)
        -> (status: Int, type: String, body: [UInt8])
    {
        guard method == "GET" || method == "HEAD" else { return (405, "text/plain", Array("GET or HEAD\n".utf8)) }
        switch (scope, path) {
        case (_, "/metrics"):
            return (200, "text/plain; version=0.0.4", Array(s.metrics))
        case (.all, "/healthz"):
            return (s.live ? 200 : 503, "text/plain", Array("ok\n".utf8))
        case (.all, "/readyz"):
            let reason = local ? s.readyReason : (s.ready ? "ready" : "not ready")
            return (s.ready ? 200 : 503, "text/plain", Array((reason + "\n").utf8))
        case (.all, "/status") where local:
            return (200, "application/json", Array(s.status))
        case (.all, "/status"):
            return (
                403, "text/plain",
                Array("/status is answered on loopback only: run `node-agent status` on the node (in the agent's pod)\n".utf8)
            )
        case (.all, _):
            return (404, "text/plain", Array("not found: /healthz, /readyz, /status, /metrics\n".utf8))
        case (.metrics, _):
            return (404, "text/plain", Array("not found: this listener serves /metrics only\n".utf8))
        }
    }

    static let reasons = [
        200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
        503: "Service Unavailable",
    ]
}
