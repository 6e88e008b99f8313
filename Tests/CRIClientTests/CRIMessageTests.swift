import XCTest

@testable import CRIClient

/// The hand-written protobuf against the real thing: each expected byte string is what
/// google.protobuf 7.36 (`SerializeToString`, the messages compiled from runtime.v1's api.proto by
/// scripts/cri) gave for the same message, and each decoded one was checked with its `FromString`.
final class CRIMessageTests: XCTestCase {
    func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    func testStatusRequestIsVerboseAndTheResponsesInfoMapIsRead() throws {
        XCTAssertEqual(StatusRequest().encoded(), hex("0801"))
        // A status with one condition (skipped), and two info entries.
        let response = try StatusResponse(
            decoding: hex(
                "0a120a100a0c52756e74696d6552656164791001123f0a06636f6e66696712357b227265676973747279223a7b22636f6e66696750617468223a222f6574632f636f6e7461696e6572642f63657274732e64227d7d12140a06676f6c616e67120a22676f312e31392e3822"
            ))
        XCTAssertEqual(
            response.info, ["config": #"{"registry":{"configPath":"/etc/containerd/certs.d"}}"#, "golang": #""go1.19.8""#])
    }

    func testPullImageRequestWithoutCredentialsHasNoAuth() {
        let r = PullImageRequest(image: "registry-service.openfaas.svc.cluster.local:443/test/tiny:1", username: nil, password: nil)
        XCTAssertEqual(
            r.encoded(),
            hex(
                "0a3d0a3b72656769737472792d736572766963652e6f70656e666161732e7376632e636c75737465722e6c6f63616c3a3434332f746573742f74696e793a31"
            ))
        XCTAssertEqual(PullImageRequest(image: "i", username: "", password: "").encoded(), hex("0a030a0169"))
    }

    func testPullImageRequestCarriesUsernameAndPasswordOnly() {
        let r = PullImageRequest(image: "r:443/test/tiny:1", username: "builder", password: "sandbox-password")
        XCTAssertEqual(
            r.encoded(), hex("0a130a11723a3434332f746573742f74696e793a31121b0a076275696c646572121073616e64626f782d70617373776f7264"))
        XCTAssertEqual(PullImageRequest(image: "i", username: "u", password: nil).encoded(), hex("0a030a016912030a0175"))
    }

    /// Lengths of 128 and more take a two-byte varint, for the inner and the outer message.
    func testLongImageNamesUseMultiByteLengths() {
        let bytes = PullImageRequest(image: String(repeating: "x", count: 200), username: nil, password: nil).encoded()
        XCTAssertEqual(Array(bytes.prefix(6)), hex("0acb010ac801"))
        XCTAssertEqual(bytes.count, 206)
    }

    func testVersionRequest() {
        XCTAssertEqual(VersionRequest().encoded(), hex("0a05302e312e30"))
    }

    func testDecodesResponses() throws {
        XCTAssertEqual(try PullImageResponse(decoding: hex("0a0a7368613235363a616263")).imageRef, "sha256:abc")
        let v = try VersionResponse(decoding: hex("0a05302e312e30120a636f6e7461696e6572641a0a312e362e32307e64733122027631"))
        XCTAssertEqual([v.version, v.runtimeName, v.runtimeVersion, v.runtimeAPIVersion], ["0.1.0", "containerd", "1.6.20~ds1", "v1"])
        XCTAssertEqual(try PullImageResponse(decoding: []).imageRef, "")
    }

    /// Fields a newer runtime may add are skipped, of every wire type: a varint (field 5 = 300),
    /// fixed64 (6), fixed32 (7), a nested message (15), a two-byte tag (field 100); and a field
    /// sent twice keeps its last value, as protobuf's own parser does.
    func testSkipsUnknownFieldsAndKeepsTheLastValue() throws {
        let bytes = hex(
            "28ac02" + "310102030405060708" + "3d01020304" + "0a0466697273" + "7a020801" + "0a0a7368613235363a616263" + "a00601")
        XCTAssertEqual(try PullImageResponse(decoding: bytes).imageRef, "sha256:abc")
        let v = try VersionResponse(
            decoding: hex("0a05302e312e30" + "4801" + "5203" + "0a0178" + "120a636f6e7461696e6572641a0a312e362e32307e64733122027631"))
        XCTAssertEqual([v.runtimeName, v.runtimeVersion, v.runtimeAPIVersion], ["containerd", "1.6.20~ds1", "v1"])
    }

    func testRejectsTruncatedOrMalformedMessages() {
        for bad in ["0a05302e31", "0a", "0a8080808080808080808001", "31010203", "3d01", "0b", "0001", "ff"] {
            XCTAssertThrowsError(try VersionResponse(decoding: hex(bad)), bad)
        }
    }

    func testVarintsRoundTripThroughTheReader() throws {
        for value: UInt64 in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 35, .max] {
            var w = ProtoWriter()
            w.varint(3 << 3)
            w.varint(value)
            var r = ProtoReader(w.bytes)
            guard case .varint(let read)? = try r.next()?.value else { return XCTFail("\(value)") }
            XCTAssertEqual(read, value)
            XCTAssertNil(try r.next())
        }
    }
}
