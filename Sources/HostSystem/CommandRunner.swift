import FoundationEssentials

#if canImport(Glibc)
    import Vocabulary
    import Glibc
#endif

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
    /// With `input` on the program's standard input (nil: /dev/null).
    func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult
}

extension CommandRunner {
    /// Runs one of the node's own tools as the node would: directly when the host root is `/`,
    /// else inside the root with chroot(8), so that its paths, links and hooks are the node's.
    public func run(hostTool tool: HostPath, _ arguments: [String], in root: HostRoot) throws -> CommandResult {
        if root.directory == "/" { return try run(tool.path, arguments) }
        guard let chroot = findExecutable("chroot") else {
            throw AgentError(.commandFailed, "chroot is not installed", hint: "install coreutils")
        }
        return try run(chroot, [root.directory, tool.path] + arguments)
    }
}

/// Runs programs as child processes with `posix_spawn`, reading their output until it ends and
/// then reaping them with `waitpid`. A program that has not finished by the time limit is killed
/// with everything it started (each runs in a process group of its own) and reported: a hung host
/// tool (update-ca-certificates runs every hook in /etc/ca-certificates/update.d) must not hang
/// `bootstrap`, nor stop `run` from reconciling and reporting for good.
///
/// Not Foundation's `Process`: on Linux it noticed a child's exit through a descriptor that the
/// child inherits, so when a child left a daemon behind (the sandbox node's script does) the
/// caller waited for ever.
public struct ProcessRunner: CommandRunner {
    public static let cleanEnvironment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
    public let environment: [String: String]
    /// Seconds a program may run. The slowest host tool measured, update-ca-certificates with
    /// 10,000 CAs, took 72 s; the default leaves it four times that.
    public let timeoutSeconds: Double

    /// Host tools run with a small, fixed environment unless another is given.
    public init(environment: [String: String] = ProcessRunner.cleanEnvironment, timeoutSeconds: Double = 300) {
        self.environment = environment
        self.timeoutSeconds = timeoutSeconds
    }

    public func run(_ executable: String, _ arguments: [String]) throws -> CommandResult {
        try run(executable, arguments, input: nil)
    }

    /// The largest `input` a program is given: what a pipe holds without the reader (Linux's
    /// default capacity is 64 KiB), so writing it all before reading the output cannot block.
    public static let inputLimit = 4096

    /// Held from making a child's pipes to spawning it (see `run`).
    static let spawnLock = PlainLock()

    /// Runs the program with `input` on its standard input (at most `inputLimit` bytes, e.g. a
    /// secret that must not appear in its arguments, which every user of the node can read in
    /// /proc), then end of file; without it, standard input is /dev/null.
    public func run(_ executable: String, _ arguments: [String], input: [UInt8]?) throws -> CommandResult {
        if let input, input.count > Self.inputLimit {
            throw AgentError(
                .invalidInput, "the input for \(executable) is \(input.count) bytes, over the \(Self.inputLimit) a pipe takes at once")
        }
        return try start(executable, arguments, withInput: input != nil).finish(input: input ?? [])
    }

    /// Starts the program and leaves it running: `finish` gives it its input (when `withInput`;
    /// else its standard input is /dev/null) and collects what it says, within `timeoutSeconds`
    /// from then. A program never finished is stopped, with what it started, when the handle goes.
    public func start(_ executable: String, _ arguments: [String], withInput: Bool) throws -> StartedProgram {
        let input: [UInt8]? = withInput ? [] : nil
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        var inPipe: [Int32] = [-1, -1]
        // Close-on-exec, so that only the dup2'd copies reach the child. The pipes are made and
        // marked, and the child spawned, under one lock: a program another thread starts
        // meanwhile must not inherit an end (it would hold the output open, and the read below
        // would wait for that program too).
        Self.spawnLock.lock()
        var locked = true
        defer { if locked { Self.spawnLock.unlock() } }
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0, input == nil || pipe(&inPipe) == 0 else {
            throw AgentError(.commandFailed, "cannot create pipes to run \(executable)")
        }
        for fd in outPipe + errPipe + inPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A tool starts with every signal at its default and none blocked, whatever the agent
        // holds (`run` blocks SIGTERM and SIGINT to take them between reconciles; an ignored or
        // blocked signal would otherwise pass through exec to the tool).
        var everySignal = sigset_t()
        var noSignal = sigset_t()
        sigfillset(&everySignal)
        sigemptyset(&noSignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        let r = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        Self.spawnLock.unlock()
        locked = false
        close(outPipe[1])
        close(errPipe[1])
        if inPipe[0] >= 0 { close(inPipe[0]) }
        guard r == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            if inPipe[1] >= 0 { close(inPipe[1]) }
            throw AgentError(.commandFailed, "cannot run \(executable)", errno: r)
        }
        return StartedProgram(
            executable: executable, pid: pid, input: inPipe[1], output: outPipe[0], errors: errPipe[0], timeoutSeconds: timeoutSeconds)
    }

