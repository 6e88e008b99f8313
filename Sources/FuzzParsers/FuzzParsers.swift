import AgentCore
import CRIWire
import Containerd
import Foundation
import HTTPWire
import HostSystem
import Kubernetes
import Probes
import ResolvedConfig
import Transport
import TrustStore
import Vocabulary

/// Every parser that reads input the agent does not control, behind one entry point. Built two
/// ways: with `-sanitize=fuzzer,address -DFUZZING` (scripts/fuzz) it is a libFuzzer target that
/// picks its parser from NODE_AGENT_FUZZ_TARGET; built plainly it replays files given on the
/// command line through the same parsers (a corpus or a crash reproducer).
enum FuzzParsers {
    static let parsers: [String: @Sendable ([UInt8]) -> Void] = [
        // PEM or DER, one or many certificates, as --ca and the trust store give them.
        "certificate": { bytes in
            if let certs = try? CertificateParser.parse(bytes, source: "fuzz") {
                for c in certs {
                    _ = c.subjectHash
                    _ = c.subject
                }
            }
        },
        // A DNS response as a server (or anyone who can send UDP to the probe's port) sends it.
        "dns": { bytes in _ = try? DNSMessage.parse(bytes) },
        // A PEM trust bundle indexed by subject (the TLS probes' trust): every name found is a
        // whole DER element, and looking each up finds its certificate.
        "trust-bundle": { bytes in
            guard let index = TrustIndex(pem: bytes) else { return }
            for entry in index.entries {
                precondition(entry.subject.first == 0x30 && entry.issuer.first == 0x30, "a name is not a SEQUENCE")
                precondition(index.certificates(named: [Array(entry.subject)]).contains { $0.der == entry.der }, "lookup missed")
            }
            // The same bundle as the whole-store check reads it (a multiset of certificate bodies).
            for body in DebianTrustStore.certificateBodies(String(decoding: bytes, as: UTF8.self)) {
                precondition(!body.contains("\n"), "a body spans lines")
            }
        },
        // A request head as any client of the health endpoint sends it: a request found never
        // claims more bytes than the input has.
        "http-request": { bytes in
            if case .request(let r) = HTTPRequestParser.parse(bytes[...]) {
                precondition(r.length > 0 && r.length <= bytes.count, "bad length")
            }
        },
        "os-release": { bytes in _ = OSRelease(parsing: String(decoding: bytes, as: UTF8.self)) },
        "kubelet-config": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = KubeletDNSConfig.parse(text)
            _ = KubeletDNSConfig.parseFlags(text)
        },
        // resolved.conf and its drop-ins: rendering must give back the input byte for byte.
        "resolved-conf": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            let conf = SystemdConf(parsing: text)
            precondition(conf.text == text, "SystemdConf did not round-trip")
            _ = conf.assignments("DNS", section: "Resolve")
        },
        "resolv-conf": { bytes in _ = ResolvConf(parsing: String(decoding: bytes, as: UTF8.self)) },
        // An HTTP response as a registry, token service, proxy or API server sends it, read as
        // the client reads it: whole or split anywhere, the same outcome; a body never over the limit.
        "http-response": { bytes in
            let limit = 4096
            let whole = Result { () throws(HTTPResponseError) in try HTTPResponseReader.read(bytes, bodyLimit: limit) }
            var reader = HTTPResponseReader(bodyLimit: limit)
            let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
            let split = Result { () throws(HTTPResponseError) in
                try reader.take(Array(bytes[..<cut]))
                if !reader.isComplete { try reader.take(Array(bytes[cut...])) }
                return try reader.finish()
            }
            switch (whole, split) {
            case (.success(let a), .success(let b)):
                precondition(a.body == b.body && a.head.status == b.head.status, "split changed the response")
                precondition(a.body.count <= limit, "a body over the limit")
                precondition((100...999).contains(a.head.status), "a status that is not three digits")
            case (.failure(let a), .failure(let b)):
                precondition(a == b, "split changed the error: \(a) / \(b)")
            default:
                preconditionFailure("split changed the outcome: \(whole) / \(split)")
            }
        },
        // A chunked body alone, with a tiny limit: sizes near Int.max must not overflow.
        "http-chunked": { bytes in
            var decoder = HTTPBodyDecoder(framing: .chunked, limit: 64)
            _ = try? decoder.take(bytes[...])
            precondition(decoder.body.count <= 64, "a chunked body over the limit")
        },
        // A registry's WWW-Authenticate challenge (RFC 7235).
        "www-authenticate": { bytes in
            if let c = AuthChallenge(String(decoding: bytes, as: UTF8.self)) {
                precondition(!c.scheme.isEmpty, "an empty scheme")
            }
        },
        // A Docker config.json (the pull secret's), for a registry by IP and by name.
        "docker-config": { bytes in
            for registry in FuzzParsers.registries {
                _ = try? RegistryCredentials.fromDockerConfig(bytes, registry: registry, source: "fuzz")
            }
        },
        // The Kubernetes API's answers (and every other JSON read): what parses re-encodes and parses again.
        "json": { bytes in
            guard let value = try? JSONValue.parse(bytes) else { return }
            precondition((try? JSONValue.parse(value.encoded())) != nil, "the encoding of a parsed value does not parse")
        },
        // A Kubernetes watch's body as the API server (or anything between) streams it, in two
        // reads: its lines (bounded), each an event of the kube-dns EndpointSlice watch, and the
        // same bytes as a list's answer. The slices stay within their bound whatever comes.
        "kube-watch": { bytes in
            var set = EndpointSliceSet()
            try? set.list(try? JSONValue.parse(bytes))
            var lines = WatchLines()
            let cut = bytes.count / 2
            for part in [Array(bytes[..<cut]), Array(bytes[cut...])] {
                guard let taken = try? lines.take(part) else { return }
                for line in taken {
                    precondition(line.count <= KubeWatchBounds.maximumEventBytes, "a line over the bound was taken")
                    do throws(EndpointSliceSet.End) { try set.apply(line) } catch { return }
                    precondition(set.slices.count <= EndpointSliceSet.maximumSlices, "more slices than the bound")
                }
            }
        },
        // containerd's config.toml (and its imports), as the agent reads config_path from it.
        "containerd-toml": { bytes in _ = ContainerdRegistryConfig.parse(String(decoding: bytes, as: UTF8.self)) },
        // A hosts.toml of certs.d as anyone who writes there wrote it, read by containerd's rules
        // on the agent's TOML reader (1.x and 2.x): the server is always the last host.
        "hosts-toml": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            let folder = try! HostPath("/etc/containerd/certs.d/r:443")
            for major in [1, 2] {
                if let hosts = try? ContainerdHosts.parse(text, folder: folder, major: major) {
                    precondition(hosts.last?.isServer == true && hosts.dropLast().allSatisfy { !$0.isServer }, "the server is not last")
                }
            }
        },
        // k3s/RKE2's registries.yaml: the hosts it names.
        "registries-yaml": { bytes in _ = try? K3sNode.registryHosts(inRegistriesYAML: String(decoding: bytes, as: UTF8.self)) },
        // /proc as a host root shows it: a process's comm, stat and cmdline, /proc/stat,
        // /proc/net/unix and the process's status (parts of the input separated by 0xFE), read as
        // the agent finds the node's containerd (its user, its parents).
        "proc": { bytes in FuzzParsers.fakeProc.check(bytes) },
        // The agent's /status as `node-agent status` reads it back (from any address it is
        // pointed at): what decodes renders, and its own JSON decodes to the same report.
        "status-report": { bytes in
            guard let report = try? Report(decodingJSON: bytes) else { return }
            _ = report.text()
            precondition((try? Report(decodingJSON: Array(report.json().utf8))) == report, "a report's own JSON reads back different")
        },
        // What node-agent-cri and the agent write to each other's pipes: each message that
        // decodes encodes to the same message.
        "cri-answer": { bytes in
            FuzzParsers.roundTrip(CRIPullAnswer.self, bytes)
            FuzzParsers.roundTrip(CRIRuntimeStatus.self, bytes)
            FuzzParsers.roundTrip(CRIRuntimeVersion.self, bytes)
            FuzzParsers.roundTrip(CRIPullCredentials.self, bytes)
            FuzzParsers.roundTrip(CRIPullCall.self, bytes)
        },
        // Names and addresses from flags, config files and kubelet's config.
        "names": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? IPAddress(text)
            _ = try? DomainName(text)
            _ = try? RegistryAddress(text)
        },
    ]

    /// Every target: the parsers above and the CRI client's gRPC layer (GRPCTargets.swift).
    static let targets = parsers.merging(grpcTargets) { first, _ in first }

    static func roundTrip<M: CRIHelperMessage>(_ type: M.Type, _ bytes: [UInt8]) {
        guard let message = try? M(decoding: bytes) else { return }
        precondition((try? M(decoding: message.encoded())) == message, "\(M.self) encodes to a different message")
    }

    static let registries = [
        try! RegistryAddress("registry-service.openfaas.svc.cluster.local:443"), try! RegistryAddress("127.0.0.20:5000"),
    ]

    /// A host root with a /proc of one process (pid 4242), written anew for each input.
    final class FakeProc: @unchecked Sendable {
        let root: String
        let files: HostFiles

        init() {
            root = NSTemporaryDirectory() + "fuzz-proc-\(getpid())"
            try? FileManager.default.createDirectory(atPath: root + "/proc/4242", withIntermediateDirectories: true)
            try? FileManager.default.createDirectory(atPath: root + "/proc/net", withIntermediateDirectories: true)
            files = HostFiles(root: try! HostRoot(root))
        }

        func check(_ bytes: [UInt8]) {
            let parts = bytes.split(separator: 0xFE, maxSplits: 5, omittingEmptySubsequences: false).map { Data($0) }
            let names = ["proc/4242/comm", "proc/4242/stat", "proc/4242/cmdline", "proc/stat", "proc/net/unix", "proc/4242/status"]
            for (i, name) in names.enumerated() {
                FileManager.default.createFile(atPath: root + "/" + name, contents: i < parts.count ? parts[i] : Data())
            }
            let processes = HostProcesses(files: files)
            _ = processes.named(["containerd", String(decoding: parts.first ?? Data(), as: UTF8.self)])
            _ = processes.commandLine(4242)
            _ = processes.listeningUnixSocketInodes(path: "/run/containerd/containerd.sock")
            _ = RunningContainerd.find(files)
            _ = processes.userIDs(4242)
            _ = processes.descends(4242, from: [1])  // a status naming itself as its parent ends the walk
        }
    }

    nonisolated(unsafe) static let fakeProc = FakeProc()

    static func run(_ target: String, _ bytes: [UInt8]) {
        guard let parse = targets[target] else {
            FileHandle.standardError.write(
                Data("unknown fuzz target '\(target)'; one of: \(targets.keys.sorted().joined(separator: ", "))\n".utf8))
            exit(2)
        }
        parse(bytes)
    }
}

#if FUZZING
    nonisolated(unsafe) let fuzzTarget = ProcessInfo.processInfo.environment["NODE_AGENT_FUZZ_TARGET"] ?? ""

    /// libFuzzer's driver, for programs that have their own main (SwiftPM names the executable's
    /// entry point FuzzParsers_main and links `main` to it, so libFuzzer's own main is not used).
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        FuzzParsers.run(fuzzTarget, data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }

    @_cdecl("FuzzParsers_main")
    func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv) { fuzzOneInput($0, $1) }
    }
#else
    @main
    struct Replay {
        /// fuzz-parsers TARGET FILE... : each file through the target's parser.
        static func main() {
            let args = CommandLine.arguments.dropFirst()
            guard let target = args.first else {
                print("usage: fuzz-parsers TARGET FILE...  (targets: \(FuzzParsers.targets.keys.sorted().joined(separator: ", ")))")
                exit(2)
            }
            for path in args.dropFirst() {
                FuzzParsers.run(target, Array(FileManager.default.contents(atPath: path) ?? Data()))
            }
            print("replayed \(args.count - 1) inputs through \(target): no crash")
        }
    }
#endif
