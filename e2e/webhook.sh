#!/usr/bin/env bash
# Issue 8 acceptance against the real kube-apiserver: `pkiplane webhook` runs under its
# chart RBAC, registered with the configurations `pkiplane webhook manifests` prints,
# reached by the API server through its Service's ClusterIP. Checks:
#   - the quickstart applies cleanly (and the mutating webhook's defaults are visible);
#   - every bad fixture in webhook/tests/fixtures/bad is refused with its message (what a
#     fixture creates on the way, e.g. the profile an invalid endpoint exposes, is deleted
#     afterwards so one fixture cannot leave state behind for the next);
#   - `pkiplane policy lint` gives the same verdict and message on the same files;
#   - a stranding update is admitted and kubectl prints the webhook's warning;
#   - with the webhook down, our kinds fail closed while other resources still apply.
#
# The webhook's serving certificate comes from openssl here (in a cluster the operator
# issues and rotates it from the internal CA; e2e/operator.sh covers that), so this test
# does not depend on the operator.
#
# Usage: e2e/webhook.sh   (builds nothing: set PKIPLANE_BIN or build target/debug/pkiplane)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
bin=${PKIPLANE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/pkiplane}
ns=pkiplane-system
me=webhook-e2e
# shellcheck source=e2e/lib/report.sh
. e2e/lib/report.sh
finish() {
  local rc=$?
  e2e_teardown e2e/cluster.sh webhook.log 30 $rc
  report_exit $rc
}
trap finish EXIT
trap 'say "interrupted"; exit 130' INT TERM

[ -x "$bin" ] || fail "no pkiplane binary at $bin (cargo build -p pkiplane)"
envs=$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh up) || fail "cluster up"
eval "$envs"
work=$PKIPLANE_E2E_DIR/webhook-test
mkdir -p "$work/tls"

# ------------------------------------------------------------------ webhook under RBAC

kubectl create namespace "$ns" >/dev/null
e2e/render-chart.sh --namespace "$ns" --kinds ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Service \
  >"$work/chart.yaml" || fail "rendering the chart"
kubectl apply -f "$work/chart.yaml" >/dev/null || fail "applying the chart's RBAC and Services"
ip=$(kubectl -n "$ns" get service pkiplane-webhook -o jsonpath='{.spec.clusterIP}')
[ -n "$ip" ] || fail "Service pkiplane-webhook has no ClusterIP"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=e2e internal CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$work/ca.key" -out "$work/tls/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pkiplane-webhook.$ns.svc" \
  -keyout "$work/tls/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:pkiplane-webhook.%s.svc,IP:%s\nextendedKeyUsage=serverAuth\n' "$ns" "$ip" >"$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/tls/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/ext" -out "$work/tls/tls.crt" 2>/dev/null

kc=$(e2e/cluster.sh sa-kubeconfig "$ns" pkiplane-webhook "$work/kubeconfig")
e2e/cluster.sh start webhook -- env KUBECONFIG="$kc" "$bin" webhook --listen "$ip:9444" --tls-dir "$work/tls" >/dev/null
for _ in $(seq 1 120); do
  curl -fsS --cacert "$work/tls/ca.crt" "https://$ip:9444/readyz" >/dev/null 2>&1 && break
  e2e/cluster.sh alive webhook || fail "pkiplane webhook exited" "$(tail -n 20 "$PKIPLANE_E2E_DIR/logs/webhook.log")"
  sleep 0.5
done
curl -fsS --cacert "$work/tls/ca.crt" "https://$ip:9444/readyz" >/dev/null || fail "webhook not ready in 60 s"
pass "webhook ready at https://$ip:9444 as system:serviceaccount:$ns:pkiplane-webhook"

"$bin" webhook manifests --namespace "$ns" --ca-bundle "$work/tls/ca.crt" >"$work/configurations.yaml"
kubectl apply -f "$work/configurations.yaml" >/dev/null || fail "registering the webhook configurations"
pass "ValidatingWebhookConfiguration and MutatingWebhookConfiguration registered"

