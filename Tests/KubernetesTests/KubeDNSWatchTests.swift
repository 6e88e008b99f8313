import Foundation
import HostSystem
import Vocabulary
import XCTest

@testable import Kubernetes

/// A scripted double of the API for the watch: each GET by path (the Service, the slices' list),
/// each watch request from a queue of answers (the event lines, then the status it ends with, or
/// an error); a watch asked past the queue is an error that ends the session.
final class ScriptedWatchAPI: KubeWatchTransport, @unchecked Sendable {
    struct Watch {
        var lines: [String] = []
        var status = 200
        var json: JSONValue?
        var thenThrow: String?
        /// Runs after the lines, inside the stream (the watch is live there).
        var during: (() -> Void)?
    }
    var gets: [String: (status: Int, json: JSONValue?)] = [:]
    var watches: [Watch] = []
    var asked: [String] = []

    func get(_ path: String) throws -> (status: Int, json: JSONValue?) {
        asked.append("GET " + path)
        return gets[path] ?? (404, ["kind": "Status", "reason": "NotFound", "message": "not found"])
    }

    func watch(_ path: String, seconds: Int, event: ([UInt8]) throws -> Void) throws -> (status: Int, json: JSONValue?) {
        asked.append("WATCH " + path)
        guard !watches.isEmpty else { throw AgentError(.io, "receive: Connection reset by peer") }
        let w = watches.removeFirst()
        for line in w.lines { try event(Array(line.utf8)) }
        w.during?()
        if let e = w.thenThrow { throw AgentError(.io, e) }
        return (w.status, w.json)
    }
}

final class KubeDNSWatchTests: XCTestCase {
    let service = KubeDNSService.kubeadm
    let dns = try! IPAddress("10.96.0.10")

    static func slice(_ name: String, ready: [Bool?], version: String) -> String {
        let endpoints = ready.enumerated().map { i, r in
            #"{"addresses":["10.244.0.\#(i + 2)"]"# + (r.map { #","conditions":{"ready":\#($0)}"# } ?? "") + "}"
        }
        return
            #"{"kind":"EndpointSlice","metadata":{"name":"\#(name)","resourceVersion":"\#(version)"},"endpoints":[\#(endpoints.joined(separator: ","))]}"#
    }

