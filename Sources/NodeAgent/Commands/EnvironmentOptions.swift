import ArgumentParser
import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

// Where options come from besides the command line: `NODE_AGENT_<OPTION>` variables and the
// `--config` file of such lines; each filled option remembers its source for the error messages.

/// `--config`, shown in every command's help. EnvironmentOptions takes it off the command line
/// before the parser sees it (the file fills the other options), so it never parses a value.
struct ConfigOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A file of NODE_AGENT_<OPTION>=value lines (a systemd EnvironmentFile, a ConfigMap's data) for the options that the command line and the environment leave unset. (env: NODE_AGENT_CONFIG)",
            valueName: "file"))
    var config: String?
}

/// Where an option's value came from when the command line did not give it.
enum OptionSource: Equatable, Sendable {
    case environment(variable: String)
    case file(path: String, line: Int, key: String)
}

/// Fills options from `NODE_AGENT_<OPTION>` environment variables.
enum EnvironmentOptions {
    static let options: [String: [String]] = [
        "bootstrap": NodeOptions.environmentNames + ["ca", "trust-refresh", "dns-mode", "tool-timeout"],
        "probe": NodeOptions.environmentNames,
        // status: where the agent listens, and probe's options for --probe.
        "status": NodeOptions.environmentNames + ["listen", "endpoint"],
        "uninstall": [
            "host-root", "registry", "dbus-address", "output", "trust-refresh", "node-name", "kube-api", "kube-token-file",
            "kube-ca-file", "node-condition", "startup-taint", "tool-timeout",
        ],
        "run": NodeOptions.environmentNames + [
            "ca", "ca-cluster-trust-bundle-signer", "ca-cluster-trust-bundle-labels", "ca-cluster-trust-bundle-interval",
            "interval", "watch-interval", "proof-interval", "kube-dns-service", "dns-mode", "trust-refresh", "listen", "metrics-listen",
            "node-name", "kube-api", "kube-token-file", "kube-ca-file", "node-condition",
            "startup-taint", "condition-heartbeat", "tool-timeout",
        ],
    ]
    static let flags: [String: [String]] = [
        "bootstrap": ["dry-run", "restart-runtime", "accept-global-dns"], "uninstall": ["dry-run"],
        "run": ["restart-runtime", "accept-global-dns"], "status": ["probe"],
    ]
    /// Options that also have a one-letter name, as kubectl's `-o`.
    static let shortNames = ["output": "o"]
    /// What a boolean flag's variable may say (any case; empty is off).
    static let booleans = (on: ["1", "true", "yes"], off: ["", "0", "false", "no"])

    /// The command line with what it lacks filled from the environment, then from the config file
    /// (`--config FILE` or NODE_AGENT_CONFIG): `NODE_AGENT_<OPTION>=value` lines, the format of a
    /// systemd EnvironmentFile and of a ConfigMap's data. Command line, then environment, then file.
    static func arguments(_ arguments: [String], environment: [String: String]) throws -> [String] {
        try resolve(arguments, environment: environment).arguments
    }

    /// `arguments(_:environment:)` with where each filled option came from, for messages that
    /// name what the user set (NODE_AGENT_TIMEOUT, or the file and its line) rather than a flag
    /// the user never typed.
    static func resolve(_ arguments: [String], environment: [String: String]) throws -> CommandLineInput {
        var args = arguments
        var path = environment["NODE_AGENT_CONFIG"]
        if let i = args.firstIndex(of: "--config"), i + 1 < args.count {
            path = args[i + 1]
            args.removeSubrange(i...(i + 1))
        } else if let i = args.firstIndex(where: { $0.hasPrefix("--config=") }) {
            path = String(args[i].dropFirst("--config=".count))
            args.remove(at: i)
        }
        var merged = environment
        var sources: [String: OptionSource] = [:]
        if let path {
            let entries = try configEntries(path)
            // A key no command reads is a typo (NODE_AGENT_TIMEOUTT) that would silently do nothing.
            let known = Set((Array(options.values.joined()) + Array(flags.values.joined())).map(envName) + ["NODE_AGENT_CONFIG"])
            if let (key, (_, line)) = entries.filter({ !known.contains($0.key) }).min(by: { $0.value.line < $1.value.line }) {
                let near = known.min { distance($0, key) < distance($1, key) }
                throw AgentError(
                    .invalidInput, "\(path):\(line): \(key) is not an option of node-agent",
                    hint: near.map { "did you mean \($0)? Every option is in docs/CONFIGURATION.md" })
            }
            for (key, (value, line)) in entries where merged[key] == nil {
                merged[key] = value
                sources[key] = .file(path: path, line: line, key: key)
            }
        }
        let out = merge(arguments: args, environment: merged)
        var filled: [String: OptionSource] = [:]
        if let sub = args.first {
            for name in (options[sub] ?? []) + (flags[sub] ?? []) where merged[envName(name)] != nil && !given(name, in: args) {
                filled[name] = sources[envName(name)] ?? .environment(variable: envName(name))
            }
            let input = CommandLineInput(arguments: out, sources: filled)
            for name in flags[sub] ?? [] where !given(name, in: args) {
                if let value = merged[envName(name)], !(booleans.on + booleans.off).contains(value.lowercased()) {
                    throw AgentError(
                        .invalidInput, "\(input.label(name)) '\(value.escapedForMessage)' is not true or false",
                        hint: "say true, yes or 1 (or false, no, 0)")
                }
            }
        }
        return CommandLineInput(arguments: out, sources: filled)
    }

    /// Parses a config file: `KEY=value` lines, `#` comments, optional quotes around the value.
    static func configFile(_ path: String) throws -> [String: String] {
        try configEntries(path).mapValues(\.value)
    }

    /// The config file's values with their line numbers.
    static func configEntries(_ path: String) throws -> [String: (value: String, line: Int)] {
        let data: [UInt8]
        do {
            data = try HostFiles.readLocalFile(path, what: "config file", limit: 1 << 20)
        } catch var error as AgentError where error.hint == nil {
            error.hint = "check --config or NODE_AGENT_CONFIG"
            throw error
        }
        var out: [String: (value: String, line: Int)] = [:]
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "="), line[..<eq].hasPrefix("NODE_AGENT_"),
                line[..<eq].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" })
            else {
                throw AgentError(
                    .invalidInput, "\(path):\(number + 1): expected NODE_AGENT_<OPTION>=value", hint: "see docs/CONFIGURATION.md")
            }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            out[String(line[..<eq])] = (value, number + 1)
        }
        return out
    }

    /// Whether the command line gives option `name` (`--name`, `--name=...`, or its short name).
    static func given(_ name: String, in arguments: [String]) -> Bool {
        arguments.contains { word in
            if word == "--\(name)" || word.hasPrefix("--\(name)=") { return true }
            guard let short = shortNames[name] else { return false }
            return word == "-\(short)" || word.hasPrefix("-\(short)=")
        }
    }

    static func merge(arguments: [String], environment: [String: String]) -> [String] {
        guard let sub = arguments.first, let names = options[sub] else { return arguments }
        var out = arguments
        for name in names {
            if !given(name, in: arguments), let value = environment[envName(name)] { out += ["--\(name)", value] }
        }
        for name in flags[sub] ?? [] where !arguments.contains("--\(name)") {
            if let value = environment[envName(name)], booleans.on.contains(value.lowercased()) { out.append("--\(name)") }
        }
        return out
    }

    /// Levenshtein distance, for the nearest known variable.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    static func envName(_ option: String) -> String {
        "NODE_AGENT_" + option.uppercased().replacing("-", with: "_")
    }
}
