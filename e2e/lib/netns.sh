# shellcheck shell=bash
# The real node's namespaces (sourced by e2e/node.sh).
#
# One PID, network, mount and cgroup namespace for the whole node, created by `unshare`
# and held by `e2e-netns init`, which is PID 1 inside (it only reaps). Every daemon is
# entered with nsenter after joining the node's cgroup. Teardown is one SIGKILL to that
# PID 1: the kernel then kills every process of the PID namespace, containers included;
# the mounts, network devices, iptables rules and pod network namespaces die with the
# last process. What is left on the host is removed explicitly: the cgroup directories
# and the node's directory.
#
# Layout ($dir/node):
#   join              joins the node's cgroups (argument: "" or "system"), then execs
#   cgroups           "MOUNTPOINT FSTYPE OPTIONS HOSTDIR" for each cgroup hierarchy
#   init-pid          host PID of `e2e-netns init`
#   ns-ids            the namespaces' identities (net:[...] mnt:[...] pid:[...] cgroup:[...])
#   fs/{run,var-lib,var-log}, etc/, sysctl/   private copies mounted inside

# The cgroup hierarchies of this machine and where the node's cgroup goes in each: under
# this process's own cgroup (so the node is accounted where the caller is), named
# pkiplane-e2e-<id>. Prints "MOUNTPOINT FSTYPE OPTIONS HOSTDIR" lines.
cgroup_layout() {
  local id=$1 line mp fstype opts root ctrls path first sub
  while read -r line; do
    # mountinfo: ID PARENT DEV ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS
    read -r _ _ _ root mp _ <<<"${line%% - *}"
    read -r fstype _ opts <<<"${line#* - }"
    case $fstype in cgroup | cgroup2) ;; *) continue ;; esac
    path=""
    while IFS=: read -r _ ctrls sub; do
      if [ "$fstype" = cgroup2 ]; then
        [ -z "$ctrls" ] && path=$sub
      else
        [ -n "$ctrls" ] || continue
        first=${ctrls%%,*}
        case ",$opts," in *",$first,"*) path=$sub ;; esac
      fi
    done </proc/self/cgroup
    [ "$root" = / ] || path=${path#"$root"}
    echo "$mp $fstype $opts ${mp%/}${path%/}/pkiplane-e2e-$id"
  done </proc/self/mountinfo
}

# cgroups_create: the node's cgroup, and its "system" child for the daemons, in every
# hierarchy (cpuset needs its cpus and mems copied from the parent before use).
cgroups_create() {
  local mp fstype opts hostdir d
  while read -r mp fstype opts hostdir; do
    mkdir "$hostdir" "$hostdir/system"
    if [ -f "$hostdir/cpuset.cpus" ]; then
      for d in "$hostdir" "$hostdir/system"; do
        cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
        cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
      done
    fi
  done <"$dir/node/cgroups"
  # join SUBDIR CMD...: moves itself into SUBDIR of the node's cgroup in every hierarchy
  # (all of a process's children inherit it), then runs CMD.
  {
    echo '#!/bin/sh'
    # shellcheck disable=SC2016 # the generated script's own variables
    echo 'sub=$1; shift'
    while read -r mp fstype opts hostdir; do
      # shellcheck disable=SC2016 # expanded by the generated script
      printf 'echo $$ >"%s${sub:+/$sub}/cgroup.procs"\n' "$hostdir"
    done <"$dir/node/cgroups"
    echo 'exec "$@"'
  } >"$dir/node/join"
  chmod 755 "$dir/node/join"
}

# cgroups_remove: kills whatever is still in the node's cgroups, then removes them,
# deepest first. Returns non-zero if a directory could not be removed.
cgroups_remove() {
  [ -f "$dir/node/cgroups" ] || return 0
  local mp fstype opts hostdir pids ok=0
  for _ in $(seq 50); do
    pids=$(while read -r mp fstype opts hostdir; do
      [ -d "$hostdir" ] && find "$hostdir" -name cgroup.procs -exec cat {} + 2>/dev/null
    done <"$dir/node/cgroups" | sort -u)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  while read -r mp fstype opts hostdir; do
    [ -d "$hostdir" ] || continue
    find "$hostdir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    if [ -d "$hostdir" ]; then log "cannot remove cgroup $hostdir"; ok=1; fi
  done <"$dir/node/cgroups"
  return $ok
}

init_pid() { cat "$dir/node/init-pid"; }

# node_exec CMD...: runs CMD inside the node (its namespaces, the daemons' cgroup), in
# the directory $node_wd (default /).
node_exec() {
  "$dir/node/join" system nsenter --target "$(init_pid)" --net --mount --pid --cgroup \
    --wd="${node_wd:-/}" -- "$@"
}

# node_start NAME CMD...: `start` (a managed process, logged) inside the node.
node_start() {
  local name=$1; shift
  start "$name" "$dir/node/join" system nsenter --target "$(init_pid)" --net --mount --pid \
    --cgroup --wd=/ -- "$@"
}

