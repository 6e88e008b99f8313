import Foundation
import TestSupport
import Vocabulary
import XCTest

@testable import Probes

/// `openssl s_server` on 127.0.0.1 with a certificate and key, as a registry's TLS end for the
/// TLS checks' unit tests; stopped when the returned process is terminated.
func startOpenSSLServer(cert: String, key: String) throws -> (server: Process, port: UInt16) {
    let port = UInt16.random(in: 30000...49999)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    server.arguments = ["s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = FileHandle.nullDevice
    try server.run()
    return (server, port)
}

/// Runs `probe` until the server listens (up to 5 s): its first answer that is not "nothing listens".
func untilListening(_ probe: () -> CheckResult) -> CheckResult {
    let deadline = Date().addingTimeInterval(5)
    while true {
        let r = probe()
        if !r.reason.contains("nothing listens") || Date() > deadline { return r }
        usleep(50_000)  // the server is still starting
    }
}
