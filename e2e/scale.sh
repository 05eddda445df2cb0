#!/usr/bin/env bash
# Scale benchmark (not a test, never in CI), on the real node (e2e/node.sh) with the chart
# installed by helm:
#  1. N CertificateProfiles and N EnrollmentEndpoints with replicas 0, applied fast
#     (`kubectl apply --server-side` in PKIPLANE_SCALE_APPLY_JOBS parallel chunks, default
#     4, through the admission webhook): the apply's duration, then the time until all are
#     Ready counted from the apply's end (the control plane's own lag) and from its start;
#  2. the first M endpoints scaled to one real pod each: the time until they are Ready;
#  3. at rest (nothing changing, after a settle period): the operator's and the CA
#     service's CPU over PKIPLANE_SCALE_STEADY seconds (default 60, from /proc/PID/stat
#     utime+stime) and the number of pkiplane objects written meanwhile (resourceVersions
#     that moved: 0 when status is written only on change); with PKIPLANE_SCALE_STRACE=1
#     then the operator's and the CA service's system calls over 30 s.
# Also the peak resident memory (VmHWM) of the operator, the CA service and the webhook,
# and the webhook's restarts (an OOM kill shows there); and, for the apply and for the
# time from its end until all are Ready, what bounds them: the CPU seconds of every node
# process by program beside the machine's busy time, and the API server's requests by
# verb and resource (apiserver_request_total).
#
# Usage: e2e/scale.sh [N] [M]  (default 50 and min(N, 50); the kubelet's maxPods is raised
#                              to M + 40, the node's /24 pod network bounds it at ~250;
#                              PKIPLANE_IMAGE_ARCHIVE as for e2e/operator.sh)
# The endpoints are CMP (plain HTTP, shared-secret MAC: the cheapest pods to run), each
# exposing its own profile; all profiles are signed by one root Issuer. The M running
# endpoints ask for less than the product's default requests (spec.resources: 5m CPU,
# 16Mi; default 50m, 64Mi): with the defaults the CPU requests fit only ~36 pods on a
# 2-core node. An idle CMP pod uses far less than either; the defaults stay as they are.
# PKIPLANE_SCALE_WEBHOOK_MEMORY: the webhook's memory limit (default: the chart's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-50}
m=${2:-$((n < 50 ? n : 50))}
[ "$m" -le "$n" ] || { echo "scale.sh: M ($m) must not exceed N ($n)" >&2; exit 2; }
export PKIPLANE_NODE_MAX_PODS=$((m + 40))
NS=pkiplane-system
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
me=scale
. e2e/lib/flow.sh
. e2e/lib/chart.sh
die() { say "$*"; exit 1; }

work=$(mktemp -d)
finish() {
  if [ -n "${PKIPLANE_E2E_DIR:-}" ]; then e2e/node.sh down || true; fi
  rm -rf "$work"
}
trap finish EXIT

image=$(chart_image "$work/pkiplane.tar")
eval "$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/node.sh up)"
dir=$PKIPLANE_E2E_DIR
chart_load "$work/pkiplane.tar" "$image"
kubectl create namespace "$NS" >/dev/null
webhook_memory=()
[ -z "${PKIPLANE_SCALE_WEBHOOK_MEMORY:-}" ] ||
  webhook_memory=(--set webhook.resources.limits.memory="$PKIPLANE_SCALE_WEBHOOK_MEMORY")
chart_install pkiplane "$NS" --set operator.replicas=1 --set operator.logLevel=warn --set ca.logLevel=warn \
  ${webhook_memory[@]+"${webhook_memory[@]}"} >/dev/null

# The host pid of the container process running `pkiplane SUBCOMMAND` in the node.
container_pid() {
  local p
  for p in $(node_pids); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^pkiplane $1 " && { echo "$p"; return; }
  done
  return 1
}
op_pid=$(container_pid operator) || die "no operator process in the node"
ca_pid=$(container_pid ca) || die "no CA service process in the node"
webhook_pid=$(container_pid webhook) || die "no webhook process in the node"

ns=scale
kubectl create namespace $ns >/dev/null
# Three parts, applied in order: the webhook refuses references to objects it has not
# seen yet (the Issuer and Secret, then the profiles). Each part is split into $jobs
# files applied in parallel.
jobs=${PKIPLANE_SCALE_APPLY_JOBS:-4}
python3 - "$n" "$ns" "$dir" "$m" "$jobs" <<'EOF'
import sys
n, ns, d, m, jobs = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
base = [f"""apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {{name: scale-root, namespace: {ns}}}
spec: {{selfSigned: {{}}, subject: "CN=Scale Root", keyAlgorithm: ECDSA-P256, validity: 10y}}""",
        f"""apiVersion: v1
kind: Secret
metadata: {{name: cmp-secrets, namespace: {ns}}}
stringData: {{device-1: scale-secret}}"""]
profiles, endpoints = [], []
for i in range(n):
    profiles.append(f"""apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {{name: p{i:03}, namespace: {ns}}}
spec:
  issuerRef: {{name: scale-root}}
  validity: {{duration: 30d}}
  subjectAltNames: {{dns: {{suffixes: [example.com]}}}}""")
    endpoints.append(f"""apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {{name: e{i:03}, namespace: {ns}}}
spec:
  protocol: CMP
  listen: {{port: 8084}}
  replicas: {{replicas}}
  profiles: [{{name: p{i:03}, label: tls, default: true}}]
  cmp: {{sharedSecrets: {{secretRef: {{name: cmp-secrets}}}}}}""")
