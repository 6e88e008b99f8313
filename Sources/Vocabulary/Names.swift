import FoundationEssentials
import Glibc

// Validated names and addresses shared by every module. Each parser refuses anything that could
// smuggle text into a config file (spaces, newlines, quotes, `~`, empty labels) and says why.

/// An IPv4 or IPv6 address, parsed with `inet_pton`.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public enum Family: Int32, Sendable, Codable {
        case v4 = 2
        case v6 = 10
    }  // AF_INET, AF_INET6
    public let family: Family
    public let bytes: [UInt8]

    public init(_ text: String) throws {
        var v4 = in_addr()
        var v6 = in6_addr()
        if !text.isEmpty, text.allSatisfy({ $0.isASCII }), inet_pton(AF_INET, text, &v4) == 1 {
            family = .v4
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if !text.isEmpty, text.allSatisfy({ $0.isASCII }), inet_pton(AF_INET6, text, &v6) == 1 {
            family = .v6
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            throw AgentError(
                .invalidInput, "'\(text.escapedForMessage)' is not an IP address",
                hint: "give an IPv4 address such as 10.96.0.10 or an IPv6 address")
        }
    }

    public init(family: Family, bytes: [UInt8]) {
        self.family = family
        self.bytes = bytes
    }

    /// Calls `body` with this address and `port` as a `sockaddr_in` or `sockaddr_in6`, and its
    /// length: what connect(2) and bind(2) take.
    public func withSocketAddress<T>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        func call<Address>(_ address: inout Address) -> T {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<Address>.size)) }
            }
        }
        if family == .v4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bytes) }
            return call(&sa)
        }
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bytes) }
        return call(&sa)
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = bytes
        _ = inet_ntop(family.rawValue, &copy, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }
}

/// A DNS domain name such as `svc.cluster.local`: letters, digits, `-` and `_`, labels of
/// 1-63 characters, 253 at most, lower-cased; a trailing dot is dropped.
public struct DomainName: Hashable, Sendable, CustomStringConvertible, Codable {
    public let name: String
    public var labels: [Substring] { name.split(separator: ".") }

    public init(_ text: String, what: String = "domain") throws {
        var value = text.lowercased()
        if value.hasSuffix(".") && value.count > 1 { value.removeLast() }
        let shown = text.escapedForMessage
        guard !value.isEmpty else {
            throw AgentError(.invalidInput, "the \(what) is empty")
        }
        if value.hasPrefix("~") {
            throw AgentError(
                .invalidInput, "\(what) '\(shown)' starts with '~'",
                hint: "give the plain domain, e.g. svc.cluster.local; the agent makes it a routing domain itself")
        }
        guard value.utf8.count <= 253 else {
            throw AgentError(.invalidInput, "\(what) '\(shown)' is longer than 253 characters")
        }
        for label in value.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else {
                throw AgentError(
                    .invalidInput, "\(what) '\(shown)' has an empty label",
                    hint: "remove the doubled or leading dot")
            }
            guard label.utf8.count <= 63 else {
                throw AgentError(.invalidInput, "\(what) '\(shown)' has a label longer than 63 characters")
            }
            for ch in label.unicodeScalars {
                let ok = (ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9") || ch == "-" || ch == "_"
                guard ok else {
                    throw AgentError(
                        .invalidInput,
                        "\(what) '\(shown)' contains \(describe(ch)), which a DNS name cannot hold",
                        hint: "use letters, digits, '-' and '.' only")
                }
            }
            guard !label.hasPrefix("-"), !label.hasSuffix("-") else {
                throw AgentError(.invalidInput, "\(what) '\(shown)' has a label that starts or ends with '-'")
            }
        }
        name = value
    }

    public var description: String { name }

    /// True when `self` is `other` or a name below it.
    public func isWithin(_ other: DomainName) -> Bool {
        name == other.name || name.hasSuffix("." + other.name)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }
}

/// A registry as image references name it: `HOST[:PORT]`, HOST a DNS name or an IP address
/// (IPv6 in brackets). The port defaults to 443.
public struct RegistryAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Host: Hashable, Sendable {
        case name(DomainName)
        case ip(IPAddress)
    }

    public let host: Host
    public let port: UInt16
    public let portWasGiven: Bool

    public init(_ text: String) throws {
        let shown = text.escapedForMessage
        guard !text.isEmpty else { throw AgentError(.invalidInput, "the registry is empty") }
        if text.contains("://") || text.contains("/") {
            throw AgentError(
                .invalidInput, "registry '\(shown)' must be HOST[:PORT], without scheme or path",
                hint: "e.g. registry-service.openfaas.svc.cluster.local:443")
        }
        var hostPart = text
        var portPart: String?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw AgentError(.invalidInput, "registry '\(shown)' has an unclosed '['")
            }
            hostPart = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw AgentError(.invalidInput, "registry '\(shown)' has text after ']' that is not a port")
                }
                portPart = String(rest.dropFirst())
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else {
                throw AgentError(
                    .invalidInput, "registry '\(shown)' has several ':'",
                    hint: "write an IPv6 address in brackets: [fd00::1]:443")
            }
            hostPart = String(text[..<colon])
            portPart = String(text[text.index(after: colon)...])
        }
        if let portPart {
            guard let value = Int(portPart), portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber),
                (1...65535).contains(value)
            else {
                throw AgentError(
                    .invalidInput, "registry port '\(portPart.escapedForMessage)' is not a port number",
                    hint: "use a number from 1 to 65535")
            }
            port = UInt16(value)
            portWasGiven = true
        } else {
            port = 443
            portWasGiven = false
        }
        if let ip = try? IPAddress(hostPart) {
            host = .ip(ip)
        } else {
            host = .name(try DomainName(hostPart, what: "registry host"))
        }
    }

    /// The host as it appears in a URL or a `Host:` header (IPv6 in brackets).
    public var hostForURL: String {
        switch host {
        case .name(let n): return n.name
        case .ip(let ip): return ip.family == .v6 ? "[\(ip)]" : ip.description
        }
    }

    /// The host alone, as used for SNI and certificate name checks.
    public var hostName: String {
        switch host {
        case .name(let n): return n.name
        case .ip(let ip): return ip.description
        }
    }

    /// `host:port`, the name of the registry's folder in containerd's `certs.d`.
    public var hostAndPort: String { "\(hostForURL):\(port)" }
    public var description: String { hostAndPort }
}

private func describe(_ ch: Unicode.Scalar) -> String {
    switch ch {
    case " ": return "a space"
    case "\n": return "a newline"
    case "\r": return "a carriage return"
    case "\t": return "a tab"
    default:
        if ch.value < 0x20 || ch.value == 0x7f { return "a control character" }
        return "'\(ch)'"
    }
}

extension String {
    /// The text with control characters escaped (`Redaction.oneLine`), safe to print on one
    /// line, cut at 80 characters.
    public var escapedForMessage: String {
        let out = Redaction.oneLine(self)
        return out.count > 80 ? String(out.prefix(80)) + "…" : out
    }
}
