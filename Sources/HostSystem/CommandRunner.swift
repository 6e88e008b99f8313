import Foundation

/// The outcome of running a program.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var succeeded: Bool { status == 0 }

    public init(status: Int32, stdout: String = "", stderr: String = "") {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs programs. Behind a protocol so that unit tests can record what would run.
public protocol CommandRunner: Sendable {
    func run(_ executable: String, _ arguments: [String]) throws -> CommandResult
}

/// Runs programs as child processes of the agent, with a clean, small environment.
public struct ProcessRunner: CommandRunner {
    public static let cleanEnvironment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
    public let environment: [String: String]

    /// Host tools run with a small, fixed environment unless another is given.
    public init(environment: [String: String] = ProcessRunner.cleanEnvironment) {
        self.environment = environment
    }

    public func run(_ executable: String, _ arguments: [String]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw AgentError(.commandFailed, "cannot run \(executable): \(error.localizedDescription)")
        }
        // Drain stderr on another thread while this one drains stdout, so that a chatty child
        // cannot block on a full pipe.
        let errBox = DataBox()
        let errHandle = err.fileHandleForReading
        let thread = Thread { errBox.data = errHandle.readDataToEndOfFile(); errBox.done.signal() }
        thread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errBox.done.wait()
        let errBytes = errBox.data
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errBytes, as: UTF8.self))
    }
}

/// Finds an executable on the usual system paths.
public func findExecutable(_ name: String) -> String? {
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

private final class DataBox: @unchecked Sendable {
    // Written by one thread before `done` is signalled, read by another after waiting on it.
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}
