import Foundation
import HostSystem
import TrustStore

/// Everything `bootstrap` needs, validated before anything on the host changes.
struct BootstrapConfig {
    var hostRoot: HostRoot
    var caFile: String
    var certificates: [Certificate]
    var registry: RegistryAddress
    var clusterDNS: IPAddress
    var domain: DomainName
    var dbusAddress: String
    var timeoutMilliseconds: Int32
    var dryRun: Bool

    init(hostRoot: String, caFile: String, registry: String, clusterDNS: String, domain: String,
         dbusAddress: String?, timeout: Double, dryRun: Bool, now: Date = Date()) throws {
        self.registry = try RegistryAddress(registry)
        self.clusterDNS = try IPAddress(clusterDNS)
        self.domain = try DomainName(domain)
        if case .name(let host) = self.registry.host, !host.isWithin(self.domain) {
            throw AgentError(.invalidInput, "registry host \(host) is not under the domain \(self.domain): the host would not send it to the cluster DNS",
                             hint: "pass --domain with the registry's cluster domain, e.g. svc.cluster.local")
        }
        guard timeout > 0, timeout <= 120 else {
            throw AgentError(.invalidInput, "--timeout must be between 0 and 120 seconds")
        }
        timeoutMilliseconds = Int32(timeout * 1000)
        self.hostRoot = try HostRoot(hostRoot)
        self.caFile = caFile
        let bytes = try Self.readCAFile(caFile)
        certificates = try CertificateParser.parseCAFile(bytes, source: caFile, now: now)
        if let dbusAddress {
            guard !dbusAddress.isEmpty, !dbusAddress.contains(where: { $0.isNewline }) else {
                throw AgentError(.invalidInput, "the D-Bus address is empty or contains a newline")
            }
            self.dbusAddress = dbusAddress
        } else {
            self.dbusAddress = SystemBusAddress.forHostRoot(self.hostRoot.directory)
        }
        self.dryRun = dryRun
    }

    static func readCAFile(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AgentError(.invalidCertificate, "CA file \(path) does not exist", hint: "pass --ca with the registry CA's PEM file")
        }
        guard !isDirectory.boolValue else {
            throw AgentError(.invalidCertificate, "CA file \(path) is a folder", hint: "pass the ca.crt file inside it")
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? NSNumber else {
            throw AgentError(.invalidCertificate, "cannot read CA file \(path)")
        }
        guard size.intValue <= CertificateParser.maximumFileSize else {
            throw AgentError(.invalidCertificate, "CA file \(path) is \(size.intValue) bytes, more than a CA file can be (1 MiB)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AgentError(.invalidCertificate, "cannot read CA file \(path)", hint: "check its permissions")
        }
        return Array(data)
    }
}

import ResolvedConfig

enum SystemBusAddress {
    static func forHostRoot(_ root: String) -> String { SystemBus.address(hostRoot: root) }
}
