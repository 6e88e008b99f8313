import Vocabulary

/// The runtime's own config as `node-agent-cri status` tells it (CRI `Version`, and `Status` with
/// `verbose`): `{"config_path": "…", "golang": "go1.19.8", "registry": true, "runtime_name":
/// "containerd", "runtime_version": "1.6.20~ds1"}`.
public struct CRIRuntimeStatus: CRIHelperMessage {
    public var runtimeName: String
    public var runtimeVersion: String
    /// Whether the runtime's info has a CRI registry config (containerd 1.x; 2.x has none there).
    public var registry: Bool
    /// That config's `configPath` (the certs.d folder), when it has one.
    public var configPath: String?
    /// The Go version the runtime was built with, when its info says.
    public var golang: String?

    public init(runtimeName: String, runtimeVersion: String, registry: Bool, configPath: String?, golang: String?) {
        self.runtimeName = runtimeName
        self.runtimeVersion = runtimeVersion
        self.registry = registry
        self.configPath = configPath
        self.golang = golang
    }

    /// From the runtime's `Version` and its verbose `Status` `info` map, whose values are JSON
    /// texts (containerd: `config`, its effective CRI config; `golang`, a JSON string).
    public init(version: CRIRuntimeVersion, info: [String: String]) {
        let config = info["config"].flatMap { try? JSONValue.parse(Array($0.utf8)) }
        let registry = config?["registry"]
        self.init(
            runtimeName: version.runtimeName, runtimeVersion: version.runtimeVersion, registry: registry?.object != nil,
            configPath: registry?["configPath"]?.string,
            golang: info["golang"].flatMap { try? JSONValue.parse(Array($0.utf8)) }?.string)
    }

    enum CodingKeys: String, CodingKey {
        case registry, golang
        case runtimeName = "runtime_name"
        case runtimeVersion = "runtime_version"
        case configPath = "config_path"
    }
}
