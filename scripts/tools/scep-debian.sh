#!/usr/bin/env bash
# Installs Debian's `scep` package (micromdm scep 2.1.0: /usr/bin/scepclient and
# /usr/bin/scepserver). Its client signs requests incorrectly (a negative test: pkiplane
# must refuse it with badMessageCheck); its server is the throughput peer of the
# benchmark. Idempotent. Prints the directory holding both binaries.
set -euo pipefail

if ! [ -x /usr/bin/scepserver ] || ! [ -x /usr/bin/scepclient ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "scep-debian.sh: installing the Debian package scep" >&2
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq scep >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq scep >&2
  fi
fi
[ -x /usr/bin/scepserver ] && [ -x /usr/bin/scepclient ] || { echo "scep-debian.sh: scep package installed no scepclient/scepserver" >&2; exit 1; }
echo /usr/bin
