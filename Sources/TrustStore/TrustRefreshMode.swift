import Vocabulary

/// How the OS bundle is rebuilt after a change.
public enum TrustRefreshMode: String, Sendable, CaseIterable {
    /// Native where it leaves exactly what the host's tool would and nothing else would run
    /// (`TrustFacts.nativeBlocker` is nil), the tool otherwise: the default.
    case auto
    /// The host's own tool, run inside the host root: exactly the host's result, hooks included.
    case tool
    /// The agent rebuilds the Debian bundle and links itself: the same result (tested against the
    /// tool), in milliseconds instead of seconds; the host's hooks do not run.
    case native
}

extension TrustRefreshMode {
    /// Whether the agent rebuilds the bundle itself on a host with these facts.
    public func isNative(_ facts: TrustFacts) -> Bool {
        switch self {
        case .native: facts.layout.family == .debian
        // Where the tool is missing, auto does what the tool would: refuse.
        case .auto: facts.layout.family == .debian && facts.nativeBlocker == nil && facts.toolPresent
        case .tool: false
        }
    }
}

extension TrustRefreshMode {
    /// What `auto` chose and why, for the report, when a rebuild is planned; nil for a mode the
    /// user set.
    func autoNote(native: Bool, _ facts: TrustFacts) -> String? {
        guard self == .auto else { return nil }
        let tool = facts.layout.tool.lastComponent
        return native
            ? "trust refresh auto: native (no hook in \(DebianTrustStore.hooks.path), the system certificates' links in step: what \(tool) would write)"
            : "trust refresh auto: \(tool) (\(facts.nativeBlocker ?? ""))"
    }
}
