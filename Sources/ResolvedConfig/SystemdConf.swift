import HostSystem
import Vocabulary

/// A systemd unit-style configuration file (resolved.conf, its drop-ins, dns-delegate files) as
/// systemd.syntax(7) defines it: `[Section]` headers, `Key=Value` assignments, `#`/`;` comments,
/// a trailing `\` continuing an assignment on the next line. Every line is kept as written, so
/// rendering gives back the text byte for byte and an edit changes only the lines it sets.
public struct SystemdConf: Equatable, Sendable {
    public enum Line: Equatable, Sendable {
        /// Blank or comment lines, kept as they are.
        case other(String)
        case section(name: String, raw: String)
        /// `raw` is the whole assignment as written, continuation lines included.
        case assignment(key: String, value: String, raw: String)
    }

    public var lines: [Line]
    /// Whether the text ended with a newline (kept on rendering).
    var finalNewline: Bool

    public init(parsing text: String) {
        var raw = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        finalNewline = raw.last == ""
        if finalNewline { raw.removeLast() }
        lines = []
        var i = 0
        while i < raw.count {
            let line = raw[i]
            let trimmed = Self.strip(line)
            i += 1
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") {
                lines.append(.other(line))
            } else if trimmed.hasPrefix("[") && trimmed.hasSuffix("]") {
                lines.append(.section(name: String(trimmed.dropFirst().dropLast()), raw: line))
            } else if let eq = trimmed.firstIndex(of: "=") {
                // Continuations: a trailing backslash joins the next line in place of a space;
                // comment lines in between are left out of the value (systemd does the same).
                var value = String(trimmed[trimmed.index(after: eq)...])
                var whole = [line]
                var continuing = value.hasSuffix("\\")
                if continuing { value.removeLast() }
                while continuing, i < raw.count {
                    let next = raw[i]
                    whole.append(next)
                    i += 1
                    let t = Self.strip(next)
                    if t.hasPrefix("#") || t.hasPrefix(";") { continue }
                    value += " " + t
                    continuing = value.hasSuffix("\\")
                    if continuing { value.removeLast() }
                }
                lines.append(
                    .assignment(key: Self.strip(String(trimmed[..<eq])), value: Self.strip(value), raw: whole.joined(separator: "\n")))
            } else {
                // systemd ignores (with a warning) lines it cannot parse: keep them as they are.
                lines.append(.other(line))
            }
        }
    }

    /// The file as text: what was parsed, with any edits.
    public var text: String {
        let body = lines.map { line -> String in
            switch line {
            case .other(let raw), .section(_, let raw), .assignment(_, _, let raw): return raw
            }
        }.joined(separator: "\n")
        return lines.isEmpty ? "" : body + (finalNewline ? "\n" : "")
    }

    /// The values assigned to `key` in `section`, in order (an empty one included: it resets a list).
    public func assignments(_ key: String, section: String) -> [String] {
        var current: String?
        var out: [String] = []
        for line in lines {
            switch line {
            case .section(let name, _): current = name
            case .assignment(let k, let v, _) where k == key && current == section: out.append(v)
            default: break
            }
        }
        return out
    }

    /// Sets `key` in `section` to `value`: the first assignment is replaced in place, later ones
    /// go; the section is added at the end when missing. Comments and other keys stay as written.
    public mutating func set(_ key: String, _ value: String, section: String) {
        var current: String?
        var replaced = false
        var lastOfSection: Int?
        var out: [Line] = []
        for line in lines {
            if case .section(let name, _) = line { current = name }
            if case .assignment(let k, _, _) = line, k == key, current == section {
                if !replaced {
                    out.append(.assignment(key: key, value: value, raw: "\(key)=\(value)"))
                    replaced = true
                }
                lastOfSection = out.count - 1
                continue
            }
            out.append(line)
            if current == section { lastOfSection = out.count - 1 }
        }
        if !replaced {
            let line = Line.assignment(key: key, value: value, raw: "\(key)=\(value)")
            if let at = lastOfSection {
                // After the section's last non-blank line.
                var index = at
                while index > 0, case .other(let raw) = out[index], Self.strip(raw).isEmpty { index -= 1 }
                out.insert(line, at: index + 1)
            } else {
                out.append(.section(name: section, raw: "[\(section)]"))
                out.append(line)
            }
        }
        lines = out
        if !lines.isEmpty { finalNewline = true }
    }

    static func strip(_ s: some StringProtocol) -> String {
        let ws: Set<Character> = [" ", "\t", "\r"]
        guard let start = s.firstIndex(where: { !ws.contains($0) }) else { return "" }
        let end = s.lastIndex(where: { !ws.contains($0) })!
        return String(s[start...end])
    }
}

