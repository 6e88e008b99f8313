import FoundationEssentials
import Glibc
import Probes
import TrustStore

/// What `bootstrap` did and found: the changes made (or planned), notes, and every check.
struct Report: Encodable {
    var ready: Bool
    var dryRun: Bool
    var registry: String
    var changes: [String]
    var notes: [String]
    var checks: [CheckResult]
    /// Seconds spent per stage of the run (plan, trust, dns, probes), in order.
    var timings: [CheckResult.Phase] = []
    /// The CA certificates installed (bootstrap).
    var certificates: [CertificateFacts] = []

    enum CodingKeys: String, CodingKey {
        case ready, dryRun = "dry_run", registry, changes, notes, checks, timings, certificates
    }

    struct CertificateFacts: Encodable {
        var subject: String
        var issuer: String
        var sha256: String
        var subjectHash: String
        var ca: Bool
        var notBefore: Date
        var notAfter: Date

        init(_ c: Certificate) {
            subject = c.subject; issuer = c.issuer; sha256 = c.sha256Fingerprint; subjectHash = c.subjectHash
            ca = c.isCA; notBefore = c.notBefore; notAfter = c.notAfter
        }

        enum CodingKeys: String, CodingKey {
            case subject, issuer, sha256, subjectHash = "subject_hash", ca, notBefore = "not_before", notAfter = "not_after"
        }
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    func uninstallText() -> String {
        var out = dryRun ? "Dry run: would remove for \(registry):\n" : (changes.isEmpty ? "Nothing of the agent's was found for \(registry).\n" : "Removed for \(registry):\n")
        if dryRun && changes.isEmpty { out += "  (nothing of the agent's was found)\n" }
        for c in changes { out += "  - \(c)\n" }
        for n in notes { out += "  ! \(n)\n" }
        return out
    }

    func text() -> String {
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
