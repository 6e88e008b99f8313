import FoundationEssentials
import Glibc
import HostSystem
import Transport
import Vocabulary

/// The cluster's own word on kube-dns: the Service's EndpointSlices (the endpoints controller
/// marks an endpoint not ready when CoreDNS's readiness probe fails, and drops it when the pod
/// goes), through one watch per node, as client-go's reflector keeps one: the Service read once
/// (its clusterIPs, to be matched against the address the agent routes to), the slices listed,
/// then watched from the list's resourceVersion with bookmarks and a jittered timeoutSeconds
/// (300-600 s), watched again from the last resourceVersion when the server ends the stream,
/// listed again on 410 Gone, and started again with backoff after any other end. Never a GET per
/// interval: the API server's load is the watch's reconnects and the slices' changes.
///
/// Fail closed: the word is taken only while the watch is live and synced (`reading`); before
/// that, and after anything that ended it, `reading` says why not and the light reconcile asks
/// kube-dns its question as without a watch.
public final class KubeDNSWatch: @unchecked Sendable {
    public let service: KubeDNSService
    let transport: any KubeWatchTransport
    /// timeoutSeconds of each watch request, drawn from this range.
    let watchSeconds: ClosedRange<Int>
    private let lock = PlainLock()
    private var clusterIPs: [String] = []
    private var slices: EndpointSliceSet?
    private var notTaken = "the EndpointSlice watch has not started"

    public init(service: KubeDNSService, transport: any KubeWatchTransport, watchSeconds: ClosedRange<Int> = 300...599) {
        self.service = service
        self.transport = transport
        self.watchSeconds = watchSeconds
    }

    /// What the cluster says now, for the kube-dns address the agent routes to (`clusterDNS`):
    /// the ready endpoints while the watch is live and synced and the Service's clusterIP is that
    /// address; else nil, and why.
    public func reading(for clusterDNS: IPAddress?) -> KubeDNSReading {
        lock.withLock {
            guard let slices else { return KubeDNSReading(ready: nil, said: "kube-dns: \(notTaken)") }
            guard let clusterDNS, clusterIPs.contains(where: { (try? IPAddress($0)) == clusterDNS }) else {
                return KubeDNSReading(
                    ready: nil,
                    said:
                        "kube-dns: the Service \(service)'s clusterIP \(clusterIPs.joined(separator: ",")) is not the cluster DNS address \(clusterDNS.map { "\($0)" } ?? "(none)") the node routes to; its EndpointSlices are not taken"
                )
            }
            return KubeDNSReading(
                ready: slices.ready, said: "kube-dns: \(slices.ready) ready endpoints (EndpointSlice watch of \(service))")
        }
    }

