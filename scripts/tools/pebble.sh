#!/usr/bin/env bash
# Installs Pebble, Let's Encrypt's test ACME server (Debian package `pebble`, which also
# ships `pebble-challtestsrv`, a mock DNS server), if missing, and prints pebble's path.
# Used by bench/acme-compare.sh.
set -euo pipefail
if ! command -v pebble >/dev/null 2>&1 || ! command -v pebble-challtestsrv >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pebble >&2
fi
command -v pebble
