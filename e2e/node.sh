#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# A real single-node Kubernetes for pkiplane's e2e tests: etcd, kube-apiserver,
# kube-controller-manager (all controllers), kube-scheduler, containerd + runc, the
# kubelet, kube-proxy (iptables), a CNI bridge and CoreDNS, all inside one PID, network,
# mount and cgroup namespace this script creates. Nothing listens on the host's network
# but forwarders on 127.0.0.1; `down` leaves nothing behind. See e2e/README.md.
#
#   eval "$(e2e/node.sh up)"         start; prints `export ...` lines (see `env`)
#   e2e/node.sh env                  print those lines again for $PKIPLANE_E2E_DIR
#   e2e/node.sh down                 kill the node, remove its cgroups and $PKIPLANE_E2E_DIR,
#                                    and check that nothing of it is left
#   e2e/node.sh run -- CMD...        up, CMD with the env exported, down (always)
#   e2e/node.sh load-image IMAGE [NAME] | load-image ARCHIVE NAME
#                                    copy IMAGE from the host's podman storage (or an OCI
#                                    archive file) into the node's containerd, as NAME
#                                    (default IMAGE); use imagePullPolicy IfNotPresent or
#                                    Never for it
#   e2e/node.sh forward NAME TARGET  carry 127.0.0.1:<port> on the host to TARGET in the
#                                    node (IP:PORT, or svc/NAMESPACE/SERVICE:PORT for a
#                                    Service's ClusterIP); prints the host port
#   e2e/node.sh exec -- CMD...       run CMD inside the node, in the current directory: it
#                                    reaches ClusterIPs, pod IPs and cluster DNS names
#                                    directly (ctr, ip, iptables, curl, protocol clients...)
#   e2e/node.sh start NAME -- CMD... | stop NAME... | alive NAME | sa-kubeconfig NS NAME [FILE]
#                                    as in e2e/cluster.sh (managed host processes)
#
# e2e/cluster.sh switches to this script when PKIPLANE_E2E_NODE=1 (and for a node's dir).
#
# Env: PKIPLANE_E2E_DIR, PKIPLANE_E2E_CRDS, PKIPLANE_E2E_ARTIFACTS, PKIPLANE_E2E_ADMISSION,
#      PKIPLANE_E2E_TIMEOUT, PKIPLANE_TOOLS_CACHE: as for e2e/cluster.sh
#      PKIPLANE_NODE_MAX_PODS  the kubelet's maxPods (default 110, the kubelet's own; the
#                              pod CIDR is a /24, so at most ~250)
#      PKIPLANE_E2E_NETNS_BIN  the e2e-netns binary (default: built with cargo)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
timeout=${PKIPLANE_E2E_TIMEOUT:-120}
me=node.sh
. "$here/lib/common.sh"
. "$here/lib/netns.sh"
. "$here/lib/node-config.sh"

# Addresses inside the node's network namespace (none exists outside it). The settings
# below are read by lib/node-config.sh.
# shellcheck disable=SC2034
NODE_NAME=e2e-node
NODE_IP=172.31.0.2
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1 # the `kubernetes` Service
DNS_IP=10.96.0.10    # the kube-dns Service
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
API_PORT=6443
PV_COUNT=4
RUNC=/usr/sbin/runc
CNI_BIN_DIR=/usr/lib/cni

# ---------------------------------------------------------------------------- up

