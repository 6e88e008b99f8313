/// Credentials out of what people and other programs read. A proxy URL in a runtime's environment
/// (`HTTPS_PROXY=http://user:password@proxy:3128`) or a token realm may carry userinfo; reports,
/// `/status`, the node condition, Events and log lines must not. The userinfo is replaced by
/// `***`, so a reader still sees that credentials were there (`http://***@proxy:3128`) and
/// which host they were for.
public enum Redaction {
    /// What replaces a URL's userinfo.
    public static let mask = "***"

    /// One URL (or a Go proxy value, which may lack its scheme: `user:pw@proxy:3128` means
    /// `http://user:pw@proxy:3128` to Go's ProxyFromEnvironment) with its userinfo masked.
    public static func url(_ value: String) -> String {
        if value.contains("://") { return text(value) }
        // No scheme: the authority runs to the first `/`, `?` or `#`. Its last `@` ends the
        // userinfo, as in Go's url.Parse (a password may hold an unescaped `@`).
        let end = value.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? value.endIndex
        guard let at = value[..<end].lastIndex(of: "@") else { return value }
        return mask + value[at...]
    }

    /// `text` with the userinfo of every `scheme://user[:password]@host` in it masked, and its
    /// control characters escaped but for its line breaks (a remedy may give lines to add to a
    /// file): the last guard before a report, condition, Event or log line leaves the agent,
    /// whatever built it. What must be one line (a log line, the condition, systemd's STATUS)
    /// takes `oneLine` as well.
    public static func text(_ text: String) -> String {
        masked(escaped(text, keepingLineBreaks: true))
    }

    /// `text` with every control character escaped, its line breaks too (a newline as `\n`, ESC
    /// as `\x1b`, a C1 control as `\u{9b}`), nothing cut: a registry's error message passed on by
    /// containerd (its JSON `errors[].message`, decoded) or a peer's header can hold line breaks
    /// and terminal escapes, which must not start a forged line in the agent's log or report, nor
    /// reach the terminal of whoever reads it or `kubectl describe node`. Idempotent: an escape
    /// is printable.
    public static func oneLine(_ text: String) -> String {
        escaped(text, keepingLineBreaks: false)
    }

    /// `text` and `oneLine` both: credentials masked, every control character escaped. What
    /// must be one line and may carry what the agent did not write (a log line, a reason built
    /// from an error).
    public static func line(_ text: String) -> String {
        oneLine(Self.text(text))
    }

    static func escaped(_ text: String, keepingLineBreaks: Bool) -> String {
        func escapes(_ ch: Unicode.Scalar) -> Bool { isControl(ch) && !(keepingLineBreaks && ch == "\n") }
        guard text.unicodeScalars.contains(where: escapes) else { return text }
        var out = String.UnicodeScalarView()
        for ch in text.unicodeScalars {
            guard escapes(ch) else {
                out.append(ch)
                continue
            }
            let escaped: String =
                switch ch {
                case "\n": "\\n"
                case "\r": "\\r"
                case "\t": "\\t"
                default: ch.value < 0x80 ? "\\x" + ch.value.hex(width: 2) : "\\u{" + ch.value.hex(width: 2) + "}"
                }
            out.append(contentsOf: escaped.unicodeScalars)
        }
        return String(out)
    }

    /// C0 controls, DEL and C1 controls (0x9B is a terminal's CSI, as ESC [ is).
    static func isControl(_ ch: Unicode.Scalar) -> Bool {
        ch.value < 0x20 || (0x7f...0x9f).contains(ch.value)
    }

    static func masked(_ text: String) -> String {
        // Fast path: nothing that could be a URL with userinfo.
        guard text.contains("://"), text.contains("@") else { return text }
        var out = ""
        out.reserveCapacity(text.count)
        var rest = Substring(text)
        while let sep = rest.firstRange(of: "://") {
            out += rest[..<sep.upperBound]
            rest = rest[sep.upperBound...]
            // The authority ends where a path, query or fragment begins, or at a character no
            // URL's userinfo may hold (Go's validUserinfo allows `'(),;` and the like, so those
            // do not end it: masking too much of a sentence is harmless, too little is a leak).
            let end = rest.firstIndex(where: { Self.endsAuthority($0) }) ?? rest.endIndex
            if let at = rest[..<end].lastIndex(of: "@") {
                out += mask
                rest = rest[at...]
            }
        }
        out += rest
        return out
    }

    /// Whether `c` cannot be part of a URL's authority as it appears in the agent's texts.
    static func endsAuthority(_ c: Character) -> Bool {
        switch c {
        case "/", "?", "#", "\"", "`", "<", ">", "{", "}", "\\", "|", "^": return true
        default: return c.isWhitespace
        }
    }

    /// Whether `text` holds a URL with userinfo (what `text(_:)` would mask).
    public static func hasUserinfo(_ text: String) -> Bool { masked(text) != text }
}
