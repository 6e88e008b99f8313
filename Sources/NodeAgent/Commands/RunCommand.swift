import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Kubernetes
import Logging
import ResolvedConfig
import Vocabulary

/// The options of `run`, validated once at start.
struct RunOptions: Sendable {
    var node: NodeOptions
    var ca: CASource
    var interval: Double
    var watchInterval: Double
    var change: ChangeOptions
    var reporter: NodeReporter?
    var conditionHeartbeat: Double
    var proofInterval: Double
    /// The kube-dns Service's EndpointSlices, watched (nil: no API, or --kube-dns-service off).
    var kubeDNS: KubeDNSWatch?
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Keep the node able to pull: reconcile at start, on CA and resolved changes, and every interval; SIGTERM stops it.",
        discussion:
            """
            Mount the CA Secret as a whole volume and point --ca at the file in it: Kubernetes swaps \
            the volume's ..data link on update, which the agent notices (a subPath mount never \
            updates). Or take the CA from the API's ClusterTrustBundles with \
            --ca-cluster-trust-bundle-signer. Exit status: 0 stopped (SIGTERM, SIGINT), 2 bad input or \
            usage at start (nothing changed), 3 another failure at start (e.g. --listen's port is \
            taken). Once running, a failed reconcile is reported, not an exit.

            Every option can also be set by its NODE_AGENT_* variable (shown with each option) or by a \
            line of a --config file; the command line wins, then the environment, then the file.

            EXAMPLES:
              # As in the DaemonSet: options from its ConfigMap, the node's / at /host
              NODE_AGENT_HOST_ROOT=/host NODE_AGENT_CA=/etc/node-agent/ca/ca.crt \\
                NODE_AGENT_REGISTRY=registry.openfaas.svc.cluster.local:5000 node-agent run
              # On a node, as a systemd unit would run it
              node-agent run --config /etc/node-agent/node-agent.env
              # The CA from ClusterTrustBundles; the startup taint removed once it can pull
              node-agent run --registry registry.openfaas.svc.cluster.local:5000 \\
                --ca-cluster-trust-bundle-signer example.com/registry-ca \\
                --startup-taint readiness.k8s.io/registry-not-ready
            """
    )

    @OptionGroup var node: NodeOptions

    @OptionGroup var configFile: ConfigOption

    @Option(help: "The CA file (in a Secret volume: the file inside the mounted folder). (env: NODE_AGENT_CA)")
    var ca: String?

    @Option(
        help:
            "Take the CA from the Kubernetes API instead of a file: the trust anchors of the certificates.k8s.io ClusterTrustBundles with this spec.signerName (e.g. example.com/registry-ca). (env: NODE_AGENT_CA_CLUSTER_TRUST_BUNDLE_SIGNER)"
    )
    var caClusterTrustBundleSigner: String?

    @Option(
        help:
            "A label selector the ClusterTrustBundles must match too (the API's syntax: app=registry-ca,env in (prod)). (env: NODE_AGENT_CA_CLUSTER_TRUST_BUNDLE_LABELS)"
    )
    var caClusterTrustBundleLabels: String?

    @Option(
        help: ArgumentHelp(
            "Seconds between lists of the ClusterTrustBundles (one small request to the API server each). (env: NODE_AGENT_CA_CLUSTER_TRUST_BUNDLE_INTERVAL)",
            valueName: "seconds"))
    var caClusterTrustBundleInterval: Double = 10

    @Option(
        help: ArgumentHelp(
            "Seconds between full reconciles with probes (drift repair); jittered by 10%. (env: NODE_AGENT_INTERVAL)", valueName: "seconds")
    )
    var interval: Double = 60

    @Option(
        help: ArgumentHelp(
            "Seconds between checks of the CA file and of resolved's bus owner. (env: NODE_AGENT_WATCH_INTERVAL)", valueName: "seconds"))
    var watchInterval: Double = 2

    @Option(
        help: ArgumentHelp(
            "Seconds between full network proofs (DNS, TLS, the registry's API, the runtime's pull) while nothing changes; jittered by 10%. Between them each --interval reconcile is light: the node's files, link, resolved's and the runtime's state, one cluster DNS question and a TCP connect to the registry at the proven address (no TLS: a registry that accepts connections but fails TLS with the node's CA unchanged is seen at the next full proof); a change, a failure or anything a light one finds moved proves in full at once, and while the registry refuses connections the retries are a TCP connect until it accepts. At most --interval: every reconcile is full. (env: NODE_AGENT_PROOF_INTERVAL)",
            valueName: "seconds"))
    var proofInterval: Double = 600

    @Option(
        help:
            "The cluster DNS Service, NAMESPACE/NAME, whose EndpointSlices the agent watches (one watch per node) where it has the Kubernetes API: while the watch is live, the Service's clusterIP is the cluster DNS address and at least one endpoint is ready, a light reconcile takes that word and asks kube-dns no question; no ready endpoint is proven at once. kube-system/kube-dns on kubeadm and k3s, kube-system/rke2-coredns-rke2-coredns on RKE2; 'off': no watch, the light reconcile asks kube-dns one question. (env: NODE_AGENT_KUBE_DNS_SERVICE)"
    )
    var kubeDnsService: String = "kube-system/kube-dns"

    @OptionGroup var change: ChangeOptions

    @OptionGroup var kube: KubeOptions

    @Option(
        help:
            "A taint to remove from the node once it can pull; the DaemonSet's has cluster-autoscaler's startup-taint prefix (which key for which autoscaler: docs/install-autoscalers.md). (env: NODE_AGENT_STARTUP_TAINT)"
    )
    var startupTaint: String?

    @Option(
        help: ArgumentHelp(
            "Seconds between condition updates when nothing changed. (env: NODE_AGENT_CONDITION_HEARTBEAT)", valueName: "seconds"))
    var conditionHeartbeat: Double = 300

    @Option(
        help:
            "Address of the health endpoint (/healthz, /readyz, /status, /metrics), HOST:PORT; 'off' for none. Keep it on loopback: /status and /readyz's reasons are answered to loopback peers only. (env: NODE_AGENT_LISTEN)"
    )
    var listen: String = "127.0.0.1:9808"

    @Option(
        help:
            "Address of a listener serving /metrics alone, for Prometheus on the node's network (the DaemonSet's: 0.0.0.0:9809), HOST:PORT; 'off' for none. (env: NODE_AGENT_METRICS_LISTEN)"
    )
    var metricsListen: String = "off"

    func run() throws {
        guard (0.1...86400).contains(interval), (0.05...3600).contains(watchInterval) else {
            throw AgentError(.invalidInput, "--interval must be 0.1-86400 s and --watch-interval 0.05-3600 s")
        }
        guard (0.1...86400).contains(proofInterval) else {
            throw AgentError(
                .invalidInput, "--proof-interval must be 0.1-86400 s (at most --interval: every reconcile proves the network in full)")
        }
        let source = try caSource()
        _ = try ChangeOptions.runner(toolTimeout: change.toolTimeout)
        let reporter = try kube.reporter(startupTaint: startupTaint)
        let dnsService = kubeDnsService == "off" ? nil : try KubeDNSService(kubeDnsService)
        let kubeDNS = try dnsService.flatMap { service in try kube.api().map { KubeDNSWatch(service: service, transport: $0) } }
        // Fail fast on bad options: the same validation as bootstrap, before any service starts
        // (the ClusterTrustBundles are listed by the loop: the API may come later than the agent);
        // what the user typed first, then what is worked out from the node (its cluster DNS).
        var file: String?
        if case .file(let path) = source { file = path }
        // (Its node facts change nothing: a containerd restarting now is the loop's to wait for.)
        let config = try NodeConfig(node, caFile: file, dryRun: true, runtimeSettleSeconds: 0)
        // Before the endpoint's thread starts, so that it inherits the block.
        let stop = StopSignals()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return RedactingLogHandler(wrapped: handler)
        }
        let logger = Logger(label: "node-agent")
        let options = RunOptions(
            node: node, ca: source, interval: interval, watchInterval: watchInterval, change: change,
            reporter: reporter, conditionHeartbeat: conditionHeartbeat, proofInterval: proofInterval, kubeDNS: kubeDNS)
        let cache = StatusCache(registry: config.registry.hostAndPort)
        let reconcile = ReconcileService(options: options, cache: cache, logger: logger)
        // The endpoint (the kubelet's probes, node-agent status) and, apart, /metrics for
        // Prometheus: a pod on the node's network reaches only what is not on loopback.
        var servers: [HealthServer] = []
        if let (host, port) = try HealthServer.address(listen, option: "--listen", example: "127.0.0.1:9808") {
            if !HealthServer.isLoopback(host) {
                logger.warning(
                    "--listen is reachable from the node's network: /status and /readyz's reasons are answered to loopback peers only; for Prometheus, serve /metrics alone with --metrics-listen",
                    metadata: ["listen": "\(listen)"])
            }
            servers.append(try HealthServer(host: host, port: port, scope: .all, cache: cache, logger: logger))
        }
        if let (host, port) = try HealthServer.address(metricsListen, option: "--metrics-listen", example: "0.0.0.0:9809") {
            servers.append(try HealthServer(host: host, port: port, scope: .metrics, cache: cache, logger: logger))
        }
        logger.info("starting", metadata: ["registry": "\(node.registry)", "host-root": "\(node.hostRoot)"])
        servers.forEach { $0.start() }
        // SIGTERM (the kubelet, systemd) and SIGINT end the reconcile loop at its next step; a
        // reconcile under way finishes first, so no host change is cut in half by the agent.
        reconcile.run(until: stop)
        servers.forEach { $0.stop() }
    }

    /// The CA's source: --ca, or the ClusterTrustBundles of --ca-cluster-trust-bundle-signer
    /// (and -labels) through the Kubernetes API; exactly one.
    func caSource() throws -> CASource {
        switch (ca, caClusterTrustBundleSigner) {
        case (let file?, nil):
            guard caClusterTrustBundleLabels == nil else {
                throw AgentError(
                    .invalidInput, "--ca-cluster-trust-bundle-labels selects ClusterTrustBundles, but the CA comes from --ca",
                    hint: "pass --ca-cluster-trust-bundle-signer with it, or drop it")
            }
            return .file(file)
        case (nil, let signer?):
            let selection = try ClusterTrustBundleSelection(signerName: signer, labelSelector: caClusterTrustBundleLabels ?? "")
            guard (0.05...3600).contains(caClusterTrustBundleInterval) else {
                throw AgentError(.invalidInput, "--ca-cluster-trust-bundle-interval must be 0.05-3600 s")
            }
            guard let api = try kube.api() else {
                throw AgentError(
                    .invalidInput, "--ca-cluster-trust-bundle-signer needs the Kubernetes API, which is not known",
                    hint: "run in a pod (KUBERNETES_SERVICE_HOST), or pass --kube-api")
            }
            return .clusterTrustBundles(selection, api: api, interval: caClusterTrustBundleInterval)
        case (.some, .some):
            throw AgentError(
                .invalidInput, "--ca and --ca-cluster-trust-bundle-signer both name the CA's source",
                hint: "give one: a file (--ca), or the ClusterTrustBundles of a signer")
        case (nil, nil):
            throw AgentError(
                .invalidInput, "no CA: --ca or --ca-cluster-trust-bundle-signer is required",
                hint: "--ca FILE (a Secret or projected volume's file), or --ca-cluster-trust-bundle-signer NAME")
        }
    }
}
