import FoundationEssentials
import Glibc
import HostSystem
import Transport
import Vocabulary

/// The result of one check: outcome, a reason a person can act on, timings per phase, details.
public struct CheckResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case pass, fail, warn, skip
    }

    public var name: String
    public var outcome: Outcome
    /// Userinfo in any URL is masked whenever this is set (Redaction): the last guard before a
    /// reason reaches a report, /status, the node condition, an Event or a log line.
    public var reason: String { didSet { reason = Redaction.text(reason) } }
    public var durationSeconds: Double
    /// Seconds per phase (resolve, connect, handshake, request), in order of occurrence.
    public var phases: [Phase]
    /// Masked as `reason` is.
    public var details: [String: String] { didSet { details = details.mapValues(Redaction.text) } }

    public typealias Phase = TimedPhase

    public init(
        name: String, outcome: Outcome, reason: String, durationSeconds: Double = 0,
        phases: [Phase] = [], details: [String: String] = [:]
    ) {
        self.name = name
        self.outcome = outcome
        self.reason = Redaction.text(reason)
        self.durationSeconds = durationSeconds
        self.phases = phases
        self.details = details.mapValues(Redaction.text)
    }

    enum CodingKeys: String, CodingKey {
        case name, outcome, reason
        case durationSeconds = "duration_seconds"
        case phases, details
    }
}
