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

    /// A standby helper's call: one line of JSON, snake case, read back as it was; its checks say
    /// what `pull`'s checks of its arguments say.
    func testAStandbyCallTravelsOnOneLineAndReadsBack() throws {
        XCTAssertEqual(CRIHelperCall.standby, ["standby"])
        let call = CRIPullCall(socket: "/run/c.sock", image: "r:443/i\n:1", timeoutSeconds: 4, statusSeconds: 3)
        let line = call.line()
        XCTAssertEqual(line.last, 0x0A)
        XCTAssertEqual(line.filter { $0 == 0x0A }.count, 1, "a newline inside a value travels escaped")
        XCTAssertEqual(
            String(decoding: line, as: UTF8.self),
            #"{"image":"r:443/i\n:1","socket":"/run/c.sock","status_timeout_seconds":3,"timeout_seconds":4}"# + "\n")
        XCTAssertEqual(try CRIPullCall(decoding: line.dropLast()), call)
        let pullOnly = CRIPullCall(socket: "/s", image: "i", timeoutSeconds: 0.5)
        XCTAssertEqual(String(decoding: pullOnly.encoded(), as: UTF8.self), #"{"image":"i","socket":"/s","timeout_seconds":0.5}"#)
        XCTAssertEqual(try CRIPullCall(decoding: pullOnly.encoded()), pullOnly)
        XCTAssertNil(call.problem)
        XCTAssertEqual(CRIPullCall(socket: "/s", image: "i", timeoutSeconds: 0).problem, "--timeout takes a number of seconds over 0")
        XCTAssertEqual(
            CRIPullCall(socket: "/s", image: "i", timeoutSeconds: 1, statusSeconds: -1).problem,
            "--status-timeout takes a number of seconds over 0")
        XCTAssertEqual(CRIPullCall(socket: "", image: "i", timeoutSeconds: 1).problem, "the call names no socket")
        XCTAssertThrowsError(try CRIPullCall(decoding: Array(#"{"socket":"/s","image":"i"}"#.utf8)))
        XCTAssertThrowsError(try CRIPullCall(decoding: Array(#"{"username":"u","password":"p"}"#.utf8)))
    }
}
