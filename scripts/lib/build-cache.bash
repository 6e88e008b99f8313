# A per-machine cache of a SwiftPM build: its checkouts and the dependencies' objects (gRPC, NIO,
# BoringSSL, swift-crypto: most of a clean build of node-agent-cri and of the tests), for
# scripts/test, scripts/demo and scripts/build-release. Sourced: `build_cache NAME LOCAL` sets
# SCRATCH, the --scratch-path to build in.
#
# - One scratch folder per NAME (a configuration: debug, static) and toolchain (`swift --version`),
#   under NODE_AGENT_BUILD_CACHE (default /var/cache/node-agent-sandbox/swift-build; 0 turns the
#   cache off).
# - Keyed by what the dependencies are: `swift package resolve` runs first; when its
#   Package.resolved pins differ from those the folder was built with, every object in it is
#   removed (a clean build; the checkouts are kept). A changed compiler flag reruns what it
#   changes (the build's own record of each command line).
# - The package's own modules, tests and programs (every folder under Sources/ and Tests/) are
#   removed before each build: they are always compiled from this tree's sources, as in a clean
#   clone. Only the dependencies' objects are reused (and clang's module cache, whose entries are
#   keyed by each module map's path and checked against its headers).
# - One run at a time: the folder is taken by this process's pid (a dead pid frees it, so a run
#   killed midway does not keep it). When another run holds it, or it cannot be written, SCRATCH
#   is LOCAL: a clean build in the tree, as without a cache. The cache is never needed.
#
# Callers that leave processes behind copy what they need out of SCRATCH and call
# build_cache_release.
build_cache() {
  local name=$1 local_scratch=$2 root=${NODE_AGENT_BUILD_CACHE:-/var/cache/node-agent-sandbox/swift-build}
  SCRATCH=$local_scratch
  BUILD_CACHE_LOCK=
  [[ $root != 0 ]] || return 0
  local toolchain dir lock guard holder
  toolchain=$(swift --version 2>/dev/null | sha256sum | cut -c1-12)
  dir=$root/$name-$toolchain
  lock=$dir.pid
  if ! mkdir -p "$dir" 2>/dev/null || ! { exec {guard}>>"$dir.lock"; } 2>/dev/null; then
    echo "build cache: $root cannot be written: a clean build in $local_scratch" >&2
    return 0
  fi
  flock "$guard"
  holder=$(cat "$lock" 2>/dev/null || true)
  if [[ -n $holder && $holder != "$$" ]] && kill -0 "$holder" 2>/dev/null; then
    exec {guard}>&-
    echo "build cache: $dir is in use (pid $holder): a clean build in $local_scratch" >&2
    return 0
  fi
  echo $$ >"$lock"
  exec {guard}>&-
  BUILD_CACHE_LOCK=$lock
  if ! swift package resolve --scratch-path "$dir" >&2; then
    build_cache_release
    echo "build cache: resolving in $dir failed: a clean build in $local_scratch" >&2
    return 0
  fi
  # The pins (each dependency's identity, version and revision); not the originHash, which changes
  # with any edit of Package.swift's dependency list even when it resolves to the same versions,
  # nor the location, which one resolve writes with ".git" and another without for the same
  # package (a fresh clone and an older checkout took turns emptying the cache that way).
  local resolved
  resolved=$(grep -E '"(identity|version|revision)"' Package.resolved | tr -d ' ' | sha256sum | cut -c1-64)
  if [[ $(cat "$dir/resolved.sha256" 2>/dev/null || true) != "$resolved" ]]; then
    # New dependencies (or a first use): nothing built is kept.
    find "$dir" -mindepth 1 -maxdepth 1 ! -name checkouts ! -name repositories ! -name artifacts \
      ! -name workspace-state.json -exec rm -rf {} +
    echo "$resolved" >"$dir/resolved.sha256"
  fi
  local config target
  for config in "$dir"/*-*-*/*/; do
    [[ -d $config ]] || continue
    rm -rf "$config"node-agent* "$config"fuzz-parsers* "$config"description.json
    for target in Sources/*/ Tests/*/; do
      target=${target%/}
      target=${target##*/}
      rm -rf "$config$target.build" "$config$target.swiftmodule" "$config"Modules/"$target".*
    done
  done
  SCRATCH=$dir
  echo "build cache: building in $dir (the dependencies' objects reused, this tree's modules built anew)" >&2
}

# Frees the cache folder build_cache took (when it took one) for another run.
build_cache_release() {
  [[ -n ${BUILD_CACHE_LOCK:-} ]] || return 0
  [[ $(cat "$BUILD_CACHE_LOCK" 2>/dev/null || true) != "$$" ]] || rm -f "$BUILD_CACHE_LOCK"
  BUILD_CACHE_LOCK=
}
