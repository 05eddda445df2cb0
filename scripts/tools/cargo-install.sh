#!/usr/bin/env bash
# Installs a cargo subcommand from crates.io, pinned and built with its own Cargo.lock
# (`cargo install --locked`), into ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/<crate>-<version>/
# and prints the binary's path on stdout. Idempotent: a cached build is reused at once;
# concurrent callers wait for one build (flock).
#
# Usage: scripts/tools/cargo-install.sh <crate> <version> [<binary>]
set -euo pipefail

CRATE="$1"
VERSION="$2"
BINARY="${3:-$CRATE}"
CACHE="${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}"
ROOT="$CACHE/$CRATE-$VERSION"
BIN="$ROOT/bin/$BINARY"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.$CRATE-$VERSION.lock"
flock 9
if [ ! -x "$BIN" ]; then
  echo "cargo-install.sh: building $CRATE $VERSION from crates.io (several minutes the first time)" >&2
  # A target directory of its own: never the project's, never shared with another tool.
  target="$(mktemp -d)"
  trap 'rm -rf "$target"' EXIT
  CARGO_TARGET_DIR="$target" cargo install --locked --quiet "$CRATE@$VERSION" --root "$ROOT" >&2
fi
echo "$BIN"
