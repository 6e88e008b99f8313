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
    fileprivate var defined = false
    fileprivate var inline = false
    fileprivate var byDottedKey = false

    public subscript(key: String) -> TOMLValue? { values[key] }

    fileprivate func set(_ key: String, _ value: TOMLValue) throws {
        guard values[key] == nil else { throw TOMLError("key \(key) is defined twice") }
        keys.append(key)
        values[key] = value
    }

    fileprivate func replace(_ key: String, _ value: TOMLValue) { values[key] = value }
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
    init(_ text: String) { description = text }
}

public struct TOMLDocument: Sendable {
    public let root: TOMLTable
    /// The `[header]` and `[[header]]` paths in the order the file writes them.
    public let headers: [[String]]

    public init(parsing text: String) throws {
        var parser = Parser(Array(text.unicodeScalars))
        (root, headers) = try parser.document()
    }
}

private struct Parser {
    let s: [Unicode.Scalar]
    var i = 0
    var line = 1

    init(_ s: [Unicode.Scalar]) { self.s = s }

    var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }
    func peek(_ n: Int) -> Unicode.Scalar? { i + n < s.count ? s[i + n] : nil }
    func fail(_ what: String) -> TOMLError { TOMLError("line \(line): \(what)") }

    mutating func skipBlanks() { while let c = peek, c == " " || c == "\t" { i += 1 } }
    mutating func skipComment() throws {
        guard peek == "#" else { return }
        while let c = peek, c != "\n" {
            if c != "\t" && (c.value < 0x20 || c.value == 0x7F), !(c == "\r" && peek(1) == "\n") {
                throw fail("a control character in a comment")
            }
            i += 1
        }
    }
    /// Blanks, an optional comment, then a newline or the end.
    mutating func endOfLine() throws {
        skipBlanks()
        try skipComment()
        if peek == "\r", peek(1) == "\n" { i += 1 }
        guard let c = peek else { return }
        guard c == "\n" else { throw fail("unexpected '\(c)' after a value") }
        i += 1
        line += 1
    }
    /// Blanks, newlines and comments (inside arrays, between lines).
    mutating func skipSpace() throws {
        while true {
            skipBlanks()
            try skipComment()
            if peek == "\r", peek(1) == "\n" { i += 1 }
            guard peek == "\n" else { return }
            i += 1
            line += 1
        }
    }

    mutating func document() throws -> (TOMLTable, [[String]]) {
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
    mutating func defineTable(_ root: TOMLTable, _ path: [String]) throws -> TOMLTable {
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

    mutating func appendTable(_ root: TOMLTable, _ path: [String]) throws -> TOMLTable {
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
    mutating func walk(_ table: TOMLTable, _ path: ArraySlice<String>, creating: Bool, dotted: Bool = false) throws -> TOMLTable {
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

    mutating func keyValue(into table: TOMLTable) throws {
        let path = try key()
        skipBlanks()
        guard peek == "=" else { throw fail("a key without '='") }
        i += 1
        skipBlanks()
        let v = try value()
        let parent = try walk(table, path.dropLast(), creating: true, dotted: true)
        try parent.set(path.last!, v)
    }

    mutating func key() throws -> [String] {
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

    mutating func value() throws -> TOMLValue {
        guard let c = peek else { throw fail("a value is missing") }
        switch c {
        case "\"":
            if peek(1) == "\"", peek(2) == "\"" { return .string(try multiLineString(basic: true)) }
            return .string(try basicString())
        case "'":
            if peek(1) == "'", peek(2) == "'" { return .string(try multiLineString(basic: false)) }
            return .string(try literalString())
        case "[": return try arrayValue()
        case "{": return try inlineTable()
        default: return try scalar()
        }
    }

    mutating func arrayValue() throws -> TOMLValue {
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipSpace()
            if peek == "]" {
                i += 1
                return .array(items)
            }
            items.append(try value())
            try skipSpace()
            if peek == "," {
                i += 1
                continue
            }
            guard peek == "]" else { throw fail("an array is not closed") }
            i += 1
            return .array(items)
        }
    }

    mutating func inlineTable() throws -> TOMLValue {
        i += 1
        let t = TOMLTable()
        t.defined = true
        skipBlanks()
        if peek == "}" {
            i += 1
            t.inline = true
            return .table(t)
        }
        while true {
            try keyValue(into: t)
            skipBlanks()
            if peek == "," {
                i += 1
                continue
            }
            guard peek == "}" else { throw fail("an inline table is not closed") }
            i += 1
            t.inline = true
            return .table(t)
        }
    }

    /// Integers, floats, booleans and date-times: a run of their characters, then checked.
    mutating func scalar() throws -> TOMLValue {
        var text = ""
        while let c = peek, c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || "+-_.:".unicodeScalars.contains(c) {
            text.unicodeScalars.append(c)
            i += 1
        }
        // A date-time may hold one space between the date and the time.
        if text.count == 10, peek == " ", let n = peek(1), ("0"..."9").contains(n) {
            i += 1
            text += "T"
            while let c = peek, c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || "+-.:".unicodeScalars.contains(c) {
                text.unicodeScalars.append(c)
                i += 1
            }
        }
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        case "": throw fail("a value is missing")
        default: break
        }
        if let v = Self.integer(text) { return .integer(v) }
        if let v = Self.float(text) { return .float(v) }
        if Self.isDateTime(text) { return .datetime(text) }
        throw fail("'\(text)' is not a TOML value")
    }

    static func digits(_ text: Substring, _ allowed: (Unicode.Scalar) -> Bool) -> String? {
        let u = Array(text.unicodeScalars)
        guard let f = u.first, let l = u.last, f != "_", l != "_" else { return nil }
        for k in u.indices where u[k] == "_" && u[k + 1] == "_" { return nil }
        guard u.allSatisfy({ $0 == "_" || allowed($0) }) else { return nil }
        return String(text.filter { $0 != "_" })
    }

    static func integer(_ text: String) -> Int64? {
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where text.hasPrefix(prefix) {
            guard let d = digits(text.dropFirst(2), { Int(String($0), radix: radix) != nil }) else { return nil }
            return Int64(d, radix: radix)
        }
        var body = text[...]
        if body.hasPrefix("+") || body.hasPrefix("-") { body = body.dropFirst() }
        guard let d = digits(body, { ("0"..."9").contains($0) }), d == "0" || !d.hasPrefix("0") else { return nil }
        return Int64((text.hasPrefix("-") ? "-" : "") + d)
    }

    static func float(_ text: String) -> Double? {
        var body = text[...]
        if body.hasPrefix("+") || body.hasPrefix("-") { body = body.dropFirst() }
        let parts = body.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false).flatMap {
            $0.split(separator: "E", maxSplits: 1, omittingEmptySubsequences: false)
        }
        guard parts.count <= 2, body.contains(".") || parts.count == 2 else { return nil }
        let mantissa = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard mantissa.count <= 2, let whole = digits(mantissa[0], { ("0"..."9").contains($0) }), whole == "0" || !whole.hasPrefix("0")
        else { return nil }
        if mantissa.count == 2, digits(mantissa[1], { ("0"..."9").contains($0) }) == nil { return nil }
        if parts.count == 2 {
            var e = parts[1]
            if e.hasPrefix("+") || e.hasPrefix("-") { e = e.dropFirst() }
            guard digits(e, { ("0"..."9").contains($0) }) != nil else { return nil }
        }
        return Double(String(text.filter { $0 != "_" }))
    }

    /// RFC 3339 dates, times and date-times, loosely: digits in the right places.
    static func isDateTime(_ text: String) -> Bool {
        let u = Array(text.unicodeScalars)
        func d(_ k: Int) -> Bool { k < u.count && ("0"..."9").contains(u[k]) }
        let isDate = u.count >= 10 && d(0) && d(1) && d(2) && d(3) && u[4] == "-" && d(5) && d(6) && u[7] == "-" && d(8) && d(9)
        let isTime = u.count >= 8 && d(0) && d(1) && u[2] == ":" && d(3) && d(4) && u[5] == ":" && d(6) && d(7)
        return isDate || isTime
    }

    mutating func basicString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek, c != "\n" else { throw fail("a string is not closed") }
            i += 1
            if c == "\"" { return String(out) }
            if c == "\\" {
                out.append(try escape())
            } else {
                guard c == "\t" || (c.value >= 0x20 && c.value != 0x7F) else { throw fail("a control character in a string") }
                out.append(c)
            }
        }
    }

    mutating func escape() throws -> Unicode.Scalar {
        guard let e = peek else { throw fail("a string is not closed") }
        i += 1
        switch e {
        case "b": return "\u{8}"
        case "t": return "\t"
        case "n": return "\n"
        case "f": return "\u{C}"
        case "r": return "\r"
        case "\"": return "\""
        case "\\": return "\\"
        case "u", "U":
            let n = e == "u" ? 4 : 8
            guard i + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<i + n])), radix: 16),
                let scalar = Unicode.Scalar(v)
            else { throw fail("an invalid \\\(e) escape") }
            i += n
            return scalar
        default: throw fail("an unknown escape \\\(e)")
        }
    }

    mutating func literalString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek, c != "\n" else { throw fail("a string is not closed") }
            i += 1
            if c == "'" { return String(out) }
            guard c == "\t" || (c.value >= 0x20 && c.value != 0x7F) else { throw fail("a control character in a string") }
            out.append(c)
        }
    }

    mutating func multiLineString(basic: Bool) throws -> String {
        let quote: Unicode.Scalar = basic ? "\"" : "'"
        i += 3
        if peek == "\r", peek(1) == "\n" { i += 1 }
        if peek == "\n" {
            i += 1
            line += 1
        }
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek else { throw fail("a multi-line string is not closed") }
            if c == quote, peek(1) == quote, peek(2) == quote {
                // Up to two more quotes belong to the string.
                var extra = 0
                while extra < 2, peek(3 + extra) == quote { extra += 1 }
                for _ in 0..<extra { out.append(quote) }
                i += 3 + extra
                return String(out)
            }
            i += 1
            if c == "\n" {
                line += 1
                out.append(c)
            } else if basic, c == "\\" {
                // A backslash at the end of a line trims the newline and the blanks after it.
                var k = i
                while k < s.count, s[k] == " " || s[k] == "\t" { k += 1 }
                if k < s.count, s[k] == "\n" || (s[k] == "\r" && k + 1 < s.count && s[k + 1] == "\n") {
                    i = k
                    while let n = peek, n == " " || n == "\t" || n == "\n" || n == "\r" {
                        if n == "\n" { line += 1 }
                        i += 1
                    }
                } else {
                    out.append(try escape())
                }
            } else {
                guard c == "\t" || c == "\r" || (c.value >= 0x20 && c.value != 0x7F) else {
                    throw fail("a control character in a string")
                }
                out.append(c)
            }
        }
    }
}
