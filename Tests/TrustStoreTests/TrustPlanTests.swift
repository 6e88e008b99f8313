import Containerd
import HostSystem
import TestSupport
import TrustStore
import Vocabulary
import XCTest

/// The trust plan from facts alone: no host root, no file read. Each test states a host as a
/// `TrustFacts` value and checks the exact changes planned.
final class TrustPlanTests: XCTestCase {
    let registry = try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443")
    let certsD = ContainerdRegistryConfig.parse(
        "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n")
    var certs: [Certificate] = []

    override func setUpWithError() throws {
        certs = try CertificateParser.parseCAFile(try CertFixtures.bytes("two-cas.pem"), source: "two-cas.pem")
    }

    func path(_ p: String) -> HostPath { try! HostPath(p) }

    /// A host where every file the plan would write is already as wanted.
    func settledFacts() throws -> TrustFacts {
        let plan = try TrustInstaller.plan(
            TrustFacts(layout: .debian, containerd: certsD), registry: registry, certificates: certs, refreshMode: .tool)
        var facts = TrustFacts(
            layout: .debian, bundle: certs.map(\.pem).joined(), containerd: certsD)
        for change in plan.fileChanges where change.path.parent == OSTrustLayout.debian.anchors {
            facts.anchors[change.path.lastComponent] = change.contents
        }
        for change in plan.fileChanges where change.path.parent != OSTrustLayout.debian.anchors {
            facts.runtimeFiles[change.path] = change.contents
        }
        return facts
    }

    func testAnEmptyHostGetsTheCAsInTheStoreAndBothCertsDFoldersOfPort443() throws {
        let plan = try TrustInstaller.plan(
            TrustFacts(layout: .debian, containerd: certsD), registry: registry, certificates: certs, refreshMode: .tool)
        let prefix = OSTrustLayout.debian.filePrefix(registry)
        XCTAssertEqual(
            plan.fileChanges.map(\.path.path),
            [
                "/usr/local/share/ca-certificates/node-agent/\(prefix)1.crt",
                "/usr/local/share/ca-certificates/node-agent/\(prefix)2.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/ca.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/hosts.toml",
            ])
        XCTAssertEqual(Set(plan.fileChanges.map(\.kind)), [.create])
        XCTAssertEqual(plan.refresh, ["update-ca-certificates"])
        XCTAssertEqual(plan.fileChanges[0].contents, Array((HostFiles.ownershipMarker + "\n" + certs[0].pem).utf8))
        let toml = String(decoding: plan.fileChanges[3].contents, as: UTF8.self)
        XCTAssertTrue(toml.hasPrefix(HostFiles.ownershipMarker + "\n"), toml)
        XCTAssertTrue(toml.contains("ca = \"/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt\""), toml)
    }

