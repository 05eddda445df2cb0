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

build() { # output folder
  # `go install pkg@version` builds with helm's own go.mod (its pinned dependencies).
  GOBIN="$1" go install -p "$GOMAXPROCS" \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
    "helm.sh/helm/v3/cmd/helm@$version"
  "$1/helm" version --short
}

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cached_go_binary "helm-$version" bin/helm build
