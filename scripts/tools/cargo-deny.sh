#!/usr/bin/env bash
# cargo-deny (licenses, bans, advisories, sources), pinned; prints the binary's path.
set -euo pipefail
exec bash "$(dirname "$0")/cargo-install.sh" cargo-deny "${CARGO_DENY_VERSION:-0.20.2}"
