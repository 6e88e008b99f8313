import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Glibc
import NIOCore
import NIOPosix

/// The runtime's answer to a `PullImage`, as kubelet would get it.
public struct CRIPullResult: Sendable, Equatable {
    public var ok: Bool
    /// The pulled image's reference (`sha256:…`), when `ok`.
    public var imageRef: String?
    /// The gRPC status code: 0 ok, 2 unknown (containerd's usual code for a failed pull), 5 not
    /// found, 4 deadline exceeded (no answer within the call's timeout), …
    public var code: Int
    /// The runtime's own error text, e.g. containerd's `failed to pull and unpack image …: x509:
    /// certificate signed by unknown authority`; empty when `ok`.
    public var message: String

    public init(ok: Bool, imageRef: String?, code: Int, message: String) {
        self.ok = ok
        self.imageRef = imageRef
        self.code = code
        self.message = message
    }
}

/// The runtime could not be asked at all: its socket is missing or refuses connections, or what
/// answers there does not speak gRPC.
public struct CRIClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A client of a container runtime's CRI socket (runtime.v1, gRPC over HTTP/2 on a unix socket),
/// for the two calls the agent needs. Each call is synchronous and self-contained: it starts one
/// NIO event loop thread, runs the RPC, and has shut that thread down again before it returns, so
/// an agent that calls it from its plain main loop keeps no extra threads between calls. Call it
/// from the main thread: see `LoopThread` for what a call from another thread leaves behind.
public enum CRIClient {
    /// `ImageService/PullImage` of `image`, with a pull secret's `username` and `password`.
    /// Throws only when the runtime could not be asked; the runtime's refusal is a result.
    public static func pullImage(
        socketPath: String, image: String, username: String?, password: String?,
        timeoutSeconds: Double
    ) throws -> CRIPullResult {
        let request = PullImageRequest(image: image, username: username, password: password)
        switch try call(
            socketPath, "runtime.v1.ImageService", "PullImage", request, PullImageRequestSerializer(),
            PullImageResponseDeserializer(), timeoutSeconds: timeoutSeconds)
        {
        case .success(let response): return CRIPullResult(ok: true, imageRef: response.imageRef, code: 0, message: "")
        case .failure(let error): return CRIPullResult(ok: false, imageRef: nil, code: error.code.rawValue, message: error.message)
        }
    }

    /// `RuntimeService/Version`: the runtime's name and version (`containerd`, `1.6.20~ds1`).
    public static func version(socketPath: String, timeoutSeconds: Double) throws -> (runtimeName: String, runtimeVersion: String) {
        switch try call(
            socketPath, "runtime.v1.RuntimeService", "Version", VersionRequest(), VersionRequestSerializer(),
            VersionResponseDeserializer(), timeoutSeconds: timeoutSeconds)
        {
        case .success(let response): return (response.runtimeName, response.runtimeVersion)
        case .failure(let error):
            throw CRIClientError(description: "the container runtime at \(socketPath) refused Version: \(error.code) \(error.message)")
        }
    }

    /// `RuntimeService/Status` with `verbose`: the runtime's `info` map (containerd: `config`,
    /// its effective CRI config as JSON; `golang`, the Go version it was built with).
    public static func statusInfo(socketPath: String, timeoutSeconds: Double) throws -> [String: String] {
        switch try call(
            socketPath, "runtime.v1.RuntimeService", "Status", StatusRequest(), StatusRequestSerializer(),
            StatusResponseDeserializer(), timeoutSeconds: timeoutSeconds)
        {
        case .success(let response): return response.info
        case .failure(let error):
            throw CRIClientError(description: "the container runtime at \(socketPath) refused Status: \(error.code) \(error.message)")
        }
    }

