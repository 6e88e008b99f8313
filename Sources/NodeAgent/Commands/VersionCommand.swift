import ArgumentParser
import HostSystem
import Vocabulary

/// `node-agent version`: which build this is, without touching the host or the network.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the agent's version, the commit it was built from, and its platform.",
        discussion: """
            The version is `git describe --tags --always --dirty` of the tree scripts/build-release \
            built (a release: its tag, e.g. v0.2.0; a build between tags: v0.2.0-3-gabc1234; a tree \
            with uncommitted changes: ...-dirty), stamped in at link time. A build by plain `swift \
            build` says version dev, commit unknown. The same two values are in /metrics \
            (node_agent_build_info) and in the image's labels (org.opencontainers.image.version and \
            .revision).

            Examples:
              node-agent version
              node-agent version -o json
            """
    )

    @Option(name: [.short, .long], help: "Output format: text, json or yaml.")
    var output: OutputFormat = .text

    func run() throws {
        writeStandard(Self.render(BuildInfo.current, output))
    }

    static func render(_ build: BuildInfo, _ output: OutputFormat) -> String {
        let object: JSONValue = [
            "version": .string(build.version), "commit": .string(build.commit), "platform": .string(BuildInfo.platform),
        ]
        return output.render(
            json: { String(decoding: object.encoded(), as: UTF8.self) + "\n" },
            text: { "Version:  \(build.version)\nCommit:   \(build.commit)\nPlatform: \(BuildInfo.platform)\n" })
    }
}
