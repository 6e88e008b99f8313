import FoundationEssentials
import Glibc
import Vocabulary

/// The endpoint's listen addresses (`--listen`, `--metrics-listen`) and its peers: which are on
/// this node (loopback) and so may read /status and /readyz's reasons.
extension HealthServer {
    /// `--listen`/`--metrics-listen` as given: HOST:PORT (an IPv6 host in brackets), or nil for `off`.
    static func address(_ text: String, option: String, example: String) throws -> (host: String, port: Int)? {
        guard text != "off" else { return nil }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw AgentError(.invalidInput, "\(option) '\(text.escapedForMessage)' is not HOST:PORT", hint: "e.g. \(example), or off")
        }
        let host = String(text[..<colon]).trimming(charactersIn: "[]")
        do {
            _ = try IPAddress(host)
        } catch {
            throw AgentError(
                .invalidInput, "\(option) '\(text.escapedForMessage)' does not name its host by IP address", hint: "e.g. \(example), or off"
            )
        }
        return (host, port)
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1): reachable from the node only.
    static func isLoopback(_ host: String) -> Bool {
        (try? IPAddress(host)).map(isLoopback) ?? false
    }

    static func isLoopback(_ address: IPAddress) -> Bool {
        switch address.family {
        case .v4: return address.bytes.first == 127
        case .v6:
            // ::1, and an IPv4-mapped loopback (::ffff:127.x.y.z) as a dual-stack socket sees one.
            return address.bytes == [UInt8](repeating: 0, count: 15) + [1]
                || (address.bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff][...] && address.bytes[12] == 127)
        }
    }

    static func peerIsLoopback(_ peer: sockaddr_storage) -> Bool {
        var peer = peer
        switch Int32(peer.ss_family) {
        case AF_INET:
            let a = withUnsafeBytes(of: &peer) { $0.load(as: sockaddr_in.self) }
            return isLoopback(IPAddress(family: .v4, bytes: withUnsafeBytes(of: a.sin_addr) { Array($0) }))
        case AF_INET6:
            let a = withUnsafeBytes(of: &peer) { $0.load(as: sockaddr_in6.self) }
            return isLoopback(IPAddress(family: .v6, bytes: withUnsafeBytes(of: a.sin6_addr) { Array($0) }))
        default:
            return false
        }
    }
}
