/// TOML's four string forms (basic, literal, and their multi-line forms) with their escapes; an
/// unknown escape or a control character is an error.
extension TOMLParser {
    package mutating func basicString() throws -> String {
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

    package mutating func escape() throws -> Unicode.Scalar {
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

    package mutating func literalString() throws -> String {
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

    package mutating func multiLineString(basic: Bool) throws -> String {
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
