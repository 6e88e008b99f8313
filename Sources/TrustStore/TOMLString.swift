/// TOML strings as the agent writes them into `hosts.toml` and reads them back.
enum TOMLString {
    /// `text` as a TOML basic string, quotes included: `"` and `\` escaped, and every control
    /// character (U+0000 to U+001F, U+007F) as `\uXXXX`, so that any path reads back unchanged.
    static func basic(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{0}"..."\u{1F}", "\u{7F}":
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The strings of a TOML value that is a string or an array of strings (`"a"`, `'a'`,
    /// `["a", 'b']`): basic strings with their escapes decoded, literal strings as written.
    /// Anything else in the value (brackets, commas, blanks, a trailing comment) is passed over.
    static func strings(inValue value: Substring) -> [String] {
        var out: [String] = []
        var rest = value.unicodeScalars[...]
        while let first = rest.first {
            rest = rest.dropFirst()
            switch first {
            case "#": return out
            case "'":
                guard let end = rest.firstIndex(of: "'") else { return out }
                out.append(String(String.UnicodeScalarView(rest[..<end])))
                rest = rest[rest.index(after: end)...]
            case "\"":
                var string = String.UnicodeScalarView()
                var closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if c == "\"" {
                        closed = true
                        break
                    }
                    guard c == "\\" else {
                        string.append(c)
                        continue
                    }
                    guard let e = rest.first else { break }
                    rest = rest.dropFirst()
                    switch e {
                    case "b": string.append("\u{8}")
                    case "t": string.append("\t")
                    case "n": string.append("\n")
                    case "f": string.append("\u{C}")
                    case "r": string.append("\r")
                    case "\"", "\\": string.append(e)
                    case "u", "U":
                        let count = e == "u" ? 4 : 8
                        guard rest.count >= count, let value = UInt32(String(String.UnicodeScalarView(rest.prefix(count))), radix: 16),
                            let scalar = Unicode.Scalar(value)
                        else { return out }
                        string.append(scalar)
                        rest = rest.dropFirst(count)
                    default: return out
                    }
                }
                guard closed else { return out }
                out.append(String(string))
            default:
                continue
            }
        }
        return out
    }
}
