#!/usr/bin/env bash
# The operator flow on a real single-node Kubernetes (e2e/node.sh), as a platform team runs
# it: the image built by scripts/image.sh and imported into the node, `helm install
# charts/pkiplane` (the CA with its PVC, two operators with leader election, the webhook
# with two replicas) into a namespace enforcing Pod Security "restricted", then the
# quickstart for clusters (`kubectl apply -k examples/`, namespace pki, restricted too).
# Every component and endpoint is a real pod; real clients of the four protocols enroll
# through the endpoints' Services from the node's network namespace (kube-proxy, CoreDNS,
# no forwarder) and every certificate verifies against the published chain. The admin API
# (e2e/lib/operator-admin.sh): RBAC decides who lists and who revokes. Then the
# lifecycle (e2e/lib/operator-lifecycle.sh): counts on status, profile edits without
# restarts, operator restart and leader failover, drift repair, config-hash rollouts, the
# stranding warning, the webhook failing closed, deletion and garbage collection, `helm
# upgrade` rolling only what changed, `helm uninstall` keeping the CA's volume and a
# re-install reusing it. Brings the node up and always tears it down (also on failure).
#
# Usage (from anywhere): e2e/operator.sh
# Env:   PKIPLANE_IMAGE_ARCHIVE  an OCI archive of the image already built (default: built
#                                by scripts/image.sh; PKIPLANE_IMAGE_PROFILE as there)
#        PKIPLANE_E2E_KEEP=1     leave the node up at the end (prints how to reach and remove it)
# Each step prints PASS or FAIL with what it checked; the first failure stops the run and
# prints the pods' logs. The last line is "operator: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
me=operator
NS=pkiplane-system
unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
. e2e/lib/flow.sh
. e2e/lib/chart.sh

on_failure=logs_tail
trap flow_finish EXIT
trap 'say "interrupted"; exit 130' INT TERM
work=$(mktemp -d)
tmp_log=$work/log

# ---------------------------------------------------------------------------- image

charts/pkiplane/sync-crds.sh --check 2>"$tmp_log" || fail "the chart's CRDs match crds/" "$(cat "$tmp_log")"
pass "charts/pkiplane/crds/ matches crds/"

t_image=$SECONDS
image=$(chart_image "$work/pkiplane.tar" 2>"$tmp_log") || fail "build the image (scripts/image.sh)" "$(tail -n 30 "$tmp_log")"
chart_image_ref=$(awk '$1 == "repository:" {print $2; exit}' charts/pkiplane/values.yaml)
[ "${image%:*}" = "$chart_image_ref" ] || fail "the image is the chart's (image.repository $chart_image_ref)" "built $image"
built=$(grep -o '([0-9]* MiB, binary.*' "$tmp_log" || echo "(from $PKIPLANE_IMAGE_ARCHIVE)")
pass "image $image $built, $(($(stat -c %s "$work/pkiplane.tar") / 1024 / 1024)) MiB as an OCI archive, in $((SECONDS - t_image))s"

# ---------------------------------------------------------------------------- node

t_node=$SECONDS
envs=$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/node.sh up 2>"$tmp_log") || fail "node up" "$(tail -n 40 "$tmp_log")"
eval "$envs"
dir=$PKIPLANE_E2E_DIR
client_resolver
pass "node up with the CRDs in $((SECONDS - t_node))s ($(grep -o 'node [a-z0-9-]* Ready [^;]*' "$tmp_log" || true))"

out=$(chart_load "$work/pkiplane.tar" "$image" 2>&1) || fail "import the image into the node" "$out"
pass "image imported into the node's containerd as $image"

# ---------------------------------------------------------------------------- chart

kubectl create namespace "$NS" >/dev/null
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
# The control: a pod without any security settings is refused there.
out=$(kubectl -n "$NS" run psa-control --image="$image" --restart=Never --dry-run=server 2>&1) &&
  fail "Pod Security admission refuses a pod without security settings in $NS" "$out"
grep -q 'violates PodSecurity "restricted' <<<"$out" || fail "the control pod is refused by Pod Security admission" "$out"
pass "namespace $NS enforces Pod Security restricted (a pod without security settings is refused)"

t_helm=$SECONDS
out=$(chart_install pkiplane "$NS" 2>&1) || fail "helm install pkiplane charts/pkiplane --wait" "$out
$(kubectl -n "$NS" get pods,pvc -o wide 2>&1)"
pass "helm install pkiplane charts/pkiplane --namespace $NS --wait: $((SECONDS - t_helm))s"

