#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# A throwaway Kubernetes control plane on loopback for pkiplane's e2e tests:
# etcd + kube-apiserver (RBAC on, real service-account tokens) + kube-controller-manager
# (garbage collection, namespaces, service accounts). No kubelet, no scheduler, no
# Deployment/ReplicaSet controllers: see e2e/README.md for what that means.
#
#   eval "$(e2e/cluster.sh up)"      start; prints `export ...` lines (see `env`)
#   e2e/cluster.sh env               print those lines again for $PKIPLANE_E2E_DIR
#   e2e/cluster.sh down              stop everything and remove $PKIPLANE_E2E_DIR
#   e2e/cluster.sh run -- CMD...     up, run CMD with the env exported, down (always);
#                                    exits with CMD's status
#   e2e/cluster.sh start NAME -- CMD...
#                                    run CMD detached as a managed process: log in
#                                    $PKIPLANE_E2E_DIR/logs/NAME.log, stopped by `stop NAME`
#                                    and by `down` (before the control plane); prints its pid
#   e2e/cluster.sh stop NAME...      SIGTERM, then SIGKILL after 10 s
#   e2e/cluster.sh alive NAME        exit 0 if that process is still running
#   e2e/cluster.sh sa-kubeconfig NAMESPACE NAME [FILE]
#                                    kubeconfig (written to FILE, path printed) that
#                                    authenticates as that ServiceAccount with a token from
#                                    the TokenRequest API; creates the ServiceAccount if
#                                    missing. For running a component under its chart RBAC.
#
# PKIPLANE_E2E_NODE=1 runs the same commands on a real node instead: see e2e/node.sh.
#
# Env: PKIPLANE_E2E_DIR        state dir (default: a new mktemp -d under $TMPDIR for `up`)
#      PKIPLANE_E2E_CRDS       file or dir applied (and waited Established) before the
#                              controller manager starts, so garbage collection watches
#                              the custom kinds from the first second
#      PKIPLANE_E2E_NO_KCM=1   do not run kube-controller-manager
#      PKIPLANE_E2E_ARTIFACTS  if set, `down` copies the logs there before removing the dir
#      PKIPLANE_E2E_ADMISSION  --enable-admission-plugins (see ADMISSION in lib/common.sh)
#      PKIPLANE_E2E_TIMEOUT    seconds to wait for each component (default 120)
#      PKIPLANE_TOOLS_CACHE    where scripts/tools/kube.sh caches the binaries
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The real node instead (e2e/node.sh, same commands) when asked for, or for a node's dir.
if [ "${PKIPLANE_E2E_NODE:-}" = 1 ] || [ -f "${PKIPLANE_E2E_DIR:-/nonexistent}/.pkiplane-e2e-node" ]; then
  exec "$here/node.sh" "$@"
fi
root=$(cd "$here/.." && pwd)
timeout=${PKIPLANE_E2E_TIMEOUT:-120}

me=cluster.sh
. "$here/lib/common.sh"

# The Service IP range. It is deliberately a loopback range: nothing routes Service IPs
# here (no kube-proxy), and anything that mistakenly dials one reaches this machine and
# gets "connection refused" instead of sending traffic off the host.
SERVICE_CIDR=127.192.0.0/16
SERVICE_IP=127.192.0.1 # the `kubernetes` Service, first address of the range

# ---------------------------------------------------------------------------- certificates

