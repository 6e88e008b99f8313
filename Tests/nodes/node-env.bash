# shellcheck shell=bash
# Reads a node's variables (the KEY=VALUE lines `Tests/nodes/sandbox-node up` and `env` print) from
# standard input into shell variables of the same names, as data: nothing of them runs (the
# scripts used to eval that output).
#   source Tests/nodes/node-env.bash; read_node_env < <(Tests/nodes/sandbox-node up)
read_node_env() {
  local line value
  while IFS= read -r line; do
    [[ $line =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || continue
    value=${BASH_REMATCH[2]}
    value=${value#\"}
    value=${value%\"}
    printf -v "${BASH_REMATCH[1]}" '%s' "$value"
  done
}
