import Vocabulary

/// The `hosts:` line of nsswitch.conf(5): the sources glibc asks, in order, with their
/// `[STATUS=action]` criteria. Pure: parsed from the file's text.
public struct NSSwitchHosts: Equatable, Sendable {
    public struct Criterion: Equatable, Sendable {
        public var negated: Bool
        /// success, notfound, unavail or tryagain (lower case).
        public var status: String
        /// return, continue or merge (lower case).
        public var action: String

        public init(negated: Bool, status: String, action: String) {
            self.negated = negated
            self.status = status
            self.action = action
        }
    }

    public struct Source: Equatable, Sendable {
        public var name: String
        public var criteria: [Criterion]
    }

    public var sources: [Source]

    /// The hosts line of `text`, or nil when the file has none (glibc then uses `dns files`;
    /// Go, files then DNS).
    public init?(parsing text: String) {
        var found: [Source]?
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard let colon = line.firstIndex(of: ":"),
                line[..<colon].trimmingBlanks() == "hosts"
            else { continue }
            found = Self.sources(String(line[line.index(after: colon)...]))
        }
        guard let found else { return nil }
        sources = found
    }

    public init(sources: [Source]) { self.sources = sources }

    static func sources(_ text: String) -> [Source] {
        var out: [Source] = []
        var rest = Substring(text)
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            guard let c = rest.first else { break }
            if c == "[" {
                let end = rest.firstIndex(of: "]") ?? rest.endIndex
                let inside = rest[rest.index(after: rest.startIndex)..<end]
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
                guard !out.isEmpty else { continue }
                for item in inside.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    var s = Substring(item)
                    let negated = s.hasPrefix("!")
                    if negated { s = s.dropFirst() }
                    let parts = s.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    out[out.count - 1].criteria.append(
                        Criterion(negated: negated, status: parts[0].lowercased(), action: parts[1].lowercased()))
                }
            } else {
                let word = rest.prefix(while: { $0 != " " && $0 != "\t" && $0 != "[" })
                rest = rest[word.endIndex...]
                out.append(Source(name: String(word), criteria: []))
            }
        }
        return out
    }

    /// The line as it would be written back (`files dns [NOTFOUND=return]`).
    public var description: String {
        sources.map { s in
            s.name
                + (s.criteria.isEmpty
                    ? ""
                    : " [" + s.criteria.map { ($0.negated ? "!" : "") + $0.status.uppercased() + "=" + $0.action }.joined(separator: " ")
                        + "]")
        }.joined(separator: " ")
    }
}
