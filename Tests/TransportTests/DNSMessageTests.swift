import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import Transport

final class DNSMessageTests: XCTestCase {
    func testQueryEncoding() throws {
        let q = DNSMessage.query(id: 0xbeef, name: try DomainName("a.bc"), type: .a)
        XCTAssertEqual(q, [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 2, 0x62, 0x63, 0, 0, 1, 0, 1])
    }

    /// A response as dnsmasq sends it: the question, then a CNAME and an A record whose names are
    /// compression pointers.
    func response(rcode: UInt8, answers: [[UInt8]]) throws -> [UInt8] {
        var m: [UInt8] = [0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, UInt8(answers.count), 0, 0, 0, 0]
        m += [8] + Array("registry".utf8) + [5] + Array("local".utf8) + [0, 0, 1, 0, 1]
        for a in answers { m += a }
        return m
    }

    func testParsesAnswersWithCompressionAndCNAME() throws {
        let cname: [UInt8] = [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 4, 1, 0x78, 0xc0, 21]
        let a: [UInt8] = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 20]
        let aaaa: [UInt8] = [0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 30, 0, 16] + [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [1]
        let r = try DNSMessage.parse(try response(rcode: 0, answers: [cname, a, aaaa]))
        XCTAssertEqual(r.id, 0x1234)
        XCTAssertEqual(r.rcode, 0)
        XCTAssertEqual(r.addresses.map(\.description), ["127.0.0.20", "fd00::1"])
    }

    func testRcodeAndTruncatedInput() throws {
        XCTAssertEqual(try DNSMessage.parse(try response(rcode: 3, answers: [])).rcode, 3)
        let good = try response(rcode: 0, answers: [[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 20]])
        for cut in [3, 11, 20, good.count - 1] {
            XCTAssertThrowsError(try DNSMessage.parse(Array(good.prefix(cut))), "cut at \(cut)")
        }
        var query = good
        query[2] = 0x01  // QR bit clear: a query, not a response
        XCTAssertThrowsError(try DNSMessage.parse(query))
    }

    func testTimeoutAgainstASilentServer() throws {
        let silent = try LoopbackSocket(SOCK_DGRAM)  // receives, never answers
        let client = DNSClient(timeoutMilliseconds: 200, port: silent.port)
        XCTAssertEqual(client.query(try DomainName("x.local"), type: .a, server: try IPAddress("127.0.0.1")), .timeout)
    }

    func testHostResolverReadsEtcHostsFirstThenNameservers() throws {
        let dir = try makeTemporaryDirectory("resolver")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = HostFiles(root: try HostRoot(dir))
        try files.writeAtomically(try HostPath("/etc/hosts"), "127.0.0.1 localhost\n10.0.0.7 Registry.Local reg # pinned\n")
        let silent = try LoopbackSocket(SOCK_DGRAM)  // receives, never answers
        try files.writeAtomically(try HostPath("/etc/resolv.conf"), "search x\nnameserver 127.0.0.1\n")
        let resolver = HostResolver(files: files, client: DNSClient(timeoutMilliseconds: 150, port: silent.port))
        let pinned = try resolver.resolve(try DomainName("registry.local"))
        XCTAssertEqual(pinned.answer, .addresses([try IPAddress("10.0.0.7")]))
        XCTAssertEqual(pinned.source, "/etc/hosts")
        let other = try resolver.resolve(try DomainName("other.local"))
        XCTAssertEqual(other.answer, .timeout)
        // A timeout is not final: like Go, the next candidate of the search list is tried.
        XCTAssertEqual(other.asked, ["127.0.0.1", "other.local.x@127.0.0.1"])
    }

    func testResolvConfSearchListAndNdotsAsGoUsesThem() throws {
        let conf = ResolvConf(
            parsing:
                "domain old.example\nsearch svc.cluster.local cluster.local.\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions ndots:2 timeout:1\n"
        )
        XCTAssertEqual(conf.search, ["svc.cluster.local", "cluster.local"])
        XCTAssertEqual(conf.ndots, 2)
        XCTAssertEqual(conf.nameservers.map(\.description), ["127.0.0.53", "fe80::1"])
        // Fewer dots than ndots: the search list first.
        XCTAssertEqual(
            conf.candidates(for: try DomainName("registry.openfaas")).map(\.name),
            ["registry.openfaas.svc.cluster.local", "registry.openfaas.cluster.local", "registry.openfaas"])
        // Enough dots: as given first.
        XCTAssertEqual(conf.candidates(for: try DomainName("registry.openfaas.svc")).first?.name, "registry.openfaas.svc")
    }
}
