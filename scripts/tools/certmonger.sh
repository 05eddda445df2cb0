#!/usr/bin/env bash
# Installs certmonger (Debian package) with dbus, whose SCEP helper
# (/usr/libexec/certmonger/scep-submit) and daemon (`getcert add-scep-ca`,
# `getcert request`) are the second independent SCEP client. Idempotent. Prints the
# path of scep-submit.
set -euo pipefail

helper=""
find_helper() {
  for p in /usr/libexec/certmonger/scep-submit /usr/lib/certmonger/scep-submit; do
    if [ -x "$p" ]; then helper="$p"; return 0; fi
  done
  return 1
}
if ! find_helper || ! command -v getcert >/dev/null 2>&1 || ! command -v dbus-daemon >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "certmonger.sh: installing certmonger and dbus" >&2
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends certmonger dbus >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends certmonger dbus >&2
  fi
  find_helper || { echo "certmonger.sh: certmonger installed no scep-submit helper" >&2; exit 1; }
fi
echo "$helper"