    /// One unary RPC: the runtime's answer, or its gRPC status. Throws when the socket cannot be
    /// reached or does not speak gRPC.
    static func call<Request: Sendable, Response: Sendable>(
        _ socketPath: String, _ service: String, _ method: String, _ request: Request,
        _ serializer: some MessageSerializer<Request>, _ deserializer: some MessageDeserializer<Response>,
        timeoutSeconds: Double
    ) throws -> Result<Response, RPCError> {
        // A missing or refused socket (no runtime, or a stopped one), or one where no HTTP/2
        // server answers, found here before gRPC starts, never reaches grpc's reconnect backoff,
        // whose Task.sleep is served by Swift's global executor whatever the task's executor:
        // Dispatch threads that would outlive the call.
        let clock = ContinuousClock()
        let start = clock.now
        guard try checkHTTP2Server(socketPath, timeoutSeconds: timeoutSeconds) else {
            return .failure(timedOut(socketPath, timeoutSeconds))
        }
        let elapsed = start.duration(to: clock.now).components
        let remaining = timeoutSeconds - Double(elapsed.seconds) - Double(elapsed.attoseconds) / 1e18

        let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
        // Fail at once if the connection fails rather than queue for a reconnect. No
        // `options.timeout`: grpc implements it with Task.sleep (see above); the deadline is a
        // NIO timer that cancels the call (`runBlocking`).
        let options = {
            var o = CallOptions.defaults
            o.waitForReady = false
            return o
        }()
        let outcome = try runBlocking(timeoutSeconds: remaining) { loop in
            let transport = try HTTP2ClientTransport.Posix(
                target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext, eventLoopGroup: loop)
            return try await withGRPCClient(transport: transport) { client in
                try await client.unary(
                    request: ClientRequest(message: request), descriptor: descriptor,
                    serializer: serializer, deserializer: deserializer, options: options
                ) { response in
                    response.accepted.flatMap { $0.message }
                }
            }
        }
        switch outcome {
        case .timedOut:
            return .failure(timedOut(socketPath, timeoutSeconds))
        case .failed(let error as RPCError) where error.code == .unavailable && error.cause != nil:
            // grpc's own error for a connection that failed or broke (the runtime's own statuses
            // come without a cause): not the runtime's answer.
            throw CRIClientError(
                description:
                    "the container runtime at \(socketPath) could not be asked: \(error.message) (\(error.cause.map { "\($0)" } ?? ""))")
        case .failed(let error as RPCError):
            return .failure(error)
        case .failed(let error):
            throw CRIClientError(description: "the container runtime at \(socketPath) could not be asked: \(error)")
        case .done(let result):
            return result
        }
    }

    static func timedOut(_ socketPath: String, _ timeoutSeconds: Double) -> RPCError {
        RPCError(code: .deadlineExceeded, message: "no answer from the container runtime at \(socketPath) within \(timeoutSeconds) s")
    }

    enum Outcome<T> {
        case done(T)
        case failed(any Error)
        case timedOut
    }

    /// Runs `body` on an event loop of its own, the calling thread blocked until it ends or
    /// `timeoutSeconds` pass (then the task is cancelled and waited for). The loop's thread has
    /// ended (joined) before this returns.
    ///
    /// The task runs with an executor preference for that event loop, so none of its jobs, nor
    /// those of the child tasks grpc starts, reach Swift's global executor (on Linux, Dispatch's
    /// worker pool, which leaves its manager thread behind for the life of the process once used).
    static func runBlocking<T: Sendable>(
        timeoutSeconds: Double,
        _ body: @escaping @Sendable (any EventLoop) async throws -> T
    ) throws -> Outcome<T> {
        let thread = try LoopThread()
        defer { thread.stop() }
        let loop = thread.loop
        let promise = loop.makePromise(of: T.self)
        let task = Task(executorPreference: EventLoopTaskExecutor(loop)) {
            do { promise.succeed(try await body(loop)) } catch { promise.fail(error) }
        }
        let nanoseconds = Int64(min(max(timeoutSeconds, 0), 86_400) * 1e9)
        let deadline = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { task.cancel() }
        let result = Result { try promise.futureResult.wait() }
        deadline.cancel()
        // The timer's future succeeded only if it fired (a cancelled one fails): then whatever
        // the body ended with is the cancellation's, a thrown error or grpc's answer for a
        // cancelled call ("The transport threw an unexpected error.", code unknown).
        if (try? deadline.futureResult.wait()) != nil { return .timedOut }
        switch result {
        case .success(let value): return .done(value)
        case .failure(let error): return .failed(error)
        }
    }

