import Glibc
import HostSystem
import Vocabulary

/// SIGTERM (the kubelet, systemd) and SIGINT, held pending from the start of `run` and taken only
/// where its loop waits, so a reconcile under way always finishes. Blocked before any thread
/// starts, so every thread inherits the block and none dies of the default action; host tools
/// start with a clean mask (ProcessRunner). No handler, no signal thread, no Dispatch.
struct StopSignals {
    private let held: sigset_t

    init() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        held = set
    }

    /// Waits up to `seconds` for one of the signals: the one taken, or nil when the time ran out.
    func wait(seconds: Double) -> Int32? {
        let end = monotonicNanoseconds() + UInt64(max(0, seconds) * 1e9)
        var set = held
        while true {
            let now = monotonicNanoseconds()
            let left = now < end ? end - now : 0
            var timeout = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
            let taken = sigtimedwait(&set, nil, &timeout)
            if taken > 0 { return taken }
            if errno != EINTR { return nil }  // EAGAIN: the time ran out
        }
    }
}
