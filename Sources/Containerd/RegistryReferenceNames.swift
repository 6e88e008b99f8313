import HostSystem
import Vocabulary

extension RegistryAddress {
    /// The names image references give this registry: `host:port`, and for port 443 also `host`
    /// alone, since `registry/img` and `registry:443/img` reach the same registry under different
    /// names. containerd looks for each under its own folder of `certs.d` (so the agent writes,
    /// reads and removes both), and Docker keys a `config.json`'s credentials the same way.
    /// IPv6 addresses keep their brackets: `[fd00::1]:443` and `[fd00::1]`.
    public var referenceNames: [String] {
        port == 443 ? [hostAndPort, hostForURL] : [hostAndPort]
    }
}
