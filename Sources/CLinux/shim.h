// Linux calls Swift cannot reach through Glibc: glibc has no openat2(2) wrapper, and `syscall`
// is variadic. Header only: nothing to link.
#ifndef NODE_AGENT_CLINUX_SHIM_H
#define NODE_AGENT_CLINUX_SHIM_H
#include <errno.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/// openat2(2): `path` resolved from `dirfd` under the RESOLVE_* rules (kernel 5.6+). -1 with
/// errno ENOSYS where the kernel (or a seccomp profile, EPERM) does not allow it.
static inline int node_agent_openat2(int dirfd, const char *path, unsigned long long flags, unsigned long long mode,
                                     unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
#endif
