import FoundationEssentials
import Glibc
import Vocabulary

/// The fields of an `os-release` file (freedesktop.org format: KEY=value, optionally quoted).
public struct OSRelease: Sendable, Equatable {
    public var fields: [String: String]

    public init(parsing text: String) {
        var fields: [String: String] = [:]
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.trimmingBlanks()
            guard !line.isEmpty, !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq])
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                value = value.replacing("\\\"", with: "\"")
                    .replacing("\\\\", with: "\\")
            }
            fields[key] = value
        }
        self.fields = fields
    }

    public var id: String { fields["ID"] ?? "linux" }
    public var idLike: [String] { (fields["ID_LIKE"] ?? "").split(separator: " ").map(String.init) }
    public var prettyName: String { fields["PRETTY_NAME"] ?? id }

    /// Reads `/etc/os-release`, then `/usr/lib/os-release`, of the host.
    public static func read(from files: HostFiles) throws -> OSRelease? {
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            if let text = try files.readString(try HostPath(path)) { return OSRelease(parsing: text) }
        }
        return nil
    }
}
