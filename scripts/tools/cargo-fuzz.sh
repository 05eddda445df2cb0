#!/usr/bin/env bash
# cargo-fuzz (libFuzzer driver for the targets in fuzz/), pinned; prints the binary's path.
set -euo pipefail
exec bash "$(dirname "$0")/cargo-install.sh" cargo-fuzz "${CARGO_FUZZ_VERSION:-0.13.2}"
