#!/usr/bin/env bash
# Installs the independent EST client `estclient` (Go module github.com/globalsign/est)
# into ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/estclient-<version>/ and prints
# the binary's path on stdout. Idempotent: a cached binary is reused.
#
# Pinned to v1.0.6. The Go module proxy reachable here serves no version list for this
# module, so `go list -m -versions` and plain `go install module@version` (which reads
# the list to check for deprecation) are refused; v1.0.7 exists but requires a
# github.com/globalsign/tpmkeys pseudo-version the proxy does not serve. So the client is
# built with `go build` inside a throw-away module that requires v1.0.6 exactly.
set -euo pipefail

VERSION="${ESTCLIENT_VERSION:-v1.0.6}"
CACHE="${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}"
DIR="$CACHE/estclient-$VERSION"
BIN="$DIR/estclient"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "estclient.sh: the Go toolchain (go) is needed to build estclient $VERSION" >&2
  exit 1
fi
mkdir -p "$DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "estclient.sh: building github.com/globalsign/est/cmd/estclient@$VERSION" >&2
(
  cd "$work"
  go mod init pkiplane-estclient-build >/dev/null 2>&1
  GOFLAGS=-mod=mod go get "github.com/globalsign/est/cmd/estclient@$VERSION" >&2
  GOFLAGS="-mod=mod -buildvcs=false" go build -o "$BIN.tmp" github.com/globalsign/est/cmd/estclient >&2
)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
