#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds micromdm's SCEP client (`cmd/scepclient` of the Go module
# github.com/micromdm/scep/v2, a current release) into the tools cache, keyed by version,
# and prints the binary's path. Idempotent: a cached build is reused at once.
#
# Env: PKIPLANE_TOOLS_CACHE  cache root   SCEPCLIENT_VERSION  (default below)
#      PKIPLANE_SCEPCLIENT_REBUILD=1  force a rebuild
set -euo pipefail

version=${SCEPCLIENT_VERSION:-v2.3.0}

build() { # output folder
  GOBIN="$1" GOFLAGS="$GOFLAGS -mod=mod" go install -p "$GOMAXPROCS" -ldflags "-s -w" \
    "github.com/micromdm/scep/v2/cmd/scepclient@$version"
}

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cached_go_binary "scepclient-$version" scepclient build
