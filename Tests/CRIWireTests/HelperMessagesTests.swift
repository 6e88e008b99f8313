import CRIWire
import XCTest

/// The messages across node-agent-cri's pipe: each reads back what it wrote, and each travels as
/// the texts below, so that a field renamed (or a key spelt another way) fails here, not on a
/// node where the agent and the helper disagree.
final class HelperMessagesTests: XCTestCase {
    func text(_ message: some CRIHelperMessage) -> String {
        String(decoding: message.encoded(), as: UTF8.self)
    }

    func testAPullAnswerTravelsAsOneObjectAndReadsBack() throws {
        let pulled = CRIPullAnswer(ok: true, imageRef: "sha256:ab", code: 0, message: "")
        XCTAssertEqual(text(pulled), #"{"code":0,"image_ref":"sha256:ab","message":"","ok":true}"#)
        XCTAssertEqual(try CRIPullAnswer(decoding: pulled.encoded()), pulled)

        let refused = CRIPullAnswer(
            ok: false, imageRef: nil, code: 2, message: "failed to pull: x509: certificate signed by unknown authority")
        XCTAssertEqual(text(refused), #"{"code":2,"message":"failed to pull: x509: certificate signed by unknown authority","ok":false}"#)
        XCTAssertEqual(try CRIPullAnswer(decoding: refused.encoded()), refused)
        // An earlier helper wrote a missing reference as null.
        XCTAssertEqual(try CRIPullAnswer(decoding: #"{"code":2,"image_ref":null,"message":"x509: no","ok":false}"#.utf8).imageRef, nil)
    }

    func testWhatIsNotAPullAnswerDoesNotRead() {
        for text in [#"{"ok":true}"#, #"{"code":"0","message":"","ok":true}"#, #"{"code":0,"message":"","ok":1}"#, "", "[]", "{"] {
            XCTAssertThrowsError(try CRIPullAnswer(decoding: text.utf8), text)
        }
    }

    func testCredentialsTravelAsTheirObjectOrAnEmptyOne() throws {
        let credentials = CRIPullCredentials(username: "u", password: #"p"/\"#)
        XCTAssertEqual(text(credentials), #"{"password":"p\"/\\","username":"u"}"#)
        XCTAssertEqual(try CRIPullCredentials(decoding: credentials.encoded()), credentials)
        let none = CRIPullCredentials(username: nil, password: nil)
        XCTAssertEqual(text(none), "{}")
        XCTAssertEqual(try CRIPullCredentials(decoding: "{}".utf8), none)
        XCTAssertThrowsError(try CRIPullCredentials(decoding: #"["u","p"]"#.utf8))
    }

    func testTheRuntimesStatusTravelsAndReadsBack() throws {
        let version = CRIRuntimeVersion(runtimeName: "containerd", runtimeVersion: "1.6.20~ds1")
        XCTAssertEqual(text(version), #"{"runtime_name":"containerd","runtime_version":"1.6.20~ds1"}"#)
        XCTAssertEqual(try CRIRuntimeVersion(decoding: version.encoded()), version)

        // containerd 1.6's verbose Status info (CRIMessageTests decodes the same from the wire).
        let status = CRIRuntimeStatus(
            version: version, info: ["config": #"{"registry":{"configPath":"/etc/containerd/certs.d"}}"#, "golang": #""go1.19.8""#])
        XCTAssertEqual(
            text(status),
            #"{"config_path":"/etc/containerd/certs.d","golang":"go1.19.8","registry":true,"runtime_name":"containerd","runtime_version":"1.6.20~ds1"}"#
        )
        XCTAssertEqual(try CRIRuntimeStatus(decoding: status.encoded()), status)

        // containerd 2.x: no registry config in its info, and a config that is not JSON.
        let two = CRIRuntimeStatus(version: CRIRuntimeVersion(runtimeName: "containerd", runtimeVersion: "2.1.4"), info: ["config": "{"])
        XCTAssertEqual(text(two), #"{"registry":false,"runtime_name":"containerd","runtime_version":"2.1.4"}"#)
        XCTAssertEqual(try CRIRuntimeStatus(decoding: two.encoded()), two)
    }

    func testTheCallsArguments() {
        XCTAssertEqual(
            CRIHelperCall.pull(socket: "/run/c.sock", image: "r:443/i:1", timeoutSeconds: 4),
            ["pull", "--socket", "/run/c.sock", "--image", "r:443/i:1", "--timeout", "4.0"])
        XCTAssertEqual(
            CRIHelperCall.status(socket: "/run/c.sock", timeoutSeconds: 3), ["status", "--socket", "/run/c.sock", "--timeout", "3.0"])
    }
}
