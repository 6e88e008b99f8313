import ArgumentParser
import CRIClient
import CRIWire
import Glibc
import HostSystem

// node-agent-cri: the agent's CRI calls, in a process of their own. The agent runs it for the
// runtime-pull check and reads one JSON object from it (CRIWire: the calls and the messages, the
// same types on both sides); the gRPC stack (grpc-swift, swift-nio, BoringSSL under the
// transport, then) was linked here and not into the agent, whose idle memory it raised from 17
// to 23 MiB (docs/evidence.md, "What runtime-pull costs"); it is swift-nio-http2 and a thin gRPC
// layer now (CRIClient). Exit status: 0 the runtime answered (its
// answer on standard output, a refusal included), 1 it could not be asked (why, on standard
// error), 2 the call was malformed.

@main
struct NodeAgentCRI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-agent-cri",
        abstract: "The node agent's calls to the container runtime's CRI socket, each answered with one JSON object.",
        subcommands: [Pull.self, Status.self, Version.self, Standby.self])

    static func main() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch let error where exitCode(for: error) == .validationFailure {
            // ArgumentParser's usage errors exit 64: a malformed call is 2 here.
            writeStandard(fullMessage(for: error) + "\n", to: 2)
            Glibc.exit(2)
        } catch {
            exit(withError: error)
        }
        if command is NodeAgentCRI { fail(2, "name the call: pull, status, version or standby (node-agent-cri help CALL says how)") }
        do {
            if var call = command as? any AsyncParsableCommand {
                try await call.run()
            } else {
                // ArgumentParser's own `help` and `--help`: the help text, exit 0.
                var help = command
                try help.run()
            }
        } catch let error where exitCode(for: error) == .success {
            exit(withError: error)
        } catch {
            fail(1, "\(error)")
        }
    }
}

/// Where the runtime listens and how long it is given.
struct CallOptions: ParsableArguments {
    @Option(help: "The runtime's CRI socket.") var socket: String
    @Option(help: "Seconds the runtime is given to answer.") var timeout: Double

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout takes a number of seconds over 0") }
    }
}

/// `PullImage`, with the credentials on standard input (`CRIPullCredentials`, `{}` without them):
/// a process's arguments are readable by every user of the node. The pull starts once that input
/// has come, so the agent can start this program ahead of the pull; with no input it pulls nothing.
/// With `--status-timeout`, the runtime's status comes first, on a line of its own, while the
/// input has not come: the agent's one run of this program for both.
struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pull an image, as kubelet asks for it: a CRIPullAnswer.")
    @OptionGroup var call: CallOptions
    @Option(help: "The image reference.") var image: String
    @Option(
        help:
            "First, before the input is read: the runtime's version and registry config within these seconds, a CRIRuntimeStatus line (a CRIHelperFailure line when it cannot be asked)."
    )
    var statusTimeout: Double?

    func validate() throws {
        if let statusTimeout, !(statusTimeout > 0) { throw ValidationError("--status-timeout takes a number of seconds over 0") }
    }

    func run() async throws {
        var input = StandardInput()
        try await Self.pull(socket: call.socket, image: image, timeoutSeconds: call.timeout, statusSeconds: statusTimeout, input: &input)
    }

    /// The status line first when `statusSeconds` is given, then the pull once the credentials
    /// (the rest of `input`, to its end) have come.
    static func pull(socket: String, image: String, timeoutSeconds: Double, statusSeconds: Double?, input: inout StandardInput)
        async throws
    {
        if let statusSeconds {
            do {
                emit(try await Status.ask(socket: socket, timeoutSeconds: statusSeconds))
            } catch {
                emit(CRIHelperFailure(error: "\(error)"))
            }
        }
        let rest = input.rest(limit: 65536)
        if rest.allSatisfy(isBlank) {
            fail(2, "nothing on standard input, so nothing pulled: it takes a JSON object ({} without credentials)")
        }
        guard let credentials = try? CRIPullCredentials(decoding: rest) else {
            fail(2, "standard input is not a JSON object with \"username\" and \"password\"")
        }
        let answer = try await CRIClient.pullImage(
            socketPath: socket, image: image, username: credentials.username, password: credentials.password,
            timeoutSeconds: timeoutSeconds)
        emit(answer)
    }
}

