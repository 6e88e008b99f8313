import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Containerd
@testable import Probes

/// A light run (ProbeSettings.lightAt, `run`'s reconciles between full proofs) against a real
/// listener and a real DNS server on loopback: the registry's listener is checked with a TCP
/// connect that sends nothing (no TLS ClientHello, no request), kube-dns is asked one question
/// of the proven address's family, and a stopped listener fails the run.
final class LightRunTests: XCTestCase {
    /// A TCP listener on 127.0.0.1 that counts the connections it accepts and the bytes they send.
    final class Listener: @unchecked Sendable {
        let socket: LoopbackSocket
        var port: UInt16 { socket.port }
        private let lock = NSLock()
        private var counts = (connections: 0, bytes: 0)

        init() throws {
            socket = try LoopbackSocket(SOCK_STREAM)
            let fd = socket.fd
            guard listen(fd, 8) == 0 else { throw AgentError(.io, "cannot listen on loopback") }
            Thread.detachNewThread { [self] in
                while true {
                    let c = accept(fd, nil, nil)
                    // Closed by the thread that accepts on it once `stop` shut it down, so its
                    // number is never another listener's while this thread still accepts.
                    guard c >= 0 else {
                        socket.close()
                        return
                    }
                    lock.withLock { counts.connections += 1 }
                    Thread.detachNewThread { [self] in
                        var buffer = [UInt8](repeating: 0, count: 4096)
                        while true {
                            let n = read(c, &buffer, buffer.count)
                            if n <= 0 { break }
                            lock.withLock { counts.bytes += n }
                        }
                        close(c)
                    }
                }
            }
        }

        /// Connections accepted and bytes received, once the client's close has been read.
        func seen() -> (connections: Int, bytes: Int) {
            Thread.sleep(forTimeInterval: 0.2)
            return lock.withLock { counts }
        }

        func stop() {
            shutdown(socket.fd, Int32(SHUT_RDWR))
        }
    }

    /// A DNS server on ADDRESS:53 (loopback) that records the type of each question and answers
    /// A with 127.0.0.1 and AAAA with ::1.
    final class DNSServer: @unchecked Sendable {
        let fd: Int32
        let address: IPAddress
        private let lock = NSLock()
        private var types: [UInt16] = []