    /// Starts the watch on a thread of its own, for the life of the process.
    public func start() {
        let started = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let made = pthread_create(
            &thread, nil,
            { arg in
                Unmanaged<KubeDNSWatch>.fromOpaque(arg!).takeRetainedValue().loop()
                return nil
            }, started)
        if made == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<KubeDNSWatch>.fromOpaque(started).release()
            set(notTaken: "no thread for the EndpointSlice watch")
        }
    }

    /// Sessions, with backoff between them: 1 s doubling to 60 s after a stream that broke, 5
    /// minutes after a refusal (403, 404: RBAC or the Service is not there; retried so that RBAC
    /// granted later is taken), each jittered 0.5-1x; back to 1 s after a session that was live.
    func loop() -> Never {
        var delay = 1.0
        while true {
            let (why, wasLive, refused) = session()
            set(notTaken: why)
            delay = refused ? 300 : wasLive ? 1 : min(delay * 2, 60)
            usleep(UInt32(delay * Double.random(in: 0.5...1) * 1e6))
        }
    }

    /// One session: the Service, the list, then watches until one ends otherwise than by the
    /// server's timeout. Why it ended, whether the word was live, and whether it was refused.
    func session() -> (why: String, wasLive: Bool, refused: Bool) {
        var wasLive = false
        do {
            let svc = try transport.get(service.servicePath)
            if let refused = refusal(svc, what: "the Service \(service)") { return (refused, false, true) }
            let ips =
                svc.json?["spec"]?["clusterIPs"]?.array?.compactMap(\.string) ?? svc.json?["spec"]?["clusterIP"]?.string.map { [$0] } ?? []
            var known = EndpointSliceSet()
            // 410s in a row with no event taken between: listed again at once, as client-go's
            // reflector does, but not in a loop (a server or proxy that answers every watch 410
            // would get a list and a watch per round trip from every node): the third ends the
            // session, and backoff follows.
            var goneInARow = 0
            listing: while true {
                let list = try transport.get(service.slicesPath)
                if let refused = refusal(list, what: "the EndpointSlices of \(service)") { return (refused, wasLive, true) }
                try known.list(list.json)
                publish(ips, known)
                wasLive = true
                var quick = 0
                while true {
                    let began = monotonicNanoseconds()
                    let path =
                        service.slicesPath + "&watch=true&allowWatchBookmarks=true&resourceVersion=\(known.resourceVersion)"
                        + "&timeoutSeconds=\(Int.random(in: watchSeconds))"
                    var ended: EndpointSliceSet.End?
                    var answer: (status: Int, json: JSONValue?) = (200, nil)
                    do {
                        answer = try transport.watch(path, seconds: watchSeconds.upperBound) { line in
                            do throws(EndpointSliceSet.End) {
                                try known.apply(line)
                            } catch {
                                ended = error
                                throw error
                            }
                            goneInARow = 0
                            self.publish(ips, known)
                        }
                    } catch  where ended != nil {}  // the event that ended the stream says why
                    var gone = answer.status == 410
                    if case .gone = ended { gone = true }
                    if gone {
                        goneInARow += 1
                        if goneInARow >= 3 { return ("the EndpointSlice watch was answered 410 Gone 3 times in a row", wasLive, false) }
                        set(notTaken: "the EndpointSlice watch is listing again (410 Gone)")
                        continue listing
                    }
                    if let ended { return (Self.said(ended), wasLive, false) }
                    if let refused = refusal(answer, what: "the EndpointSlice watch of \(service)") { return (refused, wasLive, true) }
                    // A stream the server ends at once, again and again (a proxy that cuts it),
                    // is not watched again in a loop: the session ends, and backoff follows.
                    quick = monotonicNanoseconds() - began < 1_000_000_000 ? quick + 1 : 0
                    if quick >= 3 { return ("the EndpointSlice watch ended at once 3 times in a row", wasLive, false) }
                }
            }
        } catch let e as EndpointSliceSet.End {
            return (Self.said(e), wasLive, false)
        } catch {
            return ("the EndpointSlice watch broke: \(Redaction.line("\(error)"))", wasLive, false)
        }
    }

    /// nil for a 200; else why the cluster's word is not taken, for a 4xx (refused: 403, 404)
    /// or another answer.
    func refusal(_ answer: (status: Int, json: JSONValue?), what: String) -> String? {
        guard answer.status != 200 else { return nil }
        let words = Redaction.line(KubeAPI.refusal(answer))
        switch answer.status {
        case 403:
            return
                "\(what): refused (403\(words)); the agent needs get on that Service and list, watch on endpointslices in \(service.namespace)"
        case 404: return "\(what): not found (404\(words)); --kube-dns-service names the cluster DNS Service"
        default: return "\(what): HTTP \(answer.status)\(words)"
        }
    }

    static func said(_ end: EndpointSliceSet.End) -> String {
        switch end {
        case .gone(let m): return "the EndpointSlice watch: 410 Gone (\(Redaction.line(m)))"
        case .error(let m): return "the EndpointSlice watch ended: \(Redaction.line(m))"
        }
    }

    private func publish(_ ips: [String], _ set: EndpointSliceSet) {
        lock.withLock {
            clusterIPs = ips
            slices = set
        }
    }

    private func set(notTaken why: String) {
        lock.withLock {
            slices = nil
            notTaken = why
        }
    }
}
