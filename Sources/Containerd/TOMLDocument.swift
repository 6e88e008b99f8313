/// A TOML 1.0 document, read strictly: what containerd's go-toml refuses must be refused here
/// too, since containerd replaces a hosts.toml it cannot decode by Docker's layout. Keys, dotted
/// keys, tables, arrays of tables, inline tables, arrays, every string form with its escapes,
/// integers, floats, booleans and date-times (kept as text); a key or table defined twice, a value
/// without a newline after it, an unknown escape or a control character is an error. Written for
/// the agent (TOMLKit, on toml++, links Foundation, which the agent's binaries do not).
public final class TOMLTable: @unchecked Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    /// Defined by a `[header]` (or created by one's dotted path: implicit until defined).
    package var defined = false
    package var inline = false
    package var byDottedKey = false

    public subscript(key: String) -> TOMLValue? { values[key] }

    package func set(_ key: String, _ value: TOMLValue) throws {
        guard values[key] == nil else { throw TOMLError("key \(key) is defined twice") }
        keys.append(key)
        values[key] = value
    }

    package func replace(_ key: String, _ value: TOMLValue) { values[key] = value }
}

public indirect enum TOMLValue: Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case datetime(String)
    case array([TOMLValue])
    case table(TOMLTable)

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [TOMLValue]? { if case .array(let a) = self { a } else { nil } }
    public var table: TOMLTable? { if case .table(let t) = self { t } else { nil } }
}

public struct TOMLError: Error, CustomStringConvertible, Sendable {
    public var description: String
    package init(_ text: String) { description = text }
}

public struct TOMLDocument: Sendable {
    public let root: TOMLTable
    /// The `[header]` and `[[header]]` paths in the order the file writes them.
    public let headers: [[String]]

    public init(parsing text: String) throws {
        var parser = TOMLParser(Array(text.unicodeScalars))
        (root, headers) = try parser.document()
    }
}

package struct TOMLParser {
    package let s: [Unicode.Scalar]
    package var i = 0
    package var line = 1

    package init(_ s: [Unicode.Scalar]) { self.s = s }

    package var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }
    package func peek(_ n: Int) -> Unicode.Scalar? { i + n < s.count ? s[i + n] : nil }
    package func fail(_ what: String) -> TOMLError { TOMLError("line \(line): \(what)") }

    package mutating func skipBlanks() { while let c = peek, c == " " || c == "\t" { i += 1 } }
    package mutating func skipComment() throws {
        guard peek == "#" else { return }
        while let c = peek, c != "\n" {
            if c != "\t" && (c.value < 0x20 || c.value == 0x7F), !(c == "\r" && peek(1) == "\n") {
                throw fail("a control character in a comment")
            }
            i += 1
        }
    }
    /// Blanks, an optional comment, then a newline or the end.
    package mutating func endOfLine() throws {
        skipBlanks()
        try skipComment()
        if peek == "\r", peek(1) == "\n" { i += 1 }
        guard let c = peek else { return }
        guard c == "\n" else { throw fail("unexpected '\(c)' after a value") }
        i += 1
        line += 1
    }
    /// Blanks, newlines and comments (inside arrays, between lines).
    package mutating func skipSpace() throws {
        while true {
            skipBlanks()
            try skipComment()
            if peek == "\r", peek(1) == "\n" { i += 1 }
            guard peek == "\n" else { return }
            i += 1
            line += 1
        }
    }

    package mutating func document() throws -> (TOMLTable, [[String]]) {
        let root = TOMLTable()
        root.defined = true
        var current = root
        var headers: [[String]] = []
        while true {
            try skipSpace()
            guard let c = peek else { break }
            if c == "[" {
                let isArray = peek(1) == "["
                i += isArray ? 2 : 1
                skipBlanks()
                let path = try key()
                skipBlanks()
                guard peek == "]", !isArray || peek(1) == "]" else { throw fail("a table header is not closed") }
                i += isArray ? 2 : 1
                try endOfLine()
                headers.append(path)
                current = isArray ? try appendTable(root, path) : try defineTable(root, path)
            } else {
                try keyValue(into: current)
                try endOfLine()
            }
        }
        return (root, headers)
    }

    /// The table a `[path]` header defines: created, or defined now if only implied so far.
    package mutating func defineTable(_ root: TOMLTable, _ path: [String]) throws -> TOMLTable {
        let parent = try walk(root, path.dropLast(), creating: true)
        let name = path.last!
        if let existing = parent[name] {
            guard case .table(let t) = existing, !t.defined, !t.inline, !t.byDottedKey else {
                throw fail("table \(path.joined(separator: ".")) is defined twice")
            }
            t.defined = true
            return t
        }
        let t = TOMLTable()
        t.defined = true
        try parent.set(name, .table(t))
        return t
    }

    package mutating func appendTable(_ root: TOMLTable, _ path: [String]) throws -> TOMLTable {
        let parent = try walk(root, path.dropLast(), creating: true)
        let name = path.last!
        let t = TOMLTable()
        t.defined = true
        switch parent[name] {
        case nil: try parent.set(name, .array([.table(t)]))
        case .array(let items)? where items.allSatisfy({ $0.table.map { !$0.inline } ?? false }):
            parent.replace(name, .array(items + [.table(t)]))
        default: throw fail("\(path.joined(separator: ".")) is not an array of tables")
        }
        return t
    }

    /// The table at `path` under `table` (the last table of an array of tables), creating
    /// implicit ones.
    package mutating func walk(_ table: TOMLTable, _ path: ArraySlice<String>, creating: Bool, dotted: Bool = false) throws -> TOMLTable {
        var t = table
        for name in path {
            switch t[name] {
            case nil:
                let n = TOMLTable()
                n.byDottedKey = dotted
                try t.set(name, .table(n))
                t = n
            case .table(let n)?:
                guard !n.inline, !dotted || n.byDottedKey || !n.defined else { throw fail("\(name) cannot be extended here") }
                t = n
            case .array(let items)? where !dotted:
                guard let last = items.last?.table, !last.inline else { throw fail("\(name) is not a table") }
                t = last
            default: throw fail("\(name) is a value, not a table")
            }
        }
        return t
    }

    package mutating func keyValue(into table: TOMLTable) throws {
        let path = try key()
        skipBlanks()
        guard peek == "=" else { throw fail("a key without '='") }
        i += 1
        skipBlanks()
        let v = try value()
        let parent = try walk(table, path.dropLast(), creating: true, dotted: true)
        try parent.set(path.last!, v)
    }

    package mutating func key() throws -> [String] {
        var parts: [String] = []
        while true {
            skipBlanks()
            guard let c = peek else { throw fail("a key is missing") }
            if c == "\"" {
                guard peek(1) != "\"" || peek(2) != "\"" else { throw fail("a multi-line string as a key") }
                parts.append(try basicString())
            } else if c == "'" {
                guard peek(1) != "'" || peek(2) != "'" else { throw fail("a multi-line string as a key") }
                parts.append(try literalString())
            } else {
                var bare = ""
                while let c = peek, c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                    bare.unicodeScalars.append(c)
                    i += 1
                }
                guard !bare.isEmpty else { throw fail("a key is missing") }
                parts.append(bare)
            }
            skipBlanks()
            guard peek == "." else { return parts }
            i += 1
        }
    }
}
