#!/usr/bin/env bash
# Smoke test of the real node (e2e/node.sh): the node becomes Ready; a Deployment and a
# Service of a test image (netcheck, FROM scratch) are reached by ClusterIP and by name
# (CoreDNS) from another pod and from the host through a forwarder; `kubectl exec`,
# `logs` and `port-forward` work; a PVC binds and a pod writes to it; names outside the
# cluster do not resolve; and `down` leaves nothing behind on the host (processes,
# namespaces, mounts, cgroups, iptables rules, files), nor does an `up` interrupted
# (SIGTERM) while its daemons run. Prints what it measured: Ready time, memory (RSS) of
# the node's processes, idle CPU.
#
# Usage: e2e/node-smoke.sh     exits non-zero on the first failed check;
#                              the last line is "node-smoke: N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")/.."
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS

me=node-smoke
# shellcheck source=e2e/lib/report.sh
. e2e/lib/report.sh
NS=smoke

# What of the node could leak onto the host, before and after: mounts, iptables rules and
# links that are the node's (other work on the machine may change the rest meanwhile),
# cgroups, the usual state paths of a node (the node writes only below its own directory
# and private mounts; a default left unset would create one of these on the host).
host_state() {
  echo "== mounts"
  awk '{print $4, $5, $9, $10}' /proc/self/mountinfo | grep -E 'pkiplane-e2e|kubelet|containerd|/run/netns|cni' | sort || true
  echo "== iptables"
  iptables-save 2>/dev/null | grep -E 'KUBE-|10\.244\.|10\.96\.|172\.31\.0\.' | sed 's/\[[0-9:]*\]//' || true
  echo "== links"; ip -o link show | awk -F': ' '{print $2}' | grep -E '^(node0|node1|cni0)' || true
  # Only this script's nodes: another node (a test running beside this one) has its own
  # pkiplane-e2e-<id> cgroups and may come or go meanwhile.
  echo "== cgroups"
  local id
  for id in $own_nodes; do find /sys/fs/cgroup -maxdepth 4 -type d -name "$id" 2>/dev/null; done | sort
  echo "== paths"
  for p in /var/lib/kubelet /var/lib/containerd /var/lib/cni /var/log/pods /var/log/containers \
    /run/containerd /run/runc /run/netns /etc/cni /opt/cni /opt/containerd /opt/nri /etc/nri /etc/cdi \
    /etc/containerd /etc/kubernetes /usr/libexec/kubernetes; do
    # With its modification time: a path that existed before must not change either.
    [ ! -e "$p" ] || stat -c '%n %Y' "$p"
  done
}

finish() {
  local rc=$?
  e2e_teardown e2e/node.sh kubelet.log 15 $rc
  rm -f "${tmp_log:-}"
  report_exit $rc
}
trap finish EXIT
trap 'say "interrupted"; exit 130' INT TERM
tmp_log=$(mktemp)
own_nodes="" # the cgroup names of the nodes this script starts (pkiplane-e2e-<dir suffix>)
own_node() { own_nodes+=" $(basename "$1" | tr -c 'A-Za-z0-9\n' '-')"; }
before=$(host_state)

# ---------------------------------------------------------------------------- up

envs=$(e2e/node.sh up 2>"$tmp_log") || fail "node up" "$(tail -n 40 "$tmp_log")"
eval "$envs"
own_node "$PKIPLANE_E2E_DIR"
ready_line=$(grep -o 'node e2e-node Ready .*' "$tmp_log" || true)
out=$(kubectl get node "$PKIPLANE_E2E_NODE_NAME" -o wide 2>&1) || fail "kubectl get node" "$out"
grep -q ' Ready ' <<<"$out" || fail "node not Ready" "$out"
printf '%s\n' "$out" | sed 's/^/node-smoke:      | /' >&2
pass "node up and Ready ($ready_line)"

out=$(kubectl -n kube-system get pods -o wide 2>&1)
grep -q 'coredns-.*1/1 *Running' <<<"$out" || fail "CoreDNS pod Running" "$out"
pass "CoreDNS runs as a pod"

# ---------------------------------------------------------------------------- workload

