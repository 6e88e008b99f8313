import Foundation
import HTTPWire
import HostSystem
import Probes
import ResolvedConfig
import TrustStore
import Vocabulary

/// Every parser that reads input the agent does not control, behind one entry point. Built two
/// ways: with `-sanitize=fuzzer,address -DFUZZING` (scripts/fuzz) it is a libFuzzer target that
/// picks its parser from NODE_AGENT_FUZZ_TARGET; built plainly it replays files given on the
/// command line through the same parsers (a corpus or a crash reproducer).
enum FuzzParsers {
    static let targets: [String: @Sendable ([UInt8]) -> Void] = [
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
        // Names and addresses from flags, config files and kubelet's config.
        "names": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? IPAddress(text)
            _ = try? DomainName(text)
            _ = try? RegistryAddress(text)
        },
    ]

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
