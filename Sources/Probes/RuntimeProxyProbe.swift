import Containerd
import FoundationEssentials
import Glibc
import HTTPWire
import HostSystem
import Transport
import Vocabulary

/// Whether the runtime's pulls of the registry go through an HTTPS proxy (Go's
/// ProxyFromEnvironment on its environment), and if so whether that proxy opens a tunnel to the
/// registry (`CONNECT host:port`), as containerd would ask it to.
public enum RuntimeProxyProbe {
    public static func run(
        registry: RegistryAddress, runtime: ContainerRuntime?, timeoutMilliseconds: Int32,
        resolve: (String) -> IPAddress?
    ) -> CheckResult? {
        guard let runtime,
            let proxy = GoProxyRule.proxy(forHost: registry.hostForURL, port: Int(registry.port), environment: runtime.environment)
        else {
            return nil
        }
        var watch = Stopwatch()
        // The proxy as said in the check: without the user and password a URL may carry
        // (`http://user:password@proxy:3128`), which would reach /status, the condition and Events.
        let shown = Redaction.url(proxy)
        let noProxy = runtime.environment["NO_PROXY"] ?? runtime.environment["no_proxy"] ?? ""
        let details = ["proxy": shown, "no_proxy": Redaction.text(noProxy)]
        let fix =
            "add the cluster domain to NO_PROXY in containerd's environment (e.g. NO_PROXY=.svc.cluster.local,.cluster.local, in its unit's Environment=) and restart containerd"
        func fail(_ why: String) -> CheckResult {
            CheckResult(
                name: "runtime-proxy", outcome: .fail,
                reason:
                    "\(runtime.summary) sends pulls of \(registry) to the proxy \(shown) (HTTPS_PROXY in its environment, not exempted by NO_PROXY), and \(why): \(fix)",
                durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
        // http://user:pass@host:port, or host:port
        var rest = Substring(proxy)
        for scheme in ["http://", "https://", "socks5://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        rest = rest.prefix(while: { $0 != "/" })
        var host = String(rest)
        var port: UInt16 = 80
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]"), let p = UInt16(rest[rest.index(after: colon)...]) {
            host = String(rest[..<colon])
            port = p
        }
        host = host.trimming(charactersIn: "[]")
        guard let address = resolve(host) else { return fail("the proxy's host \(host) does not resolve") }
        do {
            let socket = try Socket.connect(
                to: address, port: port, type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: timeoutMilliseconds)
            watch.lap("connect")
            let target = registry.hostAndPort
            try socket.writeAll(Array("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n".utf8))
            // The proxy's answer, read as every HTTP head is (HTTPResponseHead).
            var bytes: [UInt8] = []
            var parsed = HTTPResponseHead.Parsed.incomplete
            while case .incomplete = parsed {
                let more = try socket.readSome(max: 4096)
                if more.isEmpty { break }
                bytes += more
                parsed = HTTPResponseHead.parse(bytes)
            }
            watch.lap("connect-tunnel")
            let statusLine = String(decoding: bytes.prefix(while: { $0 != 13 && $0 != 10 }).prefix(200), as: UTF8.self)
            guard case .head(let head) = parsed, head.status == 200 else {
                return fail("the proxy answered CONNECT with \(statusLine.isEmpty ? "nothing" : "'\(statusLine)'")")
            }
            return CheckResult(
                name: "runtime-proxy", outcome: .pass,
                reason: "\(runtime.summary) pulls \(registry) through the proxy \(shown), which opened a tunnel to it",
                durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        } catch let e as SocketError {
            return fail("the proxy cannot be reached (\(e.isRefused ? "connection refused" : e.isTimeout ? "timeout" : e.description))")
        } catch {
            return fail("the proxy cannot be reached (\(error))")
        }
    }
}
