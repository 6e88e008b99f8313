import Vocabulary
import XCTest

/// Userinfo never leaves the agent: every URL's `user:password@` becomes `***@`, the host stays.
final class RedactionTests: XCTestCase {
    func testAURLLosesItsUserinfoAndKeepsItsHost() {
        XCTAssertEqual(Redaction.url("http://user:S3cret@proxy:3128"), "http://***@proxy:3128")
        XCTAssertEqual(Redaction.url("https://token@realm.example/token?service=x"), "https://***@realm.example/token?service=x")
        XCTAssertEqual(Redaction.url("socks5://u:p@[fd00::1]:1080"), "socks5://***@[fd00::1]:1080")
        // Go's url.Parse takes the last @ of the authority: a password may hold one unescaped.
        XCTAssertEqual(Redaction.url("http://user:p@ss@proxy:3128/"), "http://***@proxy:3128/")
        // Characters Go's validUserinfo allows in a password do not end the authority early.
        XCTAssertEqual(Redaction.url("http://u:a,b;c(d)'e!$&*+=@proxy:3128"), "http://***@proxy:3128")
        // No scheme: Go's ProxyFromEnvironment reads it as http://.
        XCTAssertEqual(Redaction.url("user:S3cret@proxy:3128"), "***@proxy:3128")
        XCTAssertEqual(Redaction.url("user:S3cret@proxy:3128/x@y"), "***@proxy:3128/x@y")
    }

    func testURLsWithoutUserinfoAndPlainTextAreUnchanged() {
        for same in [
            "http://proxy:3128", "https://registry.example/v2/", "proxy:3128", "", "no url here", "mail me@example.com",
            "https://host/path@not-userinfo", "https://host?q=a@b", "a://", "://@",
        ] {
            XCTAssertEqual(Redaction.text(same), same == "://@" ? "://***@" : same, same)
        }
        XCTAssertEqual(Redaction.url("proxy.example:3128"), "proxy.example:3128")
    }

    func testEveryURLInAMessageIsMasked() {
        let reason =
            "containerd (pid 42) sends pulls of r:443 to the proxy http://u:S3cret@127.0.0.9:3128 (HTTPS_PROXY), and the realm 'https://bob:pw@token.example/token' refused; see http://docs.example/a@b"
        let masked = Redaction.text(reason)
        XCTAssertFalse(masked.contains("S3cret"), masked)
        XCTAssertFalse(masked.contains("bob:pw"), masked)
        XCTAssertTrue(masked.contains("http://***@127.0.0.9:3128 (HTTPS_PROXY)"), masked)
        XCTAssertTrue(masked.contains("'https://***@token.example/token'"), masked)
        XCTAssertTrue(masked.contains("http://docs.example/a@b"), "an @ in a path is no userinfo: \(masked)")
        XCTAssertTrue(Redaction.hasUserinfo(reason))
        XCTAssertFalse(Redaction.hasUserinfo(masked), "masking is idempotent")
        XCTAssertEqual(Redaction.text(masked), masked)
    }
    /// Control characters are escaped (nothing is cut), other characters kept; `text` keeps line
    /// breaks (a remedy's lines to add to a file), `oneLine` escapes them too; userinfo is still
    /// masked after a line break; escaping twice changes nothing.
    func testControlCharactersAreEscapedAndNothingElse() {
        let forged =
            "unexpected status code 500 - Server message: x\n2026-12-07T04:00:00Z info: reconciled ready=true\r\u{1b}[2J\u{9b}31m\u{7f}\t"
        let line = Redaction.oneLine(forged)
        XCTAssertFalse(line.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }, line)
        XCTAssertEqual(
            line,
            "unexpected status code 500 - Server message: x\\n2026-12-07T04:00:00Z info: reconciled ready=true\\r\\x1b[2J\\u{9b}31m\\x7f\\t"
        )
        XCTAssertEqual(Redaction.oneLine(line), line)
        XCTAssertEqual(
            Redaction.text(forged),
            "unexpected status code 500 - Server message: x\n2026-12-07T04:00:00Z info: reconciled ready=true\\r\\x1b[2J\\u{9b}31m\\x7f\\t")
        XCTAssertEqual(Redaction.oneLine(Redaction.text(forged)), line)
        for same in ["é ✓ 日本 🙂", "CN=Sandbox Registry CA,O=node-agent sandbox", "a\\nb"] {
            XCTAssertEqual(Redaction.text(same), same)
            XCTAssertEqual(Redaction.oneLine(same), same)
        }
        XCTAssertEqual(Redaction.text("configs:\n  \"r:443\":\n"), "configs:\n  \"r:443\":\n")
        XCTAssertEqual(Redaction.oneLine(Redaction.text("see\nhttp://u:S3cret@proxy:3128")), "see\\nhttp://***@proxy:3128")
        XCTAssertFalse(Redaction.hasUserinfo("a\nb"), "a line break is not userinfo")
    }
}
