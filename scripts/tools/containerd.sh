#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds containerd v2 (containerd, containerd-shim-runc-v2, ctr) from the Go module proxy,
# with containerd's own go.mod pins, and prints the directory that holds them. The real
# node of the e2e harness (e2e/node.sh) runs it with Debian's runc.
#
# Why a build rather than Debian's containerd (1.6): the kubelet of Kubernetes 1.34 warns
# that it drops containerd 1.x support in 1.38, and 1.6 lacks the CRI RuntimeConfig call.
#
# The binaries go to ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/containerd-<version>/bin,
# outside the repository; a rerun with them in place prints the directory at once.
# Static (CGO_ENABLED=0: no btrfs snapshotter, which the node does not use), stripped,
# -trimpath, the version stamped as containerd's release build does.
#
# Usage: scripts/tools/containerd.sh          prints the bin directory (stdout only)
#        eval "$(scripts/tools/containerd.sh --env)"   exports PATH and PKIPLANE_CONTAINERD_BIN
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_CONTAINERD_REBUILD=1  force a rebuild
set -euo pipefail

version=v2.2.10
die() { echo "containerd.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go is not installed (Go >= 1.25 is needed to build containerd $version)"

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cache_dir "containerd-$version"
bin="$dir/bin"
tools=(containerd containerd-shim-runc-v2 ctr)

print() { print_bin_dir "$bin" PKIPLANE_CONTAINERD_BIN "${1:-}"; }

fresh() { ! cache_rebuild_requested && cache_stamped version "$version" && cache_executables "$bin" "${tools[@]}"; }
cache_reuse_or_lock fresh print "${1:-}"
mkdir -p "$tmp/bin"
go_build_env

echo "containerd.sh: building containerd $version into $bin" >&2
start=$(date +%s)
m=github.com/containerd/containerd/v2
ldflags="-s -w -X $m/version.Version=$version -X $m/version.Package=$m"
# `go install pkg@version` builds with containerd's own go.mod (its pinned dependencies).
for t in "${tools[@]}"; do
  echo "containerd.sh:   $t" >&2
  GOBIN="$tmp/bin" go install -p "$GOMAXPROCS" -ldflags "$ldflags" "$m/cmd/$t@$version"
done
"$tmp/bin/containerd" --version >&2
echo "$version" >"$tmp/version"
cache_install
echo "containerd.sh: built in $(( $(date +%s) - start ))s" >&2
print "${1:-}"