pki() {
  pki_init
  pki_leaf apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP"
  pki_leaf admin "/O=system:masters/CN=pkiplane-e2e-admin" clientAuth
  pki_leaf kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  chmod 600 "$dir/pki"/*.key
}

# ---------------------------------------------------------------------------- commands

print_env() {
  [ -f "$dir/apiserver-port" ] || die "no cluster in $dir"
  print_api_env
}

cmd_down() {
  [ -n "${dir:-}" ] || die "down: PKIPLANE_E2E_DIR is not set"
  [ -d "$dir" ] || return 0
  [ -f "$dir/.pkiplane-e2e" ] || die "down: $dir is not a cluster dir (no .pkiplane-e2e marker); not removing it"
  # First what the tests started (`cluster.sh start`), then the control plane.
  local f others=()
  for f in "$dir"/pids/*; do
    [ -f "$f" ] || continue
    case ${f##*/} in kube-controller-manager | kube-apiserver | etcd) ;; *) others+=("${f##*/}") ;; esac
  done
  [ ${#others[@]} = 0 ] || stop "${others[@]}"
  # The data is thrown away: no need to shut the control plane down in order.
  stop_grace=5 stop kube-controller-manager kube-apiserver etcd
  if [ -n "${PKIPLANE_E2E_ARTIFACTS:-}" ] && [ -d "$dir/logs" ]; then
    mkdir -p "$PKIPLANE_E2E_ARTIFACTS"
    cp -r "$dir/logs/." "$PKIPLANE_E2E_ARTIFACTS/" || true
  fi
  rm -rf "$dir"
}

cmd_up() {
  local bin
  bin=$("$root/scripts/tools/kube.sh")
  export PATH="$bin:$PATH"

  make_cluster_dir .pkiplane-e2e
  echo "$bin" >"$dir/bin-dir"
  # kubectl's discovery cache is keyed by host:port; random ports would litter ~/.kube.
  export KUBECACHEDIR="$dir/kubectl-cache"

  # From here on, any failure (or Ctrl-C) tears down what was started.
  local ok=0
  # A signal may arrive while a wait's output goes to /dev/null: the report goes to the
  # caller's stderr, saved on fd 8 (closed for the processes `start` runs).
  exec 8>&2
  trap 'if [ $ok = 0 ]; then on_fail 2>&8; fi' EXIT
  trap 'exit 130' INT TERM

  pki

  local etcd_port peer_port api_port kcm_port
  read -r etcd_port peer_port api_port kcm_port < <(free_ports 4)
  echo "$api_port" >"$dir/apiserver-port"

  start etcd etcd --name=e2e --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="e2e=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync --log-level=warn
  wait_for etcd etcdctl --endpoints="http://127.0.0.1:$etcd_port" endpoint health

  local p="$dir/pki"
  # --endpoint-reconciler-type=none: the `kubernetes` Service's Endpoints would have to
  # hold 127.0.0.1, which Endpoints validation refuses; nothing in the harness uses them.
  start kube-apiserver kube-apiserver \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$dir/apiserver" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" \
    --authorization-mode=Node,RBAC \
    --anonymous-auth=true \
    --service-account-issuer="$SA_ISSUER" \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --endpoint-reconciler-type=none \
    --enable-admission-plugins="$ADMISSION" \
    --allow-privileged=true \
    --profiling=false \
    --v=1
  write_kubeconfig "$dir/kubeconfig" admin cert "$p/admin.key" "$p/admin.crt"
  wait_for "kube-apiserver /readyz" kubectl --kubeconfig="$dir/kubeconfig" get --raw=/readyz

  if [ -n "${PKIPLANE_E2E_CRDS:-}" ]; then
    kubectl --kubeconfig="$dir/kubeconfig" apply --server-side -f "$PKIPLANE_E2E_CRDS" >&2
    kubectl --kubeconfig="$dir/kubeconfig" wait --for=condition=Established --timeout="${timeout}s" \
      -f "$PKIPLANE_E2E_CRDS" >&2
  fi

  if [ "${PKIPLANE_E2E_NO_KCM:-}" != 1 ]; then
    write_kubeconfig "$dir/kube-controller-manager.kubeconfig" system:kube-controller-manager \
      cert "$p/kube-controller-manager.key" "$p/kube-controller-manager.crt"
    # Only controllers that work without nodes or pods. Each runs with its own
    # ServiceAccount's token (--use-service-account-credentials), as kubeadm sets it up.
    start kube-controller-manager kube-controller-manager \
      --kubeconfig="$dir/kube-controller-manager.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$dir/kcm" \
      --leader-elect=false \
      --use-service-account-credentials=true \
      --service-account-private-key-file="$p/sa.key" \
      --root-ca-file="$p/ca.crt" \
      --controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,resourcequota-controller \
      --profiling=false \
      --v=1
    wait_for "kube-controller-manager /healthz" curl -fsk "https://127.0.0.1:$kcm_port/healthz"
    # The serviceaccount controller is working once `default` has its ServiceAccount.
    wait_for "the default ServiceAccount" kubectl --kubeconfig="$dir/kubeconfig" -n default get serviceaccount default
  fi

  ok=1
  trap - EXIT INT TERM
  log "up: kube-apiserver https://127.0.0.1:$api_port, state in $dir"
  print_env
}


dir=${PKIPLANE_E2E_DIR:-}
case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  env) need_cluster env; print_env ;;
  run) shift; cmd_run "$@" ;;
  sa-kubeconfig) shift; need_cluster sa-kubeconfig; cmd_sa_kubeconfig "$@" ;;
  start | stop | alive) need_cluster "$1"; cmd_process "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; /^# shellcheck/d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
