/// An error that says what failed, where, and what to do about it.
///
/// Commands match on `code` and map it to an exit status; people read `description`.
public struct AgentError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable, Codable {
        case invalidInput = "invalid-input"
        case invalidCertificate = "invalid-certificate"
        case pathEscapesRoot = "path-escapes-root"
        case io = "io"
        case commandFailed = "command-failed"
        case dbus = "dbus"
        case unsupportedHost = "unsupported-host"
    }

    public var code: Code
    public var message: String
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        if let hint { return "\(message) (\(hint))" }
        return message
    }
}
