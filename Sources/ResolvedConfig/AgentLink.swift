import FoundationEssentials
import Glibc
import HostSystem
import Vocabulary

/// The network link that carries the agent's per-link DNS settings in resolved.
///
/// resolved only uses links that are UP and hold an address whose scope is not host (measured on
/// 252: with `scope link` the link had no DNS scope at all), and it ignores loopback. So the agent
/// owns a link of its own: `dummy` where the kernel has it, else a `veth` pair whose both ends stay
/// in this namespace. It carries one /32 address from the IPv4 link-local range, so no route to any
/// network is added. The link's alias marks it as ours; a link of that name without the alias is
/// someone else's and is never touched.
public struct AgentLink: Sendable {
    public static let defaultName = "nodeagent0"
    public static let alias = "managed by node-agent"
    public static let address = "169.254.53.53/32"

    public let name: String
    /// The veth pair's other end, where the kernel has no dummy driver.
    public var peerName: String { name + "p" }
    /// The name the link has while it is made, before it carries the alias.
    public var interimName: String { name + "-new" }
    let runner: CommandRunner
    let ip: String

    public init(name: String = defaultName, runner: CommandRunner) throws {
        self.name = name
        self.runner = runner
        guard let ip = findExecutable("ip") else {
            throw AgentError(.unsupportedHost, "the `ip` tool (iproute2) is missing", hint: "install iproute2 in the agent's image")
        }
        self.ip = ip
    }

    public enum State: Equatable, Sendable {
        case absent
        case foreign
        case ours(ifindex: Int32, up: Bool, hasAddress: Bool)
    }

    /// The link as one `ip -j -d addr show` gives it: index, flags, alias (`-d`) and addresses.
    public func state() throws -> State {
        let link = try runner.run(ip, ["-j", "-d", "addr", "show", "dev", name])
        guard link.succeeded else { return .absent }
        guard let entries = try? JSONValue.parse(link.stdout.utf8).array,
            let entry = entries.first, let index = entry["ifindex"]?.int
        else {
            throw AgentError(.commandFailed, "cannot read link \(name) from `ip -j -d addr`")
        }
        guard entry["ifalias"]?.string == Self.alias else { return .foreign }
        let flags = entry["flags"]?.array?.compactMap(\.string) ?? []
        let want = Self.address.split(separator: "/").first.map(String.init) ?? ""
        let hasAddress = entry["addr_info"]?.array?.contains { $0["local"]?.string == want } ?? false
        return .ours(ifindex: Int32(index), up: flags.contains("UP"), hasAddress: hasAddress)
    }

    /// The link as it is: its state and whether a link is left under the interim name (each
    /// read runs `ip`).
    public struct Observed: Equatable, Sendable {
        public var state: State
        public var interimPresent: Bool
        public init(state: State, interimPresent: Bool = false) {
            self.state = state
            self.interimPresent = interimPresent
        }
    }

    public func observe() throws -> Observed {
        Observed(state: try state(), interimPresent: try runner.run(ip, ["link", "show", "dev", interimName]).succeeded)
    }

    /// The `ip` commands that bring the link to the wanted state (empty when it is there).
    public func plan() throws -> [[String]] { try Self.plan(name: name, for: try observe()) }

    /// The steps from the link as observed; runs nothing.
    public static func plan(name: String = defaultName, for observed: Observed) throws -> [[String]] {
        let interimName = name + "-new"
        let removeInterim: [[String]] = observed.interimPresent ? [["link", "del", "dev", interimName]] : []
        switch observed.state {
        case .foreign:
            throw AgentError(
                .unsupportedHost, "a link named \(name) exists and is not node-agent's (it lacks the alias '\(Self.alias)')",
                hint: "rename or remove that link; the agent never touches links it did not make")
        case .absent:
            // The link gets its name only once it carries the alias: a kill between `add` and
            // `alias` leaves a link under the interim name (removed by the next run), never an
            // unmarked link under the agent's name, which would look foreign forever.
            return removeInterim + [
                ["link", "add", interimName, "type", "dummy"],
                ["link", "set", "dev", interimName, "alias", Self.alias],
                // Renamed and up in one request (one `ip` run fewer).
                ["link", "set", "dev", interimName, "name", name, "up"],
                ["addr", "add", Self.address, "dev", name],
            ]
        case .ours(_, let up, let hasAddress):
            var steps: [[String]] = []
            if !up { steps.append(["link", "set", "dev", name, "up"]) }
            if !hasAddress { steps.append(["addr", "add", Self.address, "dev", name]) }
            return steps
        }
    }

    /// Runs the plan's steps; when the kernel has no `dummy` driver, makes a `veth` pair instead.
    public func apply(_ steps: [[String]]) throws {
        for step in steps {
            var result = try runner.run(ip, step)
            if !result.succeeded, step.suffix(2) == ["type", "dummy"] {
                result = try runner.run(ip, ["link", "add", step[2], "type", "veth", "peer", "name", peerName])
                if result.succeeded { result = try runner.run(ip, ["link", "set", "dev", peerName, "up"]) }
            }
            guard result.succeeded else {
                throw AgentError(
                    .commandFailed,
                    "ip \(step.joined(separator: " ")) failed: \(result.stderr.trimmingWhitespace().escapedForMessage)",
                    hint: "the agent needs CAP_NET_ADMIN in the host's network namespace")
            }
        }
    }

    /// The `ip` command that removes the link when it is ours (a veth pair goes as a whole).
    public func planRemoval() throws -> [[String]] { Self.planRemoval(name: name, for: try observe()) }

    /// The removal from the link as observed (a link left under the interim name by a run
    /// stopped while making it goes too); runs nothing.
    public static func planRemoval(name: String = defaultName, for observed: Observed) -> [[String]] {
        var steps: [[String]] = observed.interimPresent ? [["link", "del", "dev", name + "-new"]] : []
        if case .ours = observed.state { steps.append(["link", "del", "dev", name]) }
        return steps
    }

    public func ifindex() throws -> Int32 {
        guard case .ours(let index, _, _) = try state() else {
            throw AgentError(.commandFailed, "link \(name) is not there after creating it")
        }
        return index
    }
}
