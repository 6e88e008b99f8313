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
    /// The kernel's index of a link by name in this network namespace: 0 when there is no such
    /// link, nil when the kernel cannot be asked (then `ip` is).
    let kernelIndex: @Sendable (String) -> Int32?
    /// Whether the kernel has the dummy driver (`AgentLink.dummyDriver`).
    let dummyDriver: @Sendable () -> Bool?

    public init(
        name: String = defaultName, runner: CommandRunner, kernelIndex: @escaping @Sendable (String) -> Int32? = AgentLink.kernelIndex,
        dummyDriver: @escaping @Sendable () -> Bool? = AgentLink.dummyDriver
    )
        throws
    {
        self.name = name
        self.runner = runner
        self.kernelIndex = kernelIndex
        self.dummyDriver = dummyDriver
        guard let ip = findExecutable("ip") else {
            throw AgentError(.unsupportedHost, "the `ip` tool (iproute2) is missing", hint: "install iproute2 in the agent's image")
        }
        self.ip = ip
    }

    /// `if_nametoindex(3)`: an ioctl on a socket of this namespace, no process run. ENODEV is
    /// the kernel's "no such link"; any other failure (no socket allowed) leaves it to `ip`.
    public static let kernelIndex: @Sendable (String) -> Int32? = { name in
        let index = if_nametoindex(name)
        if index != 0 { return Int32(bitPattern: index) }
        return errno == ENODEV ? 0 : nil
    }

    /// Whether the kernel has the dummy driver: true where it is loaded or built in
    /// (/sys/module/dummy), false where it is not and cannot be loaded (a kernel without module
    /// support, which has no /proc/modules, and sysfs there to show the driver absent), nil
    /// otherwise (a module the kernel may load when the link is asked for: `ip` tries it).
    public static let dummyDriver: @Sendable () -> Bool? = {
        if access("/sys/module/dummy", F_OK) == 0 { return true }
        guard access("/sys/module", F_OK) == 0, access("/proc/modules", F_OK) != 0, errno == ENOENT else { return nil }
        return false
    }

    public enum State: Equatable, Sendable {
        case absent
        case foreign
        case ours(ifindex: Int32, up: Bool, hasAddress: Bool)
    }

    /// The link as one `ip -j -d addr show` gives it: index, flags, alias (`-d`) and addresses.
    /// A name the kernel does not know is absent without running `ip`.
    public func state() throws -> State {
        if kernelIndex(name) == 0 { return .absent }
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

    /// The link as it is: its state and whether a link is left under the interim name (`ip` runs
    /// only for a link that exists, or where the kernel cannot be asked by name).
    public struct Observed: Equatable, Sendable {
        public var state: State
        public var interimPresent: Bool
        public init(state: State, interimPresent: Bool = false) {
            self.state = state
            self.interimPresent = interimPresent
        }
    }

    public func observe() throws -> Observed {
        let interim = kernelIndex(interimName)
        return Observed(
            state: try state(),
            interimPresent: try interim.map { $0 != 0 } ?? runner.run(ip, ["link", "show", "dev", interimName]).succeeded)
    }

    /// The `ip` commands that bring the link to the wanted state (empty when it is there), from
    /// the link as observed now.
    public func observeAndPlan() throws -> [[String]] { try Self.plan(name: name, for: try observe()) }

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

    /// Runs the plan's steps, all in one `ip -batch -` (one process, not one per step; `ip`
    /// stops at the first step that fails and names its line). When the kernel has no `dummy`
    /// driver, the steps from that one on run again with a `veth` pair instead; where the kernel
    /// is known to lack it (`dummyDriver`), the pair is asked for at once (one `ip` run fewer).
    public func apply(_ steps: [[String]]) throws {
        var rest = steps
        if dummyDriver() == false, let i = rest.firstIndex(where: { $0.suffix(2) == ["type", "dummy"] }) {
            rest.replaceSubrange(i...i, with: vethSteps(instead: rest[i]))
        }
        while !rest.isEmpty {
            let batch = rest.map { $0.map(Self.batchWord).joined(separator: " ") }.joined(separator: "\n") + "\n"
            let result = try runner.run(ip, ["-batch", "-"], input: Array(batch.utf8))
            if result.succeeded { return }
            // "Command failed -:N": the first N-1 steps are done.
            let failedLine = result.stderr.split(separator: "\n").compactMap { line -> Int? in
                guard line.hasPrefix("Command failed -:") else { return nil }
                return Int(line.dropFirst("Command failed -:".count).trimmingBlanks())
            }.first
            guard let failedLine, failedLine >= 1, failedLine <= rest.count else {
                throw AgentError(
                    .commandFailed, "ip -batch failed: \(result.stderr.trimmingWhitespace().escapedForMessage)",
                    hint: "the agent needs CAP_NET_ADMIN in the host's network namespace")
            }
            let step = rest[failedLine - 1]
            if step.suffix(2) == ["type", "dummy"] {
                rest = vethSteps(instead: step) + rest[failedLine...]
                continue
            }
            let said = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("Command failed") }.joined(separator: "; ")
            throw AgentError(
                .commandFailed, "ip \(step.joined(separator: " ")) failed: \(said.trimmingWhitespace().escapedForMessage)",
                hint: "the agent needs CAP_NET_ADMIN in the host's network namespace")
        }
    }

    /// The veth pair's steps in place of the `link add NAME type dummy` step.
    func vethSteps(instead step: [String]) -> [[String]] {
        [["link", "add", step[2], "type", "veth", "peer", "name", peerName], ["link", "set", "dev", peerName, "up"]]
    }

    /// A word of a batch line, quoted when it holds a blank (ip's batch reader splits on blanks
    /// and takes a double-quoted word whole).
    static func batchWord(_ word: String) -> String {
        word.contains(where: { $0 == " " || $0 == "\t" }) ? "\"" + word + "\"" : word
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

    /// The link's index, once it is made (by name from the kernel, else from `ip`).
    public func ifindex() throws -> Int32 {
        if let index = kernelIndex(name), index > 0 { return index }
        guard case .ours(let index, _, _) = try state() else {
            throw AgentError(.commandFailed, "link \(name) is not there after creating it")
        }
        return index
    }
}
