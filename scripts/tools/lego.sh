#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds lego (the ACME client, Go module github.com/go-acme/lego/v4, `cmd/lego`) into
# ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/lego-<version>/ and prints the binary's
# path on stdout. Idempotent: a cached build is reused at once.
#
# Pinned to v4.34.0 (April 2026; ARI is on by default, `--ari-disable` turns it off). The
# Go module proxy reachable here refuses the module's version list, so lego is built
# inside a throw-away module that requires the pinned version exactly (lib/cache.sh).
#
# Env: PKIPLANE_TOOLS_CACHE  cache root   LEGO_VERSION  (default below)
#      PKIPLANE_LEGO_REBUILD=1  force a rebuild
set -euo pipefail

version=${LEGO_VERSION:-v4.34.0}

build() { # output folder
  go_build_in_scratch_module github.com/go-acme/lego/v4/cmd/lego "$version" "$1/lego" \
    -ldflags "-s -w -X main.version=$version"
}

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cached_go_binary "lego-$version" lego build
