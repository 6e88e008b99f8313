import CRIClient
import Glibc
import HostSystem
import Vocabulary

// node-agent-cri: the agent's CRI calls, in a process of their own. The agent runs it for the
// runtime-pull check and reads one JSON object from it; the gRPC stack (grpc-swift, swift-nio,
// BoringSSL under the transport) is linked here and not into the agent, whose idle memory it
// raised from 17 to 23 MiB (docs/evidence.md, "What runtime-pull costs").
//
//   node-agent-cri pull --socket PATH --image REF --timeout SECONDS   < {"username":…,"password":…} (or {})
//   node-agent-cri version --socket PATH --timeout SECONDS
//   node-agent-cri status --socket PATH --timeout SECONDS   the runtime's own config (CRI Status,
//       verbose) and Version: {"runtime_name": "containerd", "runtime_version": "1.6.20~ds1",
//       "registry": true, "config_path": "…", "golang": "go1.19.8"}; "registry" is
//       false where its info has no CRI registry config (containerd 2.x).
//
// The pull secret's credentials come on standard input, a JSON object ({} without them): a
// process's arguments are readable by every user of the node. The pull starts once that input
// has come, so the agent can start this program ahead of the pull; with no input it pulls nothing. Exit status: 0 the runtime answered (its answer on
// standard output, a refusal included), 1 it could not be asked (why, on standard error), 2 the
// call was malformed.

func fail(_ status: Int32, _ message: String) -> Never {
    writeStandard("node-agent-cri: \(message)\n", to: 2)
    exit(status)
}

func emit(_ value: JSONValue) {
    writeStandard(String(decoding: value.encoded(), as: UTF8.self) + "\n")
}

func readStandardInput(limit: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count <= limit {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n > 0 { bytes += chunk[..<n] } else if n < 0 && errno == EINTR { continue } else { break }
    }
    return bytes
}

let usage =
    "usage: node-agent-cri pull --socket PATH --image REF --timeout SECONDS (a JSON object on standard input: {} or the credentials) | version|status --socket PATH --timeout SECONDS"
var arguments = Array(CommandLine.arguments.dropFirst())
guard let verb = arguments.first, ["pull", "version", "status"].contains(verb) else { fail(2, usage) }
var options: [String: String] = [:]
var index = 1
while index < arguments.count {
    let name = arguments[index]
    guard ["--socket", "--image", "--timeout"].contains(name), index + 1 < arguments.count, options[name] == nil else {
        fail(2, "unexpected '\(name)'; \(usage)")
    }
    options[name] = arguments[index + 1]
    index += 2
}
guard let socket = options["--socket"], let timeout = options["--timeout"].flatMap(Double.init), timeout > 0 else { fail(2, usage) }

do {
    if verb == "status" {
        let version = try CRIClient.version(socketPath: socket, timeoutSeconds: timeout)
        let info = try CRIClient.statusInfo(socketPath: socket, timeoutSeconds: timeout)
        let config = info["config"].flatMap { try? JSONValue.parse(Array($0.utf8)) }
        let registry = config?["registry"]
        var answer: [String: JSONValue] = [
            "runtime_name": .string(version.runtimeName), "runtime_version": .string(version.runtimeVersion),
            "registry": .bool(registry?.object != nil),
        ]
        if let path = registry?["configPath"]?.string { answer["config_path"] = .string(path) }
        if let go = info["golang"].flatMap({ try? JSONValue.parse(Array($0.utf8)) })?.string { answer["golang"] = .string(go) }
        emit(.object(answer))
    } else if verb == "version" {
        let answer = try CRIClient.version(socketPath: socket, timeoutSeconds: timeout)
        emit(["runtime_name": .string(answer.runtimeName), "runtime_version": .string(answer.runtimeVersion)])
    } else {
        guard let image = options["--image"] else { fail(2, usage) }
        // The request's go: the agent may start this program ahead and write its input only
        // when the pull is due. Nothing on standard input (the agent ended first) pulls nothing.
        let input = readStandardInput(limit: 65536)
        if input.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            fail(2, "nothing on standard input, so nothing pulled: it takes a JSON object ({} without credentials)")
        }
        guard let credentials = try? JSONValue.parse(input), credentials.object != nil else {
            fail(2, "standard input is not a JSON object with \"username\" and \"password\"")
        }
        let username = credentials["username"]?.string
        let password = credentials["password"]?.string
        let r = try CRIClient.pullImage(socketPath: socket, image: image, username: username, password: password, timeoutSeconds: timeout)
        emit([
            "ok": .bool(r.ok), "image_ref": r.imageRef.map { .string($0) } ?? .null, "code": .int(Int64(r.code)),
            "message": .string(r.message),
        ])
    }
} catch {
    fail(1, "\(error)")
}
