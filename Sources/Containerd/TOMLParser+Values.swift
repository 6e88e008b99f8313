/// TOML values: arrays, inline tables, and the scalars (integers, floats, booleans and
/// date-times), as strictly as go-toml reads them.
extension TOMLParser {
    package mutating func value() throws -> TOMLValue {
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

    package mutating func arrayValue() throws -> TOMLValue {
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

    package mutating func inlineTable() throws -> TOMLValue {
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
    package mutating func scalar() throws -> TOMLValue {
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

    package static func digits(_ text: Substring, _ allowed: (Unicode.Scalar) -> Bool) -> String? {
        let u = Array(text.unicodeScalars)
        guard let f = u.first, let l = u.last, f != "_", l != "_" else { return nil }
        for k in u.indices where u[k] == "_" && u[k + 1] == "_" { return nil }
        guard u.allSatisfy({ $0 == "_" || allowed($0) }) else { return nil }
        return String(text.filter { $0 != "_" })
    }

    package static func integer(_ text: String) -> Int64? {
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where text.hasPrefix(prefix) {
            guard let d = digits(text.dropFirst(2), { Int(String($0), radix: radix) != nil }) else { return nil }
            return Int64(d, radix: radix)
        }
        var body = text[...]
        if body.hasPrefix("+") || body.hasPrefix("-") { body = body.dropFirst() }
        guard let d = digits(body, { ("0"..."9").contains($0) }), d == "0" || !d.hasPrefix("0") else { return nil }
        return Int64((text.hasPrefix("-") ? "-" : "") + d)
    }

    package static func float(_ text: String) -> Double? {
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
    package static func isDateTime(_ text: String) -> Bool {
        let u = Array(text.unicodeScalars)
        func d(_ k: Int) -> Bool { k < u.count && ("0"..."9").contains(u[k]) }
        let isDate = u.count >= 10 && d(0) && d(1) && d(2) && d(3) && u[4] == "-" && d(5) && d(6) && u[7] == "-" && d(8) && d(9)
        let isTime = u.count >= 8 && d(0) && d(1) && u[2] == ":" && d(3) && d(4) && u[5] == ":" && d(6) && d(7)
        return isDate || isTime
    }
}
