#!/usr/bin/env bash
# Scale benchmark (not a test, never in CI): N CertificateProfiles and N EnrollmentEndpoints
# reconciled to Ready by the operator on the real node (e2e/node.sh), the chart installed
# with helm and one real endpoint pod per endpoint. Prints the time to all-Ready and the
# operator's and CA service's peak resident memory (VmHWM of their container processes).
#
# Usage: e2e/scale.sh [N]      (default 50; the node runs at most 110 pods, the kubelet's
#                              default; PKIPLANE_IMAGE_ARCHIVE as for e2e/operator.sh)
# The endpoints are CMP (plain HTTP, shared-secret MAC: the cheapest pods to run), each
# exposing its own profile; all profiles are signed by one root Issuer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-50}
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
chart_install pkiplane "$NS" --set operator.replicas=1 --set operator.logLevel=warn --set ca.logLevel=warn >/dev/null

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

ns=scale
kubectl create namespace $ns >/dev/null
# Three files, applied in order: the webhook refuses references to objects it has not
# seen yet (the Issuer and Secret, then the profiles).
python3 - "$n" "$ns" "$dir" <<'EOF'
import sys
n, ns, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
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
  profiles: [{{name: p{i:03}, label: tls, default: true}}]
  cmp: {{sharedSecrets: {{secretRef: {{name: cmp-secrets}}}}}}""")
for name, docs in (("base", base), ("profiles", profiles), ("endpoints", endpoints)):
    with open(f"{d}/scale-{name}.yaml", "w") as f:
        f.write("\n---\n".join(docs))
EOF

say "applying $n profiles and $n endpoints"
start=$(date +%s.%N)
for part in base profiles endpoints; do
  until_ok 60 kubectl apply -f "$dir/scale-$part.yaml" ||
    die "kubectl apply -f $dir/scale-$part.yaml: $(kubectl apply -f "$dir/scale-$part.yaml" 2>&1 | tail -n 3)"
done
ready() { kubectl -n $ns get "$1" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true; }
deadline=$((SECONDS + ${PKIPLANE_SCALE_TIMEOUT:-1800}))
while :; do
  p=$(ready certificateprofiles)
  e=$(ready enrollmentendpoints)
  now=$(date +%s.%N)
  say "$(printf '%6.1f' "$(echo "$now - $start" | bc)")s: profiles Ready $p/$n, endpoints Ready $e/$n, operator RSS $(awk '/VmRSS/ {print $2 " " $3}' "/proc/$op_pid/status")"
  [ "$p" -ge "$n" ] && [ "$e" -ge "$n" ] && break
  [ $SECONDS -lt $deadline ] || die "not all Ready within the timeout"
  sleep 5
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
say "RESULT: $n profiles and $n endpoints Ready in $(printf '%.1f' "$elapsed") s"
say "RESULT: operator peak RSS $(awk '/VmHWM/ {print $2 " " $3}' "/proc/$op_pid/status"), CA service peak RSS $(awk '/VmHWM/ {print $2 " " $3}' "/proc/$ca_pid/status")"
say "RESULT: endpoint pods running: $(kubectl -n $ns get pods --field-selector=status.phase=Running --no-headers | wc -l)"

# Steady state: what keeping N endpoints reconciled costs once everything is Ready.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
op0=$(cpu_ticks "$op_pid"); ca0=$(cpu_ticks "$ca_pid"); t0=$SECONDS
sleep "${PKIPLANE_SCALE_STEADY:-60}"
dt=$((SECONDS - t0))
say "RESULT: steady state over ${dt}s: operator CPU $(echo "scale=1; 100 * ($(cpu_ticks "$op_pid") - $op0) / $hz / $dt" | bc)% of a core, CA service CPU $(echo "scale=1; 100 * ($(cpu_ticks "$ca_pid") - $ca0) / $hz / $dt" | bc)% of a core, operator RSS $(awk '/VmRSS/ {print $2 " " $3}' "/proc/$op_pid/status")"
