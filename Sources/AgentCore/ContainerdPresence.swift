import FoundationEssentials
import Glibc
import HostSystem
import SystemBus
import Transport
import Vocabulary

/// The node's facts with no running containerd found, where a moment's absence is not taken for a
/// node whose containerd does not run. While systemd starts, stops or restarts containerd (or k3s
/// or RKE2, which start theirs), no containerd serves its socket for a moment; the node's config
/// files then decide where the CA goes, and a containerd whose unit starts it with `-c` elsewhere
/// would have the files written where it does not read. systemd's word on the units tells the
/// moment from a node where none runs.
public enum ContainerdPresence {
    /// How long containerd's unit is given to settle while systemd moves it between states.
    public static let settleSeconds = 5.0

    /// The facts `gather` reads, once more each pause while systemd has one of
    /// `Bootstrap.containerdUnits` starting, stopping or reloading, or has had one active for less
    /// than `activeWithin` (default: `seconds`) with its main process a containerd that does not
    /// serve its socket yet (a `Type=simple` unit is active once forked), until a containerd is
    /// found or the units rest (`seconds` at most). Active for longer and not serving here is how
    /// that node is (its socket in another network namespace: an agent run without the host's
    /// network), not a moment. A unit only waiting with a queued start job is at rest: at boot,
    /// containerd's start waits for the agent's own boot unit (`Before=`), and waiting for it
    /// would wait for the agent. No bus, no systemd on it, or a state it cannot give: the facts as
    /// found. Throws when a unit still moves after `seconds`, naming it and its state: nothing is
    /// to be written from that moment.
    public static func settled(
        _ gather: () -> NodeHostFacts, busAddress: String, settleSeconds seconds: Double = settleSeconds,
        activeWithin: Double? = nil, pause: (Double) -> Void = { usleep(UInt32($0 * 1e6)) }
    ) throws -> NodeHostFacts {
        var facts = gather()
        guard facts.runningContainerd.isEmpty, seconds > 0, let bus = try? SystemBus(address: busAddress) else { return facts }
        let systemd = Systemd1(bus: bus)
        let clock = Stopwatch()
        while let moment = moving(systemd, facts, activeFor: activeWithin ?? seconds) {
            guard clock.elapsed < seconds else {
                throw AgentError(
                    .unsupportedHost,
                    "no containerd serves its socket and systemd has \(moment.unit) \(moment.state) after \(Int(seconds)) s: the node's runtime is not told from its config files while it is between states",
                    hint: "the next reconcile asks again; if it stays so, see `journalctl -u \(moment.unit)` on the node")
            }
            pause(0.05)
            facts = gather()
            if !facts.runningContainerd.isEmpty { return facts }
        }
        // At rest by a word read after the last scan: a containerd started in between is found by
        // one scan more.
        return gather()
    }

    /// The first of the containerd units systemd has between states, and that state in words;
    /// nil when all rest or systemd cannot say (a unit's state unreadable is said by the checks,
    /// `Bootstrap.confirmedByUnits`).
    static func moving(_ systemd: Systemd1, _ facts: NodeHostFacts, activeFor seconds: Double, now: Date = Date()) -> (
        unit: String, state: String
    )? {
        for name in Bootstrap.containerdUnits {
            guard let state = (try? systemd.unit(name)) ?? nil else { continue }
            if ["activating", "deactivating", "reloading", "refreshing"].contains(state.activeState) {
                return (name, "\(state.activeState) (\(state.subState))")
            }
            if state.activeState == "active", state.mainPID > 0,
                now.timeIntervalSince1970 - Double(state.activeEnterTimestamp) / 1e6 < seconds,
                facts.runtimeProcesses.contains(where: { $0.name == "containerd" && $0.pid == Int(state.mainPID) })
            {
                return (name, "active, its containerd (pid \(state.mainPID)) not yet serving its socket")
            }
        }
        return nil
    }
}
