import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import Logging
import ResolvedConfig
import TrustStore
import Vocabulary

/// The options of `run`, validated once at start.
struct RunOptions: Sendable {
    var node: NodeOptions
    var ca: String
    var interval: Double
    var watchInterval: Double
    var change: ChangeOptions
    var reporter: NodeReporter?
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Keep the node able to pull: reconcile at start, on CA and resolved changes, and every interval; SIGTERM stops it.",
        discussion:
            "Mount the CA Secret as a whole volume and point --ca at the file in it: Kubernetes swaps the volume's ..data link on update, which the agent notices (a subPath mount never updates)."
    )

    @OptionGroup var node: NodeOptions

    @Option(help: "The CA file (in a Secret volume: the file inside the mounted folder).")
    var ca: String

    @Option(help: "Seconds between full reconciles with probes (drift repair); jittered by 10%.")
    var interval: Double = 60

    @Option(help: "Seconds between checks of the CA file and of resolved's bus owner.")
    var watchInterval: Double = 2

    @OptionGroup var change: ChangeOptions

    @OptionGroup var kube: KubeOptions

    @Option(help: "A taint to remove from the node once it can pull (e.g. node-agent/registry-not-ready).")
    var startupTaint: String?

    @Option(help: "Seconds between condition updates when nothing changed.")
    var conditionHeartbeat: Double = 300

    @Option(help: "Address of the health endpoint (/healthz, /readyz, /status, /metrics), HOST:PORT; 'off' for none.")
    var listen: String = "0.0.0.0:9808"

    func run() throws {
        guard (0.1...86400).contains(interval), (0.05...3600).contains(watchInterval) else {
            throw AgentError(.invalidInput, "--interval must be 0.1-86400 s and --watch-interval 0.05-3600 s")
        }
        // Fail fast on bad options: the same validation as bootstrap, before any service starts.
        let config = try NodeConfig(node, caFile: ca, dryRun: true)
        _ = try ChangeOptions.runner(toolTimeout: change.toolTimeout)
        // Before the endpoint's thread starts, so that it inherits the block.
        let stop = StopSignals()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return RedactingLogHandler(wrapped: handler)
        }
        let logger = Logger(label: "node-agent")
        let reporter = try kube.reporter(startupTaint: startupTaint, heartbeat: conditionHeartbeat)
        let options = RunOptions(
            node: node, ca: ca, interval: interval, watchInterval: watchInterval, change: change,
            reporter: reporter)
        let cache = StatusCache(registry: config.registry.hostAndPort)
        let reconcile = ReconcileService(options: options, cache: cache, logger: logger)
        var server: HealthServer?
        if listen != "off" {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port)
            else {
                throw AgentError(
                    .invalidInput, "--listen '\(listen.escapedForMessage)' is not HOST:PORT", hint: "e.g. 0.0.0.0:9808, or off")
            }
            let host = String(listen[..<colon]).trimming(charactersIn: "[]")
            server = try HealthServer(host: host, port: port, cache: cache, logger: logger)
        }
        logger.info("starting", metadata: ["registry": "\(node.registry)", "host-root": "\(node.hostRoot)"])
        server?.start()
        // SIGTERM (the kubelet, systemd) and SIGINT end the reconcile loop at its next step; a
        // reconcile under way finishes first, so no host change is cut in half by the agent.
        reconcile.run(until: stop)
        server?.stop()
    }
}
