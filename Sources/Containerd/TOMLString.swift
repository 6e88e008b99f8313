/// TOML strings as the agent writes them into `hosts.toml` (TOMLDocument reads them back).
package enum TOMLString {
    /// `text` as a TOML basic string, quotes included: `"` and `\` escaped, and every control
    /// character (U+0000 to U+001F, U+007F) as `\uXXXX`, so that any path reads back unchanged.
    package static func basic(_ text: String) -> String {
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
}
