// The CRI messages a pull and a version query need, from runtime.v1's api.proto (k8s.io/cri-api;
// the field numbers are those of Debian's golang-github-kubernetes-cri-api-dev 0.32.3, which
// scripts/cri compiles). Only the fields used are modelled; the rest are left unset on the way
// out and skipped on the way in.

/// `PullImageRequest { ImageSpec image = 1; AuthConfig auth = 2; PodSandboxConfig sandbox_config = 3; }`
/// with `ImageSpec { string image = 1; ... }` and
/// `AuthConfig { string username = 1; string password = 2; ... string server_address = 4; ... }`.
package struct PullImageRequest: Sendable, Equatable {
    package var image: String
    package var username: String?
    package var password: String?

    package init(image: String, username: String?, password: String?) {
        (self.image, self.username, self.password) = (image, username, password)
    }

    /// As kubelet sends a pull secret: username and password only, `server_address` unset (with
    /// it set to `host:443` as well, containerd 1.6 dropped the credentials and the pull got a 401;
    /// shared/design/RUNTIME.md).
    package func encoded() -> [UInt8] {
        var w = ProtoWriter()
        w.message(1) { $0.string(1, image) }
        if (username ?? "").isEmpty == false || (password ?? "").isEmpty == false {
            w.message(2) {
                $0.string(1, username)
                $0.string(2, password)
            }
        }
        return w.bytes
    }
}

/// `PullImageResponse { string image_ref = 1; }`
package struct PullImageResponse: Sendable, Equatable {
    package var imageRef = ""

    package init(imageRef: String = "") { self.imageRef = imageRef }

    package init(decoding bytes: [UInt8]) throws {
        try ProtoReader.strings(bytes) { field, value in
            if field == 1 { imageRef = value }
        }
    }
}

/// `VersionRequest { string version = 1; }`: the version of the CRI the caller speaks; kubelet
/// sends "0.1.0".
struct VersionRequest: Sendable, Equatable {
    var version = "0.1.0"

    func encoded() -> [UInt8] {
        var w = ProtoWriter()
        w.string(1, version)
        return w.bytes
    }
}

/// `VersionResponse { string version = 1; string runtime_name = 2; string runtime_version = 3;
/// string runtime_api_version = 4; }`
package struct VersionResponse: Sendable, Equatable {
    package var version = ""
    package var runtimeName = ""
    package var runtimeVersion = ""
    package var runtimeAPIVersion = ""

    package init() {}

    package init(decoding bytes: [UInt8]) throws {
        try ProtoReader.strings(bytes) { field, value in
            switch field {
            case 1: version = value
            case 2: runtimeName = value
            case 3: runtimeVersion = value
            case 4: runtimeAPIVersion = value
            default: break
            }
        }
    }
}

/// `StatusRequest { bool verbose = 1; }`: verbose asks for the runtime's `info` map (what
/// `crictl info` prints).
struct StatusRequest: Sendable, Equatable {
    var verbose = true

    func encoded() -> [UInt8] {
        var w = ProtoWriter()
        if verbose {
            w.varint(1 << 3)
            w.varint(1)
        }
        return w.bytes
    }
}

/// `StatusResponse { RuntimeStatus status = 1; map<string, string> info = 2; }`: the info map
/// alone (a map is a repeated entry message `{ string key = 1; string value = 2; }`).
package struct StatusResponse: Sendable, Equatable {
    package var info: [String: String] = [:]

    package init(info: [String: String] = [:]) { self.info = info }

    package init(decoding bytes: [UInt8]) throws {
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            guard field == 2, case .bytes(let entry) = value else { continue }
            var key = ""
            var text = ""
            try ProtoReader.strings(Array(entry)) { f, v in
                if f == 1 { key = v } else if f == 2 { text = v }
            }
            info[key] = text
        }
    }
}