files = (("base", base), ("profiles", profiles), ("endpoints", [e.replace("{replicas}", "0") for e in endpoints]),
         ("running", [e.replace("{replicas}", "1") + """
  resources: {requests: {cpu: 5m, memory: 16Mi}, limits: {memory: 256Mi}}""" for e in endpoints[:m]]))
for name, docs in files:
    for j in range(jobs):
        with open(f"{d}/scale-{name}-{j}.yaml", "w") as f:
            f.write("\n---\n".join(docs[j::jobs]))
EOF

ready() { kubectl -n $ns get "$1" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true; }
rss() { awk '/VmRSS/ {print $2 " " $3}' "/proc/$op_pid/status"; }
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }
# One part: its chunks applied in parallel, each retried until it succeeds or 10 minutes
# pass (a reference the webhook has not seen yet is refused; the apply is idempotent).
# The last attempt's errors are kept for the failure message.
apply_chunk() {
  local deadline=$((SECONDS + 600))
  until kubectl apply --server-side --field-manager=scale -f "$1" >/dev/null 2>"$1.err"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}
apply_part() {
  local j pids=() failed=0 f
  for ((j = 0; j < jobs; j++)); do
    f=$dir/scale-$1-$j.yaml
    [ -s "$f" ] || continue
    apply_chunk "$f" &
    pids+=($!)
  done
  for j in "${pids[@]}"; do wait "$j" || failed=1; done
  [ $failed = 0 ] || die "kubectl apply of part $1: $(cat "$dir/scale-$1-"*.err | sort | uniq -c | sort -rn | head -n 3)"
}
deadline=$((SECONDS + ${PKIPLANE_SCALE_TIMEOUT:-1800}))

# Where the CPU goes while the objects are applied and reconciled: CPU time (utime +
# stime) of every process of the node, grouped by program, and the whole machine's busy
# time from /proc/stat (what is not in the node's processes: kubectl, this script, the
# kernel's own work). `cpu_snapshot FILE` records; `cpu_report FROM TO` prints seconds.
cpu_snapshot() {
  node_pids | python3 -c '
import json, sys
by = {}
for p in sys.stdin.read().split():
    try:
        with open(f"/proc/{p}/cmdline", "rb") as f: argv = f.read().split(b"\0")
        with open(f"/proc/{p}/stat") as f: fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    prog = argv[0].decode(errors="replace").rsplit("/", 1)[-1]
    if prog == "pkiplane" and len(argv) > 1:
        prog += " " + argv[1].decode(errors="replace")
    by[prog] = by.get(prog, 0) + int(fields[11]) + int(fields[12])
with open("/proc/stat") as f:
    cpu = [int(v) for v in f.readline().split()[1:]]
# user nice system idle iowait irq softirq steal: busy is what is neither idle nor stolen.
by["(machine busy)"] = sum(cpu[:8]) - cpu[3] - cpu[4] - cpu[7]
json.dump(by, sys.stdout)' >"$1"
}
cpu_report() { # FROM TO WALL_SECONDS
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" "$(nproc)" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
wall, hz, cores = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
d = {k: (b[k] - a.get(k, 0)) / hz for k in b}
busy = d.pop("(machine busy)")
top = sorted(((v, k) for k, v in d.items() if v >= 0.05), reverse=True)
rest = busy - sum(d.values())
parts = ", ".join(f"{k} {v:.1f}" for v, k in top[:8])
print(f"machine busy {busy:.1f} of {wall * cores:.1f} CPU-s ({100 * busy / wall / cores:.0f} % of {cores} cores); "
      f"by program (CPU-s): {parts}; outside the node's processes (kubectl, kernel, this script) {rest:.1f}")
PY
}

# What the API server was asked meanwhile: apiserver_request_total by verb, resource and
# subresource. `requests_snapshot FILE` records; `requests_report FROM TO` prints the
# largest differences.
requests_snapshot() { kubectl get --raw /metrics | grep '^apiserver_request_total{' >"$1" || true; }
requests_report() { # FROM TO
  python3 - "$1" "$2" <<'PY'
import re, sys
def load(path):
    by = {}
    for line in open(path):
        labels, value = line.rsplit(" ", 1)
        l = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = " ".join(x for x in (l.get("verb", ""), l.get("resource", "") + ("/" + l["subresource"] if l.get("subresource") else "")) if x)
        by[key] = by.get(key, 0) + float(value)
    return by
a, b = load(sys.argv[1]), load(sys.argv[2])
d = sorted(((b[k] - a.get(k, 0), k) for k in b), reverse=True)
print(", ".join(f"{k} {int(v)}" for v, k in d[:10] if v >= 1))
PY
}