    /// Connects to the unix socket and checks that an HTTP/2 server answers there: sends the
    /// client preface and an empty SETTINGS frame, and reads the server's first frame header,
    /// which must be its SETTINGS (grpc-go sends them at once). False when nothing came within
    /// `timeoutSeconds`; throws when the connection fails or something else answers.
    static func checkHTTP2Server(_ path: String, timeoutSeconds: Double) throws -> Bool {
        func failure(_ what: String) -> CRIClientError {
            CRIClientError(description: "cannot connect to the container runtime's socket \(path): \(what)")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw failure("the path is longer than a unix socket address allows (\(capacity - 1) bytes)") }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw failure(String(cString: strerror(errno))) }

        let hello = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        guard send(fd, hello, hello.count, Int32(MSG_NOSIGNAL)) == hello.count else { throw failure(String(cString: strerror(errno))) }
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(min(max(timeoutSeconds, 0), 86_400) * 1000))
        var header: [UInt8] = []
        while header.count < 9 {
            let left = clock.now.duration(to: deadline).components
            let milliseconds = Int32(left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000)
            guard milliseconds > 0 else { return false }
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, milliseconds)
            if polled < 0 && errno == EINTR { continue }
            guard polled >= 0 else { throw failure(String(cString: strerror(errno))) }
            if polled == 0 { return false }
            var chunk = [UInt8](repeating: 0, count: 9 - header.count)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else {
                throw failure(count == 0 ? "closed the connection without an HTTP/2 answer" : String(cString: strerror(errno)))
            }
            header += chunk[..<count]
        }
        // Frame header: length (3 bytes), type (4 = SETTINGS), flags, stream id 0.
        guard header[3] == 4, header[5...8].allSatisfy({ $0 == 0 }) else {
            let text = String(decoding: header.map { (32..<127).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            throw failure("what answers is not an HTTP/2 (gRPC) server: it began with \"\(text)\"")
        }
        return true
    }
}

/// A task executor that runs each job on a NIO event loop. grpc-swift 2 only creates structured
/// child tasks, which inherit the preference, so the whole call runs on this one thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A NIO event loop on a thread of our own (NIO's `withCurrentThreadAsEventLoop`), stopped and
/// joined by `stop()`.
///
/// Not a `MultiThreadedEventLoopGroup`: NIO reports the end of any shutdown through a Dispatch
/// queue, and the first use of Dispatch's worker pool starts its manager thread, which never
/// ends. The main queue puts no thread up, so the shutdown reports there; that report (a closure
/// holding the loop, ~22 KiB) runs when the main queue is drained, which `stop()` does itself when
/// called on the main thread, as the agent calls it. Called on another thread, each call's loop
/// stays until the main thread drains the main queue.
final class LoopThread: @unchecked Sendable {
    private var handle = pthread_t()
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    // Set once by the new thread, under `mutex`; read only after `init` has seen it.
    private var _loop: (any EventLoop)?
    var loop: any EventLoop { _loop! }

    init() throws {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(
            &handle, nil,
            { context in
                let this = Unmanaged<LoopThread>.fromOpaque(context!).takeRetainedValue()
                MultiThreadedEventLoopGroup.withCurrentThreadAsEventLoop { loop in
                    pthread_mutex_lock(&this.mutex)
                    this._loop = loop
                    pthread_cond_signal(&this.condition)
                    pthread_mutex_unlock(&this.mutex)
                }
                return nil
            }, context)
        guard status == 0 else {
            Unmanaged<LoopThread>.fromOpaque(context).release()
            throw CRIClientError(description: "cannot start a thread for the CRI call: \(String(cString: strerror(status)))")
        }
        pthread_mutex_lock(&mutex)
        while _loop == nil { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    func stop() {
        loop.shutdownGracefully(queue: .main) { _ in }
        pthread_join(handle, nil)
        if Self.onMainThread { drainMainQueue(nil) }
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// The main thread's id is the process's (`/proc/thread-self` is `PID/task/TID`).
    static var onMainThread: Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self", &buffer, buffer.count)
        guard count > 0 else { return false }
        let parts = buffer[..<count].split(separator: UInt8(ascii: "/"))
        return parts.count == 3 && parts[0] == parts[2]
    }
}

/// libdispatch's entry point for running the main queue's blocks from a run loop of one's own
/// (CoreFoundation's on Linux); exported by libdispatch, not declared by the Dispatch module. It
/// must be called on the main thread, and runs every block queued there (the agent queues none).
@_silgen_name("_dispatch_main_queue_callback_4CF")
private func drainMainQueue(_ message: UnsafeMutableRawPointer?)
