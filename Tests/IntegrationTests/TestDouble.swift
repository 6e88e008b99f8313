import Foundation
import Vocabulary

/// Starts `process`, a test double (Tests/doubles/*, possibly through `sandbox-node exec`), and
/// returns once it says it listens: its line `listening ADDR:PORT` on stdout (Tests/doubles/server.py's
/// `ready`, printed once its sockets are bound). The rule for every double a test connects to: wait
/// for its word, never a fixed time (under load Python alone takes 0.4 s to start, and a peer not
/// yet listening is another test than the one meant). Throws, naming `name` with what the double
/// printed, when it exits first or is silent for `timeout` seconds (it is then terminated).
/// Takes the process's stdout and stderr; what it prints later is read and dropped.
func startDouble(_ process: Process, _ name: String, timeout: TimeInterval = 20) throws {
    let output = DoubleOutput()
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    out.fileHandleForReading.readabilityHandler = { handle in output.append(handle, stderr: false) }
    err.fileHandleForReading.readabilityHandler = { handle in output.append(handle, stderr: true) }
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    let started = Date()
    switch output.waitForListening(until: deadline, while: { process.isRunning }) {
    case .listening: return
    case .exited:
        process.waitUntilExit()
        throw AgentError(
            .io, "the test double \(name) exited (status \(process.terminationStatus)) before it listened: \(output.printed)")
    case .timedOut:
        let waited = String(format: "%.1f", Date().timeIntervalSince(started))
        process.terminate()
        let end = Date().addingTimeInterval(5)
        while process.isRunning && Date() < end { usleep(50_000) }  // its end, bounded: then SIGKILL
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        throw AgentError(.io, "the test double \(name) did not say it listens within \(waited) s: \(output.printed)")
    }
}

/// What a double printed, read as it comes (so a chatty double never blocks on a full pipe).
private final class DoubleOutput: @unchecked Sendable {
    enum Outcome { case listening, exited, timedOut }

    private let condition = NSCondition()
    private var stdout = Data()
    private var stderr = Data()
    private var stdoutClosed = false

    func append(_ handle: FileHandle, stderr isStderr: Bool) {
        let data = handle.availableData
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        if data.isEmpty {
            handle.readabilityHandler = nil
            if !isStderr { stdoutClosed = true }
        } else if isStderr {
            if stderr.count < 65536 { stderr.append(data) }
        } else {
            if stdout.count < 65536 { stdout.append(data) }
        }
    }

    private var saidListening: Bool {
        String(decoding: stdout, as: UTF8.self).split(separator: "\n").contains { $0.hasPrefix("listening") }
    }

    /// Waits until the double said it listens, or its stdout closed (it exited) or `running`
    /// says it ended, or the deadline passed.
    func waitForListening(until deadline: Date, while running: () -> Bool) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        var ended: Date?
        while true {
            if saidListening { return .listening }
            if stdoutClosed { return .exited }
            if !running() {
                // Its last words may still be in the pipe: read them, up to a second.
                ended = ended ?? Date()
                if let ended, Date().timeIntervalSince(ended) > 1 { return .exited }
            }
            if Date() >= deadline { return .timedOut }
            // Woken by each read; at the latest every 0.2 s to see the process's end.
            _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.2)))
        }
    }

    var printed: String {
        condition.lock()
        defer { condition.unlock() }
        let out = String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let err = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "stdout '\(out.suffix(600))', stderr '\(err.suffix(1500))'"
    }
}
