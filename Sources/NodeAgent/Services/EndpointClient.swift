import FoundationEssentials
import Glibc
import HostSystem
import Probes
import Transport
import Vocabulary

/// The health endpoint of a running agent, as `node-agent status` reads it: a URL
/// `http://IP[:PORT]` and one bounded GET per connection. Plain HTTP on an IP address, as the
/// endpoint serves it; no name is resolved.
struct EndpointClient {
    let address: IPAddress
    let port: UInt16
    /// The endpoint as the user is shown it: `http://127.0.0.1:9808`.
    let url: String
    var timeoutMilliseconds: Int32 = 5000

    static let maximumBodyBytes = 4 << 20

    /// Parses `--endpoint`: `http://IP[:PORT][/]`, an IPv6 address in brackets; `localhost` is 127.0.0.1.
    init(_ text: String) throws {
        func bad(_ why: String) -> AgentError {
            AgentError(
                .invalidInput, "--endpoint '\(text.escapedForMessage)' \(why)",
                hint: "give the agent's health endpoint, its --listen address, as http://IP:PORT: e.g. http://127.0.0.1:9808")
        }
        let lower = text.lowercased()
        guard !lower.hasPrefix("https://") else { throw bad("is HTTPS: the agent's endpoint speaks plain HTTP") }
        guard lower.hasPrefix("http://") else { throw bad("is not an http:// URL") }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw bad("has a path: the endpoint is the agent's address only (status reads its /status)")
        }
        guard !rest.contains("@") else { throw bad("has user information") }
        var host = rest
        var port: UInt16 = 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("has an IPv6 address without its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = UInt16(after.dropFirst()), p > 0 else { throw bad("has no valid port (1-65535)") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = UInt16(rest[rest.index(after: colon)...]), p > 0 else { throw bad("has no valid port (1-65535)") }
            port = p
        }
        guard !host.isEmpty else { throw bad("has no host") }
        let literal = host.lowercased() == "localhost" ? "127.0.0.1" : String(host)
        guard let ip = try? IPAddress(literal) else { throw bad("does not name its host by IP address") }
        address = ip
        self.port = port
        url = "http://\(ip.family == .v6 ? "[\(ip)]" : "\(ip)"):\(port)"
    }

    /// The endpoint for an agent run with `--listen HOST:PORT` (0.0.0.0 and :: are reached on
    /// loopback); nil for `off` or an address that is no HOST:PORT.
    static func forListen(_ listen: String) -> EndpointClient? {
        guard listen != "off", let colon = listen.lastIndex(of: ":") else { return nil }
        var host = String(listen[..<colon]).trimming(charactersIn: "[]")
        let port = listen[listen.index(after: colon)...]
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return try? EndpointClient("http://\(bracketed):\(port)")
    }

    /// Why a request got no answer: nothing listens, it timed out, or the peer is no agent.
    struct Unreachable: Error, CustomStringConvertible {
        var description: String
    }

    /// GET `path`: the status code and the body. The agent's one HTTP/1.1 client (Probes'; the
    /// answer read by HTTPWire's fuzzed reader, its framing checked, never trusted), one deadline
    /// for the whole exchange.
    func get(_ path: String) throws -> (status: Int, body: [UInt8]) {
        do {
            return try httpRequest(
                "GET", url: url + path, address: address, trustFile: nil, timeoutMilliseconds: timeoutMilliseconds,
                maximumBodyBytes: Self.maximumBodyBytes)
        } catch let error as SocketError {
            throw Unreachable(
                description: error.isTimeout ? "\(error.what) timed out after \(timeoutMilliseconds / 1000) s" : error.description)
        } catch let error as HTTPAnswerError {
            throw Unreachable(
                description: error.answered ? "its answer is not usable: \(error.reason)" : "it closed the connection without an answer")
        }
    }
}
