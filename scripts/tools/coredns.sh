#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds CoreDNS, the cluster DNS of the e2e harness's real node, from the small main
# module e2e/coredns (only the plugins the node's Corefile uses; no `forward`), and prints
# the path of the binary.
#
# The CoreDNS version and every dependency are pinned by e2e/coredns/go.mod and go.sum.
# The binary goes to ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/coredns-<version>/bin/coredns,
# outside the repository, with a stamp of the module's files (go.mod, go.sum, main.go), so
# a changed plugin list or a bumped dependency rebuilds. Static, stripped, -trimpath.
#
# Usage: scripts/tools/coredns.sh          prints the binary's path (stdout only)
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_COREDNS_REBUILD=1  force a rebuild
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
mod="$root/e2e/coredns"
die() { echo "coredns.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go is not installed (Go >= 1.25 is needed to build CoreDNS)"
for f in go.mod go.sum main.go; do [ -f "$mod/$f" ] || die "missing $mod/$f"; done

version=$(awk '$1=="require" && $2=="github.com/coredns/coredns" {print $3; exit}' "$mod/go.mod")
[ -n "$version" ] || die "cannot read the github.com/coredns/coredns version from $mod/go.mod"
# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cache_dir "coredns-$version"
bin="$dir/bin/coredns"
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" | sha256sum | cut -c1-16)

fresh() { ! cache_rebuild_requested && [ -x "$bin" ] && cache_stamped stamp "$stamp"; }
cache_reuse_or_lock fresh echo "$bin"
mkdir -p "$tmp/bin"
go_build_env
export GOFLAGS="$GOFLAGS -mod=readonly"

echo "coredns.sh: building CoreDNS $version into $bin" >&2
start=$(date +%s)
cd "$mod"
go build -p "$GOMAXPROCS" -o "$tmp/bin/coredns" \
  -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version" .
"$tmp/bin/coredns" -plugins >&2
echo "$stamp" >"$tmp/stamp"
cache_install
echo "coredns.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