    func testAHostAlreadyAsWantedNeedsNothing() throws {
        let plan = try TrustInstaller.plan(try settledFacts(), registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertEqual(plan.fileChanges, [])
        XCTAssertNil(plan.refresh)
        XCTAssertTrue(plan.isEmpty)
    }

    func testABundleWithoutTheCAIsRebuiltEvenWhenTheFilesAreInPlace() throws {
        var facts = try settledFacts()
        facts.bundle = ""
        let plan = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertEqual(plan.fileChanges, [])
        XCTAssertEqual(plan.refresh, ["update-ca-certificates"])
    }

    func testAnInterruptedRunIsFinishedWithAFreshRebuild() throws {
        var facts = try settledFacts()
        facts.refreshPending = true
        let plan = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertEqual(plan.refresh, ["update-ca-certificates", "--fresh"])
        XCTAssertEqual(plan.notes, ["an earlier run was stopped before the trust bundle was rebuilt: rebuilding it from scratch"])
    }

    func testACAThatIsNoLongerWantedGoesAndTheBundleIsRebuiltFresh() throws {
        let facts = try settledFacts()
        let plan = try TrustInstaller.plan(facts, registry: registry, certificates: [certs[0]], refreshMode: .tool)
        let prefix = OSTrustLayout.debian.filePrefix(registry)
        XCTAssertEqual(plan.fileChanges.filter { $0.kind == .remove }.map(\.path.lastComponent), ["\(prefix)2.crt"])
        XCTAssertEqual(plan.refresh, ["update-ca-certificates", "--fresh"])
        // The runtimes' CA files now hold the one CA.
        XCTAssertEqual(plan.fileChanges.filter { $0.path.lastComponent == "ca.crt" }.count, 2)
    }

    func testFilesOfOthersInCertsDAreLeftAloneAndSaidSo() throws {
        var facts = TrustFacts(layout: .debian, containerd: certsD)
        let foreign = path("/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/hosts.toml")
        facts.runtimeFiles[foreign] = Array("server = \"https://mirror.example\"\n".utf8)
        let plan = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertFalse(plan.fileChanges.contains { $0.path.parent == foreign.parent }, "\(plan.fileChanges)")
        XCTAssertEqual(plan.notes, ["\(foreign) was not written by node-agent: left alone"])
    }

    func testTheToolIsNeededUnlessDebianIsRebuiltNatively() throws {
        var facts = TrustFacts(layout: .debian, containerd: certsD)
        facts.toolPresent = false
        assertAgentError(
            try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .tool), .unsupportedHost,
            "/usr/sbin/update-ca-certificates is missing", "ca-certificates")
        XCTAssertEqual(try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .native).fileChanges.count, 6)
        facts.layout = .rhel
        assertAgentError(
            try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .native), .unsupportedHost,
            "/usr/bin/update-ca-trust is missing")
    }

    /// auto, the default: native where nothing blocks it, the tool otherwise, and the report says which.
    func testAutoRefreshIsNativeUnlessSomethingBlocksIt() throws {
        var facts = TrustFacts(layout: .debian, containerd: certsD)
        let native = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .auto)
        XCTAssertTrue(native.native)
        XCTAssertTrue(native.notes.contains { $0.hasPrefix("trust refresh auto: native") }, "\(native.notes)")
        XCTAssertEqual(native.summary.last, "rebuild /etc/ssl/certs/ca-certificates.crt natively: what update-ca-certificates writes")
        facts.nativeBlocker = "/etc/ca-certificates/update.d/jks-keystore is a hook update-ca-certificates runs"
        let tool = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .auto)
        XCTAssertFalse(tool.native)
        XCTAssertTrue(
            tool.notes.contains(
                "trust refresh auto: update-ca-certificates (/etc/ca-certificates/update.d/jks-keystore is a hook update-ca-certificates runs)"
            ),
            "\(tool.notes)")
        XCTAssertEqual(tool.summary.last, "run update-ca-certificates: rebuild the OS trust bundle")
        // The tool missing: auto refuses, as the tool mode does.
        facts.nativeBlocker = nil
        facts.toolPresent = false
        assertAgentError(
            try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .auto), .unsupportedHost,
            "/usr/sbin/update-ca-certificates is missing")
        facts.layout = .rhel
        facts.toolPresent = true
        XCTAssertFalse(try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .auto).native)
    }

    func testDockerAndCRIOGetTheCAOnlyWhereTheyAreConfigured() throws {
        var facts = TrustFacts(layout: .debian, containerd: certsD)
        facts.otherRuntimeParents = [path("/etc/containers")]
        let plan = try TrustInstaller.plan(facts, registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertEqual(
            plan.fileChanges.filter { !$0.path.path.hasPrefix("/etc/containerd") && !$0.path.path.hasPrefix("/usr/local") }.map(
                \.path.path),
            ["/etc/containers/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt"])
    }

    func testCertsDDisabledWritesNoRuntimeFileAndSaysWhy() throws {
        let disabled = ContainerdRegistryConfig.parse("version = 2\n")
        let plan = try TrustInstaller.plan(
            TrustFacts(layout: .debian, containerd: disabled), registry: registry, certificates: certs, refreshMode: .tool)
        XCTAssertEqual(plan.fileChanges.map(\.path.parent), [OSTrustLayout.debian.anchors, OSTrustLayout.debian.anchors])
        XCTAssertEqual(plan.notes, [disabled.note].compactMap { $0 })
        XCTAssertNotNil(disabled.note)
    }

    func testRemovalTakesOnlyTheAgentsFilesHostsTomlBeforeItsCA() throws {
        var facts = try settledFacts()
        let foreign = path("/etc/containerd/certs.d/other.example/hosts.toml")
        facts.runtimeFiles[foreign] = Array("server = \"https://other.example\"\n".utf8)
        let removal = try TrustInstaller.planRemoval(facts, registry: nil)
        let runtime = removal.fileChanges.filter { $0.path.path.hasPrefix("/etc/containerd") }.map(\.path.path)
        XCTAssertEqual(
            runtime,
            [
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/hosts.toml",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local/ca.crt",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/hosts.toml",
                "/etc/containerd/certs.d/registry-service.openfaas.svc.cluster.local:443/ca.crt",
            ])
        XCTAssertEqual(removal.fileChanges.filter { $0.path.parent == OSTrustLayout.debian.anchors }.count, 2)
        XCTAssertEqual(Set(removal.fileChanges.map(\.kind)), [.remove])
        XCTAssertEqual(removal.refresh, ["update-ca-certificates", "--fresh"])
        let other = try RegistryAddress("other.example:5000")
        XCTAssertEqual(try TrustInstaller.planRemoval(facts, registry: other).fileChanges, [])
    }
}