# Every component Running and Ready under "restricted": the CA (1), operators (2), webhook (2).
check_release_pods() {
  local want=$1 out n
  out=$(kubectl -n "$NS" get pods -o go-template='{{range .items}}{{index .metadata.labels "app.kubernetes.io/component"}} {{.status.phase}} {{range .status.conditions}}{{if eq .type "Ready"}}{{.status}}{{end}}{{end}}{{"\n"}}{{end}}')
  n=$(grep -c ' Running True$' <<<"$out" || true)
  [ "$n" = "$want" ] && [ "$(wc -l <<<"$out")" = "$want" ]
}
until_ok 60 check_release_pods 5 || fail "5 pods of the release Running and Ready" "$(kubectl -n "$NS" get pods -o wide 2>&1)"
for c in ca:1 operator:2 webhook:2; do
  n=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/component=${c%:*}" -o name | wc -l)
  [ "$n" = "${c#*:}" ] || fail "${c#*:} ${c%:*} pod(s)" "$(kubectl -n "$NS" get pods 2>&1)"
done
kubectl -n "$NS" get pods -o wide | sed "s/^/$me:      | /" >&2
[ "$(kubectl -n "$NS" get pvc pkiplane-ca-data -o jsonpath='{.status.phase}')" = Bound ] ||
  fail "PVC pkiplane-ca-data Bound" "$(kubectl -n "$NS" get pvc 2>&1)"
[ "$(kubectl -n "$NS" get pdb pkiplane-webhook -o jsonpath='{.spec.minAvailable}')" = 1 ] ||
  fail "PodDisruptionBudget pkiplane-webhook minAvailable 1"
pass "every pod of the release Running and Ready: pkiplane-ca 1, pkiplane-operator 2, pkiplane-webhook 2; PVC pkiplane-ca-data Bound; webhook PDB minAvailable 1"

# The chart's components authenticate with projected ServiceAccount tokens (the kubelet
# mounts them; the operator and CA service work only if the API server accepts them).
for pod in $(kubectl -n "$NS" get pods -o name); do
  sources=$(kubectl -n "$NS" get "$pod" -o jsonpath='{range .spec.volumes[*]}{range .projected.sources[*]}{.serviceAccountToken.path}{" "}{end}{end}')
  grep -qw token <<<"$sources" || fail "$pod mounts a projected ServiceAccount token" "$(kubectl -n "$NS" get "$pod" -o jsonpath='{.spec.volumes}')"
done
holder() { kubectl -n "$NS" get lease pkiplane-operator -o jsonpath='{.spec.holderIdentity}'; }
until_ok 30 holder || fail "an operator holds Lease pkiplane-operator"
leader=$(holder)
# The identity is the pod's name and the process id.
grep -q "pod/${leader%-*}$" <<<"$(kubectl -n "$NS" get pods -l app.kubernetes.io/component=operator -o name)" ||
  fail "the Lease holder is an operator pod" "holder $leader"
pass "projected ServiceAccount tokens in every chart pod; operator ${leader%-*} holds the Lease"

out=$(chart_helm install second charts/pkiplane --namespace "$NS" --dry-run=server 2>&1) &&
  fail "helm install of a second release was not refused" "$out"
grep -q "pkiplane is already installed in this cluster" <<<"$out" ||
  fail "the second release is refused with the chart's message" "$out"
pass "a second release is refused: $(grep -o 'pkiplane is already installed[^(]*([^)]*)' <<<"$out")"

# ---------------------------------------------------------------------------- quickstart

t_quick=$SECONDS
until_ok 60 kubectl apply -k examples/ ||
  fail "kubectl apply -k examples/ (the quickstart for clusters, admitted by the webhook)" "$(kubectl apply -k examples/ 2>&1)"
[ "$(kubectl get namespace pki -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" = restricted ] ||
  fail "namespace pki enforces Pod Security restricted (examples/kustomization.yaml)"
pass "quickstart for clusters (kubectl apply -k examples/) admitted through the webhook; namespace pki enforces restricted"

for kind in issuers certificateprofiles enrollmentendpoints; do
  out=$(kubectl -n pki wait --for=condition=Ready "$kind" --all --timeout=180s 2>&1) ||
    fail "all $kind Ready within 180s" "$out
$(kubectl -n pki get "$kind" -o wide 2>&1)"
  pass "all $kind Ready ($(wc -l <<<"$out"))"
done
kubectl get pkiplane -A 2>&1 | sed "s/^/$me:      | /" >&2

# Acceptance: every pkiplane pod of the quickstart Running (and Ready) in the namespace
# enforcing "restricted".
pki_pods() {
  local out
  out=$(kubectl -n pki get pods --no-headers 2>&1)
  [ "$(wc -l <<<"$out")" = 4 ] && [ "$(grep -cE ' 1/1 +Running ' <<<"$out")" = 4 ]
}
until_ok 60 pki_pods || fail "kubectl get pods -n pki: 4 endpoint pods, all Running 1/1" "$(kubectl -n pki get pods 2>&1)"
kubectl -n pki get pods | sed "s/^/$me:      | /" >&2
pass "kubectl get pods -n pki (enforce=restricted): every endpoint pod Running 1/1, quickstart Ready $((SECONDS - t_quick))s after apply"

