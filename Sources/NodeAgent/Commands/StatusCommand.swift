import AgentCore
import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Vocabulary

/// `node-agent status`: for a person on the node, what the running agent last found (its
/// endpoint's /status) as the table `bootstrap` prints, with the age of the result; or, asked
/// with `--probe`, a fresh probe. An agent that does not answer is said so, with both ways on;
/// status never probes behind the user's back (a probe takes seconds, needs the agent's options,
/// and would hide that the agent is down).
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the running agent last found (its health endpoint's /status), with its age; --probe probes now instead.",
        discussion: """
            Reads the report of `node-agent run` from its endpoint and prints it as bootstrap does. The \
            endpoint is --endpoint, else the agent's --listen address (NODE_AGENT_LISTEN, as in the \
            DaemonSet's ConfigMap; 0.0.0.0 is asked on 127.0.0.1), else http://127.0.0.1:9808. When \
            no agent answers there, status says so and does nothing else: ask with --probe for a \
            fresh probe (it takes probe's options, e.g. --registry, --host-root; in the agent's pod \
            they come from its environment). Exit status: 0 ready, 1 not ready (or the agent's last \
            reconcile failed), 2 bad input or usage, 3 (--probe) the host could not be read, 4 no \
            report: no agent answered at the endpoint, its answer is not usable, or it has not \
            finished its first reconcile yet.

            Every option can also be set by its NODE_AGENT_* variable (shown with each option) or by a \
            line of a --config file; the command line wins, then the environment, then the file.

            EXAMPLES:
              # What the agent on this node last found
              node-agent status
              # In the agent's pod, as YAML
              kubectl -n node-agent exec POD -- node-agent status -o yaml
              # An agent listening elsewhere; or a fresh probe instead of asking it
              node-agent status --endpoint http://127.0.0.1:9808
              node-agent status --probe --registry registry.openfaas.svc.cluster.local:5000
            """
    )

    static let noReport: Int32 = 4
    static let defaultEndpoint = "http://127.0.0.1:9808"

    @Option(
        help:
            "The running agent's health endpoint, http://IP:PORT (default: its --listen address, else \(defaultEndpoint)). (env: NODE_AGENT_ENDPOINT)"
    )
    var endpoint: String?

    @Flag(help: "Probe the node now, as `node-agent probe` does, instead of asking the running agent. (env: NODE_AGENT_PROBE)")
    var probe = false

    @Option(name: [.short, .long], help: "Output format: text, or the report's object as json or yaml. (env: NODE_AGENT_OUTPUT)")
    var output: OutputFormat = .text

    @OptionGroup var configFile: ConfigOption

    /// The agent's --listen, from NODE_AGENT_LISTEN or the config file: where to find it.
    @Option(help: .hidden)
    var listen: String?

    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp(
            "With --probe: probe's options (--registry, --host-root, ...; see node-agent probe --help).", valueName: "probe-options"))
    var probeOptions: [String] = []

    func run() throws {
        if probe {
            try runProbe()
            return
        }
        // Probe's options are welcome here only because the agent's environment supplies them
        // (NODE_AGENT_REGISTRY...); anything else is a mistake worth naming.
        for word in probeOptions where word.hasPrefix("-") {
            let name = word.dropFirst(2).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            guard word.hasPrefix("--"), NodeOptions.environmentNames.contains(name) else {
                throw AgentError(
                    .invalidInput, "status has no option '\(word.escapedForMessage)'", hint: "see node-agent status --help")
            }
        }
        let client: EndpointClient
        if let endpoint {
            client = try EndpointClient(endpoint)
        } else if let listen {
            guard let fromListen = EndpointClient.forListen(listen) else {
                throw NoReport(
                    "the agent's endpoint is '\(listen.escapedForMessage)' (--listen, NODE_AGENT_LISTEN): there is none to ask",
                    hint: "give it with --endpoint http://IP:PORT, or probe now: node-agent status --probe")
            }
            client = fromListen
        } else {
            client = try EndpointClient(Self.defaultEndpoint)
        }
        let shown = try Self.fetch(client)
        writeStandard(output.render(json: { shown.json }, text: { shown.text }))
        if !shown.ready { throw ExitCode(ExitStatus.notReady) }
    }

    /// The agent's answer, ready to print; throws `NoReport` when there is none to show.
    static func fetch(_ client: EndpointClient, now: Date = Date()) throws -> Shown {
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try client.get("/status")
        } catch let error as EndpointClient.Unreachable {
            throw NoReport(
                "no agent answers at \(client.url) (\(error))",
                hint:
                    "is `node-agent run` running on this node with its endpoint there? Give its address with --endpoint http://IP:PORT, or probe now: node-agent status --probe"
            )
        }
        // The agent answers /status to loopback peers only: an endpoint asked on another address
        // of this node (an --endpoint or --listen on the node's IP) is refused.
        guard answer.status != 403 else {
            throw NoReport(
                "the agent at \(client.url) answers /status on loopback only",
                hint: "ask it on 127.0.0.1: node-agent status --endpoint http://127.0.0.1:PORT (its --listen port; the DaemonSet's is 9808)"
            )
        }
        guard answer.status == 200, let document = try? JSONValue.parse(answer.body), document["ready"] != nil else {
            throw NoReport(
                "\(client.url)/status answered \(answer.status) without node-agent's report: is that node-agent's endpoint?",
                hint: "give the agent's address with --endpoint http://IP:PORT, or probe now: node-agent status --probe")
        }
        return try render(document, body: answer.body, source: client.url, now: now)
    }

    /// What to print for the agent's /status `document`.
    static func render(_ document: JSONValue, body: [UInt8], source: String, now: Date) throws -> Shown {
        guard case .object(var object) = document else { throw NoReport("\(source)/status is no JSON object", hint: nil) }
        let checkedAt = object["checked_at"].flatMap { if case .string(let s) = $0 { return s } else { return nil } }
        guard let checkedAt, let checked = try? Date(checkedAt, strategy: .iso8601) else {
            if let started = object["started_at"].flatMap({ if case .string(let s) = $0 { return s } else { return nil } }),
                let date = try? Date(started, strategy: .iso8601)
            {
                throw NoReport(
                    "the agent at \(source) has not finished its first reconcile yet (it started \(age(now.timeIntervalSince(date))))",
                    hint: "ask again in a moment, or probe now: node-agent status --probe")
            }
            throw NoReport(
                "the agent at \(source) has no report yet", hint: "ask again in a moment, or probe now: node-agent status --probe")
        }
        let seconds = now.timeIntervalSince(checked)
        object["source"] = .string(source)
        object["age_seconds"] = .int(Int64(max(0, seconds.rounded())))
        let json = pretty(.object(object))
        let header = "The agent at \(source), checked \(age(seconds)) (\(checkedAt)):\n"
        if case .string(let error) = object["error"] {
            return Shown(
                ready: false, json: json,
                text: header + "Its last reconcile failed: \(error)\nNOT READY: the agent could not check this node.\n")
        }
        let report: Report
        do {
            report = try Report(decodingJSON: body)
        } catch {
            throw NoReport("\(source)/status is not a report this node-agent reads: \(error)", hint: "is the agent a different version?")
        }
        return Shown(ready: report.ready, json: json, text: header + report.text())
    }

    func runProbe() throws {
        let node: NodeOptions
        do {
            node = try NodeOptions.parse(probeOptions)
        } catch let error where NodeOptions.exitCode(for: error) == .validationFailure {
            throw UsageFailure(message: NodeOptions.message(for: error), command: "probe")
        } catch {
            throw AgentError(
                .invalidInput, "--probe: \(NodeOptions.message(for: error))",
                hint: "--probe takes probe's options, e.g. --registry HOST[:PORT] (or NODE_AGENT_REGISTRY); see node-agent probe --help")
        }
        let config = try NodeConfig(node, caFile: nil, dryRun: false)
        let report = try Bootstrap(config: config, runner: ProcessRunner(), refreshMode: .tool).probeOnly()
        let now = Date()
        writeStandard(
            output.render(
                json: {
                    var object = (try? JSONValue.parse(Array(report.json().utf8)))?.object ?? [:]
                    object["checked_at"] = .string(now.iso8601)
                    object["source"] = "probe"
                    object["age_seconds"] = .int(0)
                    return Self.pretty(.object(object))
                },
                text: { "A fresh probe of this node (--probe), not the running agent's report:\n" + report.text() }))
        if !report.ready { throw ExitCode(ExitStatus.notReady) }
    }

    /// "42 s ago", "5 min ago", "3 h ago".
    static func age(_ seconds: Double) -> String {
        let s = Int(max(0, seconds).rounded())
        if s < 120 { return "\(s) s ago" }
        if s < 120 * 60 { return "\(s / 60) min ago" }
        if s < 48 * 3600 { return "\(s / 3600) h ago" }
        return "\(s / 86400) days ago"
    }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    struct Shown {
        var ready: Bool
        var json: String
        var text: String
    }

    /// No report could be had: exit status 4, the reason and what to do on standard error.
    struct NoReport: Error, CustomStringConvertible {
        var message: String
        var hint: String?
        init(_ message: String, hint: String?) {
            self.message = message
            self.hint = hint
        }
        var description: String { hint.map { "\(message); \($0)" } ?? message }
    }
}
