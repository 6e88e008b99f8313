import AgentCore
import Foundation
import Vocabulary
import XCTest

/// A CA file that a Secret volume with `optional: true` left out (no such Secret, or no such key in
/// it): the error names the Secret and key the DaemonSet says it comes from (NODE_AGENT_CA_ORIGIN),
/// so that the pod's log says what to fix rather than a path inside the pod.
final class CAOriginTests: XCTestCase {
    func testAMissingCAFileNamesTheSecretAndKeyItComesFrom() throws {
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString)/ca.crt"
        let origin = "Secret openfaas/registry-tls, key ca.crt"
        XCTAssertThrowsError(try NodeConfig.readCAFile(missing, environment: [NodeConfig.caOriginVariable: origin])) { error in
            let e = error as? AgentError
            XCTAssertEqual(e?.code, .invalidCertificate)
            XCTAssertEqual(
                e?.message,
                "CA file \(missing) does not exist: it comes from \(origin), which is missing (no such Secret, or no such key in it)")
            XCTAssertTrue(e?.hint?.contains("tls.crt") == true, "\(String(describing: e?.hint))")
        }
        // Without the origin (a CA file named on a node's command line): the file alone.
        XCTAssertThrowsError(try NodeConfig.readCAFile(missing, environment: [:])) { error in
            XCTAssertEqual((error as? AgentError)?.message, "CA file \(missing) does not exist")
        }
    }

    func testAPresentCAFileIsReadWhateverTheOrigin() throws {
        let path = NSTemporaryDirectory() + "ca-\(UUID().uuidString).crt"
        try "PEM".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try NodeConfig.readCAFile(path, environment: [NodeConfig.caOriginVariable: "Secret a/b, key c"]), Array("PEM".utf8))
    }
}
