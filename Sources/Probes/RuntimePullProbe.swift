import CRIWire
import Containerd
import HostSystem
import Transport
import Vocabulary

/// The runtime's own word: the node's container runtime, asked over its CRI socket to pull as
/// kubelet asks it. The transport (gRPC) is handed in, so that this module stays free of it.
public enum RuntimePullProbe {
    /// The pull, asked through `node-agent-cri` at `helper` (installed beside the agent): the
    /// gRPC client lives in that program, run for the check and gone after it, so that the agent
    /// does not carry it while it idles. The pull secret's credentials go to it on standard input.
    /// Throws when the runtime could not be asked (no socket, no gRPC there, no helper).
    public static func pullThroughHelper(_ helper: String, socket: String, credentials: RegistryCredentials?)
        -> @Sendable (String, Int32) throws -> CRIPullAnswer
    {
        let pull = HelperPull(helper: helper, socket: socket, credentials: credentials)
        return { try pull.pull($0, $1) }
    }

    /// The pull through `node-agent-cri`, which can be started ahead: `prepare` starts the
    /// program for the reference and time it will be asked for, so that its start (loading it,
    /// its NIO event loop and HTTP/2 client) happens while the agent still writes the node's files; the pull then only
    /// hands it its input, which is its go. Unused, it is stopped when this goes (and, given no
    /// input, it pulls nothing). Prepared with `statusSeconds`, the same program first answers
    /// the runtime's status (`status`), before its go: one process for both.
    public final class HelperPull: @unchecked Sendable {
        let helper: String
        let socket: String
        let credentials: RegistryCredentials?
        private let lock = PlainLock()
        private var prepared: (reference: String, milliseconds: Int32, program: StartedProgram)?
        /// The prepared program's status line: the seconds it was given, and the line once read
        /// (nil inside: no whole line came).
        private var statusSeconds: Double?
        private var statusRead: [UInt8]??

        public init(helper: String, socket: String, credentials: RegistryCredentials?) {
            self.helper = helper
            self.socket = socket
            self.credentials = credentials
        }

        func start(_ reference: String, _ milliseconds: Int32, statusSeconds: Double? = nil) throws -> StartedProgram {
            let seconds = Double(max(milliseconds, 1)) / 1000
            // The helper's own limit is the call's; this one only stops a helper that hangs.
            return try ProcessRunner(timeoutSeconds: seconds + 5)
                .start(
                    helper, CRIHelperCall.pull(socket: socket, image: reference, timeoutSeconds: seconds, statusSeconds: statusSeconds),
                    withInput: true)
        }

        /// Starts the program for a pull of `reference` within `milliseconds`, to come; with
        /// `statusSeconds`, it asks the runtime's status first, within those seconds (`status`).
        /// The program this process started ahead (`HelperStandby`), when there is one, is given
        /// the call instead of a program being started now.
        public func prepare(reference: String, milliseconds: Int32, statusSeconds: Double? = nil) {
            let seconds = Double(max(milliseconds, 1)) / 1000
            let call = CRIPullCall(socket: socket, image: reference, timeoutSeconds: seconds, statusSeconds: statusSeconds)
            let program =
                HelperStandby.take(helper: helper, call: call) ?? (try? start(reference, milliseconds, statusSeconds: statusSeconds))
            lock.withLock {
                prepared = program.map { (reference, milliseconds, $0) }
                self.statusSeconds = program == nil ? nil : statusSeconds
                statusRead = nil
            }
        }

        /// The runtime's word, from the prepared program's first line (waited for at most its
        /// seconds and 2 more, as a status run of the helper is): nil when no program was
        /// prepared for it, or it ended, said it could not ask, or wrote something else.
        public func status() -> RuntimeWord? {
            lock.withLock { readStatus() }.flatMap { RuntimeStatusQuery.parse(String(decoding: $0, as: UTF8.self)) }
        }

        /// The status line, read once; under the lock.
        private func readStatus() -> [UInt8]? {
            if let read = statusRead { return read }
            guard let seconds = statusSeconds, let program = prepared?.program else { return nil }
            let line = program.firstLine(timeoutSeconds: seconds + 2)
            statusRead = .some(line)
            return line
        }

