#!/usr/bin/env bash
# Builds lego (the ACME client, Go module github.com/go-acme/lego/v4, `cmd/lego`) into
# ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/lego-<version>/ and prints the binary's
# path on stdout. Idempotent: a cached build is reused at once.
#
# Pinned to v4.34.0 (April 2026; ARI is on by default, `--ari-disable` turns it off). The
# Go module proxy reachable here refuses the module's version list, so `go list -m
# -versions` and `go install module@version` (which reads the list for its deprecation
# check) may fail; lego is therefore built with `go build` inside a throw-away module that
# requires the pinned version exactly.
set -euo pipefail

VERSION="${LEGO_VERSION:-v4.34.0}"
CACHE="${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}"
DIR="$CACHE/lego-$VERSION"
BIN="$DIR/lego"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "lego.sh: the Go toolchain (go) is needed to build lego $VERSION" >&2
  exit 1
fi
mkdir -p "$DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "lego.sh: building github.com/go-acme/lego/v4/cmd/lego@$VERSION (a few minutes the first time)" >&2
(
  cd "$work"
  go mod init pkiplane-lego-build >/dev/null 2>&1
  GOFLAGS=-mod=mod go get "github.com/go-acme/lego/v4/cmd/lego@$VERSION" >&2
  GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
    -o "$BIN.tmp" github.com/go-acme/lego/v4/cmd/lego >&2
)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