        init(_ text: String) throws {
            address = try IPAddress(text)
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            self.fd = fd
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = UInt16(53).bigEndian
            sa.sin_addr.s_addr = inet_addr(text)
            let bound = withUnsafePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard bound else {
                close(fd)
                throw XCTSkip("cannot bind \(text):53 (needs root and a free loopback port 53)")
            }
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 512)
                var from = sockaddr_storage()
                while true {
                    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let n = withUnsafeMutablePointer(to: &from) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &len) }
                    }
                    guard n > 12 else { return }
                    var reply = Self.answer(Array(buffer[0..<n]))
                    lock.withLock { types.append(UInt16(reply.removeLast()) | UInt16(reply.removeLast()) << 8) }
                    _ = withUnsafePointer(to: &from) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, len) }
                    }
                }
            }
        }

        /// The reply to `query` (its one question answered), then the question's type (2 bytes).
        static func answer(_ query: [UInt8]) -> [UInt8] {
            var end = 12
            while end < query.count, query[end] != 0 { end += Int(query[end]) + 1 }
            let question = Array(query[12..<min(end + 5, query.count)])
            let type = question.count >= 4 ? UInt16(question[question.count - 4]) << 8 | UInt16(question[question.count - 3]) : 0
            let data: [UInt8] = type == 1 ? [127, 0, 0, 1] : type == 28 ? [UInt8](repeating: 0, count: 15) + [1] : []
            var reply = Array(query[0..<2]) + [0x81, 0x80, 0, 1, 0, data.isEmpty ? 0 : 1, 0, 0, 0, 0] + question
            if !data.isEmpty {
                reply += [0xC0, 0x0C, UInt8(type >> 8), UInt8(type & 0xff), 0, 1, 0, 0, 0, 30, 0, UInt8(data.count)] + data
            }
            return reply + [UInt8(type >> 8), UInt8(type & 0xff)]
        }

        /// The types asked so far (1: A, 28: AAAA).
        func asked() -> [UInt16] { lock.withLock { types } }

        deinit { close(fd) }
    }

    /// A light run of the registry `registry.test:PORT` at `address`, kube-dns at `dns`, with
    /// the cluster's `word` on kube-dns (KubeDNSWordTests) or none.
    static func lightRun(
        port: UInt16, at address: String, dns: IPAddress, word: (ready: Int, said: String)? = nil
    ) throws -> [CheckResult] {
        let dir = try makeTemporaryDirectory("light-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var suite = ProbeSuite(files: HostFiles(root: try HostRoot(dir)), resolvedLookup: nil)
        suite.runtimeProcesses = []
        suite.runningContainerd = []
        let trust = RegistryTrustLocations(
            osBundle: try HostPath("/etc/ssl/certs/ca-certificates.crt"), runtimeCAFiles: [],
            runtimeHosts: ContainerdHosts(folder: nil, hostsTOML: nil, hosts: []), osStoreFiles: [], note: nil, remedy: nil)
        var settings = ProbeSettings(
            registry: try RegistryAddress("registry.test:\(port)"), clusterDNS: dns, trust: trust, timeoutMilliseconds: 1000)
        settings.lightAt = try IPAddress(address)
        settings.kubeDNSWord = word
        return suite.run(settings)
    }

    func lightRun(port: UInt16, at address: String, dns: IPAddress) throws -> [CheckResult] {
        try Self.lightRun(port: port, at: address, dns: dns)
    }

    /// The light run connects to the registry's listener and sends it nothing: no TLS
    /// handshake, no request; its only network checks are `tcp` and one DNS question. Broken
    /// (the light run's registry-api, a TLS handshake and GET /v2/ as before), the listener
    /// receives a ClientHello and the run has a registry-api check.
    func testALightRunConnectsToTheRegistryAndSendsItNothing() throws {
        let listener = try Listener()
        defer { listener.stop() }
        let dns = try DNSServer("127.0.93.7")
        let checks = try lightRun(port: listener.port, at: "127.0.0.1", dns: dns.address)
        let seen = listener.seen()
        XCTAssertEqual(seen.connections, 1, "one connection")
        XCTAssertEqual(seen.bytes, 0, "no ClientHello, no request: the registry does no TLS for a light run")
        XCTAssertFalse(checks.contains { $0.name.hasPrefix("tls") || $0.name == "registry-api" }, "\(checks.map(\.name))")
        let tcp = try XCTUnwrap(checks.first { $0.name == "tcp" }, "\(checks.map(\.name))")
        XCTAssertEqual(tcp.outcome, .pass, tcp.reason)
        XCTAssertEqual(tcp.reason, "connected to the registry at 127.0.0.1:\(listener.port) (light check)")
        XCTAssertEqual(tcp.details["address"], "127.0.0.1")
        XCTAssertEqual(checks.first { $0.name == "dns-cluster" }?.outcome, .pass)
    }

    /// kube-dns is asked one question, of the proven address's family: A for an IPv4 address,
    /// AAAA for an IPv6 one. Broken (A, then AAAA when A has none, as a full proof asks), an IPv6
    /// registry costs kube-dns two questions per light run.
    func testALightRunAsksKubeDNSOneQuestionOfTheProvenFamily() throws {
        let listener = try Listener()
        defer { listener.stop() }
        let dns = try DNSServer("127.0.93.8")
        _ = try lightRun(port: listener.port, at: "127.0.0.1", dns: dns.address)
        XCTAssertEqual(dns.asked(), [1], "one A question")
        // An IPv6 registry: the AAAA question only (the connect to ::1 may fail where loopback has
        // no IPv6; the question is what is counted here).
        let six = try lightRun(port: listener.port, at: "::1", dns: dns.address)
        XCTAssertEqual(dns.asked(), [1, 28], "then one AAAA question")
        XCTAssertEqual(six.first { $0.name == "dns-cluster" }?.details["asked"], "AAAA")
    }

    /// A registry that stops (nothing listens at the proven address) fails the light run's `tcp`
    /// check, refused: the reconciler proves in full at once (ReconcilerTests). Broken (the light
    /// run without a registry check), the run passes.
    func testALightRunFailsWhenTheRegistryStops() throws {
        let listener = try Listener()
        let dns = try DNSServer("127.0.93.9")
        listener.stop()
        let checks = try lightRun(port: listener.port, at: "127.0.0.1", dns: dns.address)
        let tcp = try XCTUnwrap(checks.first { $0.name == "tcp" })
        XCTAssertEqual(tcp.outcome, .fail)
        // Its own words, not the full proof's ("the registry's name resolves but ..."): the light
        // check resolved nothing, it connected to the proven address.
        XCTAssertEqual(tcp.reason, "the registry refused a connection at 127.0.0.1:\(listener.port) (nothing listens; light check)")
        XCTAssertFalse(Readiness.isReady(checks))
    }
}