    static func event(_ type: String, _ object: String) -> String { #"{"type":"\#(type)","object":\#(object)}"# }

    func api(clusterIP: String = "10.96.0.10", ready: [Bool?] = [true, true]) throws -> ScriptedWatchAPI {
        let api = ScriptedWatchAPI()
        api.gets[service.servicePath] = (
            200, try JSONValue.parse(Array(#"{"kind":"Service","spec":{"clusterIP":"\#(clusterIP)","clusterIPs":["\#(clusterIP)"]}}"#.utf8))
        )
        api.gets[service.slicesPath] = (
            200,
            try JSONValue.parse(
                Array(
                    #"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"100"},"items":[\#(Self.slice("kube-dns-a", ready: ready, version: "90"))]}"#
                        .utf8))
        )
        return api
    }

    func testEventsMoveTheReadyCount() throws {
        var set = EndpointSliceSet()
        try set.list(
            try JSONValue.parse(
                Array(#"{"metadata":{"resourceVersion":"5"},"items":[\#(Self.slice("a", ready: [true, nil, false], version: "4"))]}"#.utf8))
        )
        XCTAssertEqual(set.ready, 2, "ready true and ready absent count, ready false does not")
        XCTAssertEqual(set.resourceVersion, "5")
        try set.apply(Array(Self.event("ADDED", Self.slice("b", ready: [true], version: "6")).utf8))
        XCTAssertEqual(set.ready, 3)
        try set.apply(Array(Self.event("MODIFIED", Self.slice("a", ready: [false, false], version: "7")).utf8))
        XCTAssertEqual(set.ready, 1)
        try set.apply(Array(Self.event("DELETED", Self.slice("b", ready: [true], version: "8")).utf8))
        XCTAssertEqual(set.ready, 0)
        try set.apply(Array(Self.event("BOOKMARK", #"{"kind":"EndpointSlice","metadata":{"resourceVersion":"12"}}"#).utf8))
        XCTAssertEqual(set.resourceVersion, "12")
        XCTAssertEqual(set.ready, 0)
    }

    func testErrorEventsAndGarbageEndTheStream() {
        var set = EndpointSliceSet()
        let gone = Self.event("ERROR", #"{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}"#)
        XCTAssertThrowsError(try set.apply(Array(gone.utf8))) {
            XCTAssertEqual($0 as? EndpointSliceSet.End, .gone("too old resource version: 1 (5)"))
        }
        let other = Self.event("ERROR", #"{"kind":"Status","code":500,"message":"etcd"}"#)
        XCTAssertThrowsError(try set.apply(Array(other.utf8))) {
            XCTAssertEqual($0 as? EndpointSliceSet.End, .error("the watch ended with an error: etcd"))
        }
        for bad in [
            "", "not json", #"{"type":"ADDED"}"#, #"{"type":"WHAT","object":{"metadata":{"resourceVersion":"1"}}}"#,
            Self.event("ADDED", #"{"metadata":{"name":"x"}}"#), "[1,2]", String(repeating: "[", count: 100_000),
        ] {
            XCTAssertThrowsError(try set.apply(Array(bad.utf8)), bad.prefix(40).description)
        }
        XCTAssertEqual(set, EndpointSliceSet(), "nothing taken from what was refused")
    }

    func testSlicesAreBounded() throws {
        var set = EndpointSliceSet()
        for i in 0..<EndpointSliceSet.maximumSlices {
            try set.apply(Array(Self.event("ADDED", Self.slice("s\(i)", ready: [true], version: "\(i + 1)")).utf8))
        }
        XCTAssertThrowsError(try set.apply(Array(Self.event("ADDED", Self.slice("one-more", ready: [true], version: "9999")).utf8)))
        XCTAssertNoThrow(try set.apply(Array(Self.event("MODIFIED", Self.slice("s0", ready: [false], version: "10000")).utf8)))
    }

    func testLinesAreSplitAcrossReadsAndBounded() throws {
        var lines = WatchLines()
        XCTAssertEqual(try lines.take(Array("{\"a\":1}\n{\"b\"".utf8)), [Array("{\"a\":1}".utf8)])
        XCTAssertEqual(try lines.take(Array(":2}\n\n".utf8)), [Array("{\"b\":2}".utf8)])
        XCTAssertThrowsError(try lines.take([UInt8](repeating: 0x20, count: KubeWatchBounds.maximumEventBytes + 1)))
    }

    func testTheWordIsTakenOnlyWhileTheWatchIsLive() throws {
        let api = try api()
        let watch = KubeDNSWatch(service: service, transport: api, watchSeconds: 5...5)
        XCTAssertNil(watch.reading(for: dns).ready, "before the watch starts")
        var during: [KubeDNSReading] = []
        api.watches = [
            .init(lines: [], during: { during.append(watch.reading(for: self.dns)) }),  // the server's timeout: watched again
            .init(
                lines: [Self.event("MODIFIED", Self.slice("kube-dns-a", ready: [false, false], version: "101"))],
                thenThrow: "receive: Connection reset by peer",
                during: {
                    during.append(watch.reading(for: self.dns))
                    during.append(watch.reading(for: try! IPAddress("10.43.0.10")))
                }),
        ]
        let (why, wasLive, refused) = watch.session()
        XCTAssertEqual(during.map(\.ready), [2, 0, nil])
        XCTAssertEqual(during[0].said, "kube-dns: 2 ready endpoints (EndpointSlice watch of kube-system/kube-dns)")
        XCTAssertTrue(during[2].said.contains("clusterIP 10.96.0.10 is not the cluster DNS address 10.43.0.10"), during[2].said)
        XCTAssertTrue(wasLive)
        XCTAssertFalse(refused)
        XCTAssertTrue(why.contains("broke") && why.contains("Connection reset"), why)
        let watches = api.asked.filter { $0.hasPrefix("WATCH") }
        XCTAssertEqual(watches.count, 2)
        XCTAssertTrue(watches[0].contains("resourceVersion=100&") && watches[0].contains("allowWatchBookmarks=true"), watches[0])
        XCTAssertTrue(watches[0].contains("labelSelector=kubernetes.io/service-name%3Dkube-dns"), watches[0])
        XCTAssertTrue(watches[1].contains("resourceVersion=100&"), "the stream's end: watched again from the last version, no list")
        XCTAssertEqual(api.asked.filter { $0.hasPrefix("GET") }.count, 2, "the Service and one list")
    }

    func testGoneListsAgain() throws {
        let api = try api()
        let watch = KubeDNSWatch(service: service, transport: api, watchSeconds: 5...5)
        api.watches = [
            .init(status: 410, json: ["kind": "Status", "code": 410, "reason": "Expired"]),
            .init(lines: [Self.event("ERROR", #"{"kind":"Status","code":410,"message":"too old"}"#)]),
            .init(lines: [Self.event("BOOKMARK", #"{"metadata":{"resourceVersion":"300"}}"#)]),
        ]
        _ = watch.session()
        XCTAssertEqual(api.asked.filter { $0.hasPrefix("GET /apis") }.count, 3, "listed again after each 410: \(api.asked)")
        XCTAssertTrue(api.asked.last?.contains("resourceVersion=300&") ?? false, "from the bookmark's version: \(api.asked)")
    }

    /// A server that answers every watch 410 is not listed and watched again in a loop: the
    /// third 410 in a row (no event taken between) ends the session, and backoff follows. Broken,
    /// the session lists again after each and ends only when the scripted queue is empty.
    func testGoneAgainAndAgainEndsTheSession() throws {
        let api = try api()
        let gone = ScriptedWatchAPI.Watch(status: 410, json: ["kind": "Status", "code": 410, "reason": "Expired"])
        api.watches = Array(repeating: gone, count: 5)
        let (why, wasLive, refused) = KubeDNSWatch(service: service, transport: api, watchSeconds: 5...5).session()
        XCTAssertEqual(why, "the EndpointSlice watch was answered 410 Gone 3 times in a row")
        XCTAssertTrue(wasLive)
        XCTAssertFalse(refused)
        XCTAssertEqual(api.asked.filter { $0.hasPrefix("WATCH") }.count, 3, "\(api.asked)")
    }

    /// Streams the server ends at once are not watched again in a loop: the third ends the
    /// session (backoff follows). Broken, the session never ends here (the scripted double then
    /// throws only when its queue is empty, after the fourth).
    func testStreamsEndedAtOnceEndTheSession() throws {
        let api = try api()
        api.watches = Array(repeating: .init(), count: 4)
        let (why, wasLive, refused) = KubeDNSWatch(service: service, transport: api, watchSeconds: 5...5).session()
        XCTAssertEqual(why, "the EndpointSlice watch ended at once 3 times in a row")
        XCTAssertTrue(wasLive)
        XCTAssertFalse(refused)
        XCTAssertEqual(api.watches.count, 1, "three watches asked")
    }

    func testRefusalsAndAMissingServiceFailClosed() throws {
        let forbidden: JSONValue = [
            "kind": "Status", "code": 403, "reason": "Forbidden",
            "message": #"endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:node-agent:node-agent" cannot list"#,
        ]
        let api = try api()
        api.gets[service.slicesPath] = (403, forbidden)
        let watch = KubeDNSWatch(service: service, transport: api)
        let (why, wasLive, refused) = watch.session()
        XCTAssertTrue(refused)
        XCTAssertFalse(wasLive)
        XCTAssertTrue(why.contains("refused (403: Forbidden") && why.contains("list, watch on endpointslices in kube-system"), why)
        XCTAssertEqual(api.asked.filter { $0.hasPrefix("WATCH") }, [], "no watch without the list")

        let missing = try self.api()
        missing.gets[service.servicePath] = nil
        let (gone, _, refusedToo) = KubeDNSWatch(service: try KubeDNSService("kube-system/rke2-coredns-rke2-coredns"), transport: missing)
            .session()
        XCTAssertTrue(refusedToo)
        XCTAssertTrue(gone.contains("the Service kube-system/rke2-coredns-rke2-coredns: not found (404"), gone)
        XCTAssertThrowsError(try KubeDNSService("kube-dns")) { XCTAssertTrue("\($0)".contains("NAMESPACE/NAME")) }
        XCTAssertThrowsError(try KubeDNSService("kube-system/Kube_DNS"))
    }
}
