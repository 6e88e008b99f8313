import Glibc

/// An error that says what failed, where, and what to do about it.
///
/// Commands match on `code` and map it to an exit status; people read `description`; tests
/// compare `code` (and `cause` where it matters), never the wording.
public struct AgentError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable, Codable {
        case invalidInput = "invalid-input"
        case invalidCertificate = "invalid-certificate"
        case pathEscapesRoot = "path-escapes-root"
        case io = "io"
        case commandFailed = "command-failed"
        case dbus = "dbus"
        case unsupportedHost = "unsupported-host"
        /// What the agent would write, rename or remove is not its own: a symlink where it writes,
        /// a file without its marker, a folder it made replaced by a link. Left as it is.
        case notOwned = "not-owned"
    }

    /// What the system said, as a value: a caller can tell EACCES from ENOENT, or a bus error
    /// name, without reading the message.
    public enum Cause: Equatable, Sendable, CustomStringConvertible {
        /// An errno value (positive), as the failing call left it.
        case errno(Int32)
        /// A D-Bus error name, e.g. `org.freedesktop.DBus.Error.AccessDenied`.
        case busError(String)
        /// A host tool's exit status.
        case exitStatus(Int32)

        public var description: String {
            switch self {
            case .errno(let e): return String(cString: strerror(e))
            case .busError(let name): return name
            case .exitStatus(let s): return "exit \(s)"
            }
        }
    }

    public var code: Code
    public var message: String
    public var hint: String?
    public var cause: Cause?

    public init(_ code: Code, _ message: String, hint: String? = nil, cause: Cause? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    /// A failed system call: the message gets the errno's text (`cannot read X: Permission
    /// denied`), the error keeps the errno itself.
    public init(_ code: Code, _ message: String, errno value: Int32, hint: String? = nil) {
        self.init(code, "\(message): \(String(cString: strerror(value)))", hint: hint, cause: .errno(value))
    }

    /// Errors are the same when their code and cause are: the wording may change.
    public static func == (a: AgentError, b: AgentError) -> Bool {
        a.code == b.code && a.cause == b.cause
    }

    public var description: String {
        if let hint { return "\(message) (\(hint))" }
        return message
    }
}
