import FoundationEssentials
import Glibc
import SystemBus
import Transport
import Vocabulary

/// Whether systemd-resolved is on the system bus, where a moment's absence is not taken for a
/// node without it. While systemd stops, starts or restarts resolved (`systemctl restart`, a
/// package upgrade, the boot), its name is off the bus for a moment; a DNS mode chosen in that
/// moment (the link removed, /etc/hosts lines written) is undone at the next reconcile: changes
/// to the node for nothing, in files the node's own mode does not need. systemd's word on the
/// unit tells the moment from a node where resolved does not run.
public enum ResolvedPresence {
    static let name = "org.freedesktop.resolve1"
    static let unit = "systemd-resolved.service"
    /// How long resolved is given to come back while systemd moves it between states.
    public static let settleSeconds = 5.0

    /// true when resolved is on the bus, now or once systemd has it started within `seconds`;
    /// false when it is not and systemd says it rests (stopped, failed, not installed), no
    /// systemd on the bus says anything, or it stays active and off the bus for `seconds` (a
    /// resolved that never takes its name is one the agent cannot talk to, as before). Throws
    /// when systemd still has it starting, stopping or a job queued after `seconds`: nothing is
    /// to be chosen from that moment.
    public static func onBus(
        _ bus: SystemBus, settleSeconds seconds: Double = settleSeconds, pause: (Double) -> Void = { usleep(UInt32($0 * 1e6)) }
    ) throws -> Bool {
        if bus.hasOwner(name) { return true }
        let systemd = Systemd1(bus: bus)
        let clock = Stopwatch()
        while true {
            // No systemd to ask, or its state unreadable: the name's absence is all there is.
            guard let state = (try? systemd.unit(unit)) ?? nil, let moving = state.transition ?? activeOffTheBus(state) else {
                return bus.hasOwner(name)
            }
            if bus.hasOwner(name) { return true }
            guard clock.elapsed < seconds else {
                guard state.transition != nil else { return false }
                throw AgentError(
                    .unsupportedHost,
                    "systemd-resolved is not on the system bus and systemd has it \(moving) after \(Int(seconds)) s: no DNS mode is chosen while it is between states",
                    hint: "the next reconcile asks again; if it stays so, see `journalctl -u \(unit)` on the node")
            }
            pause(0.05)
        }
    }

    /// resolved's owner on the bus now (nil: none, or the bus did not say).
    public static func owner(_ bus: SystemBus) -> String? { (try? bus.nameOwner(name)) ?? nil }

    /// Whether resolved went away or restarted since a run began (at `started`, on the wall
    /// clock, when `owner` owned its name): its name has another owner now or none (the agent
    /// can learn of it before systemd does: a call in flight gets `NoReply` as resolved dies),
    /// or systemd has it between states now or active since then. A run that failed in that
    /// moment read a resolved that went away under it: not the node's state. What moved is
    /// returned once resolved is back on the bus (waited for up to `settleSeconds`, as `onBus`
    /// waits), so that the run can be made again; nil when it did not move or nothing says so
    /// (the failure stands).
    public static func moved(
        since started: Date, owner: String?, bus: SystemBus, settleSeconds seconds: Double = settleSeconds,
        pause: (Double) -> Void = { usleep(UInt32($0 * 1e6)) }
    ) -> String? {
        let now = Self.owner(bus)
        var moved: String?
        if owner != nil, now != owner {
            moved = now == nil ? "left the system bus" : "restarted (its bus name has a new owner)"
        } else if let state = (try? Systemd1(bus: bus).unit(unit)) ?? nil {
            moved = Self.moved(state, since: started)
        }
        guard let moved else { return nil }
        // A resolved still between states after `seconds` is the next run's to say (onBus throws there).
        _ = try? onBus(bus, settleSeconds: seconds, pause: pause)
        return moved
    }

    /// `state` read after a run that began at `started`: what systemd did to resolved since.
    static func moved(_ state: UnitState, since started: Date) -> String? {
        if let moving = state.transition { return "was \(moving)" }
        let since = UInt64(max(started.timeIntervalSince1970, 0) * 1e6)
        return state.activeState == "active" && state.activeEnterTimestamp >= since ? "restarted" : nil
    }

    /// Active by systemd's word and not on the bus: it has just started (it takes its name after
    /// it tells systemd it is ready) or its bus connection is being made again.
    static func activeOffTheBus(_ state: UnitState) -> String? {
        state.activeState == "active" ? "active (\(state.subState)) but not on the bus" : nil
    }
}
