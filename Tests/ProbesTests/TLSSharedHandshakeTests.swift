import Foundation
import HostSystem
import TestSupport
import TrustStore
import Vocabulary
import XCTest

@testable import Probes
@testable import Transport

/// A run's TLS checks of the registry make one handshake: tls-os-trust's, whose peer chain
/// tls-runtime-trust (and tls-containers-trust) verify again with their trust, and registry-api
/// asks on it. What that must keep: each verdict is the one a handshake of its own would give.
final class TLSSharedHandshakeTests: XCTestCase {
    /// Go's pool of exactly the certificates of `file`.
    func pool(of file: String) throws -> TrustSource {
        let empty = try makeTemporaryDirectory("no-cert-dir")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        return .pool(
            GoTrustPool.systemRoots(files: HostFiles(root: try HostRoot("/")), environment: ["SSL_CERT_FILE": file, "SSL_CERT_DIR": empty]))
    }

    /// A handshake with `trust` to `name` at `port` (the server is `openssl s_server`).
    func handshake(port: UInt16, name: String, trust: TLSTrust, checkTime: Date? = nil) throws -> TLSConnection {
        let deadline = Date().addingTimeInterval(5)
        while true {
            do {
                let socket = try Socket.connect(
                    to: try IPAddress("127.0.0.1"), port: port, type: Int32(SOCK_STREAM.rawValue), timeoutMilliseconds: 5000)
                let c = try TLSConnection(socket: socket, trust: trust, serverName: name, serverIsIP: false, checkTime: checkTime)
                try c.handshake()
                return c
            } catch let e as SocketError where e.isRefused && Date() < deadline {
                usleep(50_000)  // the server is still starting
            }
        }
    }

    /// For servers sending the leaf alone and the leaf with its intermediate, names in and out of
    /// its SAN, trusts that verify it (a root, an intermediate as Go's anchor, the same root named
    /// in another encoding) and that do not, now and at times out of its validity: the code and
    /// the verified chain of the chain verified again on one connection are those of a handshake
    /// made with that trust and time.
    func testAChainVerifiedAgainIsWhatAHandshakeOfItsOwnVerifies() throws {
        let trusts: [(String, TrustSource)] = [
            ("root file", .file(try CertFixtures.path("chain-root.crt"))),
            ("intermediate file", .file(try CertFixtures.path("chain-intermediate.crt"))),
            ("root in another encoding", .file(try CertFixtures.path("chain-root-printable.crt"))),
            ("cross-signed root", .file(try CertFixtures.path("chain-cross-root.crt"))),
            ("other CA", .file(try CertFixtures.path("other-ca.crt"))),
            ("pool of the intermediate", try pool(of: try CertFixtures.path("chain-intermediate.crt"))),
            ("pool of the root", try pool(of: try CertFixtures.path("chain-root.crt"))),
            ("pool of another CA", try pool(of: try CertFixtures.path("other-ca.crt"))),
        ]
        // Each as the checks load it, and a bundle loaded whole (OpenSSL's own lookup, where the
        // index refuses a file: its verification is X509_verify_cert's, not the index's).
        let loaded =
            try trusts.map { ($0.0, try TLSTrust.cached($0.1)) }
            + [("root file loaded whole", try TLSTrust(trustFile: try CertFixtures.path("chain-root.crt"), indexed: false))]
        let times: [Date?] = [nil, Date().addingTimeInterval(90 * 86400), Date().addingTimeInterval(-3 * 86400)]
        let leaf = try CertFixtures.path("chain-leaf.crt")
        let key = try CertFixtures.path("chain-leaf.key")
        var codes = Set<Int>()
        for sendsChain in [false, true] {
            let port = UInt16.random(in: 30000...49999)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            server.arguments =
                ["s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", leaf, "-key", key]
                + (sendsChain ? ["-cert_chain", try CertFixtures.path("chain-intermediate.crt")] : [])
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer { server.terminate() }
            // The shared connection made with a file's trust, and with a pool's (every
            // certificate an anchor); every trust is checked on each.
            for (name, first) in [("localhost", trusts[0].1), ("localhost", trusts[5].1), ("registry.example", trusts[0].1)] {
                let shared = try handshake(port: port, name: name, trust: try TLSTrust.cached(first))
                for (label, trust) in loaded {
                    for time in times {
                        let own = try handshake(port: port, name: name, trust: trust, checkTime: time)
                        let again = shared.verify(with: trust, checkTime: time)
                        let what = "\(label), \(name), chain sent: \(sendsChain), time \(time.map { "\($0)" } ?? "now")"
                        XCTAssertEqual(again.code, own.verifyCode, what)
                        XCTAssertEqual(again.chain.map(\.sha256Fingerprint), own.verifiedChain.map(\.sha256Fingerprint), what)
                        codes.insert(own.verifyCode)
                    }
                }
            }
        }
        // The matrix reaches passes and each kind of failure the checks explain.
        for code in [0, 2, 9, 10, 20, 62] { XCTAssertTrue(codes.contains(code), "no case gave code \(code): \(codes.sorted())") }
    }

