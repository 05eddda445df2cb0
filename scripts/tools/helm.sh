#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds helm v3 from the Go module proxy and prints the path of the binary. Used by
# e2e/render-chart.sh to render charts/pkiplane (`helm template`); e2e falls back to a
# small renderer when helm is not built (PKIPLANE_HELM=none).
#
# The binary goes to ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/helm-<version>/bin/helm,
# outside the repository; a rerun with it in place prints the path at once. Cold build:
# see the measured time in e2e/README.md (the Go build cache of scripts/tools/kube.sh
# shares many k8s.io packages with it).
#
# Usage: scripts/tools/helm.sh             prints the helm binary's path (stdout only)
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_HELM_VERSION  (default below)
#        PKIPLANE_HELM_REBUILD=1  force a rebuild
set -euo pipefail

version=${PKIPLANE_HELM_VERSION:-v3.19.5}
die() { echo "helm.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go is not installed (needed to build helm $version)"

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cache_dir "helm-$version"
bin="$dir/bin/helm"

fresh() { [ "${PKIPLANE_HELM_REBUILD:-}" != 1 ] && [ -x "$bin" ]; }
if fresh; then echo "$bin"; exit 0; fi

cache_lock
if fresh; then echo "$bin"; exit 0; fi
unset PKIPLANE_HELM_REBUILD
cache_build_dir
mkdir -p "$tmp/bin"
go_build_env

echo "helm.sh: building helm $version into $bin" >&2
start=$(date +%s)
# `go install pkg@version` builds with helm's own go.mod (its pinned dependencies).
GOBIN="$tmp/bin" go install -p "$GOMAXPROCS" \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
  "helm.sh/helm/v3/cmd/helm@$version"
"$tmp/bin/helm" version --short >&2
cache_install
echo "helm.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