        public func pull(_ reference: String, _ milliseconds: Int32) throws -> CRIPullAnswer {
            let ready = lock.withLock { () -> (program: StartedProgram, statusLeft: Bool)? in
                defer { (prepared, statusSeconds, statusRead) = (nil, nil, nil) }
                guard let p = prepared, p.reference == reference, p.milliseconds == milliseconds else { return nil }
                // Its status line comes first (read now if nobody asked for it); one that did
                // not come in time may still come before the answer.
                return (p.program, statusSeconds != nil && readStatus() == nil)
            }
            let program = try ready?.program ?? start(reference, milliseconds)
            let input = CRIPullCredentials(username: credentials?.username, password: credentials?.password)
            let result = try program.finish(input: input.encoded(), timeoutSeconds: Double(max(milliseconds, 1)) / 1000 + 5)
            var stdout = result.stdout
            if ready?.statusLeft == true, let end = stdout.firstIndex(of: "\n"), stdout[end...].count > 1 {
                stdout = String(stdout[stdout.index(after: end)...])
            }
            return try answer(status: result.status, stdout: stdout, stderr: result.stderr, helper: helper)
        }
    }

    /// What the helper said: its JSON answer (exit 0), or why the runtime could not be asked.
    static func answer(status: Int32, stdout: String, stderr: String, helper: String) throws -> CRIPullAnswer {
        var said = stderr.trimmingWhitespace()
        if said.hasPrefix("node-agent-cri: ") { said = String(said.dropFirst(16)) }
        guard status == 0 else {
            throw AgentError(.commandFailed, said.isEmpty ? "\(helper) ended with status \(status)" : said)
        }
        guard let answer = try? CRIPullAnswer(decoding: Array(stdout.utf8)) else {
            throw AgentError(
                .commandFailed, "\(helper) answered something that is not its JSON answer: \(String(stdout.prefix(200)).escapedForMessage)")
        }
        return answer
    }

    /// Where a failed pull stopped, from the runtime's error text (Go's error strings, which
    /// containerd passes on): the stage, and whether the registry answered over verified TLS.
    public enum Stage: String, Sendable {
        case resolve, proxy, connect, tls, registry, unknown
    }

    public static func stage(of message: String) -> Stage {
        let m = message.lowercased()
        if m.contains("proxyconnect") { return .proxy }
        if m.contains("x509:") || m.contains("tls:") || m.contains("certificate") { return .tls }
        if m.contains("no such host") || m.contains("name resolution") || m.contains("server misbehaving") || m.contains("dial tcp: lookup")
        {
            return .resolve
        }
        if m.contains("connection refused") || m.contains("i/o timeout") || m.contains("no route to host")
            || m.contains("network is unreachable")
            || m.contains("connection reset") || m.contains("dial tcp") || m.contains("malformed") || m.contains("connection broken")
            || m.hasSuffix(": eof") || m.contains("unexpected eof")
        {
            return .connect
        }
        // The registry answered an HTTP status: containerd's "<ref>: not found" (404), or
        // "failed with status code [manifests …]: 401 Unauthorized" and the like. containerd 1.7
        // and later say a 401 without credentials to send as "pull access denied, repository
        // does not exist or may require authorization: authorization failed: no basic auth
        // credentials" (measured on Debian 13's 1.7.24).
        if m.hasSuffix(": not found") || m.contains("401 unauthorized") || m.contains("403 forbidden") || m.contains("manifest unknown")
            || m.contains("failed with status code [") || m.contains("pull access denied") || m.contains("authorization failed")
        {
            return .registry
        }
        return .unknown
    }

    /// The reference pulled when the user names no image: one that cannot exist. The runtime
    /// resolves it through the registry exactly as a real pull (its names, proxy, trust, TLS) and
    /// the registry answers "not found" (or 401): the path works.
    public static func probeReference(_ registry: RegistryAddress) -> String {
        probeRepository(registry) + ":absent"
    }

    /// The probe reference's name without its tag.
    public static func probeRepository(_ registry: RegistryAddress) -> String {
        "\(registry.hostAndPort)/node-agent/pull-probe"
    }

    /// A pull as it went, wherever it ran (`ProbeSuite` starts it on a thread of its own): the
    /// reference asked for, the runtime's answer or why it could not be asked, and its seconds.
    public struct Outcome: Sendable {
        public var reference: String
        public var answer: Result<CRIPullAnswer, any Error>
        public var seconds: Double
        /// The time the runtime was given (nil: not known).
        public var budgetSeconds: Double? = nil
        /// An earlier ask that ran out of its time while the node's lookup waits
        /// (`askAgain`): this outcome is the second ask's.
        public var earlier: Double? = nil

        /// The runtime did not answer within the time it was given: the CRI client gave up
        /// the call (the helper's deadline), it did not fail on the runtime's word.
        public var ranOut: Bool {
            guard let budgetSeconds, case .success(let answer) = answer, !answer.ok else { return false }
            return seconds + 0.05 >= budgetSeconds
        }
    }

    /// Asks `pull` for `image` (nil: the probe reference) and times it; `milliseconds`: the time
    /// the runtime is given (the caller's `pull` gives it that).
    public static func pull(image: String?, registry: RegistryAddress, milliseconds: Int32? = nil, _ pull: (String) throws -> CRIPullAnswer)
        -> Outcome
    {
        let watch = Stopwatch()
        let reference = image ?? probeReference(registry)
        let answer = Result { try pull(reference) }
        return Outcome(reference: reference, answer: answer, seconds: watch.elapsed, budgetSeconds: milliseconds.map { Double($0) / 1000 })
    }

