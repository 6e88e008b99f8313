import Glibc
import HostSystem
import ResolvedConfig
import TestSupport
import Vocabulary
import XCTest

@testable import AgentCore
@testable import Containerd
@testable import Probes
@testable import TrustStore

/// The order of the job's steps, with every effect a recorder: where the OS store is rebuilt
/// (before DNS by the host's tool, after it beside the early pull natively), what a dry run
/// does, and that a failed rebuild waits for the pull it started. The integration tests
/// (BootstrapIntegrationTests, DNSModesIntegrationTests) run the real effects.
final class BootstrapOrderTests: XCTestCase {
    /// What the effects were asked, in order; the early pull's thread writes to it too.
    final class Recorder: @unchecked Sendable {
        private let lock = PlainLock()
        private var recorded: [String] = []
        func record(_ step: String) {
            lock.lock()
            recorded.append(step)
            lock.unlock()
        }
        var steps: [String] {
            lock.lock()
            defer { lock.unlock() }
            return recorded
        }
    }

    struct Refused: Error {}

    let root = try! TemporaryHostRoot("bootstrap-order")

    func bootstrap(dryRun: Bool = false, restartRuntime: Bool = false) throws -> Bootstrap {
        var settings = NodeSettings(registry: "registry-service.openfaas.svc.cluster.local:5000")
        settings.hostRoot = root.directory
        settings.clusterDNS = "10.43.0.10"
        settings.runtimePull = false
        settings.dbusAddress = "unix:path=/nonexistent/bus"
        var b = Bootstrap(config: try NodeConfig(settings, ca: nil, dryRun: dryRun), runner: RecordingRunner(), refreshMode: .auto)
        b.restartRuntime = restartRuntime
        return b
    }

    /// Effects that record their step; the trust plan rebuilds the store `native`ly or with the
    /// host's tool, and containerd reads a CA file of the agent's when `runtimeCA`.
    func effects(
        _ r: Recorder, native: Bool, runtimeCA: Bool = true, refreshFails: Bool = false
    ) throws -> BootstrapEffects {
        let plan = TrustPlan(
            certificates: [], layout: .debian, fileChanges: [], refresh: ["update-ca-certificates"], notes: [], native: native)
        let locations = RegistryTrustLocations(
            osBundle: OSTrustLayout.debian.bundle,
            runtimeCAFiles: runtimeCA ? [try HostPath("/etc/containerd/certs.d/registry:5000/ca.crt")] : [],
            runtimeHosts: ContainerdHosts(folder: nil, hostsTOML: nil, hosts: []), osStoreFiles: [], note: nil, remedy: nil)
        let host = DNSHostFacts(resolvConfMode: .stub, nameservers: ["127.0.0.53"], systemdVersion: 252, resolvedOnBus: true)
        return BootstrapEffects(
            preparePull: { r.record("prepare pull") },
            lock: {
                r.record("lock")
                return nil
            },
            readTrust: {
                r.record("read trust")
                return {
                    r.record("plan trust")
                    return plan
                }
            },
            readDNS: { desired in
                r.record("read DNS")
                return DNSFacts(host: host, mode: DNSModeChoice(asked: desired.mode, host: host, registry: desired.registryHost))
            },
            applyTrustFiles: { _ in r.record("apply trust files") },
            trustLocations: {
                r.record("trust locations")
                return locations
            },
            refreshStore: { _ in
                r.record("refresh store")
                if refreshFails { throw Refused() }
            },
            restartStaleRuntimes: { _ in
                r.record("restart runtimes")
                return []
            },
            applyDNS: { r.record("apply DNS \($0.mode.rawValue)") },
            startPull: { _ in
                r.record("start pull")
                return BackgroundWork {
                    usleep(200_000)
                    r.record("pull done")
                    return RuntimePullProbe.Outcome(reference: "registry:5000/probe", answer: .failure(Refused()), seconds: 0.2)
                }
            },
            probe: { _, early, restarted in
                if let early { _ = early.wait() }
                r.record(restarted ? "probe, runtimes read again" : "probe")
                return []
            },
            watchedPaths: { _ in [] })
    }

    func testTheHostsToolRebuildsTheStoreAndRuntimesRestartBeforeDNSIsRouted() throws {
        let r = Recorder()
        let report = try bootstrap(restartRuntime: true).run(effects(r, native: false))
        XCTAssertEqual(
            r.steps,
            [
                "prepare pull", "lock", "read trust", "read DNS", "plan trust", "apply trust files", "trust locations",
                "refresh store", "restart runtimes", "apply DNS link", "probe, runtimes read again",
            ])
        XCTAssertEqual(report.dnsMode?.mode, "link")
        XCTAssertEqual(report.timings.map(\.name), ["plan", "trust", "dns", "trust-store", "probes"])
    }

    func testANativeRebuildComesAfterDNSBesideTheEarlyPull() throws {
        let r = Recorder()
        _ = try bootstrap().run(effects(r, native: true))
        XCTAssertEqual(
            r.steps,
            [
                "prepare pull", "lock", "read trust", "read DNS", "plan trust", "apply trust files", "apply DNS link",
                "trust locations", "start pull", "refresh store", "pull done", "probe",
            ])
    }

    func testNoEarlyPullWhereContainerdTrustsTheOSStoreAloneOrRuntimesRestart() throws {
        let alone = Recorder()
        _ = try bootstrap().run(effects(alone, native: true, runtimeCA: false))
        XCTAssertFalse(alone.steps.contains("start pull"), "\(alone.steps)")
        let restarting = Recorder()
        _ = try bootstrap(restartRuntime: true).run(effects(restarting, native: true))
        XCTAssertEqual(
            Array(restarting.steps.suffix(5)),
            ["apply DNS link", "trust locations", "refresh store", "restart runtimes", "probe, runtimes read again"])
    }

    func testADryRunReadsAndPlansAndChangesNothing() throws {
        let r = Recorder()
        let report = try bootstrap(dryRun: true).run(effects(r, native: false))
        XCTAssertEqual(r.steps, ["read trust", "read DNS", "plan trust"])
        XCTAssertTrue(report.dryRun)
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("DNS mode link: ") }, "\(report.notes)")
    }

    func testAFailedRebuildWaitsForThePullItStartedBeforeItsErrorGoesUp() throws {
        let r = Recorder()
        XCTAssertThrowsError(try bootstrap().run(effects(r, native: true, refreshFails: true))) { XCTAssertTrue($0 is Refused) }
        XCTAssertEqual(Array(r.steps.suffix(3)), ["start pull", "refresh store", "pull done"])
    }
}
