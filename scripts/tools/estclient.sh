#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the independent EST client `estclient` (Go module github.com/globalsign/est) into
# ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/estclient-<version>/ and prints the
# binary's path on stdout. Idempotent: a cached binary is reused.
#
# Pinned to v1.0.6. The Go module proxy reachable here serves no version list for this
# module (so `go install module@version` is refused), and v1.0.7 requires a
# github.com/globalsign/tpmkeys pseudo-version the proxy does not serve. So the client is
# built inside a throw-away module that requires v1.0.6 exactly (lib/cache.sh).
#
# Env: PKIPLANE_TOOLS_CACHE  cache root   ESTCLIENT_VERSION  (default below)
#      PKIPLANE_ESTCLIENT_REBUILD=1  force a rebuild
set -euo pipefail

version=${ESTCLIENT_VERSION:-v1.0.6}

build() { # output folder
  # cgo: the client links github.com/ThalesIgnite/crypto11 (PKCS#11), which needs it.
  CGO_ENABLED=1 go_build_in_scratch_module github.com/globalsign/est/cmd/estclient "$version" "$1/estclient" -ldflags "-s -w"
}

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cached_go_binary "estclient-$version" estclient build