# Endpoint pods: no ServiceAccount token (they never call the API server), their
# configuration and credentials from Secret volumes, both probes, no restart.
for d in acme est scep cmp; do
  spec=$(kubectl -n pki get deployment "$d-pkiplane" -o json)
  out=$(SPEC=$spec python3 - 2>&1 <<'PY'
import json, os
s = json.loads(os.environ["SPEC"])["spec"]["template"]["spec"]
c = s["containers"][0]
assert s.get("automountServiceAccountToken") is False, "a ServiceAccount token is mounted"
secrets = sorted(v["secret"]["secretName"] for v in s["volumes"] if "secret" in v)
assert len(secrets) == 3, secrets
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
PY
  ) || fail "the $d endpoint's pod template" "$out"
done
restarts=$(kubectl -n pki get pods -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}')
[ -z "$(tr -d '0 ' <<<"$restarts")" ] || fail "no endpoint container restarted" "restart counts: $restarts"
pass "endpoint pods: Secret volumes (config, internal TLS, credentials), no ServiceAccount token, ready through the kubelet's /readyz probe, no restarts"

# Every endpoint announces the URL of its Service (Service port 443 or 80, so no port).
for ep in acme:https://acme-pkiplane.pki.svc/directory est:https://est-pkiplane.pki.svc/.well-known/est \
  scep:http://scep-pkiplane.pki.svc/scep cmp:http://cmp-pkiplane.pki.svc/.well-known/cmp; do
  url=$(kubectl -n pki get enrollmentendpoint "${ep%%:*}" -o jsonpath='{.status.urls[0]}')
  [ "$url" = "${ep#*:}" ] || fail "enrollmentendpoint ${ep%%:*} status.urls[0] is ${ep#*:}" "got: $url"
  log=$(kubectl -n pki logs "deployment/${ep%%:*}-pkiplane" 2>&1)
  grep -qF "${ep#*:}" <<<"$log" || fail "the ${ep%%:*} pod announces ${ep#*:}" "$(tail -n 5 <<<"$log")"
done
pass "status.urls and the pods' logs announce the Service URLs (https://acme-pkiplane.pki.svc/directory, ...)"
say "node memory with the chart and the quickstart running: $(node_rss)"

# ---------------------------------------------------------------------------- clients

ca_svc=pkiplane-ca.$NS.svc
clients=$dir/clients
mkdir -p "$clients"
cd "$clients"
out=$(in_node curl -fsS "http://$ca_svc:8080/issuers/pki/example-root/ca.pem" -o root.pem 2>&1) ||
  fail "the CA service publishes pki/example-root at http://$ca_svc:8080/issuers/pki/example-root/ca.pem" "$out"
in_node curl -fsS "http://$ca_svc:8080/issuers/pki/example-intermediate/ca.pem" -o intermediate.pem ||
  fail "the CA service publishes pki/example-intermediate"
verify() { openssl verify -CAfile "$clients/root.pem" -untrusted "$clients/intermediate.pem" "$1" 2>&1; }

