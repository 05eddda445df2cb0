#!/usr/bin/env bash
# Builds micromdm's SCEP client (`cmd/scepclient` of the Go module
# github.com/micromdm/scep/v2, a current release) into the tools cache, keyed by version,
# and prints the binary's path. Idempotent: a cached build is reused at once.
set -euo pipefail

version="${SCEPCLIENT_VERSION:-v2.3.0}"
cache="${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}/scepclient-${version}"
bin="$cache/scepclient"

if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { echo "scepclient.sh: Go toolchain not found (needed to build scepclient)" >&2; exit 1; }
  mkdir -p "$cache"
  echo "scepclient.sh: building github.com/micromdm/scep/v2/cmd/scepclient@${version}" >&2
  GOBIN="$cache" GOFLAGS=-mod=mod go install "github.com/micromdm/scep/v2/cmd/scepclient@${version}" >&2
fi
echo "$bin"
