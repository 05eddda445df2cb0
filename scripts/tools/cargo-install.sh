#!/usr/bin/env bash
# Installs a cargo subcommand from crates.io, pinned and built with its own Cargo.lock
# (`cargo install --locked`), into ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/<crate>-<version>/
# and prints the binary's path on stdout. Idempotent: a cached build is reused at once;
# concurrent callers wait for one build (lib/cache.sh).
#
# Usage: scripts/tools/cargo-install.sh <crate> <version> [<binary>]
set -euo pipefail
# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"

CRATE="$1"
VERSION="$2"
BINARY="${3:-$CRATE}"
cache_dir "$CRATE-$VERSION"
BIN="$dir/bin/$BINARY"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
cache_lock
if [ ! -x "$BIN" ]; then
  echo "cargo-install.sh: building $CRATE $VERSION from crates.io (several minutes the first time)" >&2
  cache_build_dir
  # A target directory of its own (inside the build directory): never the project's.
  CARGO_TARGET_DIR="$tmp/target" cargo install --locked --quiet "$CRATE@$VERSION" --root "$tmp" >&2
  rm -rf "$tmp/target"
  cache_install
fi
echo "$BIN"