# EST: curl + openssl, HTTP Basic from est-basic-users.
est_user=device-enroller
est_pass=$(kubectl -n pki get secret est-basic-users -o jsonpath="{.data.$est_user}" | base64 -d)
est_enroll() { # NAME: enrolls NAME.example.internal into NAME.pem
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -subj "/CN=$1.example.internal" -addext "subjectAltName=DNS:$1.example.internal" -outform DER -out "$1.csr.der" 2>/dev/null
  openssl base64 -in "$1.csr.der" -out "$1.csr.b64"
  local code
  code=$(in_node curl -sS --cacert root.pem --user "$est_user:$est_pass" -H "Content-Type: application/pkcs10" \
    -H "Content-Transfer-Encoding: base64" --data-binary @"$1.csr.b64" -o "$1.p7.b64" -w '%{http_code}' \
    https://est-pkiplane.pki.svc/.well-known/est/tls/simpleenroll 2>"$tmp_log") || code="curl: $(cat "$tmp_log")"
  [ "$code" = 200 ] || { echo "HTTP $code: $(cat "$1.p7.b64" 2>/dev/null)"; return 1; }
  openssl base64 -d -in "$1.p7.b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | sed -n '/BEGIN/,/END/p' >"$1.pem"
}
until_ok 15 est_enroll web || fail "EST simpleenroll at https://est-pkiplane.pki.svc (Service port 443)" "$(est_enroll web 2>&1)"
out=$(verify web.pem) || fail "openssl verify of the EST certificate against pki/example-root" "$out"
pass "EST: curl simpleenroll at https://est-pkiplane.pki.svc/.well-known/est/tls (Basic $est_user), serial $(openssl x509 -in web.pem -noout -serial | cut -d= -f2), openssl verify OK"

# The certificate's CRL distribution point is the CA service's Service.
cdp=$(openssl x509 -in web.pem -noout -ext crlDistributionPoints | grep -o 'URI:.*' | cut -c5-)
[ "$cdp" = "http://$ca_svc:8080/issuers/pki/example-intermediate/crl" ] ||
  fail "the EST certificate's CRL distribution point names Service pkiplane-ca" "got: $cdp"
in_node curl -fsS "$cdp" -o intermediate.crl || fail "fetch the CRL at $cdp"
out=$(openssl crl -inform DER -in intermediate.crl -CAfile intermediate.pem -noout 2>&1) ||
  fail "openssl crl: the CRL at $cdp verifies against the intermediate" "$out"
pass "CRL distribution point $cdp answers through Service pkiplane-ca; the CRL verifies"

# SCEP: micromdm scepclient, the static challenge.
scepclient=$("$root"/scripts/tools/scepclient.sh)
scep_challenge=$(kubectl -n pki get secret scep-static -o jsonpath='{.data.challenge}' | base64 -d)
scep_enroll() { # NAME: in directory NAME (scepclient reuses a csr.pem it finds)
  rm -rf "${clients:?}/$1" && mkdir -p "$clients/$1" && cd "$clients/$1" &&
    in_node "$scepclient" -server-url http://scep-pkiplane.pki.svc/scep -private-key r.key -certificate r.pem \
      -challenge "$scep_challenge" -cn "$1.example.com" -dnsname "$1.example.com" -key-encipherment-selector 2>&1
  local rc=$?
  cd "$clients"
  return $rc
}
out=$(scep_enroll router-1) || fail "scepclient PKCSReq at http://scep-pkiplane.pki.svc/scep" "$out"
out=$(verify router-1/r.pem) || fail "openssl verify of the SCEP certificate" "$out"
pass "SCEP: scepclient (static challenge) at http://scep-pkiplane.pki.svc/scep, openssl verify OK"

# CMP: openssl cmp, shared-secret MAC.
cmp_enroll() { # NAME
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  in_node openssl cmp -cmd ir -server cmp-pkiplane.pki.svc:80 -path /.well-known/cmp/p/tls -ref device-1 \
    -secret pass:quickstart-cmp-secret -recipient "/CN=pkiplane CMP pki\/cmp" -newkey "$1.key" \
    -subject "/CN=$1.example.com" -sans "$1.example.com" -certout "$1.pem" 2>&1
}
# The CA service's metrics, through its Service's metrics port: the issued counter of the
# CMP endpoint moves by exactly one with the enrollment below.
ca_metrics() { in_node curl -fsS "http://$ca_svc:9090/metrics"; }
cmp_issued() { # the sum of pkiplane_certificates_issued_total over pki/cmp's CMP samples
  awk '/^pkiplane_certificates_issued_total\{/ && /protocol="CMP"/ && /endpoint="pki\/cmp"/ { s += $NF } END { print s + 0 }' "$1"
}
ca_metrics >metrics-before.txt || fail "scrape http://$ca_svc:9090/metrics (Service pkiplane-ca, port metrics)"
out=$("$("$root"/scripts/tools/promtool.sh)" check metrics <metrics-before.txt 2>&1) ||
  fail "promtool check metrics on the CA service's exposition" "$out"
code=$(in_node curl -s -o /dev/null -w '%{http_code}' "http://$ca_svc:8080/metrics")
[ "$code" = 404 ] || fail "the CA's public publication port does not serve /metrics" "HTTP $code"

out=$(cmp_enroll ne1) || fail "openssl cmp ir at http://cmp-pkiplane.pki.svc/.well-known/cmp/p/tls" "$out"
out=$(verify ne1.pem) || fail "openssl verify of the CMP certificate" "$out"
pass "CMP: openssl cmp ir (shared-secret MAC) at http://cmp-pkiplane.pki.svc/.well-known/cmp/p/tls, openssl verify OK"

ca_metrics >metrics-after.txt || fail "scrape http://$ca_svc:9090/metrics after the CMP enrollment"
before=$(cmp_issued metrics-before.txt) after=$(cmp_issued metrics-after.txt)
[ "$after" = "$((before + 1))" ] ||
  fail "pkiplane_certificates_issued_total{protocol=CMP,endpoint=pki/cmp} moves by one" "before $before, after $after"
pass "CA metrics through Service pkiplane-ca:9090 pass promtool; issued_total for pki/cmp went $before -> $after with one enrollment; the publication port answers 404 for /metrics"

. "$root"/e2e/lib/operator-admin.sh
. "$root"/e2e/lib/operator-acme.sh
. "$root"/e2e/lib/operator-lifecycle.sh