node_pki() {
  pki_init
  pki_leaf apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP,IP:$NODE_IP"
  pki_leaf admin "/O=system:masters/CN=pkiplane-e2e-admin" clientAuth
  pki_leaf kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  pki_leaf kube-scheduler "/CN=system:kube-scheduler" clientAuth
  pki_leaf kube-proxy "/CN=system:kube-proxy" clientAuth
  pki_leaf kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  pki_leaf kubelet "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
  # The API server's identity towards the kubelet (exec, logs, port-forward).
  pki_leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  chmod 600 "$dir/pki"/*.key
}

# The kubeconfigs of the components inside the node: the API server on its own port there.
node_kubeconfigs() {
  local p="$dir/pki" c
  for c in kube-controller-manager kube-scheduler kube-proxy; do
    kc_server="https://127.0.0.1:$API_PORT" write_kubeconfig "$dir/$c.kubeconfig" "system:$c" \
      cert "$p/$c.key" "$p/$c.crt"
  done
  kc_server="https://127.0.0.1:$API_PORT" write_kubeconfig "$dir/kubelet.kubeconfig" \
    "system:node:$NODE_NAME" cert "$p/kubelet-client.key" "$p/kubelet-client.crt"
}

tools() {
  local kube containerd images
  "$root/scripts/tools/node-packages.sh"
  kube=$("$root/scripts/tools/kube.sh")
  containerd=$("$root/scripts/tools/containerd.sh")
  images=$("$root/scripts/tools/node-images.sh")
  if [ -n "${PKIPLANE_E2E_NETNS_BIN:-}" ]; then
    netns_bin=$PKIPLANE_E2E_NETNS_BIN
  else
    (cd "$root" && cargo build -q --locked -p pkiplane-e2e-netns >&2)
    netns_bin="${CARGO_TARGET_DIR:-$root/target}/debug/e2e-netns"
  fi
  [ -x "$netns_bin" ] || die "no e2e-netns binary at $netns_bin"
  echo "$kube" >"$dir/bin-dir"
  echo "$containerd" >"$dir/containerd-bin-dir"
  echo "$images" >"$dir/images-dir"
  echo "$netns_bin" >"$dir/netns-bin"
  # shellcheck disable=SC2034 # read by lib/node-config.sh
  PAUSE_IMAGE=$(awk '$1 == "pause.tar" {print $2}' "$images/images")
  # shellcheck disable=SC2034 # read by lib/node-config.sh
  COREDNS_IMAGE=$(awk '$1 == "coredns.tar" {print $2}' "$images/images")
  export PATH="$kube:$containerd:$PATH"
}

# Imports an OCI archive into the node's containerd (namespace k8s.io) as NAME.
import_archive() {
  local archive=$1 name=$2 ref
  ref=$(normalize_image "$name")
  # --index-name: the image is also known by the name pods use (the archive's own name,
  # e.g. podman's localhost/..., stays as well).
  node_exec ctr -n k8s.io images import --platform "linux/$(dpkg --print-architecture)" --index-name "$ref" "$archive" \
    >>"$dir/logs/ctr.log" 2>&1 || { tail -n 5 "$dir/logs/ctr.log" >&2; die "cannot import $archive as $ref"; }
}

# The name the kubelet asks containerd for: docker.io/ (and library/) for short names,
# :latest without a tag, as container runtimes normalize image references.
normalize_image() {
  local n=$1 first=${1%%/*}
  if [ "$first" = "$n" ]; then
    n="docker.io/library/$n"
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
    n="docker.io/$n"
  fi
  [[ ${n##*/} == *[:@]* ]] || n="$n:latest"
  echo "$n"
}

