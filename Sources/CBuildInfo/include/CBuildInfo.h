#ifndef NODE_AGENT_C_BUILD_INFO_H
#define NODE_AGENT_C_BUILD_INFO_H

/// The agent's version (`git describe --tags --always --dirty`) and commit, as scripts/build-release
/// stamps them into a release build; "dev" and "unknown" in any other build (a plain `swift build`).
const char *node_agent_build_version(void);
const char *node_agent_build_commit(void);

#endif
