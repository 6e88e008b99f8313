import CRIClient
import CRIWire
import Foundation
import HostSystem
import TestSupport
import Vocabulary
import XCTest

/// CRIClient against the sandbox node's real containerd: the same pulls kubelet would ask for,
/// with containerd's own answers, which scripts/cri (grpcio, the reference client) must get too.
final class CRIClientIntegrationTests: XCTestCase {
    var node: SandboxNode!

    override func setUpWithError() throws { node = try SandboxNode() }
    override func tearDown() { node?.down() }

    /// The node's CRI socket as this process reaches it. containerd creates it in the node's own
    /// /run, a mount that only the node's namespace sees ($HOST_ROOT/run is empty out here); a
    /// unix socket is a file, not a network address, so the path through the root of the node's
    /// holder process connects from outside the node's network namespace too.
    var socket: String {
        let holder = (try? String(contentsOfFile: node.folder + "/pids/holder", encoding: .utf8)) ?? ""
        return "/proc/\(holder.trimmingCharacters(in: .whitespacesAndNewlines))/root/run/containerd/containerd.sock"
    }

    func pull(_ image: String, credentials: Bool = true) async throws -> CRIPullAnswer {
        try await CRIClient.pullImage(
            socketPath: socket, image: image,
            username: credentials ? node.vars["REGISTRY_USER"] : nil,
            password: credentials ? node.vars["REGISTRY_PASSWORD"] : nil, timeoutSeconds: 30)
    }

    /// The reference client's error text for the same pull (scripts/cri, with the pull secret).
    func referenceError(_ image: String) throws -> String {
        let r = try node.pull(image)
        XCTAssertFalse(r.ok, "scripts/cri pulled \(image)")
        return r.error.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testVersionAndPullsBeforeAndAfterBootstrap() async throws {
        let version = try await CRIClient.version(socketPath: socket, timeoutSeconds: 10)
        XCTAssertEqual(version.runtimeName, "containerd")
        XCTAssertFalse(version.runtimeVersion.isEmpty)

        // Before bootstrap the registry's name does not resolve on the node.
        let before = try await pull(node.testImage)
        XCTAssertFalse(before.ok)
        XCTAssertNil(before.imageRef)
        XCTAssertEqual(before.code, 2, before.message)
        XCTAssertTrue(before.message.contains("name resolution") || before.message.contains("no such host"), before.message)
        XCTAssertEqual(before.message, try referenceError(node.testImage))

        let bootstrap = try node.agent(node.bootstrapArguments())
        XCTAssertEqual(bootstrap.status, 0, bootstrap.stdout + bootstrap.stderr)

        let pulled = try await pull(node.testImage)
        XCTAssertTrue(pulled.ok, pulled.message)
        XCTAssertEqual(pulled.code, 0)
        XCTAssertEqual(pulled.message, "")
        XCTAssertTrue(pulled.imageRef?.hasPrefix("sha256:") == true, "\(pulled.imageRef ?? "nil")")

        // Without the pull secret the registry refuses: containerd passes on its 401.
        let anonymous = try await pull(node.testImage, credentials: false)
        XCTAssertFalse(anonymous.ok)
        XCTAssertTrue(anonymous.message.contains("401 Unauthorized"), anonymous.message)

        let missingTag = node.testImage.replacingOccurrences(of: ":1", with: ":no-such-tag")
        let missing = try await pull(missingTag)
        XCTAssertFalse(missing.ok)
        XCTAssertEqual(missing.code, 5, missing.message)
        XCTAssertTrue(missing.message.contains("not found"), missing.message)
        XCTAssertEqual(missing.message, try referenceError(missingTag))
    }
}
