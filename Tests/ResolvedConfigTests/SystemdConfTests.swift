import HostSystem
import TestSupport
import Vocabulary
import XCTest

@testable import ResolvedConfig

/// The resolved.conf parser and renderer. That resolved reads the files the same way is proven
/// against the real resolved in DNSModesIntegrationTests.
final class SystemdConfTests: XCTestCase {
    let sample = """
        #  This file is part of systemd.
        ;  another comment style
        [Resolve]
        # the cluster's resolver, kept
        DNS=10.0.0.2 10.0.0.3 \\
          # a comment inside a continuation
          10.0.0.4
        Vendor-Key = something
        FallbackDNS=
        Domains=example.internal

        [Other]
        DNS=not-resolve
        garbage line without equals
        """

    func testRenderingGivesBackTheTextByteForByte() {
        for text in [sample, sample + "\n", "", "\n", "[Resolve]", "DNS=1.1.1.1\r\n", "\n\n# only\n", "[Resolve]\nDNS=a\\\n"] {
            XCTAssertEqual(SystemdConf(parsing: text).text, text, text.debugDescription)
        }
    }

    func testValuesFollowSystemdSyntax() {
        let conf = SystemdConf(parsing: sample)
        XCTAssertEqual(conf.assignments("DNS", section: "Resolve"), ["10.0.0.2 10.0.0.3  10.0.0.4"])
        XCTAssertEqual(conf.assignments("Vendor-Key", section: "Resolve"), ["something"])
        XCTAssertEqual(conf.assignments("FallbackDNS", section: "Resolve"), [""])
        XCTAssertEqual(conf.assignments("DNS", section: "Other"), ["not-resolve"])
        XCTAssertEqual(conf.assignments("DNS", section: "Missing"), [])
    }

    func testSettingAKeyKeepsCommentsAndForeignKeysWhereTheyAre() {
        var conf = SystemdConf(parsing: sample + "\n")
        conf.set("Domains", "~svc.cluster.local", section: "Resolve")
        conf.set("DNSStubListener", "yes", section: "Resolve")
        conf.set("Extra", "1", section: "New")
        let expected =
            sample.replacingOccurrences(of: "Domains=example.internal", with: "Domains=~svc.cluster.local\nDNSStubListener=yes")
            + "\n[New]\nExtra=1\n"
        XCTAssertEqual(conf.text, expected)
        // A key set twice keeps its first place and loses the later copies.
        var twice = SystemdConf(parsing: "[Resolve]\nDNS=a\n# between\nDNS=b\n")
        twice.set("DNS", "c", section: "Resolve")
        XCTAssertEqual(twice.text, "[Resolve]\nDNS=c\n# between\n")
    }

    func testTheAgentsFilesAreRenderedThroughTheSameModel() throws {
        let text = ResolvedFiles.renderDropIn(clusterDNS: try IPAddress("10.96.0.10"), domain: try DomainName("svc.cluster.local"))
        XCTAssertEqual(text, "\(ResolvedFiles.marker)\n[Resolve]\nDNS=10.96.0.10\nDomains=~svc.cluster.local\n")
        let parsed = SystemdConf(parsing: text)
        XCTAssertEqual(parsed.assignments("Domains", section: "Resolve"), ["~svc.cluster.local"])
        let delegate = ResolvedFiles.renderDelegate(clusterDNS: try IPAddress("fd00::10"), domain: try DomainName("svc.cluster.local"))
        XCTAssertEqual(SystemdConf(parsing: delegate).assignments("DNS", section: "Delegate"), ["fd00::10"])
        // Routing-only, as the link's domain: a bare one would be a search domain too.
        XCTAssertEqual(SystemdConf(parsing: delegate).assignments("Domains", section: "Delegate"), ["~svc.cluster.local"])
    }