/// `pull` with its call on standard input: started ahead, before the agent knows the runtime's
/// socket, it waits for one `CRIPullCall` line, then does as `pull` with it (the status line when
/// the call asks for it, then the credentials and end of file as the go). Its input closed before
/// a call came: the agent did not need it, and it ends at once, status 0, having asked nothing.
struct Standby: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull as pull does, its call (a CRIPullCall line) and then its credentials on standard input.")

    func run() async throws {
        var input = StandardInput()
        var next = input.line(limit: 65536)
        // Blank lines before the call are passed over.
        while let blank = next, blank.allSatisfy(isBlank) { next = input.line(limit: 65536) }
        guard let line = next else {
            if input.ended && input.pending.allSatisfy(isBlank) { return }
            fail(2, "standard input's first line is not a call: a CRIPullCall object, on one line")
        }
        guard let call = try? CRIPullCall(decoding: line) else {
            fail(2, "standard input's first line is not a CRIPullCall object (socket, image, timeout_seconds)")
        }
        if let problem = call.problem { fail(2, problem) }
        try await Pull.pull(
            socket: call.socket, image: call.image, timeoutSeconds: call.timeoutSeconds, statusSeconds: call.statusSeconds, input: &input)
    }
}

/// `Version`, and `Status` with `verbose`: the runtime's own config, a CRIRuntimeStatus.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The runtime's version and registry config: a CRIRuntimeStatus.")
    @OptionGroup var call: CallOptions

    func run() async throws {
        emit(try await Self.ask(socket: call.socket, timeoutSeconds: call.timeout))
    }

    static func ask(socket: String, timeoutSeconds: Double) async throws -> CRIRuntimeStatus {
        let version = try await CRIClient.version(socketPath: socket, timeoutSeconds: timeoutSeconds)
        let info = try await CRIClient.statusInfo(socketPath: socket, timeoutSeconds: timeoutSeconds)
        return CRIRuntimeStatus(version: version, info: info)
    }
}

/// `Version`: the runtime's name and version, a CRIRuntimeVersion.
struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The runtime's name and version: a CRIRuntimeVersion.")
    @OptionGroup var call: CallOptions

    func run() async throws {
        emit(try await CRIClient.version(socketPath: call.socket, timeoutSeconds: call.timeout))
    }
}

func fail(_ status: Int32, _ message: String) -> Never {
    writeStandard("node-agent-cri: \(message)\n", to: 2)
    exit(status)
}

func emit(_ message: some CRIHelperMessage) {
    writeStandard(String(decoding: message.encoded(), as: UTF8.self) + "\n")
}

/// A space, tab or line break.
func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

/// Standard input, read as it comes: a line, then the rest to its end.
struct StandardInput {
    /// Read and not taken yet.
    var pending: [UInt8] = []
    /// End of file was reached.
    var ended = false

    /// Reads more; false at end of file.
    mutating func more() -> Bool {
        guard !ended else { return false }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = Syscall.read(0, into: &chunk)
        guard n > 0 else {
            ended = true
            return false
        }
        pending += chunk[..<n]
        return true
    }

    /// The next line without its newline; nil when the input ended, or `limit` bytes came, before one.
    mutating func line(limit: Int) -> [UInt8]? {
        while !pending.contains(0x0A) {
            guard pending.count <= limit, more() else { return nil }
        }
        let end = pending.firstIndex(of: 0x0A)!
        defer { pending.removeSubrange(...end) }
        return Array(pending[..<end])
    }

    /// What is left, to end of file (past `limit` bytes: read no further).
    mutating func rest(limit: Int) -> [UInt8] {
        while pending.count <= limit, more() {}
        defer { pending = [] }
        return pending
    }
}
