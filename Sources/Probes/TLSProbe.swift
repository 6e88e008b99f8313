import Foundation
import HostSystem
import TrustStore

/// Where a probe connects: the address found by DNS and the registry's name and port.
public struct ProbeTarget: Sendable {
    public var registry: RegistryAddress
    public var address: IPAddress
    public var timeoutMilliseconds: Int32

    public init(registry: RegistryAddress, address: IPAddress, timeoutMilliseconds: Int32 = 5000) {
        self.registry = registry
        self.address = address
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    var serverIsIP: Bool { if case .ip = registry.host { return true } else { return false } }
}

/// TLS handshake with the registry, verified with one trust file (the OS bundle, or the CA the
/// runtime reads from certs.d), SNI = registry host, SAN-only name check.
public enum TLSProbe {
    public static let expiryWarningDays = 14.0

    public static func run(name: String, target: ProbeTarget, trustFile: String, trustLabel: String, now: Date = Date()) -> CheckResult {
        var watch = Stopwatch()
        var details: [String: String] = ["address": "\(target.address):\(target.registry.port)", "trust": trustLabel]
        let connection: TLSConnection
        do {
            let socket = try Socket.connect(to: target.address, port: target.registry.port,
                                            type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: target.timeoutMilliseconds)
            watch.lap("connect")
            connection = try TLSConnection(socket: socket, trustFile: trustFile, serverName: target.registry.hostName,
                                           serverIsIP: target.serverIsIP)
            try connection.handshake()
            watch.lap("handshake")
        } catch let e as SocketError {
            watch.lap("connect")
            let why = e.isRefused ? "nothing listens on \(target.address):\(target.registry.port)"
                : e.isTimeout ? "\(target.address):\(target.registry.port) did not answer in time (is the ClusterIP reachable from the host?)"
                : e.description
            return CheckResult(name: name, outcome: .fail, reason: why, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        } catch {
            watch.lap("handshake")
            return CheckResult(name: name, outcome: .fail, reason: "\(error)", durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
        let code = connection.verifyCode
        let peer = connection.peerChain
        let verified = connection.verifiedChain
        details["verify_code"] = String(code)
        details["verify_text"] = TLSConnection.verifyText(code)
        details["peer_chain"] = peer.map(\.subject).joined(separator: " | ")
        details["peer_sha256"] = peer.first?.sha256Fingerprint ?? ""
        if let earliest = peer.map(\.notAfter).min() {
            details["earliest_cert_expiry"] = String(Int(earliest.timeIntervalSince1970))
        }
        guard code == 0 else {
            return CheckResult(name: name, outcome: .fail, reason: explain(code, target: target, trustLabel: trustLabel, peer: peer),
                               durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
        let chainExpiry = verified.map(\.notAfter).min() ?? now
        let daysLeft = chainExpiry.timeIntervalSince(now) / 86400
        details["verified_chain_expiry"] = String(Int(chainExpiry.timeIntervalSince1970))
        details["days_left"] = String(format: "%.1f", daysLeft)
        let outcome: CheckResult.Outcome = daysLeft < expiryWarningDays ? .warn : .pass
        let reason = "verified with \(trustLabel) as \(target.registry.hostName); chain valid for \(Int(daysLeft)) more days"
            + (outcome == .warn ? " (renew soon)" : "")
        return CheckResult(name: name, outcome: outcome, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
    }

    static func explain(_ code: Int, target: ProbeTarget, trustLabel: String, peer: [Certificate]) -> String {
        let text = TLSConnection.verifyText(code)
        switch code {
        case 10:
            let when = peer.first.map { ISO8601DateFormatter().string(from: $0.notAfter) } ?? "?"
            return "the registry's certificate expired (\(when)): renew it [OpenSSL \(code): \(text)]"
        case 9:
            return "the registry's certificate is not yet valid: check the clocks [OpenSSL \(code): \(text)]"
        case 2, 18, 19, 20, 21:
            let issuer = peer.first?.issuer ?? "?"
            return "the registry's certificate is signed by '\(issuer)', which \(trustLabel) does not trust: install that CA [OpenSSL \(code): \(text)]"
        case 62, 64:
            return "the registry's certificate is not valid for \(target.registry.hostName): add it to the certificate's subjectAltName (Go ignores the CN) [OpenSSL \(code): \(text)]"
        default:
            return "verification with \(trustLabel) failed [OpenSSL \(code): \(text)]"
        }
    }
}

/// `GET /v2/` over TLS: 200, or 401 with `WWW-Authenticate`, means the registry API is alive.
public enum RegistryProbe {
    public static let maximumHeaderBytes = 16 * 1024

    public static func run(target: ProbeTarget, trustFile: String, trustLabel: String) -> CheckResult {
        var watch = Stopwatch()
        var details: [String: String] = ["url": "https://\(target.registry.hostAndPort)/v2/", "address": target.address.description]
        do {
            let socket = try Socket.connect(to: target.address, port: target.registry.port,
                                            type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: target.timeoutMilliseconds)
            watch.lap("connect")
            let connection = try TLSConnection(socket: socket, trustFile: trustFile, serverName: target.registry.hostName,
                                               serverIsIP: target.serverIsIP)
            try connection.handshake()
            watch.lap("handshake")
            guard connection.verifyCode == 0 else {
                return CheckResult(name: "registry-api", outcome: .fail,
                                   reason: "not asked: the TLS certificate does not verify with \(trustLabel) (\(TLSConnection.verifyText(connection.verifyCode)))",
                                   durationSeconds: watch.elapsed, phases: watch.phases, details: details)
            }
            let hostHeader = target.registry.port == 443 ? target.registry.hostForURL : target.registry.hostAndPort
            let request = "GET /v2/ HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: node-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            try connection.write(Array(request.utf8))
            var received: [UInt8] = []
            while !received.containsHeaderEnd {
                guard received.count < maximumHeaderBytes else {
                    return CheckResult(name: "registry-api", outcome: .fail, reason: "the response headers exceed \(maximumHeaderBytes) bytes",
                                       durationSeconds: watch.elapsed, phases: watch.phases, details: details)
                }
                let chunk = try connection.read(max: maximumHeaderBytes - received.count)
                if chunk.isEmpty { break }
                received += chunk
            }
            watch.lap("request")
            let response = HTTPResponseHead(parsing: received)
            guard let response else {
                return CheckResult(name: "registry-api", outcome: .fail, reason: "the server did not answer HTTP",
                                   durationSeconds: watch.elapsed, phases: watch.phases, details: details)
            }
            details["status"] = String(response.status)
            let apiVersion = response.header("docker-distribution-api-version")
            details["api_version"] = apiVersion ?? ""
            let auth = response.header("www-authenticate")
            if response.status == 200 || (response.status == 401 && auth != nil) {
                if let auth { details["auth"] = String(auth.split(separator: " ").first ?? "") }
                var reason = response.status == 200 ? "GET /v2/ answered 200" : "GET /v2/ answered 401 with an authentication challenge (\(details["auth"] ?? ""))"
                reason += apiVersion == "registry/2.0" ? "; registry/2.0 API" : "; no Docker-Distribution-API-Version header"
                return CheckResult(name: "registry-api", outcome: .pass, reason: reason,
                                   durationSeconds: watch.elapsed, phases: watch.phases, details: details)
            }
            return CheckResult(name: "registry-api", outcome: .fail,
                               reason: "GET /v2/ answered \(response.status)\(response.status == 401 ? " without WWW-Authenticate" : ""): not a registry API",
                               durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        } catch let e as SocketError {
            watch.lap("connect")
            return CheckResult(name: "registry-api", outcome: .fail, reason: e.description, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        } catch {
            watch.lap("request")
            return CheckResult(name: "registry-api", outcome: .fail, reason: "\(error)", durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
    }
}

/// The status line and headers of an HTTP/1.x response.
struct HTTPResponseHead {
    var status: Int
    var headers: [(String, String)]

    init?(parsing bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let head = text.components(separatedBy: "\r\n\r\n").first ?? text
        var lines = head.components(separatedBy: "\r\n")
        guard !lines.isEmpty else { return nil }
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else { return nil }
        self.status = status
        headers = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
}

extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return true }
        return false
    }
}

#if canImport(Glibc)
import Glibc
#endif