    /// Reads both pipes until both reach end of file, whichever speaks first, or until `deadline`
    /// (monotonic nanoseconds); `finished` is false when the deadline came first.
    static func drain(_ a: Int32, _ b: Int32, until deadline: UInt64) -> ([UInt8], [UInt8], finished: Bool) {
        var outputs: [[UInt8]] = [[], []]
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open[0] || open[1] {
            guard monotonicNanoseconds() < deadline else { return (outputs[0], outputs[1], false) }
            var fds = [
                pollfd(fd: open[0] ? a : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: open[1] ? b : -1, events: Int16(POLLIN), revents: 0),
            ]
            if Syscall.poll(&fds, until: deadline) < 0 { break }
            for i in 0..<2 where open[i] && fds[i].revents != 0 {
                let n = Syscall.read(fds[i].fd, into: &buffer)
                if n > 0 { outputs[i] += buffer[0..<n] } else { open[i] = false }
            }
        }
        return (outputs[0], outputs[1], true)
    }
}

/// Finds an executable on the usual system paths.
public func findExecutable(_ name: String) -> String? {
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = dir + "/" + name
        if access(path, X_OK) == 0 { return path }
    }
    return nil
}

/// A program `ProcessRunner.start` started and nobody has waited for yet.
public final class StartedProgram: @unchecked Sendable {
    let executable: String
    let pid: pid_t
    /// The write end of its standard input (-1: /dev/null, or given already).
    var inputFD: Int32
    let output: Int32
    let errors: Int32
    let timeoutSeconds: Double
    var finished = false
    /// Standard output read before `finish` (`firstLine`) and not taken yet.
    var readAhead: [UInt8] = []

    init(executable: String, pid: pid_t, input: Int32, output: Int32, errors: Int32, timeoutSeconds: Double) {
        self.executable = executable
        self.pid = pid
        self.inputFD = input
        self.output = output
        self.errors = errors
        self.timeoutSeconds = timeoutSeconds
    }

    deinit {
        guard !finished else { return }
        // Never finished: stopped with what it started (its own process group), and reaped.
        kill(-pid, SIGKILL)
        for fd in [inputFD, output, errors] where fd >= 0 { close(fd) }
        Syscall.waitpid(pid)
    }

    /// Writes `bytes` to the program's standard input, leaving it open; false when it could not
    /// be written whole. A program that exits without reading it makes write fail with EPIPE,
    /// and the rest is dropped. The SIGPIPE that comes with it is sent to this thread: blocked
    /// here and taken before unblocking, so that it ends no caller that does not ignore it (a
    /// test process found this).
    func writeInput(_ bytes: [UInt8]) -> Bool {
        var pipeSignal = sigset_t()
        var previous = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        let written = Syscall.writeAll(inputFD, bytes) == 0
        if sigismember(&previous, SIGPIPE) == 0 {
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            while sigtimedwait(&pipeSignal, nil, &now) == SIGPIPE {}
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        return written
    }

    /// Gives the program `input` (at most `ProcessRunner.inputLimit` bytes), then end of file,
    /// and collects its output and exit status; it is stopped, with what it started, when it has
    /// not finished `timeoutSeconds` from now (nil: the time it was started with). Once only.
    public func finish(input: [UInt8], timeoutSeconds: Double? = nil) throws -> CommandResult {
        precondition(!finished, "a started program is finished once")
        finished = true
        if input.count > ProcessRunner.inputLimit {
            kill(-pid, SIGKILL)
            for fd in [inputFD, output, errors] where fd >= 0 { close(fd) }
            Syscall.waitpid(pid)
            throw AgentError(
                .invalidInput,
                "the input for \(executable) is \(input.count) bytes, over the \(ProcessRunner.inputLimit) a pipe takes at once")
        }
        if inputFD >= 0 {
            // It fits the pipe (inputLimit), so this never blocks.
            _ = writeInput(input)
            close(inputFD)
            inputFD = -1
        }
        let deadline = monotonicNanoseconds() + UInt64((timeoutSeconds ?? self.timeoutSeconds) * 1e9)
        let (out, err, ended) = ProcessRunner.drain(output, errors, until: deadline)
        close(output)
        close(errors)
        // At the deadline the program may have exited while something it left behind still holds
        // its output open: that is its result, and what it left is not ours to kill.
        let early = ended ? nil : Syscall.waitpid(pid, options: WNOHANG)
        let reapedAtDeadline = early?.pid == pid
        if !ended && !reapedAtDeadline { kill(-pid, SIGKILL) }
        let status = reapedAtDeadline ? early?.status ?? 0 : Syscall.waitpid(pid).status
        guard ended || reapedAtDeadline else {
            let name = executable.split(separator: "/").last.map(String.init) ?? executable
            throw AgentError(
                .commandFailed,
                "\(name) did not finish within \(Int(timeoutSeconds ?? self.timeoutSeconds)) s and was stopped, with what it started"
                    + (err.isEmpty ? "" : " (it said: \(String(decoding: err.suffix(200), as: UTF8.self).escapedForMessage))"),
                hint: "find what hangs on the node (for update-ca-certificates: a hook in /etc/ca-certificates/update.d, a stuck mount)")
        }
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandResult(
            status: exitStatus, stdout: String(decoding: readAhead + out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }
}
