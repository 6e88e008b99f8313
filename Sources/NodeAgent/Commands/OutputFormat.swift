import ArgumentParser

/// `-o/--output`: a person's text, or the report's object as JSON or YAML (the same object).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, yaml

    /// What to print: `text()`, or the object `json()` writes, as JSON or as YAML.
    func render(json: () -> String, text: () -> String) -> String {
        switch self {
        case .text: return text()
        case .json: return json()
        case .yaml: return YAMLRendering.yaml(fromJSON: json())
        }
    }
}

/// JSON text written again as block YAML, as `kubectl get -o yaml` prints an object: keys in
/// the JSON's order, numbers as they were written, strings plain where every YAML 1.1 and 1.2
/// reader takes them as strings and double-quoted otherwise. Python's `yaml.safe_load` and
/// `json.load` give equal objects (CLIIntegrationTests).
enum YAMLRendering {
    /// A JSON value as parsed, numbers kept as written.
    indirect enum Node {
        case literal(String)  // null, true, false, a number
        case string(String)
        case array([Node])
        case object([(String, Node)])
    }

    static func yaml(fromJSON text: String) -> String {
        var parser = Parser(bytes: Array(text.utf8))
        guard let node = try? parser.document() else { return text }
        return lines(node, indent: 0).joined(separator: "\n") + "\n"
    }

    /// `node` as block YAML lines, each starting with `indent` spaces.
    static func lines(_ node: Node, indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        switch node {
        case .array(let items) where !items.isEmpty:
            return items.flatMap { item -> [String] in
                switch item {
                case .array(let inner) where !inner.isEmpty: return entry(lines(item, indent: indent + 2), pad: pad)
                case .object(let inner) where !inner.isEmpty: return entry(lines(item, indent: indent + 2), pad: pad)
                default: return [pad + "- " + scalar(item)]
                }
            }
        case .object(let entries) where !entries.isEmpty:
            return entries.flatMap { key, value -> [String] in
                let head = pad + string(key) + ":"
                switch value {
                case .array(let inner) where !inner.isEmpty: return [head] + lines(value, indent: indent)
                case .object(let inner) where !inner.isEmpty: return [head] + lines(value, indent: indent + 2)
                default: return [head + " " + scalar(value)]
                }
            }
        default:
            return [pad + scalar(node)]
        }
    }

    /// A block node's lines as a sequence entry: "- " in place of its first line's indentation.
    private static func entry(_ lines: [String], pad: String) -> [String] {
        guard let first = lines.first else { return [] }
        return [pad + "- " + first.dropFirst(pad.count + 2)] + lines.dropFirst()
    }

    static func scalar(_ node: Node) -> String {
        switch node {
        case .literal(let text): return number(text)
        case .string(let text): return string(text)
        case .array: return "[]"
        case .object: return "{}"
        }
    }

    /// A JSON number as YAML reads it back the same: an integer as is; a float with a point in
    /// its mantissa and a sign in its exponent (YAML 1.1 readers take `1e-05` as a string).
    static func number(_ text: String) -> String {
        guard !["null", "true", "false"].contains(text), text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            return text
        }
        var mantissa = Substring(text)
        var exponent: Substring = ""
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = text[text.index(after: e)...]
            if let first = exponent.first, first != "-" && first != "+" { exponent = "+" + exponent }
            exponent = "e" + exponent
        }
        return mantissa + (mantissa.contains(".") ? "" : ".0") + exponent
    }

    /// Words YAML 1.1 or 1.2 reads as booleans or null when plain.
    static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null"]

    static func string(_ text: String) -> String {
        isPlain(text) ? text : quoted(text)
    }

    /// Conservative: a letter, `/` or `_` first, then letters, digits and `_./:+=@,()-` and
    /// spaces; no `: `, ` #`, trailing `:` or space; not a reserved word.
    static func isPlain(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCII,
            first.properties.isAlphabetic || first == "/" || first == "_",
            text.unicodeScalars.allSatisfy({
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_./:+=@,()- ".unicodeScalars.contains($0))
            }),
            !text.contains(": "), !text.contains(" #"), !text.hasSuffix(":"), !text.hasSuffix(" "),
            !reserved.contains(text.lowercased())
        else { return false }
        return true
    }

    /// A double-quoted scalar: printable characters as they are, the others escaped (line
    /// breaks too: inside quotes a raw one would be folded into a space).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _
            where scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value)
                || [0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF].contains(scalar.value):
                out += scalar.value <= 0xFF ? "\\x" + hex(scalar.value, 2) : "\\u" + hex(scalar.value, 4)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func hex(_ value: UInt32, _ digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    struct Malformed: Error {}

    /// A strict JSON reader that keeps object order and number text.
    struct Parser {
        var bytes: [UInt8]
        var i = 0

        mutating func document() throws -> Node {
            let node = try value()
            skip()
            guard i == bytes.count else { throw Malformed() }
            return node
        }

        mutating func skip() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func value() throws -> Node {
            skip()
            guard i < bytes.count else { throw Malformed() }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var entries: [(String, Node)] = []
                skip()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(entries)
                }
                while true {
                    skip()
                    let key = try string()
                    skip()
                    try expect(":")
                    entries.append((key, try value()))
                    skip()
                    if try next(",", or: "}") { return .object(entries) }
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [Node] = []
                skip()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                while true {
                    items.append(try value())
                    skip()
                    if try next(",", or: "]") { return .array(items) }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            default:
                let start = i
                while i < bytes.count, !",]} \n\r\t".utf8.contains(bytes[i]) { i += 1 }
                let word = String(decoding: bytes[start..<i], as: UTF8.self)
                guard ["null", "true", "false"].contains(word) || isNumber(word) else { throw Malformed() }
                return .literal(word)
            }
        }

        func isNumber(_ word: String) -> Bool {
            word.firstMatch(of: /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) != nil
        }

        mutating func expect(_ c: Character) throws {
            guard i < bytes.count, bytes[i] == c.asciiValue else { throw Malformed() }
            i += 1
        }

        /// After an item: true at `close`, false at `separator`.
        mutating func next(_ separator: Character, or close: Character) throws -> Bool {
            guard i < bytes.count else { throw Malformed() }
            defer { i += 1 }
            if bytes[i] == close.asciiValue { return true }
            if bytes[i] == separator.asciiValue { return false }
            throw Malformed()
        }

        mutating func string() throws -> String {
            try expect("\"")
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                run.removeAll()
            }
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                if b == UInt8(ascii: "\"") {
                    flush()
                    return String(scalars)
                }
                guard b == UInt8(ascii: "\\") else {
                    run.append(b)
                    continue
                }
                flush()
                guard i < bytes.count else { throw Malformed() }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(e))
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var unit = try hex4()
                    if (0xD800..<0xDC00).contains(unit), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                        bytes[i + 1] == UInt8(ascii: "u")
                    {
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Malformed() }
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(unit) else { throw Malformed() }
                    scalars.append(scalar)
                default: throw Malformed()
                }
            }
            throw Malformed()
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                throw Malformed()
            }
            i += 4
            return v
        }
    }
}
