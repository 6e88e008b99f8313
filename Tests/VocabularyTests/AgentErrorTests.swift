import Glibc
import Vocabulary
import XCTest

final class AgentErrorTests: XCTestCase {
    func testAFailedCallKeepsItsErrnoAsAValueAndItsTextInTheMessage() {
        let error = AgentError(.io, "cannot read /etc/x", errno: EACCES, hint: "run as root")
        XCTAssertEqual(error.cause, .errno(EACCES))
        XCTAssertEqual(error.message, "cannot read /etc/x: Permission denied")
        XCTAssertEqual(error.description, "cannot read /etc/x: Permission denied (run as root)")
    }

    func testErrorsCompareByCodeAndCauseNotByWording() {
        XCTAssertEqual(AgentError(.io, "one wording", errno: ENOENT), AgentError(.io, "another", cause: .errno(ENOENT)))
        XCTAssertNotEqual(AgentError(.io, "same", errno: ENOENT), AgentError(.io, "same", errno: EACCES))
        XCTAssertNotEqual(AgentError(.io, "same"), AgentError(.dbus, "same"))
        XCTAssertNotEqual(
            AgentError(.dbus, "x", cause: .busError("org.freedesktop.DBus.Error.AccessDenied")),
            AgentError(.dbus, "x", cause: .busError("org.freedesktop.DBus.Error.ServiceUnknown")))
    }

    func testCausesReadAsTheSystemSaysThem() {
        XCTAssertEqual(AgentError.Cause.errno(ENOENT).description, "No such file or directory")
        XCTAssertEqual(AgentError.Cause.busError("org.freedesktop.resolve1.LinkBusy").description, "org.freedesktop.resolve1.LinkBusy")
        XCTAssertEqual(AgentError.Cause.exitStatus(2).description, "exit 2")
    }
}
