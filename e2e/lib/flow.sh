# shellcheck shell=bash
# shellcheck disable=SC2034 # read by the script that sources this file
# shellcheck disable=SC2154 # set by the script that sources this file
# Reporting, teardown and client helpers of the flows on the real node (sourced by
# e2e/operator.sh and its parts, e2e/certmanager.sh). Expects $me (the prefix of every line), and once the
# node is up $dir (its directory), $NS (the chart's namespace).

# shellcheck source=e2e/lib/report.sh
. "$(dirname "${BASH_SOURCE[0]}")/report.sh"

# The EXIT trap of a flow on the node (`trap flow_finish EXIT`): on failure the function
# named by $on_failure reports what the cluster shows, then the node is torn down (kept
# with PKIPLANE_E2E_KEEP=1) and the totals are printed.
flow_finish() {
  local rc=$?
  cd "$root" || true
  if [ -n "${PKIPLANE_E2E_DIR:-}" ]; then
    [ $rc = 0 ] || "$on_failure"
    if [ "${PKIPLANE_E2E_KEEP:-}" = 1 ]; then
      say "node kept: eval \"\$(PKIPLANE_E2E_DIR=$PKIPLANE_E2E_DIR e2e/node.sh env)\"; e2e/node.sh down"
    else
      e2e/node.sh down || say "teardown failed"
    fi
  fi
  rm -rf "${work:-}"
  report_exit $rc
}

# The pods' logs (kubectl) and the node daemons' errors, for a failure report.
logs_tail() {
  local ns pod
  for ns in "$NS" pki; do
    say "----- pods in $ns"
    kubectl -n "$ns" get pods -o wide 2>&1 | sed "s/^/$me:      | /" >&2 || true
    for pod in $(kubectl -n "$ns" get pods -o name 2>/dev/null); do
      say "----- $ns/${pod#pod/} (last 12 lines)"
      kubectl -n "$ns" logs "$pod" --all-containers --tail=12 2>&1 | sed "s/^/$me:      | /" >&2 || true
    done
  done
  say "----- events"
  kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 15 | sed "s/^/$me:      | /" >&2 || true
  say "----- kubelet log (last 10 lines)"
  tail -n 10 "$dir/logs/kubelet.log" 2>/dev/null | sed "s/^/$me:      | /" >&2 || true
}

# until_ok SECONDS CMD...: runs CMD every second until it succeeds (0) or the time is up (1).
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

# in_node CMD...: runs CMD in the node's network namespace (ClusterIPs routed by
# kube-proxy, as on any node of a cluster), in the current directory, with a resolver
# configured like a pod's: the cluster DNS (CoreDNS) and the search domain cluster.local,
# so Service names such as acme-pkiplane.pki.svc resolve. No forwarder is involved.
in_node() {
  # shellcheck disable=SC2016 # the inner shell's arguments
  "$root/e2e/node.sh" exec -- unshare --mount --propagation private -- \
    sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$dir/client-resolv.conf" "$@"
}
client_resolver() {
  printf 'nameserver %s\nsearch cluster.local\noptions ndots:5\n' "$PKIPLANE_E2E_DNS_IP" >"$dir/client-resolv.conf"
}

# The host pids of every process of the node (daemons, shims, containers: the containers
# have PID namespaces of their own, but all live in the node's cgroup).
node_pids() {
  local hostdir
  hostdir=$(awk '$2 == "cgroup" && $3 ~ /(^|,)pids(,|$)/ {print $4}' "$dir/node/cgroups")
  [ -n "$hostdir" ] || hostdir=$(awk 'NR == 1 {print $4}' "$dir/node/cgroups")
  find "$hostdir" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

# RSS of every process of the node. Prints "TOTAL_MiB (largest: NAME MiB, ...)".
node_rss() {
  node_pids | python3 -c '
import sys
total, by = 0, {}
for p in sys.stdin.read().split():
    try:
        with open(f"/proc/{p}/status") as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        kb = int(st.get("VmRSS", "0 kB").split()[0])
    except (OSError, ValueError):
        continue
    name = st["Name"].strip()
    total += kb
    by[name] = by.get(name, 0) + kb
top = sorted(by.items(), key=lambda kv: -kv[1])[:7]
print(f"{total // 1024} MiB (largest: " + ", ".join(f"{n} {kb // 1024} MiB" for n, kb in top) + ")")'
}

days_left() { echo $((($(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400)); }

# pods_of NAMESPACE DEPLOYMENT: the names of the Deployment's pods (sorted, one line).
pods_of() {
  local sel
  # shellcheck disable=SC2016 # a Go template, not shell
  sel=$(kubectl -n "$1" get deployment "$2" -o go-template='{{range $k, $v := .spec.selector.matchLabels}}{{$k}}={{$v}},{{end}}')
  kubectl -n "$1" get pods -l "${sel%,}" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}' | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' '
}
