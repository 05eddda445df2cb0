#!/usr/bin/env bash
# Installs certbot (Debian package) if missing and prints its path.
set -euo pipefail
if ! command -v certbot >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq certbot >&2
fi
command -v certbot
