import CRIWire
import HostSystem
import Vocabulary

/// The `node-agent-cri standby` this process started ahead of its bootstrap's pull, before the
/// runtime's socket is known: started while the agent parses its command line and reads its
/// settings (one thread busy, the second CPU idle), so that the helper's load and its own
/// parse run there instead of beside the agent's facts. `RuntimePullProbe.HelperPull.prepare`
/// takes it and gives it its call (`CRIPullCall`); one not taken is released when the command
/// is done: its input closed, it ends at once, asking nothing (CRIWire: `standby`).
public enum HelperStandby {
    private static let lock = PlainLock()
    nonisolated(unsafe) private static var started: (helper: String, program: StartedProgram)?

    /// Starts `helper standby`, once per process; nothing when it cannot be started (the pull
    /// then starts its own, as without this).
    public static func start(helper: String) {
        lock.withLock {
            guard started == nil else { return }
            // Its limit here only stops a helper that does not end once its input is closed;
            // a pull gives its own (`HelperPull.pull`).
            let program = try? ProcessRunner(timeoutSeconds: 5).start(helper, CRIHelperCall.standby, withInput: true)
            started = program.map { (helper, $0) }
        }
    }

    /// The started program with `call` given it, taken: nil when none was started for `helper`,
    /// or it ended before its call (the caller starts one of its own).
    static func take(helper: String, call: CRIPullCall) -> StartedProgram? {
        let taken = lock.withLock { () -> StartedProgram? in
            guard let s = started, s.helper == helper else { return nil }
            started = nil
            return s.program
        }
        guard let taken, taken.give(call.line()) else { return nil }
        return taken
    }

    /// Ends the started program nobody took: its input closed before any call, it ends without
    /// asking the runtime anything; its result (nil: none was left). It is reaped here.
    @discardableResult
    public static func release() -> CommandResult? {
        let left = lock.withLock { () -> StartedProgram? in
            defer { started = nil }
            return started?.program
        }
        return try? left?.finish(input: [])
    }
}
