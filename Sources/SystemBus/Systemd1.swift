import Glibc
import HostSystem
import Vocabulary

/// The state of one systemd unit, as `org.freedesktop.systemd1` reports it.
public struct UnitState: Equatable, Sendable {
    public var name: String
    /// systemd's LoadState: "loaded", or "masked", "bad-setting", "error"... for a unit that
    /// still runs as it was started (a running unit masked since stays active with its process).
    public var loadState: String
    public var activeState: String
    public var subState: String
    /// When the unit last entered the active state, microseconds since the epoch (0: never).
    public var activeEnterTimestamp: UInt64
    public var mainPID: UInt32
    /// The id of the job systemd has queued or runs for the unit (its `Job`), 0 when none: a
    /// unit `systemctl restart` has stopped is "inactive" with its start job queued.
    public var job: UInt32 = 0

    /// What systemd is doing to the unit, when it is between states: starting, stopping,
    /// reloading, or a job queued for it; nil when it rests (active, inactive, failed).
    public var transition: String? {
        switch activeState {
        case "activating", "deactivating", "reloading", "refreshing": return "\(activeState) (\(subState))"
        default: return job == 0 ? nil : "\(activeState) (\(subState)) with job \(job) of systemd's queued"
        }
    }
}

/// Client of systemd's manager API (`org.freedesktop.systemd1`): unit state, restart, reload.
public final class Systemd1 {
    static let service = "org.freedesktop.systemd1"
    static let path = "/org/freedesktop/systemd1"
    static let manager = "org.freedesktop.systemd1.Manager"

    let bus: SystemBus
    /// The bus's answer that no systemd serves it: the next unit asked gets it again without a
    /// round trip (a node without systemd on its bus, or a sandbox's bus: bootstrap asks after
    /// eight units, each a round trip through the bus daemon, milliseconds at load).
    private var absent: AgentError?

    public init(bus: SystemBus) { self.bus = bus }

    static let unitInterface = "org.freedesktop.systemd1.Unit"
    /// What `unit` reads of the Unit interface, with systemd's signatures.
    static let unitProperties = ["LoadState": "s", "ActiveState": "s", "SubState": "s", "ActiveEnterTimestamp": "t", "Job": "(uo)"]

