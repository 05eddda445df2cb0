#!/usr/bin/env bash
# Smoke test of the e2e harness against the real kube-apiserver: CRDs install and are
# served, the quickstart is admitted, CEL rules refuse bad objects with their message,
# service-account tokens are real and RBAC decides, and garbage collection and namespace
# deletion work. Brings a cluster up and always tears it down.
#
# Usage (from anywhere): e2e/smoke.sh
# Exits non-zero on the first failed check; the last line is "smoke: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
# Always a cluster of its own, even when the caller's shell has one exported.
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS

me=smoke
# shellcheck source=e2e/lib/report.sh
. e2e/lib/report.sh
finish() {
  local rc=$?
  e2e_teardown e2e/cluster.sh kube-apiserver.log 15 $rc
  rm -f "${tmp_log:-}"
  report_exit $rc
}
trap finish EXIT
tmp_log=$(mktemp)
trap 'say "interrupted"; exit 130' INT TERM

# expect_refused NAME MESSAGE-SUBSTRING: applies the manifest on stdin, which the API
# server must refuse with a message containing the substring.
expect_refused() {
  local name=$1 want=$2 out
  if out=$(kubectl apply -f - 2>&1); then
    fail "$name: was admitted" "$out"
  fi
  grep -qF -- "$want" <<<"$out" || fail "$name: refused, but without \"$want\"" "$out"
  pass "$name refused: $(grep -oF -- "$want" <<<"$out" | head -1)"
}

# ---------------------------------------------------------------------------- cluster

# The CRDs go in as part of `up` (applied, then waited Established, before the controller
# manager starts), as the operator tests do: the garbage collector then watches the
# custom kinds from the start instead of finding them at its next 30 s discovery pass.
envs=$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh up 2>"$tmp_log") || fail "cluster up" "$(cat "$tmp_log")"
eval "$envs"
pass "cluster up at $PKIPLANE_E2E_APISERVER ($(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1))"

# ---------------------------------------------------------------------------- CRDs

grep -q 'issuers.pkiplane.dev serverside-applied' "$tmp_log" || fail "up did not apply the CRDs" "$(cat "$tmp_log")"
# Applying crds/ again (as a user upgrading would) is accepted and changes nothing.
out=$(kubectl apply --server-side -f crds/ 2>&1) || fail "kubectl apply --server-side -f crds/" "$out"
out=$(kubectl wait --for=condition=Established --timeout=60s -f crds/all.yaml 2>&1) ||
  fail "CRDs Established" "$out"
n=$(kubectl get crd -o name | grep -c 'pkiplane.dev$')
[ "$n" = "$(grep -c '^kind: CustomResourceDefinition' crds/all.yaml)" ] || fail "$n pkiplane CRDs served"
pass "CRDs applied and Established: $n kinds"

# ---------------------------------------------------------------------------- quickstart

out=$(kubectl apply -f examples/quickstart.yaml 2>&1) || fail "apply examples/quickstart.yaml" "$out"
pass "quickstart admitted ($(grep -c created <<<"$out") objects created)"

out=$(kubectl get pkiplane -A 2>&1) || fail "kubectl get pkiplane -A" "$out"
printf '%s\n' "$out" | sed 's/^/smoke:      | /' >&2
want=$(grep -c '^kind: \(Issuer\|CertificateProfile\|EnrollmentEndpoint\)$' examples/quickstart.yaml)
got=$(kubectl get pkiplane -A --no-headers 2>/dev/null | wc -l)
[ "$got" = "$want" ] || fail "kubectl get pkiplane -A lists $got objects, quickstart has $want" "$out"
for col in NAME READY PARENT ISSUER; do
  grep -q "$col" <<<"$out" || fail "kubectl get pkiplane -A: no $col column" "$out"
done
pass "kubectl get pkiplane -A lists all $want quickstart objects with printer columns"

out=$(kubectl explain issuer.spec 2>&1) || fail "kubectl explain issuer.spec" "$out"
for field in selfSigned parentRef secretRef keyAlgorithm; do
  grep -q "^ *$field" <<<"$out" || fail "kubectl explain issuer.spec: no field $field" "$out"
