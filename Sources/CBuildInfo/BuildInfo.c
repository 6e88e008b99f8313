// The version a build carries, without git at run time and without recompiling anything:
// these definitions are weak, and scripts/build-release links one more object that defines the
// same two symbols (strong ones: the linker takes those). A build without that object (`swift
// build`, the tests) says "dev". A weak definition is never folded into its readers, so the
// functions return whichever the linker kept.
#include "CBuildInfo.h"

__attribute__((weak)) const char node_agent_stamped_version[] = "dev";
__attribute__((weak)) const char node_agent_stamped_commit[] = "unknown";

const char *node_agent_build_version(void) { return node_agent_stamped_version; }
const char *node_agent_build_commit(void) { return node_agent_stamped_commit; }
