import FoundationEssentials
import Vocabulary

/// What `node-agent-cri` and the agent say to each other across its pipe, one type per message,
/// encoded by the side that writes it and decoded by the side that reads it: the agent starts
///
///     node-agent-cri pull --socket PATH --image REF --timeout SECONDS   < CRIPullCredentials
///     node-agent-cri status --socket PATH --timeout SECONDS
///     node-agent-cri version --socket PATH --timeout SECONDS
///
/// and reads one `CRIPullAnswer`, `CRIRuntimeStatus` or `CRIRuntimeVersion` from its standard
/// output (exit 0; 1: the runtime could not be asked, why on standard error; 2: a malformed call).
/// A pull given `--status-timeout SECONDS` first asks the runtime's status, before its input
/// comes, and writes it as a line of its own: a `CRIRuntimeStatus`, or a `CRIHelperFailure` when
/// the runtime could not be asked for it; the pull's answer follows on the next line. (One
/// process and one start for both: bootstrap reads the status while the node's files are
/// written, and gives the pull its input once they are in place.)
///
///     node-agent-cri standby   < CRIPullCall line, then CRIPullCredentials
///
/// is the same pull with its call on standard input instead of its arguments, so that the agent
/// can start the program before it knows the runtime's socket (while it parses its own command
/// line, the second CPU idle): one `CRIPullCall` line when the socket is known, the status line
/// back when the call asks for it, then the credentials and end of file as the go. Its input
/// closed before a call has come, it ends at once, with status 0, saying nothing and asking
/// nothing (the agent did not need it).
/// JSON objects, keys sorted, in snake case, one a line.
public protocol CRIHelperMessage: Codable, Sendable, Equatable {}

extension CRIHelperMessage {
    /// The message as it travels: one JSON object.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, numbers and booleans only: nothing here can fail to encode.
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }

    /// Reads the message from its JSON text; throws when the text is not this message.
    public init(decoding bytes: some Sequence<UInt8>) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(bytes))
    }
}

/// The arguments of the calls above, as the agent passes them and the helper parses them.
public enum CRIHelperCall {
    /// `statusSeconds`: the status first, within that time (`--status-timeout`).
    public static func pull(socket: String, image: String, timeoutSeconds: Double, statusSeconds: Double? = nil) -> [String] {
        ["pull", "--socket", socket, "--image", image, "--timeout", "\(timeoutSeconds)"]
            + (statusSeconds.map { ["--status-timeout", "\($0)"] } ?? [])
    }

    public static func status(socket: String, timeoutSeconds: Double) -> [String] {
        ["status", "--socket", socket, "--timeout", "\(timeoutSeconds)"]
    }

    /// The pull whose call comes on standard input (`CRIPullCall`).
    public static let standby = ["standby"]
}

/// A standby helper's call, its input's first line (`CRIHelperCall.standby`): what `pull`'s
/// arguments say, `--socket`, `--image`, `--timeout` and `--status-timeout`.
public struct CRIPullCall: CRIHelperMessage {
    public var socket: String
    public var image: String
    public var timeoutSeconds: Double
    /// The runtime's status first, within these seconds, on a line of its own.
    public var statusSeconds: Double?

    public init(socket: String, image: String, timeoutSeconds: Double, statusSeconds: Double? = nil) {
        self.socket = socket
        self.image = image
        self.timeoutSeconds = timeoutSeconds
        self.statusSeconds = statusSeconds
    }

    /// The line the agent writes: the call and its newline (JSON text has none inside).
    public func line() -> [UInt8] { encoded() + [0x0A] }

    /// Why the call cannot be made, as `pull`'s own checks of its arguments say it; nil: it can.
    public var problem: String? {
        if socket.isEmpty { return "the call names no socket" }
        if image.isEmpty { return "the call names no image" }
        guard timeoutSeconds > 0, timeoutSeconds.isFinite else { return "--timeout takes a number of seconds over 0" }
        if let statusSeconds, !(statusSeconds > 0 && statusSeconds.isFinite) { return "--status-timeout takes a number of seconds over 0" }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case socket, image
        case timeoutSeconds = "timeout_seconds"
        case statusSeconds = "status_timeout_seconds"
    }
}

/// A pull secret's credentials, the pull's standard input (`{}` without them): a process's
/// arguments are readable by every user of the node. The helper starts the pull once this has
/// come, so the agent can start it ahead of the pull.
public struct CRIPullCredentials: CRIHelperMessage {
    public var username: String?
    public var password: String?

    public init(username: String?, password: String?) {
        self.username = username
        self.password = password
    }
}

/// The runtime's answer to a `PullImage`, as kubelet would get it; a refusal is an answer too.
public struct CRIPullAnswer: CRIHelperMessage {
    public var ok: Bool
    /// The pulled image's reference (`sha256:…`), when `ok`.
    public var imageRef: String?
    /// The gRPC status code: 0 ok, 2 unknown (containerd's usual code for a failed pull), 5 not
    /// found, 4 deadline exceeded (no answer within the call's timeout), …
    public var code: Int
    /// The runtime's own error text, e.g. containerd's `failed to pull and unpack image …: x509:
    /// certificate signed by unknown authority`; empty when `ok`.
    public var message: String

    public init(ok: Bool, imageRef: String?, code: Int, message: String) {
        self.ok = ok
        self.imageRef = imageRef
        self.code = code
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case ok, code, message
        case imageRef = "image_ref"
    }
}

/// The runtime's name and version (CRI `Version`): `containerd`, `1.6.20~ds1`.
public struct CRIRuntimeVersion: CRIHelperMessage {
    public var runtimeName: String
    public var runtimeVersion: String

    public init(runtimeName: String, runtimeVersion: String) {
        self.runtimeName = runtimeName
        self.runtimeVersion = runtimeVersion
    }

    enum CodingKeys: String, CodingKey {
        case runtimeName = "runtime_name"
        case runtimeVersion = "runtime_version"
    }
}

/// Why the runtime could not be asked for what the line stands for (the status a pull with
/// `--status-timeout` writes first): the helper's words, as it would say them on standard error.
public struct CRIHelperFailure: CRIHelperMessage {
    public var error: String

    public init(error: String) { self.error = error }
}