    /// Runs a read of unit `name`'s properties (`property`: a Get's): what keeps it from being read
    /// as systemd gives it (a property missing or of another type, the bus's refusal) is an error
    /// naming the unit, the property and what was found.
    private func reading<T>(_ name: String, property: String? = nil, _ body: () throws -> T) throws -> T {
        let what = "systemd's state of \(name) cannot be read"
        let hint =
            "the agent reads a unit's state only as systemd defines it: check what serves \(Self.service) on the bus at \(bus.address)"
        do {
            return try body()
        } catch let e as PropertyMismatch {
            throw AgentError(.dbus, "\(what): \(e.text(expectedAs: "systemd's")) (\(e.interface) at \(e.path))", hint: hint)
        } catch let e as BusCallError
            where e.name == "org.freedesktop.DBus.Error.UnknownProperty" || e.name == "org.freedesktop.DBus.Error.UnknownInterface"
        {
            throw AgentError(
                .dbus, "\(what): \(property ?? "an interface") is missing (\(e.member) answered \(e.name): \(e.message))", hint: hint,
                cause: .busError(e.name))
        } catch let e as BusCallError {
            throw AgentError(.dbus, "\(what): \(e)", cause: e.name.isEmpty ? nil : .busError(e.name))
        }
    }

    /// The unit's state, or nil when systemd has no file for it (LoadState "not-found": not
    /// installed). Any other LoadState is the unit's state as systemd runs it: a running
    /// containerd.service masked since (systemd 252: LoadState "masked", ActiveState "active",
    /// its main process) is still the node's containerd; read as not installed before, it was
    /// neither told from another containerd nor seen as a runtime to restart.
    public func unit(_ name: String) throws -> UnitState? {
        if let absent { throw absent }
        let path: String
        do {
            path = try bus.call(
                destination: Self.service, path: Self.path, interface: Self.manager, member: "LoadUnit",
                build: { try $0.append(string: name) }, read: { try $0.string(type: "o") })
        } catch let e as BusCallError {
            let error = AgentError(
                .dbus, "systemd: \(e.message)", hint: e.name.contains("ServiceUnknown") ? "systemd is not running on this bus" : nil,
                cause: .busError(e.name))
            if e.name == "org.freedesktop.DBus.Error.ServiceUnknown" { absent = error }
            throw error
        }
        // The unit's state in one round trip (GetAll), where a Get each took four; as strict as
        // the Gets: a property missing or of another type than systemd's is an error, never "" or 0.
        var (load, active, sub, since, job) = ("", "", "", UInt64(0), UInt32(0))
        try reading(name) {
            try bus.properties(destination: Self.service, path: path, interface: Self.unitInterface, expected: Self.unitProperties) {
                property, r in
                switch property {
                case "LoadState": load = try r.string()
                case "ActiveState": active = try r.string()
                case "SubState": sub = try r.string()
                case "Job":
                    try r.enter("r", "uo")
                    job = try r.uint32()
                    _ = try r.string(type: "o")
                    try r.exit()
                default: since = try r.uint64()
                }
            }
        }
        guard load != "not-found" else { return nil }
        var pid: UInt32 = 0
        if name.hasSuffix(".service") {
            pid = try reading(name, property: "MainPID") {
                try bus.property(
                    destination: Self.service, path: path, interface: "org.freedesktop.systemd1.Service", name: "MainPID", signature: "u"
                ) { try $0.uint32() }
            }
        }
        return UnitState(
            name: name, loadState: load, activeState: active, subState: sub, activeEnterTimestamp: since, mainPID: pid, job: job)
    }

    /// Restarts the unit (`RestartUnit`, mode "replace"; `ReloadOrRestartUnit` when
    /// `reloadIfPossible`) and waits for systemd's job to finish with the unit active. A reload
    /// keeps the unit's active-since time and main process, so the job, not the unit, says when
    /// it is done (measured on systemd 262: waiting for a new start time never ends).
    public func restart(_ name: String, reloadIfPossible: Bool = false, timeoutSeconds: Double = 60) throws -> UnitState {
        let job: String
        do {
            job = try bus.call(
                destination: Self.service, path: Self.path, interface: Self.manager,
                member: reloadIfPossible ? "ReloadOrRestartUnit" : "RestartUnit",
                build: {
                    try $0.append(string: name)
                    try $0.append(string: "replace")
                }, read: { try $0.string(type: "o") })
        } catch let e as BusCallError {
            let hint =
                e.name == "org.freedesktop.systemd1.UnitMasked"
                ? "the unit runs but is masked, so systemd restarts it no more: restart its runtime yourself (or `systemctl unmask \(name)`) so that it loads the CA"
                : nil
            throw AgentError(.dbus, "systemd refused to restart \(name): \(e.message)", hint: hint, cause: .busError(e.name))
        }
        let deadline = nowSeconds() + timeoutSeconds
        while nowSeconds() < deadline {
            // A finished job's object is gone from the bus.
            let pending = try? bus.property(
                destination: Self.service, path: job, interface: "org.freedesktop.systemd1.Job", name: "State", signature: "s"
            ) { try $0.string() }
            if pending == nil, let state = try unit(name), state.activeState == "active" {
                return state
            }
            usleep(20_000)
        }
        throw AgentError(
            .dbus, "\(name) did not become active within \(Int(timeoutSeconds)) s after the restart",
            hint: "see `journalctl -u \(name)` on the node")
    }

    func nowSeconds() -> Double {
        Double(monotonicNanoseconds()) / 1e9
    }
}

#if canImport(Glibc)
#endif

/// systemd-networkd's manager API (`org.freedesktop.network1`): it re-reads its .network files
/// on `Reload` and re-matches every link, so a link it managed becomes unmanaged at once.
public struct Network1 {
    public static let service = "org.freedesktop.network1"
    let bus: SystemBus

    public init(bus: SystemBus) { self.bus = bus }

    public func reload() throws {
        do {
            try bus.call(
                destination: Self.service, path: "/org/freedesktop/network1",
                interface: "org.freedesktop.network1.Manager", member: "Reload", build: { _ in }, read: { _ in () })
        } catch let e as BusCallError {
            throw AgentError(
                .dbus, "systemd-networkd did not reload its .network files: \(e.message)",
                hint: "run `networkctl reload` on the node", cause: .busError(e.name))
        }
    }
}
