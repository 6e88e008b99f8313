import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import XCTest

@testable import CRIClient

/// gRPC's layer written here, against an HTTP/2 server in the test built with the same library
/// (swift-nio-http2): what a call sends, and how each way a runtime can end it comes back to the
/// callers (an answer, a status other than OK, no grpc-status, a message over the bound, a reset
/// stream, an HTTP error).
final class GRPCFramingTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "grpc-framing-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    static let okHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    static func message(_ bytes: [UInt8]) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(GRPCFraming.lengthPrefixed(bytes))))
    }

    static func trailers(_ headers: HPACKHeaders) -> HTTP2Frame.FramePayload { .headers(.init(headers: headers, endStream: true)) }

    func testAnAnswerIsReadAndTheRequestIsGRPCs() async throws {
        let version = VersionResponse(decodingFields: ["0.1.0", "containerd", "1.7.24", "v1"])
        let server = try await ScriptedHTTP2Server.start(
            folder: folder,
            answer: [.headers(.init(headers: Self.okHeaders)), Self.message(version), Self.trailers(["grpc-status": "0"])])
        defer { server.stop() }
        let answer = try await CRIClient.version(socketPath: server.path, timeoutSeconds: 5)
        XCTAssertEqual([answer.runtimeName, answer.runtimeVersion], ["containerd", "1.7.24"])

        let request = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(request.headers.first(name: ":method"), "POST")
        XCTAssertEqual(request.headers.first(name: ":path"), "/runtime.v1.RuntimeService/Version")
        XCTAssertEqual(request.headers.first(name: "content-type"), "application/grpc")
        XCTAssertEqual(request.headers.first(name: "te"), "trailers")
        let timeout = try XCTUnwrap(request.headers.first(name: "grpc-timeout"))
        XCTAssertTrue(timeout.hasSuffix("m") && (4000...5000).contains(Int(timeout.dropLast()) ?? 0), timeout)
        XCTAssertEqual(request.body, [0, 0, 0, 0, 7] + VersionRequest().encoded())
    }

    func testAStatusOtherThanOKIsTheRuntimesAnswerWithItsMessageDecoded() async throws {
        let refusal: HPACKHeaders = ["grpc-status": "5", "grpc-message": "pulling %22x%2Fy:1%22: not found %E2%9C%97 100%"]
        let answers: [[HTTP2Frame.FramePayload]] = [
            [.headers(.init(headers: Self.okHeaders)), Self.trailers(refusal)], [Self.trailers(Self.okHeaders + refusal)],
        ]
        for answer in answers {
            let server = try await ScriptedHTTP2Server.start(folder: folder, answer: answer)
            defer { server.stop() }
            let r = try await CRIClient.pullImage(socketPath: server.path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
            XCTAssertFalse(r.ok)
            XCTAssertEqual(r.code, 5)
            XCTAssertEqual(r.message, "pulling \"x/y:1\": not found \u{2717} 100%")
            XCTAssertEqual(server.requests.first?.headers.first(name: ":path"), "/runtime.v1.ImageService/PullImage")
        }
    }

    func testTrailersWithoutGRPCStatusAreAnUnknownStatusSayingSo() async throws {
        let server = try await ScriptedHTTP2Server.start(
            folder: folder,
            answer: [.headers(.init(headers: Self.okHeaders)), Self.message([0x0a, 0x01, 0x78]), Self.trailers(["grpc-message": "x"])])
        defer { server.stop() }
        let r = try await CRIClient.pullImage(socketPath: server.path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
        XCTAssertEqual(r.code, 2, r.message)
        XCTAssertEqual(r.message, "the runtime's answer ended without a grpc-status")
    }

    /// A length prefix over the bound is refused when it comes, before its bytes: the server
    /// sends the prefix of a 5 MiB message and nothing more.
    func testAMessageOverTheBoundIsRefusedAtItsPrefix() async throws {
        var prefix = ByteBuffer()
        prefix.writeInteger(UInt8(0))
        prefix.writeInteger(UInt32(5 * 1024 * 1024))
        let server = try await ScriptedHTTP2Server.start(
            folder: folder, answer: [.headers(.init(headers: Self.okHeaders)), .data(.init(data: .byteBuffer(prefix)))])
        defer { server.stop() }
        let start = Date()
        let r = try await CRIClient.pullImage(socketPath: server.path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
        XCTAssertEqual(r.code, 8, r.message)
        XCTAssertEqual(r.message, "the runtime's answer is 5242880 bytes, more than the 4194304 bytes allowed")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    func testAResetStreamIsAStatusFromItsErrorCode() async throws {
        for (code, status) in [(HTTP2ErrorCode.refusedStream, 14), (.internalError, 13), (.cancel, 1)] {
            let server = try await ScriptedHTTP2Server.start(folder: folder, answer: [.rstStream(code)])
            defer { server.stop() }
            let r = try await CRIClient.pullImage(socketPath: server.path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
            XCTAssertEqual(r.code, status, r.message)
            XCTAssertEqual(r.message, "the runtime reset the call's stream (HTTP/2 error \(code.networkCode))")
            do {
                _ = try await CRIClient.version(socketPath: server.path, timeoutSeconds: 5)
                XCTFail("a reset Version answered")
            } catch {
                XCTAssertTrue("\(error)".contains("refused Version: \(GRPCStatus.names[status])"), "\(error)")
            }
        }
    }

    func testAnHTTPErrorOrAnotherContentTypeIsNotAnAnswer() async throws {
        let cases: [(HPACKHeaders, Int, String)] = [
            ([":status": "503"], 14, "the runtime answered with HTTP status 503, not 200"),
            ([":status": "200", "content-type": "text/plain"], 2, "the runtime answered with content-type \"text/plain\", not gRPC's"),
        ]
        for (headers, code, message) in cases {
            let server = try await ScriptedHTTP2Server.start(folder: folder, answer: [Self.trailers(headers)])
            defer { server.stop() }
            let r = try await CRIClient.pullImage(socketPath: server.path, image: "x/y:1", username: nil, password: nil, timeoutSeconds: 5)
            XCTAssertEqual([r.code], [code], r.message)
            XCTAssertEqual(r.message, message)
        }
    }

    /// An informational answer (1xx) before the response is skipped, as HTTP/2 allows it; one
    /// that ends the stream is an error saying so, not the answer.
    func testAnInformationalAnswerBeforeTheResponseIsSkipped() async throws {
        let version = VersionResponse(decodingFields: ["0.1.0", "containerd", "2.1.9", "v1"])
        let server = try await ScriptedHTTP2Server.start(
            folder: folder,
            answer: [
                .headers(.init(headers: [":status": "103"])), .headers(.init(headers: Self.okHeaders)), Self.message(version),
                Self.trailers(["grpc-status": "0"]),
            ])
        defer { server.stop() }
        let answer = try await CRIClient.version(socketPath: server.path, timeoutSeconds: 5)
        XCTAssertEqual(answer.runtimeVersion, "2.1.9")

        var reader = GRPCResponseReader()
        guard case .failure(let status)? = reader.consume(Self.trailers([":status": "100"])) else {
            return XCTFail("a 1xx that ends the stream was taken as an answer")
        }
        XCTAssertEqual(status.code, 13)
        XCTAssertEqual(status.message, "the runtime ended the call with an informational HTTP status 100")
    }

    func testGRPCTimeoutAndPercentDecoding() {
        func timeout(_ seconds: Double) -> String? {
            GRPCFraming.requestHeaders(service: "s", method: "m", timeoutSeconds: seconds).first(name: "grpc-timeout")
        }
        XCTAssertEqual([timeout(0.0001), timeout(1.5), timeout(86_400)], ["1m", "1500m", "86400000m"])
        XCTAssertEqual(GRPCStatus.percentDecoded("a%20b%zz%4"), "a b%zz%4")
        XCTAssertEqual(GRPCStatus(trailers: ["grpc-status": "x"]).code, 2)
    }
}

extension VersionResponse {
    init(decodingFields fields: [String]) {
        self.init()
        (version, runtimeName, runtimeVersion, runtimeAPIVersion) = (fields[0], fields[1], fields[2], fields[3])
    }

    func encoded() -> [UInt8] {
        var w = ProtoWriter()
        for (field, value) in [version, runtimeName, runtimeVersion, runtimeAPIVersion].enumerated() { w.string(field + 1, value) }
        return w.bytes
    }
}

extension GRPCFramingTests {
    static func message(_ version: VersionResponse) -> HTTP2Frame.FramePayload { message(version.encoded()) }
}

extension HPACKHeaders {
    static func + (lhs: HPACKHeaders, rhs: HPACKHeaders) -> HPACKHeaders {
        var out = lhs
        out.add(contentsOf: rhs)
        return out
    }
}
