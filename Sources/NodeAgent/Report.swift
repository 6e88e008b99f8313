import Foundation
import Probes

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

    enum CodingKeys: String, CodingKey {
        case ready, dryRun = "dry_run", registry, changes, notes, checks, timings
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
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
        if !notes.isEmpty {
            out += "Notes:\n"
            for n in notes { out += "  ! \(n)\n" }
        }
        if !checks.isEmpty {
            out += "Checks:\n"
            let width = checks.map(\.name.count).max() ?? 0
            for c in checks {
                let mark = c.outcome.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0)
                let name = c.name.padding(toLength: width, withPad: " ", startingAt: 0)
                out += "  \(mark)  \(name)  \(String(format: "%7.1f ms", c.durationSeconds * 1000))  \(c.reason)\n"
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