done
out=$(kubectl explain certificateprofile.spec.validity 2>&1) || fail "kubectl explain certificateprofile.spec.validity" "$out"
pass "kubectl explain shows the published schema"

# ---------------------------------------------------------------------------- CEL refusals

expect_refused "Issuer with selfSigned and parentRef" "set exactly one of selfSigned, parentRef or secretRef" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: bad-two-sources, namespace: pki}
spec:
  selfSigned: {}
  parentRef: {name: example-root}
  subject: "CN=Bad"
EOF

expect_refused "Issuer with no subject" "subject is required unless the CA is imported" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: bad-no-subject, namespace: pki}
spec:
  selfSigned: {}
EOF

expect_refused "imported Issuer with a subject" "an imported CA (secretRef) takes its subject" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: bad-import, namespace: pki}
spec:
  secretRef: {name: some-ca}
  subject: "CN=Imported"
EOF

expect_refused "profile with rsaMinBits > rsaMaxBits" "rsaMinBits must not exceed rsaMaxBits" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: bad-rsa, namespace: pki}
spec:
  issuerRef: {name: example-intermediate}
  keys: {algorithms: [RSA], rsaMinBits: 4096, rsaMaxBits: 3072}
  validity: {duration: 47d}
EOF

expect_refused "EST endpoint with acme settings" "acme settings need protocol ACME" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {name: bad-protocol, namespace: pki}
spec:
  protocol: EST
  profiles: [{name: enterprise-tls-47d}]
  acme: {}
EOF

expect_refused "Issuer with a malformed validity (schema pattern)" "spec.validity" <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: bad-validity, namespace: pki}
spec:
  selfSigned: {}
  subject: "CN=Bad"
  validity: "five years"
EOF

left=$(kubectl -n pki get issuers,certificateprofiles,enrollmentendpoints -o name | grep '/bad-' || true)
[ -z "$left" ] || fail "refused objects exist anyway" "$left"
pass "no refused object was stored"

# ---------------------------------------------------------------------------- tokens + RBAC

