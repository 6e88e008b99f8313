// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "node-agent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "node-agent", targets: ["NodeAgent"]),
        .executable(name: "node-agent-cri", targets: ["NodeAgentCRI"]),
        .executable(name: "fuzz-parsers", targets: ["FuzzParsers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // CRIClient: HTTP/2 on the runtime's unix socket, with gRPC's thin layer written here.
        // grpc-swift's transport for a unix socket always brings swift-nio-ssl and BoringSSL:
        // xN the build (docs/evidence.md, "A leaner CRI transport").
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
    ],
    targets: [
        // C at the edge: module maps + shim headers for what Swift cannot import directly.
        // Headers and libraries from libsystemd-dev and libssl-dev, in the default paths. No
        // pkg-config: SwiftPM would add its -L ahead of scripts/build-release's folder of static
        // archives, and the shared libssl would win.
        .systemLibrary(name: "CSystemd"),
        .systemLibrary(name: "COpenSSL"),
        // openat2(2) for HostSystem's descriptors under the host root (header only).
        .systemLibrary(name: "CLinux"),
        // The version and commit scripts/build-release stamps in at link time (weak defaults: "dev").
        .target(name: "CBuildInfo"),

        // The words every module speaks, touching no host: validated names and addresses
        // (RegistryAddress, DomainName, IPAddress), JSONValue, text helpers, AgentError.
        .target(name: "Vocabulary"),
        // The only module that touches the host: its files, its tools, /proc.
        .target(name: "HostSystem", dependencies: ["Vocabulary", "CLinux"]),
        // containerd as it runs on the node: which process is the node's (RunningContainerd), its
        // config (TOML, imports), certs.d and the hosts it selects, k3s/RKE2, its Go build; the
        // model the trust side writes to and the checks ask.
        .target(name: "Containerd", dependencies: ["Vocabulary", "HostSystem"]),
        .target(name: "TrustStore", dependencies: ["Vocabulary", "HostSystem", "Containerd", "COpenSSL"]),
        // sd-bus and its clients: resolve1 (systemd-resolved), systemd1 (units, runtime restarts).
        .target(name: "SystemBus", dependencies: ["Vocabulary", "HostSystem", "CSystemd"]),
        .target(name: "ResolvedConfig", dependencies: ["Vocabulary", "HostSystem", "SystemBus", "Transport"]),
        // HTTP/1.x heads as they travel: the one head parser, under the probes' client (responses)
        // and the health endpoint (requests); pure and fuzzed.
        .target(name: "HTTPWire", dependencies: ["Vocabulary"]),
        // What node-agent-cri and the agent say across its pipe: one type per message, both sides.
        .target(name: "CRIWire", dependencies: ["Vocabulary"]),
        // The wire the checks and the API client speak: sockets, the bounded HTTP/1.1 client, DNS
        // over UDP/TCP, TLS (OpenSSL) verified against a given trust, the host's resolver.
        .target(name: "Transport", dependencies: ["Vocabulary", "HostSystem", "HTTPWire", "TrustStore", "COpenSSL"]),
        .target(
            name: "Probes",
            dependencies: ["Vocabulary", "HostSystem", "HTTPWire", "TrustStore", "Containerd", "Transport", "CRIWire", "COpenSSL"]),
        // The Kubernetes API client and the node's condition and startup taint.
        .target(name: "Kubernetes", dependencies: ["Vocabulary", "HostSystem", "HTTPWire", "Transport"]),
        // Asks the container runtime over its CRI socket (PullImage, Version), as kubelet does;
        // the few protobuf messages are encoded by hand.
        .target(
            name: "CRIClient",
            dependencies: [
                "CRIWire", "HostSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        ),
        // The job: gather facts, plan(facts, desired) purely, apply, probe, report; bootstrap,
        // uninstall, the DNS mode choice, the readiness rule.
        .target(
            name: "AgentCore",
            dependencies: ["Vocabulary", "HostSystem", "TrustStore", "Containerd", "ResolvedConfig", "SystemBus", "Probes", "Transport"]),
        // The executable: commands, the health endpoint, the run loop.
        .executableTarget(
            name: "NodeAgent",
            dependencies: [
                "AgentCore", "Vocabulary", "HostSystem", "HTTPWire", "TrustStore", "Containerd", "ResolvedConfig", "SystemBus", "Probes",
                "Transport",
                "Kubernetes",
                "CSystemd", "CBuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Relative relocations packed (DT_RELR, glibc 2.36+): the static-stdlib binary's 0.9 MiB
            // of them were read at every start and stayed resident. lld ships with the toolchain.
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])]
        ),
        // The agent's CRI calls in a process of their own, run for the runtime-pull check: the gRPC
        // stack stays out of the agent's idle memory (docs/evidence.md, "What runtime-pull costs").
        .executableTarget(
            name: "NodeAgentCRI",
            dependencies: ["CRIClient", "CRIWire", "HostSystem", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])]
        ),
        // The parsers of untrusted input behind one libFuzzer entry point (scripts/fuzz).
        .executableTarget(
            name: "FuzzParsers",
            dependencies: [
                "Vocabulary", "HostSystem", "HTTPWire", "TrustStore", "Containerd", "ResolvedConfig", "Probes", "Transport", "AgentCore",
                "CRIWire", "CRIClient", "Kubernetes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]),

        // Helpers shared by the tests: temporary folders, certificate fixtures, file-tree snapshots.
        .target(name: "TestSupport", dependencies: ["Vocabulary", "HostSystem", "SystemBus"], path: "Tests/TestSupport"),
        .testTarget(name: "VocabularyTests", dependencies: ["Vocabulary", "TestSupport"]),
        .testTarget(name: "HostSystemTests", dependencies: ["Vocabulary", "HostSystem", "TestSupport"]),
        .testTarget(name: "ContainerdTests", dependencies: ["Containerd", "TrustStore", "Vocabulary", "HostSystem", "TestSupport"]),
        .testTarget(name: "TrustStoreTests", dependencies: ["TrustStore", "Containerd", "Vocabulary", "HostSystem", "TestSupport"]),
        .testTarget(
            name: "ResolvedConfigTests",
            dependencies: ["ResolvedConfig", "SystemBus", "Probes", "Transport", "Vocabulary", "HostSystem", "TestSupport"]),
        .testTarget(name: "HTTPWireTests", dependencies: ["HTTPWire", "Vocabulary", "HostSystem"]),
        .testTarget(
            name: "ProbesTests",
            dependencies: [
                "Probes", "Transport", "HTTPWire", "Vocabulary", "HostSystem", "TrustStore", "Containerd", "CRIWire", "TestSupport",
                "COpenSSL",
            ]),
        .testTarget(
            name: "TransportTests",
            dependencies: ["Transport", "HTTPWire", "Vocabulary", "HostSystem", "TrustStore", "TestSupport", "COpenSSL"]),
        .testTarget(name: "KubernetesTests", dependencies: ["Kubernetes", "Vocabulary", "HostSystem", "TestSupport"]),
        .testTarget(
            name: "AgentCoreTests",
            dependencies: [
                "AgentCore", "ResolvedConfig", "SystemBus", "Probes", "Transport", "TrustStore", "Containerd", "Vocabulary", "HostSystem",
                "TestSupport",
            ]),
        .testTarget(
            name: "NodeAgentTests",
            dependencies: [
                "NodeAgent", "AgentCore", "Kubernetes", "Probes", "Transport", "Containerd", "Vocabulary", "HostSystem", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "CRIWireTests", dependencies: ["CRIWire"]),
        // Runs the built `node-agent` against the sandbox node (Tests/nodes/sandbox-node).
        .testTarget(
            name: "CRIClientTests",
            dependencies: [
                "CRIClient", "CRIWire", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Vocabulary", "HostSystem", "TrustStore", "Containerd", "TestSupport", "CRIClient", "CRIWire"]),
    ]
)
