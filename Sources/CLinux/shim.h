// Linux calls Swift cannot reach through Glibc: glibc has no openat2(2) wrapper, and `syscall`
// is variadic. Header only: nothing to link.
#ifndef NODE_AGENT_CLINUX_SHIM_H
#define NODE_AGENT_CLINUX_SHIM_H
#include <errno.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/// O_PATH, which Glibc's Swift module leaves out (it is behind _GNU_SOURCE): a descriptor that
/// names a file without opening it for reading.
/// Its value is the same on every Linux architecture (asm-generic/fcntl.h, x86 and arm64 alike);
/// <fcntl.h> is not included here, so that `stat` keeps coming from Glibc.
static inline int node_agent_o_path(void) { return 010000000; }

/// openat2(2): `path` resolved from `dirfd` under the RESOLVE_* rules (kernel 5.6+). -1 with
/// errno ENOSYS where the kernel (or a seccomp profile, EPERM) does not allow it.
static inline int node_agent_openat2(int dirfd, const char *path, unsigned long long flags, unsigned long long mode,
                                     unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/// SO_PEERCRED's pid for a connected unix socket: the process that called listen(2) on the socket
/// it is connected to, in the caller's PID namespace (0 where that process is not visible there);
/// -1 with errno when it cannot be read. `struct ucred` is behind _GNU_SOURCE, which Glibc's
/// Swift module leaves out: its layout (pid, uid, gid: three 32-bit fields) is the kernel's.
static inline int node_agent_peer_pid(int fd) {
    struct {
        int pid;
        unsigned int uid;
        unsigned int gid;
    } credentials = {0, 0, 0};
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    return credentials.pid;
}
#endif