    /// A TLS server as the registry's end (Python's ssl): answers `GET /v2/` with 200 and the
    /// API version header, counts its handshakes in `count`; with `closeFirst`, it closes its
    /// first connection right after the handshake (as a server's idle timeout would).
    func startRegistry(_ dir: String, closeFirst: Bool) throws -> (Process, UInt16) {
        let port = UInt16.random(in: 30000...49999)
        let script = """
            import socket, ssl, sys, threading
            port, d, close_first = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[4], sys.argv[5])
            listener = socket.create_server(("127.0.0.1", port))
            n = 0
            while True:
                raw, _ = listener.accept()
                try:
                    conn = ctx.wrap_socket(raw, server_side=True)
                except Exception:
                    raw.close()
                    continue
                n += 1
                open(d + "/count", "w").write(str(n))
                if close_first and n == 1:
                    conn.close()
                    continue
                def answer(c):
                    try:
                        data = b""
                        while b"\\r\\n\\r\\n" not in data:
                            chunk = c.recv(4096)
                            if not chunk:
                                return
                            data += chunk
                        c.sendall(b"HTTP/1.1 200 OK\\r\\nDocker-Distribution-API-Version: registry/2.0\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
                    except Exception:
                        pass
                    finally:
                        c.close()
                threading.Thread(target=answer, args=(conn,), daemon=True).start()
            """
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [
            "-c", script, String(port), dir, closeFirst ? "1" : "0", try CertFixtures.path("chain-leaf.crt"),
            try CertFixtures.path("chain-leaf.key"),
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        return (server, port)
    }

    func handshakes(_ dir: String) -> Int { Int((try? String(contentsOfFile: dir + "/count", encoding: .utf8)) ?? "0") ?? 0 }

    /// The server's count once it reached `expected` (the server counts a handshake when its own
    /// side ends, which can come after the client's), or what it is after 2 s; then a moment
    /// more, so that a handshake too many is counted too.
    func handshakes(_ dir: String, reaching expected: Int) -> Int {
        let deadline = Date().addingTimeInterval(2)
        while handshakes(dir) < expected, Date() < deadline { usleep(20_000) }
        usleep(100_000)
        return handshakes(dir)
    }

    /// `startRegistry` in a folder of its own, both gone when the test ends: the folder (its
    /// handshake count) and the target to probe.
    func registry(closeFirst: Bool) throws -> (dir: String, target: ProbeTarget) {
        let dir = try makeTemporaryDirectory("shared-handshake")
        let (server, port) = try startRegistry(dir, closeFirst: closeFirst)
        addTeardownBlock {
            server.terminate()
            try? FileManager.default.removeItem(atPath: dir)
        }
        return (dir, ProbeTarget(registry: try RegistryAddress("localhost:\(port)"), address: try IPAddress("127.0.0.1")))
    }

    /// tls-os-trust, tls-runtime-trust and registry-api as a run makes them: one handshake in
    /// all, each verdict as before (OpenSSL's file of the intermediate fails, code 2; Go's pool
    /// of it passes, the intermediate an anchor).
    func testTheRegistrysTLSChecksAndItsAPIShareOneHandshake() throws {
        let (dir, target) = try registry(closeFirst: false)
        var shared: TLSConnection?
        let os = untilListening {
            TLSProbe.run(
                name: "tls-os-trust", target: target, trust: .file(try! CertFixtures.path("chain-intermediate.crt")),
                trustLabel: "the intermediate as a file", on: &shared)
        }
        XCTAssertEqual(os.outcome, .fail, os.reason)
        XCTAssertEqual(os.details["verify_code"], "2", "\(os.details)")
        let runtimeTrust = try pool(of: try CertFixtures.path("chain-intermediate.crt"))
        let runtime = TLSProbe.run(
            name: "tls-runtime-trust", target: target, trust: runtimeTrust, trustLabel: "Go's pool of the intermediate", on: &shared)
        XCTAssertEqual(runtime.outcome, .pass, runtime.reason)
        XCTAssertEqual(runtime.phases.map(\.name), ["load trust", "verify"])
        let api = RegistryProbe.run(target: target, trust: runtimeTrust, trustLabel: "Go's pool", connection: shared)
        XCTAssertEqual(api.outcome, .pass, api.reason)
        XCTAssertEqual(api.details["api_version"], "registry/2.0")
        XCTAssertEqual(handshakes(dir), 1, "one handshake for the three checks")

        // A trust the chain does not verify with: refused on the connection, no request, no other connection.
        var refused: TLSConnection?
        _ = TLSProbe.run(name: "tls-os-trust", target: target, trust: runtimeTrust, trustLabel: "pool", on: &refused)
        let other = RegistryProbe.run(
            target: target, trust: .file(try CertFixtures.path("other-ca.crt")), trustLabel: "the other CA", connection: refused)
        XCTAssertEqual(other.outcome, .fail, other.reason)
        XCTAssertTrue(other.reason.contains("does not verify with the other CA"), other.reason)
        XCTAssertEqual(handshakes(dir, reaching: 2), 2)
    }

    /// A server that closed the check's connection before registry-api's request (an idle
    /// timeout): the request is made again on a connection of its own and its answer judged.
    func testARequestTheCheckConnectionDoesNotAnswerIsAskedOnAFreshOne() throws {
        let (dir, target) = try registry(closeFirst: true)
        // The server sends the leaf alone: Go's pool of the intermediate verifies it.
        let trust = try pool(of: try CertFixtures.path("chain-intermediate.crt"))
        var shared: TLSConnection?
        let tls = untilListening { TLSProbe.run(name: "tls-runtime-trust", target: target, trust: trust, trustLabel: "pool", on: &shared) }
        XCTAssertEqual(tls.outcome, .pass, tls.reason)
        usleep(100_000)  // the server has closed it
        let api = RegistryProbe.run(target: target, trust: trust, trustLabel: "Go's pool", connection: shared)
        XCTAssertEqual(api.outcome, .pass, api.reason)
        XCTAssertEqual(handshakes(dir), 2)
        XCTAssertTrue(api.phases.map(\.name).contains("no answer on the check's connection"), "\(api.phases)")
    }
}