# ns_create: the namespaces, held by `e2e-netns init`; records its host PID.
ns_create() {
  # --kill-child: if unshare itself is killed, the init (and with it the node) goes too.
  start node-init "$dir/node/join" "" unshare --pid --fork --kill-child=SIGKILL --mount-proc \
    --net --mount --cgroup --propagation private -- "$netns_bin" init
  local upid child=""
  read -r upid _ <"$dir/pids/node-init"
  for _ in $(seq 100); do
    child=$(tr -d ' ' 2>/dev/null <"/proc/$upid/task/$upid/children") || true
    [ -z "$child" ] || break
    sleep 0.05
  done
  [ -n "$child" ] || die "unshare did not start the node's init"
  echo "$child" >"$dir/node/init-pid"
  local ns ids=""
  for ns in net mnt pid cgroup; do ids+="$(readlink "/proc/$child/ns/$ns") "; done
  echo "$ids" >"$dir/node/ns-ids"
}

# ns_setup: the node's mounts and network, from inside.
ns_setup() {
  local n="$dir/node"
  mkdir -p "$n/fs/run" "$n/fs/var-lib" "$n/fs/var-log" "$n/etc" "$n/sysctl"
  printf '127.0.0.1 localhost\n%s %s\n' "$NODE_IP" "$NODE_NAME" >"$n/etc/hosts"
  printf 'nameserver %s\n' "$DNS_IP" >"$n/etc/resolv.conf"
  # The kernel settings the kubelet insists on (protectKernelDefaults: it checks them and
  # refuses to start otherwise). They are not per namespace: files holding the expected
  # values are mounted read-only over them, so the host's stay as they are.
  local kv sysctls=()
  mkdir -p "$n/sysctl/vm" "$n/sysctl/kernel/keys"
  for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    echo "${kv#*=}" >"$n/sysctl/${kv%%=*}"
    sysctls+=("${kv%%=*}")
  done

  node_exec bash -euo pipefail -s "$n" "$NODE_IP" "$SERVICE_CIDR" "${sysctls[@]}" <<'EOF'
n=$1 node_ip=$2 service_cidr=$3; shift 3
# /sys of this network namespace, read-only; the cgroup hierarchies again on top, which
# the cgroup namespace roots at the node's cgroup.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup-root /sys/fs/cgroup
while read -r mp fstype opts _; do
  mkdir -p "$mp"
  mount -t "$fstype" -o "$opts" cgroup "$mp"
done <"$n/cgroups"
# /proc/sys: read-only but for net/ (per network namespace) and the kubelet's settings.
for s in "$@"; do mount --bind -o ro "$n/sysctl/$s" "/proc/sys/$s"; done
mount --bind /proc/sys/net /proc/sys/net
mount --rbind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
# Private /run, /var/lib and /var/log: the defaults every component writes to (sockets,
# kubelet and CNI state, pod logs) without touching the host's.
mount --bind "$n/fs/run" /run
mount --bind "$n/fs/var-lib" /var/lib
mount --bind "$n/fs/var-log" /var/log
mkdir -p /run/containerd /run/netns /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers
mount --bind "$n/etc/hosts" /etc/hosts
mount --bind "$n/etc/resolv.conf" /etc/resolv.conf
# Mount propagation between the kubelet and the containers, inside this namespace only.
mount --make-rshared /
# The node's address on a veth pair whose both ends stay here (nothing leaves the
# namespace); Services routed over it so kube-proxy's DNAT applies; anything else is
# unreachable at once.
ip link set lo up
ip link add node0 type veth peer name node1
ip addr add "$node_ip/24" dev node0
ip link set node0 up
ip link set node1 up
ip route add "$service_cidr" dev node0 src "$node_ip"
ip route add unreachable default
echo 1 >/proc/sys/net/ipv4/ip_forward
EOF
}

# ns_gone: nothing of the node is left: no process in its namespaces, no cgroup.
# Prints what remains and returns non-zero otherwise.
ns_gone() {
  local ids left="" id
  ids=$(cat "$dir/node/ns-ids" 2>/dev/null) || return 0
  for id in $ids; do
    # "'/proc/PID/ns/net' -> 'net:[4026532177]'" for every process still in it
    left+=$(stat -c '%N' /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt /proc/[0-9]*/ns/pid \
      /proc/[0-9]*/ns/cgroup 2>/dev/null | grep -F "'$id'" | sed "s|^'/proc/\([0-9]*\)/.*| pid \1 ($id)|" | tr '\n' ' ' || true)
  done
  local mp fstype opts hostdir
  while read -r mp fstype opts hostdir; do
    [ ! -d "$hostdir" ] || left+=" cgroup:$hostdir"
  done <"$dir/node/cgroups"
  [ -z "$left" ] || { log "left behind:$left"; return 1; }
}
