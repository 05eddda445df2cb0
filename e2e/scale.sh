#!/usr/bin/env bash
# Scale benchmark (not a test, never in CI): N CertificateProfiles and N EnrollmentEndpoints
# reconciled to Ready by the operator on the real kube-apiserver, with the CA service and
# the kubelet emulator running one `pkiplane endpoint` process per endpoint. Prints the
# time to all-Ready and the operator's and CA service's peak resident memory (VmHWM).
#
# Usage: e2e/scale.sh [N]      (default 200; PKIPLANE_BIN as for e2e/operator.sh)
# The endpoints are CMP (plain HTTP, shared-secret MAC: the cheapest pods to run), each
# exposing its own profile; all profiles are signed by one root Issuer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-200}
NS=pkiplane-system
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
bin=${PKIPLANE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/pkiplane}
emulator_bin=${CARGO_TARGET_DIR:-$root/target}/debug/kubelet-emulator
say() { echo "scale: $*" >&2; }
die() { say "$*"; exit 1; }
{ [ -x "$bin" ] && [ -x "$emulator_bin" ]; } || die "build first: cargo build -p pkiplane -p pkiplane-kubelet-emulator"

finish() {
  if [ -n "${PKIPLANE_E2E_DIR:-}" ]; then e2e/cluster.sh down || true; fi
}
trap finish EXIT

eval "$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh up)"
dir=$PKIPLANE_E2E_DIR
kubectl create namespace "$NS" >/dev/null
e2e/render-chart.sh --namespace "$NS" --kinds ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Service |
  kubectl apply -f - >/dev/null
ca_ip=$(kubectl -n "$NS" get service pkiplane-ca -o jsonpath='{.spec.clusterIP}')
op_kc=$(e2e/cluster.sh sa-kubeconfig "$NS" pkiplane-operator)
ca_kc=$(e2e/cluster.sh sa-kubeconfig "$NS" pkiplane-ca)

op_pid=$(e2e/cluster.sh start operator -- env KUBECONFIG="$op_kc" POD_NAMESPACE="$NS" RUST_LOG=warn \
  "$bin" operator --namespace "$NS" --ca-url "https://$ca_ip:9443" --metrics-listen 127.0.0.1:0)
for _ in $(seq 1 120); do kubectl -n "$NS" get secret pkiplane-ca-tls >/dev/null 2>&1 && break; sleep 1; done
mkdir -p "$dir/ca/tls"
for k in tls.crt tls.key ca.crt; do
  kubectl -n "$NS" get secret pkiplane-ca-tls -o jsonpath="{.data.${k//./\\.}}" | base64 -d >"$dir/ca/tls/$k"
done
e2e/cluster.sh start kubelet-emulator -- env PKIPLANE_BIN="$bin" RUST_LOG=warn "$emulator_bin" --state-dir "$dir" >/dev/null
ca_pid=$(e2e/cluster.sh start ca -- env KUBECONFIG="$ca_kc" RUST_LOG=warn "$bin" ca --tls-dir "$dir/ca/tls" \
  --data-dir "$dir/ca/data" --listen "$ca_ip:9443" --publish-listen "$ca_ip:8080")
for _ in $(seq 1 120); do curl -fsS "http://$ca_ip:8080/readyz" >/dev/null 2>&1 && break; sleep 1; done

ns=scale
kubectl create namespace $ns >/dev/null
python3 - "$n" "$ns" >"$dir/scale.yaml" <<'EOF'
import sys
n, ns = int(sys.argv[1]), sys.argv[2]
docs = [f"""apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {{name: scale-root, namespace: {ns}}}
spec: {{selfSigned: {{}}, subject: "CN=Scale Root", keyAlgorithm: ECDSA-P256, validity: 10y}}""",
        f"""apiVersion: v1
kind: Secret
metadata: {{name: cmp-secrets, namespace: {ns}}}
stringData: {{device-1: scale-secret}}"""]
for i in range(n):
    docs.append(f"""apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {{name: p{i:03}, namespace: {ns}}}
spec:
  issuerRef: {{name: scale-root}}
  validity: {{duration: 30d}}
  subjectAltNames: {{dns: {{suffixes: [example.com]}}}}""")
    docs.append(f"""apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {{name: e{i:03}, namespace: {ns}}}
spec:
  protocol: CMP
  listen: {{port: 8084}}
  profiles: [{{name: p{i:03}, label: tls, default: true}}]
  cmp: {{sharedSecrets: {{secretRef: {{name: cmp-secrets}}}}}}""")
print("\n---\n".join(docs))
EOF
kubectl apply --dry-run=server -f "$dir/scale.yaml" >/dev/null || die "the generated manifests are invalid: $dir/scale.yaml"

say "applying $n profiles and $n endpoints"
start=$(date +%s.%N)
kubectl apply -f "$dir/scale.yaml" >/dev/null
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
say "RESULT: endpoint pods running: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$dir/pods.json" 2>/dev/null || echo '?')"

# Steady state: what keeping N endpoints reconciled costs once everything is Ready.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
op0=$(cpu_ticks "$op_pid"); ca0=$(cpu_ticks "$ca_pid"); t0=$SECONDS
sleep "${PKIPLANE_SCALE_STEADY:-60}"
dt=$((SECONDS - t0))
say "RESULT: steady state over ${dt}s: operator CPU $(echo "scale=1; 100 * ($(cpu_ticks "$op_pid") - $op0) / $hz / $dt" | bc)% of a core, CA service CPU $(echo "scale=1; 100 * ($(cpu_ticks "$ca_pid") - $ca0) / $hz / $dt" | bc)% of a core, operator RSS $(awk '/VmRSS/ {print $2 " " $3}' "/proc/$op_pid/status")"
