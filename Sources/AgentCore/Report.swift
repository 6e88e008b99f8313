import FoundationEssentials
import Glibc
import Probes
import TrustStore
import Vocabulary

/// What `bootstrap` did and found: the changes made (or planned), notes, and every check. Its
/// JSON (`bootstrap --output json`, the agent's /status) decodes back into a Report: `status`
/// reads what `run` wrote.
public struct Report: Codable, Equatable, Sendable {
    public var ready: Bool
    public var dryRun: Bool
    public var registry: String
    /// Changes and notes have the userinfo of any URL masked whenever set (Redaction), as check
    /// reasons do: whatever the report is rendered into (text, JSON, /status) carries no secret.
    public var changes: [String] { didSet { changes = changes.map(Redaction.text) } }
    public var notes: [String] { didSet { notes = notes.map(Redaction.text) } }
    public var checks: [CheckResult]
    /// Seconds spent per stage of the run (plan, trust, dns, probes), in order.
    public var timings: [CheckResult.Phase] = []
    /// The CA certificates installed (bootstrap).
    public var certificates: [CertificateFacts] = []
    /// The files and folders, as paths on this machine, whose change alters what the runtime
    /// reads for the registry (its certs.d folders, the selected hosts.toml and CA files): `run`
    /// reconciles as soon as one changes. Not part of the report's JSON.
    public var watchedPaths: [String] = []
    /// The DNS mode chosen and why (nil: none, the registry is an IP address), for the Events
    /// of `run`. Not part of the report's JSON: its note says it.
    public var dnsMode: DNSChoice?
    /// The runtimes restarted, for the Events of `run`. Not part of the report's JSON: each is
    /// one of its change lines.
    public var runtimeRestarts: [RuntimeRestart] = []
    /// When the network was last proven (`run`: a full proof; between them, light reconciles
    /// carry the full proof's network checks): nil for `bootstrap` and `probe`, which prove it now.
    public var networkProof: NetworkProof?
    /// The runtimes' processes as this reconcile found them (name, pid, start): a light
    /// reconcile that finds them changed proves the network at once. Not part of the JSON.
    public var runtimeProcesses: [String] = []
    /// Whether this run asked systemd to restart or reload resolved itself (its DNS plan's
    /// action, as its change line says): a move of resolved's during the run is then the run's
    /// own, not a moment to make it again for (Bootstrap.run). Not part of the JSON.
    public var movedResolved = false

    public init(
        ready: Bool, dryRun: Bool, registry: String, changes: [String], notes: [String], checks: [CheckResult],
        timings: [CheckResult.Phase] = [], certificates: [CertificateFacts] = []
    ) {
        self.ready = ready
        self.dryRun = dryRun
        self.registry = registry
        self.changes = changes.map(Redaction.text)
        self.notes = notes.map(Redaction.text)
        self.checks = checks
        self.timings = timings
        self.certificates = certificates
    }

    enum CodingKeys: String, CodingKey {
        case ready
        case dryRun = "dry_run"
        case registry, changes, notes, checks, timings, certificates
        case networkProof = "network_proof"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ready = try c.decode(Bool.self, forKey: .ready)
        dryRun = try c.decodeIfPresent(Bool.self, forKey: .dryRun) ?? false
        registry = try c.decode(String.self, forKey: .registry)
        changes = (try c.decodeIfPresent([String].self, forKey: .changes) ?? []).map(Redaction.text)
        notes = (try c.decodeIfPresent([String].self, forKey: .notes) ?? []).map(Redaction.text)
        checks = try c.decodeIfPresent([CheckResult].self, forKey: .checks) ?? []
        timings = try c.decodeIfPresent([CheckResult.Phase].self, forKey: .timings) ?? []
        certificates = try c.decodeIfPresent([CertificateFacts].self, forKey: .certificates) ?? []
        networkProof = try c.decodeIfPresent(NetworkProof.self, forKey: .networkProof)
    }

    /// When the network checks (DNS, TLS, the registry's API, the runtime's pull) were last run
    /// in full, and what this reconcile ran: `full`, or `light` (the node's own checks, one
    /// cluster DNS question and a TCP connect to the registry at the proven address; the other
    /// network checks are the full proof's).
    public struct NetworkProof: Codable, Equatable, Sendable {
        public var provenAt: Date
        /// Seconds between that proof and the end of this reconcile.
        public var ageSeconds: Double
        public var thisReconcile: String

        public init(provenAt: Date, ageSeconds: Double, thisReconcile: String) {
            self.provenAt = provenAt
            self.ageSeconds = ageSeconds
            self.thisReconcile = thisReconcile
        }

        enum CodingKeys: String, CodingKey {
            case provenAt = "proven_at"
            case ageSeconds = "age_seconds"
            case thisReconcile = "this_reconcile"
        }
    }

