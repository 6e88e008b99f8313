import CRIWire
import Containerd
import FoundationEssentials
import HostSystem
import Vocabulary

/// The node's runtime asked for its own word through `node-agent-cri status` (CRI `Version`, and
/// `Status` with `verbose`): its version and the registry config it runs with. A running
/// containerd's config changes only when it restarts, so the answer is kept per socket and
/// runtime process and asked again when the process changes.
public enum RuntimeStatusQuery {
    /// The seconds the runtime is given for each of its two answers.
    public static let timeoutSeconds: Double = 3

    /// nil when the runtime cannot be asked (no socket, no helper, no answer in time).
    public static func ask(helper: String, socket: String, pid: Int?, timeoutSeconds: Double = timeoutSeconds) -> RuntimeWord? {
        let key = pid.map { "\(socket)\u{0}\($0)" }
        if let key, let cached = lock.withLock({ cache[key] }) { return cached }
        // Answered ahead (`expect`: the pull helper's status line) for this helper, socket and process.
        let ahead = lock.withLock { () -> (@Sendable () -> RuntimeWord?)? in
            defer { pending = nil }
            guard let p = pending, p.call == call(helper, socket, pid, timeoutSeconds) else { return nil }
            return p.answer
        }
        guard let word = ahead?() ?? run(helper: helper, socket: socket, timeoutSeconds: timeoutSeconds) else { return nil }
        if let key { lock.withLock { cache = [key: word] } }
        return word
    }

    /// Whether the runtime's word for this socket and process is to be asked (not kept already).
    public static func needsAsking(socket: String, pid: Int?) -> Bool {
        guard let pid else { return true }
        return lock.withLock { cache["\(socket)\u{0}\(pid)"] } == nil
    }

    /// The ask with these arguments is answered by `answer` (once): the status line of the pull's
    /// helper started with `--status-timeout` (`RuntimePullProbe.HelperPull.status`), one run of
    /// the helper for both. nil from it: the ask runs the helper itself.
    public static func expect(
        helper: String, socket: String, pid: Int?, timeoutSeconds: Double = timeoutSeconds, _ answer: @escaping @Sendable () -> RuntimeWord?
    ) {
        lock.withLock { pending = (call(helper, socket, pid, timeoutSeconds), answer) }
    }

    static func call(_ helper: String, _ socket: String, _ pid: Int?, _ timeoutSeconds: Double) -> String {
        "\(helper)\u{0}\(socket)\u{0}\(pid ?? -1)\u{0}\(timeoutSeconds)"
    }

    static func run(helper: String, socket: String, timeoutSeconds: Double) -> RuntimeWord? {
        answer(try? runner(timeoutSeconds).run(helper, CRIHelperCall.status(socket: socket, timeoutSeconds: timeoutSeconds)))
    }

    /// The helper's own limit is the call's; this one only stops a helper that hangs.
    static func runner(_ timeoutSeconds: Double) -> ProcessRunner { ProcessRunner(timeoutSeconds: timeoutSeconds + 2) }

    /// The word in the helper's output, when it exited 0.
    static func answer(_ r: CommandResult?) -> RuntimeWord? {
        guard let r, r.status == 0 else { return nil }
        return parse(r.stdout)
    }

    /// The helper's JSON answer.
    static func parse(_ text: String) -> RuntimeWord? {
        guard let status = try? CRIRuntimeStatus(decoding: Array(text.utf8)) else { return nil }
        return RuntimeWord(
            version: status.runtimeVersion, reportsRegistry: status.registry, configPath: status.registry ? (status.configPath ?? "") : nil)
    }

    private static let lock = PlainLock()
    nonisolated(unsafe) private static var cache: [String: RuntimeWord] = [:]
    /// The answer expected ahead, with the arguments it was expected for.
    nonisolated(unsafe) private static var pending: (call: String, answer: @Sendable () -> RuntimeWord?)?
}