cmd_up() {
  local t0=$SECONDS
  [ "$(id -u)" = 0 ] || die "up: the real node needs root (namespaces, mounts, cgroups)"
  make_cluster_dir .pkiplane-e2e .pkiplane-e2e-node
  mkdir -p "$dir/node"
  export KUBECACHEDIR="$dir/kubectl-cache"

  up_ok=0
  # A signal may arrive while a wait's output goes to /dev/null: the report goes to the
  # caller's stderr, saved on fd 8 (closed for the processes `start` runs).
  exec 8>&2
  trap 'if [ $up_ok = 0 ]; then on_fail 2>&8; fi' EXIT
  trap 'exit 130' INT TERM

  tools
  local t_tools=$SECONDS
  node_pki
  node_kubeconfigs
  local id=${dir##*/}
  cgroup_layout "$(tr -c 'A-Za-z0-9\n' '-' <<<"${id#pkiplane-e2e.}")" >"$dir/node/cgroups"
  cgroups_create
  ns_create
  ns_setup
  local k=(kubectl --kubeconfig="$dir/kubeconfig")

  node_start etcd etcd --name=e2e --data-dir="$dir/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=e2e=http://127.0.0.1:2380 --unsafe-no-fsync --log-level=warn

  local p="$dir/pki"
  node_start kube-apiserver kube-apiserver \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --cert-dir="$dir/apiserver" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$p/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --authorization-mode=Node,RBAC \
    --anonymous-auth=true \
    --service-account-issuer="$SA_ISSUER" \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --enable-admission-plugins="$ADMISSION,NodeRestriction" \
    --allow-privileged=true \
    --profiling=false \
    --v=1
  # Host-side clients reach the API server through a forwarder on the host's loopback.
  start apiserver-forward "$netns_bin" forward --netns "/proc/$(init_pid)/ns/net" \
    --to "127.0.0.1:$API_PORT" --port-file "$dir/apiserver-port"
  wait_for "the API server forwarder" test -s "$dir/apiserver-port"
  write_kubeconfig "$dir/kubeconfig" admin cert "$p/admin.key" "$p/admin.crt"
  wait_for "kube-apiserver /readyz" "${k[@]}" get --raw=/readyz

  if [ -n "${PKIPLANE_E2E_CRDS:-}" ]; then
    "${k[@]}" apply --server-side -f "$PKIPLANE_E2E_CRDS" >&2
    "${k[@]}" wait --for=condition=Established --timeout="${timeout}s" -f "$PKIPLANE_E2E_CRDS" >&2
  fi

  # All the controllers a cluster runs (deployments, replica sets, endpoints and
  # endpoint slices, stateful sets, jobs, volume binding, node lifecycle, garbage
  # collection...), each with its own ServiceAccount's token, as kubeadm sets it up.
  node_start kube-controller-manager kube-controller-manager \
    --kubeconfig="$dir/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --cert-dir="$dir/kcm" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$p/sa.key" \
    --root-ca-file="$p/ca.crt" \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --controllers='*' \
    --flex-volume-plugin-dir=/var/lib/kubelet/volume-plugins \
    --allocate-node-cidrs=false \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false \
    --v=1
  node_start kube-scheduler kube-scheduler \
    --kubeconfig="$dir/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$dir/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$dir/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1

  write_containerd_config
  node_start containerd containerd --config="$dir/node/containerd.toml"
  wait_for containerd node_exec ctr version
  local archive name
  while read -r archive name; do
    import_archive "$(cat "$dir/images-dir")/$archive" "$name"
  done <"$(cat "$dir/images-dir")/images"

  write_kubelet_config
  node_start kubelet kubelet --config="$dir/node/kubelet.yaml" \
    --kubeconfig="$dir/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  write_kube_proxy_config
  node_start kube-proxy kube-proxy --config="$dir/node/kube-proxy.yaml" --v=1
  wait_for "node $NODE_NAME Ready" node_ready
  local t_ready=$SECONDS
  wait_for "the default ServiceAccount" "${k[@]}" -n default get serviceaccount default
  wait_for "kube-proxy's rules for the kubernetes Service" kube_proxy_synced

  storage_manifests | "${k[@]}" apply -f - >/dev/null
  coredns_manifests | "${k[@]}" apply -f - >/dev/null
  wait_for "CoreDNS ready" coredns_ready
  # kube-proxy programs the kube-dns endpoints a moment after CoreDNS is Ready.
  wait_for "cluster DNS answering in the node" \
    node_exec getent hosts kubernetes.default.svc.cluster.local

  up_ok=1
  trap - EXIT INT TERM
  log "up: node $NODE_NAME Ready $((t_ready - t_tools))s after the tools were in place, CoreDNS $((SECONDS - t_ready))s later; API server https://127.0.0.1:$(cat "$dir/apiserver-port"); tools $((t_tools - t0))s; state in $dir"
  print_env
}

node_ready() {
  [ "$(kubectl --kubeconfig="$dir/kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

kube_proxy_synced() {
  grep -qF 'default/kubernetes:https cluster IP' <<<"$(node_exec iptables-save -t nat)"
}

coredns_ready() {
  [ "$(kubectl --kubeconfig="$dir/kubeconfig" -n kube-system get deployment coredns \
    -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

print_env() {
  [ -f "$dir/apiserver-port" ] || die "no node in $dir"
  printf 'export PKIPLANE_E2E_NODE=1\n'
  print_api_env
  printf 'export PKIPLANE_E2E_NODE_NAME=%q\n' "$NODE_NAME"
  printf 'export PKIPLANE_E2E_NODE_IP=%q\n' "$NODE_IP"
  printf 'export PKIPLANE_E2E_DNS_IP=%q\n' "$DNS_IP"
  printf 'export PKIPLANE_E2E_IMAGES=%q\n' "$(cat "$dir/images-dir")"
}

# ---------------------------------------------------------------------------- down

cmd_down() {
  [ -n "${dir:-}" ] || die "down: PKIPLANE_E2E_DIR is not set"
  [ -d "$dir" ] || return 0
  [ -f "$dir/.pkiplane-e2e-node" ] || die "down: $dir is not a node dir (no .pkiplane-e2e-node marker); not removing it"
  # First what runs on the host (tests' processes, forwarders), then the node.
  local f node=(node-init etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
  local others=()
  for f in "$dir"/pids/*; do
    [ -f "$f" ] || continue
    case " ${node[*]} " in *" ${f##*/} "*) ;; *) others+=("${f##*/}") ;; esac
  done
  [ ${#others[@]} = 0 ] || stop "${others[@]}"
  # One SIGKILL to the PID namespace's init ends every process of the node, containers
  # included (the data is thrown away: no orderly shutdown needed).
  local init pidns
  if init=$(init_pid 2>/dev/null) && pidns=$(readlink "/proc/$init/ns/pid" 2>/dev/null) &&
    grep -qF "$pidns" "$dir/node/ns-ids"; then
    kill -KILL "$init" 2>/dev/null || true
  fi
  stop_grace=5 stop "${node[@]}"
  local clean=0
  cgroups_remove || clean=1
  for _ in $(seq 50); do ns_gone 2>/dev/null && break; sleep 0.1; done
  ns_gone || clean=1
  if [ -n "${PKIPLANE_E2E_ARTIFACTS:-}" ] && [ -d "$dir/logs" ]; then
    mkdir -p "$PKIPLANE_E2E_ARTIFACTS"
    cp -r "$dir/logs/." "$PKIPLANE_E2E_ARTIFACTS/" || true
  fi
  rm -rf "$dir"
  [ $clean = 0 ] || die "down: the node was not removed completely (see above)"
  log "down: no process, namespace or cgroup of the node is left; $dir removed"
}

# ---------------------------------------------------------------------------- commands

cmd_load_image() {
  { [ $# -ge 1 ] && [ $# -le 2 ]; } || die "usage: load-image IMAGE|ARCHIVE [NAME]"
  local archive
  if [ -f "$1" ]; then
    # An OCI archive (scripts/image.sh --archive): no podman storage involved, so an image
    # another build re-tags meanwhile cannot slip in.
    [ $# = 2 ] || die "load-image: an archive needs the NAME pods use"
    import_archive "$1" "$2"
    log "load-image: $1 -> $(normalize_image "$2")"
    return
  fi
  command -v podman >/dev/null 2>&1 || die "load-image: podman is not installed"
  mkdir -p "$dir/images"
  archive=$(mktemp "$dir/images/image.XXXXXX.tar")
  rm -f "$archive"
  podman save --quiet --format oci-archive -o "$archive" "$1" >&2
  import_archive "$archive" "${2:-$1}"
  rm -f "$archive"
  log "load-image: $1 -> $(normalize_image "${2:-$1}")"
}

cmd_forward() {
  [ $# = 2 ] || die "usage: forward NAME IP:PORT|svc/NAMESPACE/SERVICE:PORT"
  local name=$1 target=$2 ip
  if [[ $target == svc/* ]]; then
    local ns_svc=${target#svc/}
    ns_svc=${ns_svc%:*}
    ip=$(kubectl --kubeconfig="$dir/kubeconfig" -n "${ns_svc%%/*}" get service "${ns_svc#*/}" \
      -o jsonpath='{.spec.clusterIP}') || die "forward: no Service $ns_svc"
    target="$ip:${target##*:}"
  fi
  rm -f "$dir/forward-$name.port"
  start "forward-$name" "$(cat "$dir/netns-bin")" forward --netns "/proc/$(init_pid)/ns/net" \
    --to "$target" --port-file "$dir/forward-$name.port"
  wait_for "forwarder $name" test -s "$dir/forward-$name.port"
  cat "$dir/forward-$name.port"
}

need_node() {
  need_cluster "$1"
  [ -f "$dir/.pkiplane-e2e-node" ] || die "$1: $dir is not a node (use e2e/cluster.sh)"
  PATH="$(cat "$dir/containerd-bin-dir"):$PATH"
}

dir=${PKIPLANE_E2E_DIR:-}
case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  env) need_node env; print_env ;;
  run) shift; cmd_run "$@" ;;
  sa-kubeconfig) shift; need_node sa-kubeconfig; cmd_sa_kubeconfig "$@" ;;
  load-image) shift; need_node load-image; cmd_load_image "$@" ;;
  forward) shift; need_node forward; cmd_forward "$@" ;;
  exec)
    need_node exec; shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: exec -- CMD..."
    node_wd=$PWD node_exec "$@" ;;
  start | stop | alive) need_node "$1"; cmd_process "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; /^# shellcheck/d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
