/* The pod sandbox's process, as Kubernetes' pause: sleeps until SIGINT or SIGTERM, reaps
 * children when it is PID 1. Built static by Tests/nodes/sandbox-node into the node's pause image
 * (the sandbox_image of its containerd), which cannot be fetched from registry.k8s.io here. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction term = {.sa_handler = stop}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGCHLD, &child, NULL);
    for (;;) pause();
}