say "applying $n profiles and $n endpoints (replicas 0), $jobs kubectl apply --server-side in parallel"
cpu_snapshot "$work/cpu-start"
requests_snapshot "$work/requests-start"
start=$(date +%s.%N)
for part in base profiles endpoints; do apply_part $part; done
applied=$(date +%s.%N)
apply_s=$(since "$start")
cpu_snapshot "$work/cpu-applied"
requests_snapshot "$work/requests-applied"
say "RESULT: CPU during the apply: $(cpu_report "$work/cpu-start" "$work/cpu-applied" "$apply_s")"
say "RESULT: API requests during the apply: $(requests_report "$work/requests-start" "$work/requests-applied")"
say "RESULT: apply of $n profiles and $n endpoints took $apply_s s (Ready then: profiles $(ready certificateprofiles)/$n, endpoints $(ready enrollmentendpoints)/$n)"
while :; do
  p=$(ready certificateprofiles)
  e=$(ready enrollmentendpoints)
  say "$(since "$start")s: profiles Ready $p/$n, endpoints Ready $e/$n, operator RSS $(rss)"
  [ "$p" -ge "$n" ] && [ "$e" -ge "$n" ] && break
  [ $SECONDS -lt $deadline ] || die "not all Ready within the timeout"
  sleep 2
done
ready_s=$(since "$applied")
cpu_snapshot "$work/cpu-ready"
requests_snapshot "$work/requests-ready"
say "RESULT: $n profiles and $n endpoints (replicas 0) all Ready $ready_s s after the apply ended, $(since "$start") s after it started (apply $apply_s s)"
say "RESULT: CPU from the apply's end until all Ready: $(cpu_report "$work/cpu-applied" "$work/cpu-ready" "$ready_s")"
say "RESULT: API requests from the apply's end until all Ready: $(requests_report "$work/requests-applied" "$work/requests-ready")"
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$1/status" 2>/dev/null || echo "gone (restarted?)"; }
webhook_restarts() { kubectl -n "$NS" get pods -l app.kubernetes.io/component=webhook -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}'; }
peaks() { echo "operator peak RSS $(hwm "$op_pid"), CA service peak RSS $(hwm "$ca_pid"), webhook peak RSS $(hwm "$webhook_pid") (webhook restarts: $(webhook_restarts))"; }
say "RESULT: $(peaks)"

if [ "$m" -gt 0 ]; then
  say "scaling $m endpoints to one pod each"
  start=$(date +%s.%N)
  apply_part running
  available() { kubectl -n $ns get enrollmentendpoints -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' | grep -c '^Available$' || true; }
  while :; do
    a=$(available)
    running=$(kubectl -n $ns get pods --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)
    say "$(since "$start")s: endpoints Available $a/$m, pods running $running, operator RSS $(rss)"
    [ "$a" -ge "$m" ] && break
    [ $SECONDS -lt $deadline ] || die "the $m endpoints were not Available within the timeout"
    sleep 5
  done
  say "RESULT: $m endpoints scaled to one pod each Available in $(since "$start") s"
fi
say "RESULT: endpoint pods running: $(kubectl -n $ns get pods --field-selector=status.phase=Running --no-headers | wc -l)"

# At rest: what keeping N objects and M pods reconciled costs once everything is Ready
# (a settle period first: the last status writes and pod restarts of the scale-up).
sleep "${PKIPLANE_SCALE_SETTLE:-30}"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
versions() { kubectl -n $ns get issuers,certificateprofiles,enrollmentendpoints -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}' | sort; }
hz=$(getconf CLK_TCK)
v0=$(versions)
op0=$(cpu_ticks "$op_pid"); ca0=$(cpu_ticks "$ca_pid"); t0=$(date +%s.%N)
sleep "${PKIPLANE_SCALE_STEADY:-60}"
op1=$(cpu_ticks "$op_pid"); ca1=$(cpu_ticks "$ca_pid"); dt=$(echo "$(date +%s.%N) - $t0" | bc)
written=$(comm -13 <(echo "$v0") <(versions) | wc -l)
pct() { echo "scale=2; 100 * $1 / $hz / $dt" | bc; }
say "RESULT: at rest over $(printf '%.0f' "$dt") s with $n profiles, $n endpoints, $m endpoint pods: operator CPU $(pct $((op1 - op0)))% of a core, CA service CPU $(pct $((ca1 - ca0)))% of a core, pkiplane objects written: $written, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "RESULT: $(peaks); operator RSS now $(rss)"
# PKIPLANE_SCALE_STRACE=1: after the window (strace slows what it traces), what the
# operator and the CA service do at rest, by system call, over 30 s.
if [ -n "${PKIPLANE_SCALE_STRACE:-}" ]; then
  for who in operator:$op_pid ca-service:$ca_pid; do
    timeout -s INT 30 strace -c -f -p "${who#*:}" -o "$work/strace" 2>/dev/null || true
    say "${who%%:*} at rest, system calls over 30 s:"
    head -n 14 "$work/strace" >&2
  done
fi