kubectl -n pki create serviceaccount smoke >/dev/null
token=$(kubectl -n pki create token smoke --duration=10m) || fail "kubectl create token"
# A JWT from the TokenRequest API, signed with the harness's service-account key.
claims=$(cut -d. -f2 <<<"$token" | tr '_-' '/+' | { b=$(cat); while [ $(( ${#b} % 4 )) != 0 ]; do b+="="; done; base64 -d <<<"$b"; })
grep -qF "\"iss\":\"$PKIPLANE_E2E_SA_ISSUER\"" <<<"$claims" || fail "token issuer" "$claims"
grep -qF '"sub":"system:serviceaccount:pki:smoke"' <<<"$claims" || fail "token subject" "$claims"
pass "kubectl create token issued a bound service-account JWT"

url="$PKIPLANE_E2E_APISERVER/apis/pkiplane.dev/v1alpha1/namespaces/pki/issuers"
api() { curl -sS --cacert "$PKIPLANE_E2E_CA" -H "Authorization: Bearer $1" -o "$PKIPLANE_E2E_DIR/smoke.body" -w '%{http_code}' "$2"; }

code=$(api "not-a-token" "$url")
[ "$code" = 401 ] || fail "a bogus token got HTTP $code, want 401" "$(cat "$PKIPLANE_E2E_DIR/smoke.body")"
pass "a bogus token is unauthenticated (401)"

code=$(api "$token" "$url")
body=$(cat "$PKIPLANE_E2E_DIR/smoke.body")
[ "$code" = 403 ] || fail "the ServiceAccount listing issuers got HTTP $code, want 403" "$body"
grep -qF 'User \"system:serviceaccount:pki:smoke\" cannot list resource \"issuers\"' <<<"$body" ||
  fail "403 without the RBAC message" "$body"
msg=$(sed -n 's/^ *"message": *"\(.*\)",*$/\1/p' <<<"$body" | sed 's/\\"/"/g' | head -1)
pass "RBAC denies the ServiceAccount (403: $msg)"

kubectl -n pki create role issuer-reader --verb=get,list,watch --resource=issuers.pkiplane.dev >/dev/null
kubectl -n pki create rolebinding smoke-reads-issuers --role=issuer-reader --serviceaccount=pki:smoke >/dev/null
# RBAC changes reach the authorizer through an informer: allow it a moment.
for _ in $(seq 50); do code=$(api "$token" "$url"); [ "$code" = 200 ] && break; sleep 0.1; done
[ "$code" = 200 ] || fail "after the RoleBinding the ServiceAccount got HTTP $code, want 200" "$(cat "$PKIPLANE_E2E_DIR/smoke.body")"
sakc=$(e2e/cluster.sh sa-kubeconfig pki smoke)
out=$(kubectl --kubeconfig="$sakc" -n pki get issuers -o name 2>&1) || fail "sa-kubeconfig: list issuers" "$out"
out=$(kubectl --kubeconfig="$sakc" -n pki get certificateprofiles 2>&1) && fail "sa-kubeconfig: profiles were allowed" "$out"
grep -q Forbidden <<<"$out" || fail "sa-kubeconfig: profiles not Forbidden" "$out"
pass "a RoleBinding grants exactly what it names (issuers yes, profiles no)"

# OwnerReferencesPermissionEnforcement is on (as on OpenShift): an ownerReference with
# blockOwnerDeletion needs `update` on the owner's finalizers subresource.
kubectl -n pki create role cm-writer --verb=create,get,delete --resource=configmaps >/dev/null
kubectl -n pki create rolebinding smoke-writes-cms --role=cm-writer --serviceaccount=pki:smoke >/dev/null
uid=$(kubectl -n pki get issuer example-root -o jsonpath='{.metadata.uid}')
owned() { # NAME BLOCK
  cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  namespace: pki
  ownerReferences:
  - {apiVersion: pkiplane.dev/v1alpha1, kind: Issuer, name: example-root, uid: "$uid", controller: true, blockOwnerDeletion: $2}
EOF
}
for _ in $(seq 50); do
  out=$(owned owned-plain false | kubectl --kubeconfig="$sakc" create -f - 2>&1) && break; sleep 0.1
done
[ "${out#configmap/}" != "$out" ] || fail "ownerReference without blockOwnerDeletion refused" "$out"
out=$(owned owned-blocking true | kubectl --kubeconfig="$sakc" create -f - 2>&1) &&
  fail "blockOwnerDeletion without finalizers permission was admitted" "$out"
grep -qF "cannot set blockOwnerDeletion" <<<"$out" || fail "blockOwnerDeletion refused without the expected message" "$out"
kubectl -n pki create role issuer-finalizers --verb=update --resource=issuers.pkiplane.dev/finalizers >/dev/null
kubectl -n pki create rolebinding smoke-issuer-finalizers --role=issuer-finalizers --serviceaccount=pki:smoke >/dev/null
for _ in $(seq 50); do
  out=$(owned owned-blocking true | kubectl --kubeconfig="$sakc" create -f - 2>&1) && break; sleep 0.1
done
[ "${out#configmap/}" != "$out" ] || fail "blockOwnerDeletion refused despite update on issuers/finalizers" "$out"
pass "blockOwnerDeletion needs update on the owner's finalizers (OwnerReferencesPermissionEnforcement)"

# ---------------------------------------------------------------------------- controllers

# Garbage collection by owner reference, on a custom kind: what the operator relies on
# when an EnrollmentEndpoint is deleted.
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: gc-owner, namespace: pki}
spec: {selfSigned: {}, subject: "CN=GC owner"}
EOF
uid=$(kubectl -n pki get issuer gc-owner -o jsonpath='{.metadata.uid}')
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: gc-child
  namespace: pki
  ownerReferences:
  - {apiVersion: pkiplane.dev/v1alpha1, kind: Issuer, name: gc-owner, uid: "$uid"}
data: {k: v}
EOF
kubectl -n pki delete issuer gc-owner >/dev/null
out=$(kubectl -n pki wait --for=delete configmap/gc-child --timeout=90s 2>&1) ||
  fail "the garbage collector did not remove an owned ConfigMap" "$out"
pass "garbage collector removed the dependents of a deleted custom resource"

out=$(kubectl delete namespace pki --timeout=90s 2>&1) || fail "delete namespace pki" "$out"
pass "namespace deletion finished (namespace controller removed the custom resources)"
