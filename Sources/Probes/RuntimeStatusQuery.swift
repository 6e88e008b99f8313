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
        guard
            let r = try? ProcessRunner(timeoutSeconds: timeoutSeconds + 2).run(
                helper, CRIHelperCall.status(socket: socket, timeoutSeconds: timeoutSeconds)),
            r.status == 0, let word = parse(r.stdout)
        else { return nil }
        if let key { lock.withLock { cache = [key: word] } }
        return word
    }

    /// The helper's JSON answer.
    static func parse(_ text: String) -> RuntimeWord? {
        guard let status = try? CRIRuntimeStatus(decoding: Array(text.utf8)) else { return nil }
        return RuntimeWord(
            version: status.runtimeVersion, reportsRegistry: status.registry, configPath: status.registry ? (status.configPath ?? "") : nil)
    }

    private static let lock = PlainLock()
    nonisolated(unsafe) private static var cache: [String: RuntimeWord] = [:]
}