    /// The DNS mode a reconcile chose, why, and whether it took away what another mode of the
    /// agent's had left (the first reconcile after a restart with another --dns-mode).
    public struct DNSChoice: Equatable, Sendable {
        public var mode: String
        public var reason: String
        public var replacedAnotherMode: Bool

        public init(mode: String, reason: String, replacedAnotherMode: Bool) {
            self.mode = mode
            self.reason = reason
            self.replacedAnotherMode = replacedAnotherMode
        }
    }

    /// A runtime unit the agent restarted so that it loads the OS trust store again.
    public struct RuntimeRestart: Equatable, Sendable {
        public var unit: String
        public var pidBefore: UInt32
        public var pidAfter: UInt32
        public var why: String

        public init(unit: String, pidBefore: UInt32, pidAfter: UInt32, why: String) {
            self.unit = unit
            self.pidBefore = pidBefore
            self.pidAfter = pidAfter
            self.why = why
        }

        /// "containerd.service (pid 812 -> 1204): it started before the CA reached the OS store"
        public var what: String { "\(unit) (pid \(pidBefore) -> \(pidAfter)): \(why)" }
        /// Its change line.
        public var change: String { "restart " + what }
    }

    public struct CertificateFacts: Codable, Equatable, Sendable {
        public var subject: String
        public var issuer: String
        public var sha256: String
        public var subjectHash: String
        public var ca: Bool
        public var notBefore: Date
        public var notAfter: Date

        public init(_ c: Certificate) {
            subject = c.subject
            issuer = c.issuer
            sha256 = c.sha256Fingerprint
            subjectHash = c.subjectHash
            ca = c.isCA
            notBefore = c.notBefore
            notAfter = c.notAfter
        }

        enum CodingKeys: String, CodingKey {
            case subject, issuer, sha256
            case subjectHash = "subject_hash"
            case ca
            case notBefore = "not_before"
            case notAfter = "not_after"
        }
    }

    /// A report as `json()` wrote it (the agent's /status, `bootstrap --output json`): what
    /// `status` reads back. Throws when the text is not such a report.
    /// A date with fractions of a second is read as the whole second it falls in: `json()` writes
    /// whole seconds, so a report reads back the same from its own JSON (fuzz target status-report).
    public init(decodingJSON bytes: [UInt8]) throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
            guard let date = (try? Date(text, strategy: .iso8601)) ?? (try? Date(text, strategy: fractional)) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "\(text) is not an ISO 8601 date"))
            }
            return Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
        }
        self = try decoder.decode(Report.self, from: Data(bytes))
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    public func uninstallText() -> String {
        var out =
            dryRun
            ? "Dry run: would remove for \(registry):\n"
            : (changes.isEmpty ? "Nothing of the agent's was found for \(registry).\n" : "Removed for \(registry):\n")
        if dryRun && changes.isEmpty { out += "  (nothing of the agent's was found)\n" }
        for c in changes { out += "  - \(c)\n" }
        for n in notes { out += "  ! \(n)\n" }
        return out
    }

    public func text() -> String {
        var out = ""
        if dryRun {
            out += "Dry run for \(registry): nothing was changed.\n"
            out += changes.isEmpty ? "Nothing to change: the host is already set up.\n" : "Would change:\n"
        } else {
            out += changes.isEmpty ? "No changes: the host was already set up for \(registry).\n" : "Changed for \(registry):\n"
        }
        for c in changes { out += "  - \(c)\n" }
        if !certificates.isEmpty {
            out += "CA certificates:\n"
            for c in certificates {
                out += "  * \(c.subject) (hash \(c.subjectHash), valid \(c.notBefore.iso8601) to \(c.notAfter.iso8601))\n"
                out += "    SHA-256 \(c.sha256)\n"
            }
        }
        if !notes.isEmpty {
            out += "Notes:\n"
            for n in notes { out += "  ! \(n)\n" }
        }
        if !checks.isEmpty {
            out += "Checks:\n"
            let width = checks.map(\.name.count).max() ?? 0
            for c in checks {
                let mark = c.outcome.rawValue.uppercased().padded(to: 4)
                let name = c.name.padded(to: width)
                out += "  \(mark)  \(name)  \((c.durationSeconds * 1000).fixed(1, width: 7) + " ms")  \(c.reason)\n"
            }
        }
        if !dryRun && !ready {
            out += "Not ready because:\n"
            for b in Readiness.blockers(checks) { out += "  - \(b)\n" }
        }
        if !dryRun {
            out += ready ? "READY: this node can pull from \(registry).\n" : "NOT READY: this node cannot pull from \(registry) yet.\n"
        }
        return out
    }
}
