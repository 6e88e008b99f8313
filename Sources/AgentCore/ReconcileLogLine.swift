/// A line for the agent's log.
public struct ReconcileLogLine: Equatable, Sendable {
    public enum Level: Sendable { case info, warning, error }
    public var level: Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}
