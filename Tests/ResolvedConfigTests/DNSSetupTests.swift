import HostSystem
import ResolvedConfig
import TestSupport
import Vocabulary
import XCTest

/// hosts mode's /etc/hosts on a host root, written by a plan and taken back by `removeAll` (what
/// `node-agent uninstall` runs): the host gets back the file as it was, or no file where it had none.
final class DNSSetupHostsTests: XCTestCase {
    let desired = DNSDesired(
        mode: .hosts, clusterDNS: try! IPAddress("10.43.0.10"), domain: try! DomainName("svc.cluster.local"),
        registryHost: try! DomainName("registry-service.openfaas.svc.cluster.local"))
    let host = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 252, resolvedOnBus: true)

    /// The hosts mode's plan for the root as it is, performed; the file's text after it.
    func bootstrapHostsMode(_ root: TemporaryHostRoot) throws -> String? {
        var facts = DNSFacts(host: host, clusterAnswer: .addresses([try IPAddress("10.43.12.7")]))
        if let text = try root.files.readString(ResolvedFiles.hosts) { facts.files[ResolvedFiles.hosts] = text }
        facts.mode = DNSModeChoice(asked: .hosts, host: host, registry: desired.registryHost)
        try FileChange.apply(try DNSPlan.make(facts, desired).fileChanges, to: root.files)
        return try root.files.readString(ResolvedFiles.hosts)
    }

    /// `removeAll` with no link, no bus and no other file of the agent's: only /etc/hosts.
    func uninstall(_ root: TemporaryHostRoot, dryRun: Bool = false) throws -> [String] {
        try DNSSetup(files: root.files, runner: RecordingRunner(), bus: nil, busAddress: "unix:path=/nonexistent").removeAll(
            dryRun: dryRun)
    }

    func testAnEtcHostsTheAgentCreatedGoesWithItsLines() throws {
        let root = try TemporaryHostRoot("hosts-created")
        let written = try bootstrapHostsMode(root)
        XCTAssertEqual(written?.hasSuffix("10.43.12.7 registry-service.openfaas.svc.cluster.local # node-agent\n"), true, written ?? "none")
        // A dry run says the same and changes nothing.
        let said = try uninstall(root, dryRun: true)
        XCTAssertEqual(said, ["remove /etc/hosts: the agent created it, and its lines were all it held"])
        XCTAssertEqual(try root.files.readString(ResolvedFiles.hosts), written)
        XCTAssertEqual(try uninstall(root), said)
        XCTAssertNil(try root.files.readString(ResolvedFiles.hosts), "the host had no /etc/hosts")
        XCTAssertEqual(try uninstall(root), [], "nothing left")
    }

    func testAnEtcHostsThatWasThereStaysAsItWas() throws {
        for before in ["", "\n", "127.0.0.1\tlocalhost  \n# the admin's\n\n::1 localhost ip6-localhost\n"] {
            let root = try TemporaryHostRoot("hosts-kept")
            try root.put("/etc/hosts", before)
            XCTAssertNotEqual(try bootstrapHostsMode(root), before)
            XCTAssertEqual(try uninstall(root), ["remove the agent's lines from /etc/hosts"])
            XCTAssertEqual(try root.files.readString(ResolvedFiles.hosts), before, "byte for byte")
        }
    }

    /// Lines someone else added to the file the agent created keep it: they stay as they are,
    /// the agent's line saying it created the file goes with the agent's own.
    func testOthersLinesInTheFileTheAgentCreatedKeepIt() throws {
        let root = try TemporaryHostRoot("hosts-shared")
        let written = try XCTUnwrap(try bootstrapHostsMode(root))
        try root.put("/etc/hosts", written + "10.0.0.9 db.internal\n")
        XCTAssertEqual(try uninstall(root), ["remove the agent's lines from /etc/hosts"])
        XCTAssertEqual(try root.files.readString(ResolvedFiles.hosts), "10.0.0.9 db.internal\n")
    }
}
