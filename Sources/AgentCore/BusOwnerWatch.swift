import SystemBus

/// Who owns a bus name now (resolved's: a new owner is a restart).
public protocol BusOwnerWatch: AnyObject {
    /// The unique bus name of the owner (nil: none, or not known now).
    func owner() -> String?
}

/// systemd-resolved's owner on the system bus. One connection serves every tick; a failed call
/// drops it and the next try connects again (the bus itself may have restarted).
public final class ResolvedOwnerWatch: BusOwnerWatch {
    let address: () -> String
    var bus: SystemBus?

    public init(address: @escaping () -> String) { self.address = address }

    public func owner() -> String? {
        for attempt in 0..<2 {
            if bus == nil { bus = try? SystemBus(address: address()) }
            guard let bus else { return nil }
            do {
                return try bus.nameOwner("org.freedesktop.resolve1")
            } catch {
                self.bus = nil
                if attempt == 1 { return nil }
            }
        }
        return nil
    }
}
