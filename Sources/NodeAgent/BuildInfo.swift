import AgentCore
import CBuildInfo

/// What this build of the agent is: the version and commit scripts/build-release stamps in at link
/// time (`git describe --tags --always --dirty` and the full commit hash; see Sources/CBuildInfo),
/// "dev" and "unknown" in any other build. Shown by `node-agent version` and `--version`, in
/// /metrics (`node_agent_build_info`) and in the image's labels (scripts/build-image reads them
/// from the binary it packs).
struct BuildInfo: Sendable, Equatable {
    var version: String
    var commit: String

    static let current = BuildInfo(
        version: String(cString: node_agent_build_version()), commit: String(cString: node_agent_build_commit()))

    /// The platform the binary was compiled for, as OCI names it.
    static var platform: String {
        #if arch(x86_64)
            return "linux/amd64"
        #elseif arch(arm64)
            return "linux/arm64"
        #else
            return "linux/unknown"
        #endif
    }

    /// The labels of /metrics.
    var pages: HealthPages.Build { HealthPages.Build(version: version, commit: commit) }

    /// `node-agent --version`: the version with its commit.
    var summary: String { "\(version) (commit \(commit))" }
}
