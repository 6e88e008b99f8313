import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// The binary the image ships (scripts/build-release: the Swift runtime, OpenSSL and libstdc++
/// linked in) does the main job on a sandbox node, its TLS verification on the OpenSSL inside it.
/// scripts/test builds it and names it in NODE_AGENT_RELEASE_BINARY.
final class ReleaseBuildIntegrationTests: XCTestCase {
    func testTheImageBinaryBootstrapsANodeAndVerifiesTLSOnItsOwnOpenSSL() throws {
        guard let binary = ProcessInfo.processInfo.environment["NODE_AGENT_RELEASE_BINARY"] else {
            throw XCTSkip("NODE_AGENT_RELEASE_BINARY is unset (scripts/test builds it with scripts/build-release)")
        }
        let dynamic = try sh("/usr/bin/readelf", ["-d", binary])
        XCTAssertEqual(dynamic.status, 0, dynamic.stderr)
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.joined(separator: "\n")
        for library in ["libssl", "libcrypto", "libstdc++", "libswiftCore", "libFoundation"] {
            XCTAssertFalse(needed.contains(library), "\(library) is linked in, yet needed:\n\(needed)")
        }

        let node = try SandboxNode()
        defer { node.down() }
        let run = try node.exec([binary] + node.bootstrapArguments(extra: ["--output", "json"]))
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let report = try JSONReport.decode(run.stdout)
        XCTAssertTrue(report.ready)
        for name in ["tls-os-trust", "tls-runtime-trust", "registry-api"] {
            XCTAssertEqual(report.check(name)?.outcome, "pass", "\(name): \(report.check(name)?.reason ?? "missing")")
        }
        XCTAssertEqual(report.check("tls-os-trust")?.details["verify_code"], "0")
        // And it refuses what it must: OpenSSL's verify codes for an expired and a foreign chain.
        for (name, code) in [("expired-registry", "10"), ("foreign-registry", "20")] {
            let probe = try node.exec([
                binary, "probe", "--host-root", node.hostRoot, "--registry", "\(name).openfaas.svc.cluster.local",
                "--output", "json", "--timeout", "1",
            ])
            XCTAssertEqual(probe.status, 1, probe.stdout + probe.stderr)
            XCTAssertEqual(try JSONReport.decode(probe.stdout).check("tls-os-trust")?.details["verify_code"], code, name)
        }
    }
}
