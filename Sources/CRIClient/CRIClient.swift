import CRIWire
import Glibc
import HostSystem

/// The runtime could not be asked at all: its socket is missing or refuses connections, or what
/// answers there does not speak HTTP/2.
public struct CRIClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A client of a container runtime's CRI socket (runtime.v1, gRPC over HTTP/2 on a unix socket),
/// for the calls `node-agent-cri` makes: each connects, asks once, and is given up when its
/// timeout has passed (deadline exceeded, naming the socket and the seconds). HTTP/2 is
/// swift-nio-http2's; gRPC's thin layer over it is `GRPCCall` and `GRPCFraming`.
public enum CRIClient {
    /// `ImageService/PullImage` of `image`, with a pull secret's `username` and `password`.
    /// Throws only when the runtime could not be asked; the runtime's refusal is an answer.
    public static func pullImage(
        socketPath: String, image: String, username: String?, password: String?,
        timeoutSeconds: Double
    ) async throws -> CRIPullAnswer {
        let request = PullImageRequest(image: image, username: username, password: password)
        let outcome = try await call(socketPath, "runtime.v1.ImageService", "PullImage", request.encoded(), timeoutSeconds: timeoutSeconds)
        {
            try PullImageResponse(decoding: $0)
        }
        switch outcome {
        case .success(let response): return CRIPullAnswer(ok: true, imageRef: response.imageRef, code: 0, message: "")
        case .failure(let error): return CRIPullAnswer(ok: false, imageRef: nil, code: error.code, message: error.message)
        }
    }

    /// `RuntimeService/Version`: the runtime's name and version (`containerd`, `1.6.20~ds1`).
    public static func version(socketPath: String, timeoutSeconds: Double) async throws -> CRIRuntimeVersion {
        let outcome = try await call(
            socketPath, "runtime.v1.RuntimeService", "Version", VersionRequest().encoded(), timeoutSeconds: timeoutSeconds
        ) {
            try VersionResponse(decoding: $0)
        }
        switch outcome {
        case .success(let response): return CRIRuntimeVersion(runtimeName: response.runtimeName, runtimeVersion: response.runtimeVersion)
        case .failure(let error):
            throw CRIClientError(description: "the container runtime at \(socketPath) refused Version: \(error.name) \(error.message)")
        }
    }

    /// `RuntimeService/Status` with `verbose`: the runtime's `info` map (containerd: `config`,
    /// its effective CRI config as JSON; `golang`, the Go version it was built with).
    public static func statusInfo(socketPath: String, timeoutSeconds: Double) async throws -> [String: String] {
        let outcome = try await call(
            socketPath, "runtime.v1.RuntimeService", "Status", StatusRequest().encoded(), timeoutSeconds: timeoutSeconds
        ) {
            try StatusResponse(decoding: $0)
        }
        switch outcome {
        case .success(let response): return response.info
        case .failure(let error):
            throw CRIClientError(description: "the container runtime at \(socketPath) refused Status: \(error.name) \(error.message)")
        }
    }

    /// One unary RPC: the runtime's answer, or its gRPC status (deadline exceeded when
    /// `timeoutSeconds` passed first). Throws when the socket cannot be reached or does not
    /// speak HTTP/2.
    static func call<Response: Sendable>(
        _ socketPath: String, _ service: String, _ method: String, _ request: [UInt8], timeoutSeconds: Double,
        _ decode: @escaping @Sendable ([UInt8]) throws -> Response
    ) async throws -> Result<Response, GRPCStatus> {
        // A missing or refused socket (no runtime, or a stopped one), or one where no HTTP/2
        // server answers, is found here before the call starts, and said in the socket's own
        // words: its errno, or what answered instead.
        let clock = ContinuousClock()
        let start = clock.now
        guard try checkHTTP2Server(socketPath, timeoutSeconds: timeoutSeconds) else {
            return .failure(timedOut(socketPath, timeoutSeconds))
        }
        let elapsed = start.duration(to: clock.now).components
        let remaining = timeoutSeconds - Double(elapsed.seconds) - Double(elapsed.attoseconds) / 1e18

        let outcome: Result<[UInt8], GRPCStatus>?
        do {
            outcome = try await within(seconds: remaining) {
                try await GRPCCall.unary(
                    socketPath: socketPath, service: service, method: method, message: request, timeoutSeconds: remaining)
            }
        } catch {
            throw CRIClientError(description: "the container runtime at \(socketPath) could not be asked: \(error)")
        }
        switch outcome {
        case nil: return .failure(timedOut(socketPath, timeoutSeconds))
        case .failure(let status)?: return .failure(status)
        case .success(let bytes)?:
            do {
                return .success(try decode(bytes))
            } catch {
                return .failure(
                    GRPCStatus(code: GRPCStatus.internalError, message: "the runtime's \(method) answer could not be read: \(error)"))
            }
        }
    }

    static func timedOut(_ socketPath: String, _ timeoutSeconds: Double) -> GRPCStatus {
        GRPCStatus(
            code: GRPCStatus.deadlineExceeded, message: "no answer from the container runtime at \(socketPath) within \(timeoutSeconds) s")
    }

    /// `body`'s result, or nil when `seconds` passed first: then `body` is cancelled (which
    /// closes the call's connection) and waited for.
    static func within<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(min(max(seconds, 0), 86_400)))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
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
        let fd: Int32
        switch UnixSocket.connect(to: path) {
        case .success(let connected): fd = connected
        case .failure(.pathTooLong(let limit)): throw failure("the path is longer than a unix socket address allows (\(limit) bytes)")
        case .failure(.failed(let code)): throw failure(String(cString: strerror(code)))
        }
        defer { close(fd) }

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
