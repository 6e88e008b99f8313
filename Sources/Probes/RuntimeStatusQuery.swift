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
    /// nil when the runtime cannot be asked (no socket, no helper, no answer in time).
    public static func ask(helper: String, socket: String, pid: Int?, timeoutSeconds: Double = 3) -> RuntimeWord? {
        let key = pid.map { "\(socket)\u{0}\($0)" }
        if let key, let cached = lock.withLock({ cache[key] }) { return cached }
        // Asked ahead (`prefetch`) for this helper, socket and process: its answer.
        let ahead = lock.withLock { () -> BackgroundWork<RuntimeWord?>? in
            defer { pending = nil }
            guard let p = pending, p.call == "\(helper)\u{0}\(socket)\u{0}\(pid ?? -1)\u{0}\(timeoutSeconds)" else { return nil }
            return p.work
        }
        guard let word = ahead?.wait() ?? run(helper: helper, socket: socket, timeoutSeconds: timeoutSeconds) else { return nil }
        if let key { lock.withLock { cache = [key: word] } }
        return word
    }

    /// Starts the ask on a thread of its own, so that the helper's start (a process, its gRPC
    /// stack) and the runtime's two answers overlap what the caller does until it `ask`s with the
    /// same arguments, which then waits for this answer. Nothing when the answer is kept already.
    /// The runtime's config is that of its running process, so asking ahead changes nothing of
    /// the answer (the key holds the process).
    /// The helper is started here, on the caller's thread, and only its answer is awaited on the
    /// other: on a loaded node a new thread waited for a CPU (20 ms at load 9) before it started
    /// the helper, and bootstrap then waited for the answer.
    public static func prefetch(helper: String, socket: String, pid: Int?, timeoutSeconds: Double = 3) {
        if let pid, lock.withLock({ cache["\(socket)\u{0}\(pid)"] }) != nil { return }
        let program = try? runner(timeoutSeconds).start(
            helper, CRIHelperCall.status(socket: socket, timeoutSeconds: timeoutSeconds), withInput: false)
        let work = BackgroundWork { program.flatMap { answer(try? $0.finish(input: [])) } }
        lock.withLock { pending = ("\(helper)\u{0}\(socket)\u{0}\(pid ?? -1)\u{0}\(timeoutSeconds)", work) }
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
    /// The ask started ahead, with the arguments it was started for.
    nonisolated(unsafe) private static var pending: (call: String, work: BackgroundWork<RuntimeWord?>)?
}
