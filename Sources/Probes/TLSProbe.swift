import FoundationEssentials
import Glibc
import HostSystem
import Transport
import TrustStore
import Vocabulary

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
    public static func run(
        name: String, target: ProbeTarget, trust trustSource: TrustSource, trustLabel: String,
        warningDays: Double = 14, now: Date = Date()
    ) -> CheckResult {
        var connection: TLSConnection?
        return run(
            name: name, target: target, trust: trustSource, trustLabel: trustLabel, warningDays: warningDays, now: now, on: &connection)
    }

    /// As `run`, on `connection` where the caller has one to `target` (its handshake done for
    /// another check): its peer's chain verified again with this trust, no second handshake.
    /// Where there is none, the handshake is made and its connection left there for the next.
    package static func run(
        name: String, target: ProbeTarget, trust trustSource: TrustSource, trustLabel: String,
        warningDays: Double = 14, now: Date = Date(), on shared: inout TLSConnection?
    ) -> CheckResult {
        var watch = Stopwatch()
        var details: [String: String] = ["address": "\(target.address):\(target.registry.port)", "trust": trustLabel]
        let connection: TLSConnection
        var code: Int
        var verified: [Certificate]
        do {
            let trust = try TLSTrust.cached(trustSource)
            watch.lap("load trust")
            if let shared {
                connection = shared
                (code, verified) = connection.verify(with: trust)
                watch.lap("verify")
            } else {
                let socket = try Socket.connect(
                    to: target.address, port: target.registry.port,
                    type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: target.timeoutMilliseconds)
                watch.lap("connect")
                connection = try TLSConnection(
                    socket: socket, trust: trust, serverName: target.registry.hostName, serverIsIP: target.serverIsIP)
                try connection.handshake()
                watch.lap("handshake")
                (code, verified) = (connection.verifyCode, connection.verifiedChain)
                shared = connection
            }
            var early: [String] = []
            // Not yet valid (OpenSSL 9): verified once more with the clock moved ahead by the
            // tolerance. A chain that verifies then is a clock skew of minutes, not a wrong
            // certificate: said as a warning (Go, and so containerd, refuses it until then;
            // registry-api and runtime-pull judge that), not as a broken chain.
            if code == 9 {
                let ahead = connection.verify(with: trust, checkTime: now.addingTimeInterval(CertificateParser.notBeforeTolerance))
                if ahead.code == 0, ahead.chain.allSatisfy({ $0.notAfter > now }) {
                    early = ahead.chain.compactMap { CertificateParser.earlyWarning($0, what: "certificate", now: now) }
                    (code, verified) = (0, ahead.chain)
                    details["not_yet_valid"] = "within tolerance"
                }
            }
            return judge(
                name: name, connection: connection, code: code, verified: verified, early: early, target: target,
                trustLabel: trustLabel, warningDays: warningDays, now: now, watch: watch, details: details)
        } catch let e as SocketError {
            watch.lap("connect")
            return CheckResult(
                name: name, outcome: .fail, reason: unreachable(e, target: target), durationSeconds: watch.elapsed, phases: watch.phases,
                details: details)
        } catch {
            watch.lap("handshake")
            return CheckResult(
                name: name, outcome: .fail, reason: "\(error)", durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
    }

    /// The outcome of one verification of the peer's chain.
    private static func judge(
        name: String, connection: TLSConnection, code: Int, verified: [Certificate], early: [String], target: ProbeTarget,
        trustLabel: String, warningDays: Double, now: Date, watch: Stopwatch, details: [String: String]
    ) -> CheckResult {
        var details = details
        let peer = connection.peerChain
        details["verify_code"] = String(code)
        details["verify_text"] = TLSConnection.verifyText(code)
        details["peer_chain"] = peer.map(\.subject).joined(separator: " | ")
        details["peer_sha256"] = peer.map(\.sha256Fingerprint).joined(separator: " | ")
        if let earliest = peer.map(\.notAfter).min() {
            details["earliest_cert_expiry"] = String(Int(earliest.timeIntervalSince1970))
        }
        guard code == 0 else {
            return CheckResult(
                name: name, outcome: .fail, reason: explain(code, target: target, trustLabel: trustLabel, peer: peer),
                durationSeconds: watch.elapsed, phases: watch.phases, details: details)
        }
        let chainExpiry = verified.map(\.notAfter).min() ?? now
        let daysLeft = chainExpiry.timeIntervalSince(now) / 86400
        details["verified_chain_expiry"] = String(Int(chainExpiry.timeIntervalSince1970))
        details["days_left"] = daysLeft.fixed(1)
        let outcome: CheckResult.Outcome = daysLeft < warningDays || !early.isEmpty ? .warn : .pass
        let reason =
            "verified with \(trustLabel) as \(target.registry.hostName); chain valid for \(Int(daysLeft)) more days"
            + (daysLeft < warningDays ? " (less than \(Int(warningDays)) days: renew soon)" : "")
            + early.map { "; " + $0 }.joined()
        return CheckResult(
            name: name, outcome: outcome, reason: reason, durationSeconds: watch.elapsed, phases: watch.phases, details: details)
    }

    /// Why no TLS session came about: nothing listens, no answer, or no handshake on the port.
    static func unreachable(_ e: SocketError, target: ProbeTarget) -> String {
        let endpoint = "\(target.address):\(target.registry.port)"
        if e.isRefused { return "nothing listens on \(endpoint)" }
        if e.isTimeout && e.what == "connect" { return "\(endpoint) did not answer in time (is the ClusterIP reachable from the host?)" }
        if e.isTimeout {
            return
                "\(endpoint) accepted the connection but no TLS handshake came within the timeout: the port does not speak TLS, or the server stalls"
        }
        return e.description
    }

    static func explain(_ code: Int, target: ProbeTarget, trustLabel: String, peer: [Certificate]) -> String {
        let text = TLSConnection.verifyText(code)
        switch code {
        case 10:
            let when = peer.first.map { $0.notAfter.iso8601 } ?? "?"
            return "the registry's certificate expired (\(when)): renew it [OpenSSL \(code): \(text)]"
        case 9:
            return "the registry's certificate is not yet valid: check the clocks [OpenSSL \(code): \(text)]"
        case 2, 18, 19, 20, 21:
            let issuer = peer.first?.issuer ?? "?"
            return
                "the registry's certificate is signed by '\(issuer)', which \(trustLabel) does not trust: install that CA [OpenSSL \(code): \(text)]"
        case 62, 64:
            return
                "the registry's certificate is not valid for \(target.registry.hostName): add it to the certificate's subjectAltName (Go ignores the CN) [OpenSSL \(code): \(text)]"
        default:
            return "verification with \(trustLabel) failed [OpenSSL \(code): \(text)]"
        }
    }
}