/// resolved's configuration as resolved reads it: `resolved.conf` (the first of /etc, /run,
/// /usr/local/lib, /usr/lib), then every `resolved.conf.d/*.conf` in the same folders, a name in
/// an earlier folder hiding the same name in a later one, all applied in order of file name.
/// For list settings an empty assignment clears what came before.
public struct ResolvedConfiguration: Sendable {
    public struct Setting: Sendable, Equatable {
        public var values: [String]
        /// The files that contributed, in order (host paths).
        public var files: [String]
    }

    static let folders = ["/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd"]
    static let listKeys: Set<String> = ["DNS", "FallbackDNS", "Domains", "DNSStubListenerExtra"]

    /// Every [Resolve] setting with its effective value(s).
    public var settings: [String: Setting] = [:]
    /// The files read, in the order applied.
    public var files: [String] = []

    public init(files host: HostFiles) throws {
        var mainFile: HostPath?
        for folder in Self.folders {
            let path = try HostPath(folder + "/resolved.conf")
            if try host.exists(path) {
                mainFile = path
                break
            }
        }
        var dropIns: [String: HostPath] = [:]
        for folder in Self.folders {
            let dir = try HostPath(folder + "/resolved.conf.d")
            for name in (try? host.list(dir)) ?? [] where name.hasSuffix(".conf") && dropIns[name] == nil {
                dropIns[name] = try HostPath(folder + "/resolved.conf.d/" + name)
            }
        }
        let ordered = (mainFile.map { [$0] } ?? []) + dropIns.keys.sorted().map { dropIns[$0]! }
        for path in ordered {
            // An empty or /dev/null-linked drop-in masks; an unreadable one is skipped as resolved does.
            guard let text = try host.readString(path, limit: 1 << 20) else { continue }
            apply(SystemdConf(parsing: text), from: path.description)
        }
    }

    init() {}

    /// The configuration of these files' texts, applied in the order given.
    public init(texts: [(file: String, text: String)]) {
        for (file, text) in texts { apply(SystemdConf(parsing: text), from: file) }
    }

    mutating func apply(_ conf: SystemdConf, from file: String) {
        files.append(file)
        var current: String?
        for line in conf.lines {
            switch line {
            case .section(let name, _): current = name
            case .assignment(let key, let value, _) where current == "Resolve":
                var setting = settings[key] ?? Setting(values: [], files: [])
                if Self.listKeys.contains(key) && !value.isEmpty {
                    setting.values += value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                    if !setting.files.contains(file) { setting.files.append(file) }
                } else {
                    setting.values = value.isEmpty ? [] : [value]
                    setting.files = value.isEmpty ? [] : [file]
                }
                settings[key] = setting
            default: break
            }
        }
    }

    /// The global DNS= servers, as written (an address, optionally with `:port`, `%ifname`, `#name`).
    public var dns: [String] { settings["DNS"]?.values ?? [] }

    /// The IP address part of each global server entry.
    public var dnsAddresses: [IPAddress] {
        dns.compactMap { entry in
            var s = Substring(entry)
            if let hash = s.firstIndex(of: "#") { s = s[..<hash] }
            if let pct = s.firstIndex(of: "%") { s = s[..<pct] }
            if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
                s = s[s.index(after: s.startIndex)..<close]
            } else if s.filter({ $0 == ":" }).count == 1, let colon = s.firstIndex(of: ":") {
                s = s[..<colon]
            }
            return try? IPAddress(String(s))
        }
    }

    /// Whether resolved listens on 127.0.0.53 (DNSStubListener=, default yes; `udp`/`tcp` count).
    public var stubListenerOn: Bool {
        guard let v = settings["DNSStubListener"]?.values.last?.lowercased() else { return true }
        return !["no", "false", "0", "off"].contains(v)
    }

    /// The files that set the global DNS= to what it is now.
    public var dnsFiles: [String] { settings["DNS"]?.files ?? [] }

    /// The global DNSOverTLS= when it is strict (`yes`, or another of systemd's true booleans):
    /// resolved then asks every server of the global scope and of each scope without a mode of
    /// its own over TLS only, on port 853. nil when it is off, opportunistic or unset.
    public var strictDNSOverTLS: Setting? {
        guard let setting = settings["DNSOverTLS"], let value = setting.values.last?.lowercased(),
            ["yes", "true", "on", "1", "y", "t"].contains(value)
        else { return nil }
        return setting
    }

    /// `resolved's global KEY=value (from FILES)`.
    public static func describe(_ setting: Setting, _ key: String) -> String {
        "resolved's global \(key)=\(setting.values.last ?? "") (from \(setting.files.joined(separator: ", ")))"
    }
}
