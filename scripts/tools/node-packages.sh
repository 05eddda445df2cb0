#!/usr/bin/env bash
# Installs the Debian packages the e2e harness's real node (e2e/node.sh) runs, when
# missing: runc (the OCI runtime containerd starts; crun does not work on cgroup v1
# hybrid hosts), the CNI plugins (bridge, host-local, portmap, loopback), iptables and
# conntrack (kube-proxy), podman (builds the node's images) and gcc (the pause binary).
#
# Usage: scripts/tools/node-packages.sh           install what is missing (apt-get)
#        scripts/tools/node-packages.sh --check   only report; exit 1 if something is missing
set -euo pipefail

# package -> a file it installs
declare -A probe=(
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [podman]=/usr/bin/podman
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
)
missing=()
for pkg in "${!probe[@]}"; do
  [ -e "${probe[$pkg]}" ] || missing+=("$pkg")
done
for f in bridge host-local portmap loopback; do
  [ -x "/usr/lib/cni/$f" ] || { [[ " ${missing[*]} " == *" containernetworking-plugins "* ]] || missing+=(containernetworking-plugins); }
done
[ ${#missing[@]} -gt 0 ] || exit 0
if [ "${1:-}" = --check ]; then
  echo "node-packages.sh: missing: ${missing[*]}" >&2
  exit 1
fi
echo "node-packages.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