    /// Whether the runtime is to be asked again with what is left of the deadline: its pull ran
    /// out of the time the probe gave it while the node's own lookup of the registry's name was
    /// seen to wait past the probe's budget (dns-host's overrun: an NSS source that waits).
    /// containerd's lookup is that same getaddrinfo and waits as long, so the agent's budget
    /// cut the pull short, not the runtime; kubelet gives a pull no such budget. Measured on
    /// bookworm with nss-mdns taking the name (SlowLookupIntegrationTests): the lookup waits
    /// 5 s, and the probe reference's pull about 10 s (it resolves the name once per hosts.toml
    /// entry it tries), over the 4 s that --timeout 2 gives it and about the 10 s of the default.
    public static func askAgain(after outcome: Outcome, checks: [CheckResult]) -> Bool {
        outcome.ranOut && checks.contains { $0.name == "dns-host" && $0.details["overrun_seconds"] != nil }
    }

    /// The `runtime-pull` check. `image`: the user's `--pull-image`, nil for the probe reference.
    public static func run(
        image: String?, registry: RegistryAddress, runtime: String,
        pull: (String) throws -> CRIPullAnswer
    ) -> CheckResult {
        check(Self.pull(image: image, registry: registry, pull), image: image, runtime: runtime)
    }

    /// The check from the pull's outcome. `runtime`: how the report names the runtime.
    public static func check(_ outcome: Outcome, image: String?, runtime: String) -> CheckResult {
        let reference = outcome.reference
        let phases = [CheckResult.Phase(name: "pull", seconds: outcome.seconds)]
        var answer: CRIPullAnswer
        switch outcome.answer {
        case .failure(let error):
            return CheckResult(
                name: "runtime-pull", outcome: .skip,
                reason: "the runtime's CRI socket cannot be asked (\(error)); the other checks stand for it",
                durationSeconds: outcome.seconds, phases: phases, details: ["reference": reference])
        case .success(let a): answer = a
        }
        // The runtime's words quote the registry's (its reason phrase, its JSON error message):
        // said on one line, so whoever answers there cannot add a line to the report.
        answer.message = Redaction.oneLine(answer.message)
        var details = ["reference": reference, "runtime": runtime]
        // Asked again after a first ask ran out of its time while the node's lookup waits.
        let again =
            outcome.earlier.map {
                " (asked again with the rest of --deadline: the first ask ran out of its \($0.fixed(1)) s while the node's lookup of the name waits past the probe's budget, see dns-host)"
            } ?? ""
        if let earlier = outcome.earlier { details["first_ask_seconds"] = earlier.fixed(1) }
        if outcome.ranOut, let budget = outcome.budgetSeconds {
            // A timeout is an answer: the runtime had not pulled when its time was up.
            details["stage"] = "timeout"
            details["error"] = answer.message
            details["budget_seconds"] = budget.fixed(1)
            return CheckResult(
                name: "runtime-pull", outcome: .fail,
                reason:
                    "\(runtime) had not answered the pull of \(reference) after \(outcome.seconds.fixed(1)) s, the time the probe gives it (\(image == nil ? "twice --timeout, within --deadline" : "the rest of --deadline")), and the call was given up\(again)",
                durationSeconds: outcome.seconds, phases: phases, details: details)
        }
        if answer.ok {
            details["image_ref"] = answer.imageRef ?? ""
            return CheckResult(
                name: "runtime-pull", outcome: .pass,
                reason: "\(runtime) pulled \(reference) (\(answer.imageRef ?? "")) when asked over the CRI, as kubelet asks it\(again)",
                durationSeconds: outcome.seconds, phases: phases, details: details)
        }
        let stage = stage(of: answer.message)
        details["stage"] = stage.rawValue
        details["error"] = answer.message
        if image == nil && stage == .registry {
            return CheckResult(
                name: "runtime-pull", outcome: .pass,
                reason:
                    "\(runtime) reached the registry and verified its certificate when asked over the CRI to pull \(reference) (the registry answered: \(tail(answer.message)))\(again)",
                durationSeconds: outcome.seconds, phases: phases, details: details)
        }
        return CheckResult(
            name: "runtime-pull", outcome: .fail, reason: "\(runtime) cannot pull \(reference): \(answer.message)\(again)",
            durationSeconds: outcome.seconds, phases: phases, details: details)
    }

    static func tail(_ message: String) -> String {
        message.split(separator: ":").last.map { $0.trimmingBlanks() } ?? message
    }
}
