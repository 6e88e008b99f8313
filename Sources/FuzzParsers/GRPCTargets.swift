import CRIClient
import NIOCore
import NIOHPACK
import NIOHTTP2

/// The CRI client's own gRPC layer (Sources/CRIClient) as containerd's socket feeds it, after
/// swift-nio-http2 has made frames of it: the length-prefixed message in DATA frames cut anywhere,
/// the status in header lists, the answers' protobuf. Each target checks what must hold, not only
/// that nothing crashed.
extension FuzzParsers {
    static let grpcTargets: [String: @Sendable ([UInt8]) -> Void] = [
        // A response's DATA cut at points the input picks (empty frames too): the outcome is the
        // one the whole stream gives and the one gRPC's framing says (a message framed here reads
        // back the same; a length over the limit is refused in the frame that completes its prefix).
        "grpc-frames": { GRPCFuzz.frames($0) },
        // Header lists as trailers or a trailers-only answer: grpc-status and grpc-message read as
        // sent, an HTTP status or content type refused with gRPC's code, a status round-trips.
        "grpc-status": { GRPCFuzz.status($0) },
        // The answers' protobuf: any bytes end in a bounded number of fields; what containerd would
        // write (with fields this client does not know between) reads back the same.
        "cri-protobuf": { GRPCFuzz.protobuf($0) },
    ]
}

enum GRPCFuzz {
    typealias Outcome = Result<[UInt8], GRPCStatus>

    static let okHead: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    /// Input: limit / 4, flags (bit 0: frame the rest with `lengthPrefixed`; bit 1: trailers with
    /// grpc-status `flags >> 4`; bit 2: the last DATA frame ends the stream, no trailers), the
    /// seed of the cuts, then the stream.
    static func frames(_ input: [UInt8]) {
        guard input.count >= 3 else { return }
        let limit = Int(input[0]) * 4
        let flags = input[1]
        let body = Array(input[3...])
        let stream = flags & 1 == 0 ? body : Array(GRPCFraming.lengthPrefixed(body).readableBytesView)
        let code = flags & 2 == 0 ? 0 : Int(flags >> 4)
        let endsWithData = flags & 4 != 0
        let chunks = cut(stream, seed: input[2])

        let split = read(chunks, limit: limit, code: code, endsWithData: endsWithData)
        let whole = read([stream], limit: limit, code: code, endsWithData: endsWithData)
        precondition(split.outcome == whole.outcome, "cutting changed the outcome: \(split.outcome) / \(whole.outcome)")
        let expected = expectedOutcome(stream, limit: limit, code: code, endsWithData: endsWithData)
        switch (split.outcome, expected) {
        case (.success(let message), .message(let bytes)): precondition(message == bytes, "the message read is not the one sent")
        case (.failure(let status), .refused(let code, _)):
            precondition(status.code == code, "status \(status) where gRPC's framing gives \(code)")
            precondition(status.code == Int(flags >> 4) || !status.message.isEmpty, "a refusal that does not say why")
        default: preconditionFailure("outcome \(split.outcome) where gRPC's framing gives \(expected)")
        }
        if case .refused(_, atPrefix: true) = expected {
            // Refused at its prefix, before its bytes are taken: frame 0 is the head.
            var taken = 0
            let prefixFrame =
                1 + chunks.firstIndex {
                    taken += $0.count
                    return taken >= 5
                }!
            precondition(split.frame == prefixFrame, "a length over the limit refused at frame \(split.frame), not \(prefixFrame)")
        }
        if flags & 7 == 1 && body.count <= limit {
            precondition(split.outcome == .success(body), "a message framed here did not read back")
        }
    }

    /// `stream` in pieces of 0...rest bytes, the cuts drawn from `seed`.
    static func cut(_ stream: [UInt8], seed: UInt8) -> [[UInt8]] {
        var state = UInt64(seed) &+ 0x9E37_79B9_7F4A_7C15
        var chunks: [[UInt8]] = []
        var at = 0
        repeat {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let left = stream.count - at
            let size = chunks.count >= 2 * stream.count ? left : Int((state >> 33) % UInt64(left + 1))
            chunks.append(Array(stream[at..<at + size]))
            at += size
        } while at < stream.count
        return chunks
    }

    /// The frames (the head, the DATA, the trailers) through a reader: its outcome and the frame
    /// that gave it. Every answer that ends gives one.
    static func read(_ chunks: [[UInt8]], limit: Int, code: Int, endsWithData: Bool) -> (outcome: Outcome, frame: Int) {
        var frames: [HTTP2Frame.FramePayload] = [.headers(.init(headers: okHead))]
        for (i, chunk) in chunks.enumerated() {
            let last = endsWithData && i == chunks.count - 1
            frames.append(.data(.init(data: .byteBuffer(ByteBuffer(bytes: chunk)), endStream: last)))
        }
        if !endsWithData { frames.append(.headers(.init(headers: ["grpc-status": "\(code)"], endStream: true))) }
        var reader = GRPCResponseReader(maxMessageBytes: limit)
        for (i, frame) in frames.enumerated() {
            if let outcome = reader.consume(frame) { return (outcome, i) }
        }
        preconditionFailure("an answer that ended left its outcome unknown")
    }

    /// What gRPC's framing makes of `stream` (PROTOCOL-HTTP2.md's Length-Prefixed-Message): one
    /// uncompressed message of the length its prefix says, at most `limit` bytes.
    static func expectedOutcome(_ stream: [UInt8], limit: Int, code: Int, endsWithData: Bool) -> Expected {
        let length = stream.count >= 5 ? stream[1..<5].reduce(0) { $0 << 8 | Int($1) } : -1
        if length > limit { return .refused(GRPCStatus.resourceExhausted, atPrefix: true) }
        if length >= 0 && stream.count > 5 + length { return .refused(GRPCStatus.internalError, atPrefix: false) }
        if endsWithData { return .refused(GRPCStatus.internalError, atPrefix: false) }
        if code != 0 { return .refused(code, atPrefix: false) }
        guard length >= 0, stream.count == 5 + length, stream[0] == 0 else { return .refused(GRPCStatus.internalError, atPrefix: false) }
        return .message(Array(stream[5...]))
    }

    enum Expected {
        case message([UInt8])
        /// The code; `atPrefix`: a length over the limit, refused as soon as the prefix is in.
        case refused(Int, atPrefix: Bool)
    }
}