image=$(awk '$2 ~ /netcheck/ {print $2}' "$PKIPLANE_E2E_IMAGES/images")
kubectl create namespace "$NS" >/dev/null
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: $NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: echo
        image: $image
        imagePullPolicy: Never
        args: [serve, ":8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: $NS}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: $image
    imagePullPolicy: Never
    args: [sleep]
    volumeMounts: [{name: data, mountPath: /data}]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
EOF
out=$(kubectl -n "$NS" rollout status deployment/echo --timeout=120s 2>&1) || fail "echo Deployment rollout" "$out"
out=$(kubectl -n "$NS" wait --for=condition=Ready pod/client --timeout=120s 2>&1) || fail "client pod Ready" "$out"
pass "Deployment (2 replicas), Service, PVC and a client pod under Pod Security \"restricted\""

out=$(kubectl -n "$NS" get pvc data -o jsonpath='{.status.phase} {.spec.volumeName}')
[ "${out%% *}" = Bound ] || fail "PVC not Bound" "$out"
pv=${out#* }
pv_path=$(kubectl get pv "$pv" -o jsonpath='{.spec.hostPath.path}')
kubectl -n "$NS" exec client -- /netcheck write /data/hello "written by the client pod" ||
  fail "write to the PVC from the pod"
[ "$(cat "$pv_path/hello" 2>&1)" = "written by the client pod" ] || fail "the PV's file" "$(ls -la "$pv_path")"
pass "PVC bound to $pv; a pod's write landed in $pv_path (kubectl exec works)"

cluster_ip=$(kubectl -n "$NS" get service echo -o jsonpath='{.spec.clusterIP}')
# kube-proxy programs a new Service within about a second: allow it a few tries.
for _ in $(seq 20); do
  out=$(kubectl -n "$NS" exec client -- /netcheck get "http://$cluster_ip/" 2>&1) && break
  sleep 0.5
done
grep -q '^netcheck echo-' <<<"$out" || fail "GET http://$cluster_ip/ from the client pod" "$out"
pass "ClusterIP $cluster_ip answers from another pod: $out"

# From the node's own network namespace, where the API server dials webhook Services.
out=$(e2e/node.sh exec -- curl -fsS --max-time 5 "http://$cluster_ip/" 2>&1) || fail "GET http://$cluster_ip/ from the node" "$out"
grep -q '^netcheck echo-' <<<"$out" || fail "GET http://$cluster_ip/ from the node" "$out"
pass "ClusterIP $cluster_ip answers from the node itself (the API server's path to webhooks): $out"

out=$(kubectl -n "$NS" exec client -- /netcheck lookup "echo.$NS.svc.cluster.local" 2>&1) ||
  fail "lookup echo.$NS.svc.cluster.local" "$out"
[ "$out" = "$cluster_ip" ] || fail "echo.$NS.svc.cluster.local resolved to '$out', want $cluster_ip"
out=$(kubectl -n "$NS" exec client -- /netcheck get "http://echo/" 2>&1) || fail "GET http://echo/ (search path)" "$out"
grep -q '^netcheck echo-' <<<"$out" || fail "GET http://echo/" "$out"
out=$(kubectl -n "$NS" exec client -- /netcheck lookup kubernetes.default 2>&1) || fail "lookup kubernetes.default" "$out"
[ "$out" = 10.96.0.1 ] || fail "kubernetes.default resolved to '$out'"
pass "CoreDNS answers echo.$NS.svc.cluster.local -> $cluster_ip, the short name and kubernetes.default"

# Seen from both replicas over a few requests: the Service balances over its endpoints.
seen=""
for _ in $(seq 30); do
  host=$(kubectl -n "$NS" exec client -- /netcheck get "http://$cluster_ip/" 2>/dev/null | awk '{print $2}')
  [[ " $seen " == *" $host "* ]] || seen+=" $host"
  [ "$(wc -w <<<"$seen")" -lt 2 ] || break
done
[ "$(wc -w <<<"$seen")" = 2 ] || fail "both replicas behind the Service" "seen:$seen"
pass "both replicas answer behind the Service:$seen"

out=$(kubectl -n "$NS" exec client -- /netcheck lookup example.com 2>&1) &&
  fail "a name outside the cluster resolved" "$out"
out=${out%%$'\n'*}
pass "a name outside cluster.local does not resolve (no forward plugin): ${out##*: }"

port=$(e2e/node.sh forward echo "svc/$NS/echo:80")
out=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/" 2>&1) || fail "host -> forwarder -> Service" "$out"
grep -q '^netcheck echo-' <<<"$out" || fail "host -> forwarder -> Service" "$out"
pass "the host reaches the Service through the forwarder on 127.0.0.1:$port: $out"

pod=$(kubectl -n "$NS" get pods -l app=echo -o jsonpath='{.items[0].metadata.name}')
out=$(kubectl -n "$NS" logs "$pod" 2>&1) || fail "kubectl logs $pod" "$out"
grep -q "serving on :8080 as $pod" <<<"$out" || fail "kubectl logs $pod" "$out"
pass "kubectl logs: $out"

pf_log="$PKIPLANE_E2E_DIR/port-forward.log"
# Created here, not by the background job's redirection: the loop below may read it
# before the forked shell has opened it, and a missing file would end the script.
: >"$pf_log"
kubectl -n "$NS" port-forward "pod/$pod" :8080 >"$pf_log" 2>&1 &
pf=$!
for _ in $(seq 50); do
  pf_port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$pf_log")
  [ -z "$pf_port" ] || break
  sleep 0.2
done
[ -n "$pf_port" ] || { kill "$pf" 2>/dev/null; fail "kubectl port-forward" "$(cat "$pf_log")"; }
out=$(curl -fsS --max-time 5 "http://127.0.0.1:$pf_port/" 2>&1) || { kill "$pf"; fail "GET through port-forward" "$out"; }
kill "$pf" 2>/dev/null; wait "$pf" 2>/dev/null || true
[ "$out" = "netcheck $pod" ] || fail "port-forward reached '$out', want $pod"
pass "kubectl port-forward pod/$pod: $out"

# ---------------------------------------------------------------------------- measure

cg_mem=$(awk '$1 == "/sys/fs/cgroup/memory" {print $4}' "$PKIPLANE_E2E_DIR/node/cgroups")
cg_cpu=$(awk '$1 ~ /cpuacct/ {print $4}' "$PKIPLANE_E2E_DIR/node/cgroups")
rss=0
npods=$(kubectl get pods -A --no-headers | wc -l)
for pid in $(find "$cg_mem" -name cgroup.procs -exec cat {} + | sort -u); do
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  rss=$((rss + ${kb:-0}))
done
u0=$(cat "$cg_cpu/cpuacct.usage"); sleep 10; u1=$(cat "$cg_cpu/cpuacct.usage")
say "measured: RSS of the node's processes $((rss / 1024)) MiB with $npods pods;" \
  "idle CPU $(( (u1 - u0) / 100000000 ))% of one core (10 s)"
step_start=$SECONDS

# ---------------------------------------------------------------------------- down

dir=$PKIPLANE_E2E_DIR
out=$(e2e/node.sh down 2>&1) || fail "node down" "$out"
unset PKIPLANE_E2E_DIR
[ ! -e "$dir" ] || fail "$dir still exists"
after=$(host_state)
[ "$before" = "$after" ] || fail "the host changed" "$(diff <(echo "$before") <(echo "$after"))"
left=$(grep -l -s -F "$dir" /proc/[0-9]*/cmdline 2>/dev/null || true)
[ -z "$left" ] || fail "processes still name $dir" "$left"
pass "down: ${out##*: }; no mount, iptables rule, link, cgroup or state path of the node on the host"

# ---------------------------------------------------------------------------- interrupted

# An `up` stopped by a signal once its kubelet runs (namespaces, mounts, cgroups and
# daemons all exist) cleans up after itself as `down` does.
dir=$(mktemp -u "${TMPDIR:-/tmp}/pkiplane-e2e.XXXXXX")
export PKIPLANE_E2E_DIR=$dir # for finish() to clean up if this part fails
own_node "$dir"
e2e/node.sh up >/dev/null 2>"$tmp_log" &
up_pid=$!
for _ in $(seq 600); do
  if [ -f "$dir/pids/kubelet" ] || ! kill -0 "$up_pid" 2>/dev/null; then break; fi
  sleep 0.2
done
[ -f "$dir/pids/kubelet" ] || fail "the second up never started its kubelet" "$(tail -n 20 "$tmp_log")"
kill -TERM "$up_pid"
status=0
wait "$up_pid" || status=$?
[ "$status" = 130 ] || fail "the interrupted up exited with $status, want 130" "$(tail -n 20 "$tmp_log")"
grep -q 'down: no process, namespace or cgroup of the node is left' "$tmp_log" ||
  fail "the interrupted up did not clean up" "$(tail -n 20 "$tmp_log")"
[ ! -e "$dir" ] || fail "$dir still exists"
after=$(host_state)
[ "$before" = "$after" ] || fail "the host changed after the interrupted up" "$(diff <(echo "$before") <(echo "$after"))"
pass "an up interrupted (SIGTERM) with its kubelet running left nothing behind"