# ------------------------------------------------------------------ the good quickstart

# RBAC grants reach the webhook's authorizer through an informer: the first reviews may
# see "forbidden" for a moment, so the first apply is retried briefly.
ok=""
for _ in $(seq 1 20); do
  if out=$(kubectl apply -f examples/quickstart.yaml 2>&1); then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || fail "the quickstart was refused" "$out"
pass "examples/quickstart.yaml applies cleanly through the webhook"

# The mutating webhook fills in what pkiplane would assume, visible in the object.
replicas=$(kubectl -n pki get enrollmentendpoint est -o jsonpath='{.spec.replicas}')
[ -n "$replicas" ] || fail "defaulting: spec.replicas of pki/est is not set" "$(kubectl -n pki get enrollmentendpoint est -o yaml)"
pass "defaulting: pki/est has spec.replicas=$replicas in kubectl get -o yaml"

# ------------------------------------------------------------------ bad fixtures + lint

for f in webhook/tests/fixtures/bad/*.yaml; do
  name=$(basename "$f" .yaml)
  want=$(sed -n 's/^# expect-apiserver: //p' "$f" | head -1)
  lint_want=$(sed -n 's/^# expect: //p' "$f" | head -1)
  [ -n "$want" ] || want=$lint_want
  [ -n "$lint_want" ] || fail "$name has no '# expect:' line"
  if out=$(kubectl apply -f "$f" 2>&1); then
    fail "$name: admitted by the API server" "$out"
  fi
  sed -n "s/^\([^ ]*\) created$/\1/p" <<<"$out" | while read -r created; do
    kubectl -n pki delete "$created" --wait=false >/dev/null
  done
  grep -qF -- "$want" <<<"$out" || fail "$name: refused, but without \"$want\"" "$out"
  set +e
  lint_out=$("$bin" policy lint -f examples/quickstart.yaml -f "$f" 2>&1)
  lint_rc=$?
  set -e
  [ "$lint_rc" = 1 ] || fail "$name: policy lint exited $lint_rc, not 1 (denied)" "$lint_out"
  grep -qF -- "$lint_want" <<<"$lint_out" || fail "$name: policy lint lacks \"$lint_want\"" "$lint_out"
  pass "$name: refused by kubectl apply and by policy lint"
done

# ------------------------------------------------------------------ stranding warning

# The operator writes inventory counts onto status; here the status is set by hand (as
# cluster admin) so the test does not need issued certificates.
kubectl -n pki patch certificateprofile enterprise-tls-47d --subresource=status --type=merge \
  -p '{"status":{"active":3}}' >/dev/null || fail "setting status.active"
for _ in $(seq 1 20); do
  [ "$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status.active}')" = 3 ] && break
  sleep 0.2
done
sleep 1 # the webhook's watch cache sees the status update
out=$(kubectl -n pki patch certificateprofile enterprise-tls-47d --type=merge \
  -p '{"spec":{"issuerRef":{"name":"example-root"}}}' 2>&1) || fail "the stranding update was refused" "$out"
grep -q "Warning: .*strands 3" <<<"$out" || fail "kubectl printed no stranding warning" "$out"
pass "stranding update admitted with warning: $(grep -o 'Warning: .*' <<<"$out" | head -1 | cut -c1-120)..."

# ------------------------------------------------------------------ webhook down

e2e/cluster.sh stop webhook
if out=$(kubectl apply --dry-run=server -f examples/quickstart.yaml 2>&1); then
  fail "with the webhook down our kinds were admitted" "$out"
fi
grep -q 'failed calling webhook' <<<"$out" || fail "fail-closed error does not say the webhook failed" "$out"
pass "webhook down: pkiplane kinds fail closed ($(grep -o 'failed calling webhook "[^"]*"' <<<"$out" | head -1))"
kubectl -n pki create configmap unaffected --from-literal=a=b >/dev/null || fail "a ConfigMap was blocked"
kubectl -n kube-system create configmap unaffected --from-literal=a=b >/dev/null || fail "kube-system blocked"
pass "webhook down: other resources still apply"