    /// Random mixes of every kind of line: rendering is always the input, and parsing never
    /// crashes (a property test; inputs counted in the output).
    func testRoundTripHoldsForRandomFiles() {
        let pieces = [
            "[Resolve]", "[Other]", "[", "]", "DNS=1.1.1.1", "DNS=", " Domains = ~a.b ", "# c", "; c", "", " ", "\t",
            "x\\", "=", "==", "Key=v\\", "\r", "ünïcødé=∆", "[Resolve] trailing", "\\",
        ]
        var rng = SystemRandomNumberGenerator()
        var tried = 0
        for _ in 0..<5_000 {
            let n = Int.random(in: 0...12, using: &rng)
            let text =
                (0..<n).map { _ in pieces.randomElement(using: &rng)! }.joined(separator: Bool.random(using: &rng) ? "\n" : "")
                + (Bool.random(using: &rng) ? "\n" : "")
            let conf = SystemdConf(parsing: text)
            XCTAssertEqual(conf.text, text, text.debugDescription)
            _ = conf.assignments("DNS", section: "Resolve")
            tried += 1
        }
        print("SystemdConf round trip: \(tried) random files, 0 mismatches")
    }

    func testEffectiveSettingsFollowResolvedsOrderPrecedenceAndResets() throws {
        let root = try makeTemporaryDirectory("resolvedconf")
        func write(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(
                atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + path, atomically: true, encoding: .utf8)
        }
        try write("/etc/systemd/resolved.conf", "[Resolve]\nDNS=192.0.2.1\n#DNS=192.0.2.99\nDNSStubListener=yes\n")
        try write("/usr/lib/systemd/resolved.conf", "[Resolve]\nDNS=192.0.2.50\n")  // hidden by /etc's
        try write("/run/systemd/resolved.conf.d/20-b.conf", "[Resolve]\nDNS=10.96.0.10:53 [fd00::10]:53%eth0#kube-dns\n")
        try write("/usr/lib/systemd/resolved.conf.d/10-a.conf", "[Resolve]\nDNS=192.0.2.2\n")  // hidden by /etc's 10-a
        try write("/etc/systemd/resolved.conf.d/10-a.conf", "[Resolve]\nDNS=192.0.2.3\n")
        try write("/etc/systemd/resolved.conf.d/README", "[Resolve]\nDNS=192.0.2.9\n")  // not *.conf
        try write("/etc/systemd/resolved.conf.d/30-c.conf", "[Other]\nDNS=192.0.2.8\n[Resolve]\nDNSStubListener=no\n")
        let conf = try ResolvedConfiguration(files: HostFiles(root: try HostRoot(root)))
        XCTAssertEqual(
            conf.files,
            [
                "/etc/systemd/resolved.conf", "/etc/systemd/resolved.conf.d/10-a.conf",
                "/run/systemd/resolved.conf.d/20-b.conf", "/etc/systemd/resolved.conf.d/30-c.conf",
            ])
        XCTAssertEqual(conf.dns, ["192.0.2.1", "192.0.2.3", "10.96.0.10:53", "[fd00::10]:53%eth0#kube-dns"])
        XCTAssertEqual(conf.dnsAddresses.map(\.description), ["192.0.2.1", "192.0.2.3", "10.96.0.10", "fd00::10"])
        XCTAssertEqual(
            conf.dnsFiles,
            ["/etc/systemd/resolved.conf", "/etc/systemd/resolved.conf.d/10-a.conf", "/run/systemd/resolved.conf.d/20-b.conf"])
        XCTAssertFalse(conf.stubListenerOn)

        try write("/run/systemd/resolved.conf.d/40-reset.conf", "[Resolve]\nDNS=\nDNS=198.51.100.1\nDNSStubListener=udp\n")
        let reset = try ResolvedConfiguration(files: HostFiles(root: try HostRoot(root)))
        XCTAssertEqual(reset.dns, ["198.51.100.1"])
        XCTAssertEqual(reset.dnsFiles, ["/run/systemd/resolved.conf.d/40-reset.conf"])
        XCTAssertTrue(reset.stubListenerOn)
    }
}
