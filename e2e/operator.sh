#!/usr/bin/env bash
# The operator flow end to end against the real kube-apiserver: the chart's RBAC and
# Services, the operator, CA service and webhook as local processes under their chart
# ServiceAccounts, the kubelet emulator running the endpoint pods, then the quickstart for
# clusters (`kubectl apply -k examples/`): everything Ready, certificates enrolled with real
# clients of the four protocols through the endpoints' Services at the URLs the endpoints
# announce, and verified, the counts on the status, drift correction and deletion. Every
# pod template (the chart's, the operator's) is admitted by the API server's Pod Security
# admission at "restricted" (dry-run Pod creation).
# Brings a cluster up and always tears it down (also on failure).
#
# Usage (from anywhere): e2e/operator.sh
# Env:   PKIPLANE_BIN     the pkiplane binary (default: cargo build -p pkiplane, target/debug/pkiplane)
#        PKIPLANE_E2E_KEEP=1  leave the cluster up at the end (prints how to reach and remove it)
# Each step prints PASS or FAIL with what it checked; the first failure stops the run and
# prints the tails of the component logs. The last line is "operator: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
NS=pkiplane-system

# ---------------------------------------------------------------------------- reporting

unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
passed=0
failed=0
t_start=$SECONDS
step_start=$SECONDS
COMPONENTS=(operator operator-standby ca webhook kubelet-emulator)

say() { echo "operator: $*" >&2; }
pass() { passed=$((passed + 1)); say "PASS $1 ($((SECONDS - step_start))s)"; step_start=$SECONDS; }
fail() {
  failed=$((failed + 1))
  say "FAIL $1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/operator:      | /' >&2
  exit 1
}

logs_tail() {
  local name f
  for name in "${COMPONENTS[@]}"; do
    f="$PKIPLANE_E2E_DIR/logs/$name.log"
    [ -s "$f" ] || continue
    say "----- $name log (last 25 lines)"
    tail -n 25 "$f" | sed 's/^/operator:      | /' >&2
  done
  for f in "$PKIPLANE_E2E_DIR"/logs/pods/*.log; do
    [ -s "$f" ] || continue
    say "----- pod $(basename "$f" .log) (last 10 lines)"
    tail -n 10 "$f" | sed 's/^/operator:      | /' >&2
  done
}

finish() {
  local rc=$?
  if [ -n "${PKIPLANE_E2E_DIR:-}" ]; then
    [ $rc = 0 ] || logs_tail
    if [ "${PKIPLANE_E2E_KEEP:-}" = 1 ]; then
      say "cluster kept: eval \"\$(PKIPLANE_E2E_DIR=$PKIPLANE_E2E_DIR e2e/cluster.sh env)\"; e2e/cluster.sh down"
    else
      e2e/cluster.sh down || say "teardown failed"
    fi
  fi
  rm -f "${tmp_log:-}"
  [ $rc = 0 ] || [ $failed -gt 0 ] || failed=1
  say "total $((SECONDS - t_start))s"
  echo "operator: $passed passed, $failed failed"
  exit $rc
}
trap finish EXIT
trap 'say "interrupted"; exit 130' INT TERM
tmp_log=$(mktemp)

# until_ok SECONDS CMD...: runs CMD every second until it succeeds (0) or the time is up
# (1). Fails early when a component started by this script has died.
until_ok() {
  local deadline=$((SECONDS + $1)) name; shift
  until "$@" >/dev/null 2>&1; do
    for name in "${COMPONENTS[@]}"; do
      if [ -f "$PKIPLANE_E2E_DIR/pids/$name" ] && ! e2e/cluster.sh alive "$name"; then
        fail "$name exited (log: $PKIPLANE_E2E_DIR/logs/$name.log)"
      fi
    done
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

# stop_component NAME: stops a component on purpose (until_ok then no longer expects it).
stop_component() {
  e2e/cluster.sh stop "$1"
  rm -f "$PKIPLANE_E2E_DIR/pids/$1"
}

# secret_to_dir NAMESPACE NAME DIR: writes each key of the Secret to DIR/<key> (0600).
secret_to_dir() {
  mkdir -p "$3"
  kubectl -n "$1" get secret "$2" -o json | python3 -c '
import base64, json, os, sys
d = sys.argv[1]
for k, v in json.load(sys.stdin).get("data", {}).items():
    p = os.path.join(d, k)
    with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(base64.b64decode(v))
' "$3"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cluster_ip() { kubectl -n "$1" get service "$2" -o jsonpath='{.spec.clusterIP}'; }

# ---------------------------------------------------------------------------- build

if [ -z "${PKIPLANE_BIN:-}" ]; then
  # --workspace: the feature set `cargo test --workspace` built with, so nothing rebuilds.
  cargo build -q --workspace --bins 2>"$tmp_log" || fail "cargo build --workspace --bins" "$(tail -n 30 "$tmp_log")"
  PKIPLANE_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/pkiplane
else
  cargo build -q --workspace --bins 2>"$tmp_log" || fail "cargo build --workspace --bins" "$(tail -n 30 "$tmp_log")"
fi
export PKIPLANE_BIN
emulator_bin=${CARGO_TARGET_DIR:-$root/target}/debug/kubelet-emulator
bin=$PKIPLANE_BIN
pass "built $bin and $emulator_bin"

charts/pkiplane/sync-crds.sh --check 2>"$tmp_log" || fail "the chart's CRDs match crds/" "$(cat "$tmp_log")"
pass "charts/pkiplane/crds/ matches crds/"

# ---------------------------------------------------------------------------- cluster

envs=$(PKIPLANE_E2E_CRDS=crds/all.yaml e2e/cluster.sh up 2>"$tmp_log") || fail "cluster up" "$(cat "$tmp_log")"
eval "$envs"
dir=$PKIPLANE_E2E_DIR
pass "cluster up at $PKIPLANE_E2E_APISERVER with the CRDs"

# ---------------------------------------------------------------------------- chart

kubectl create namespace "$NS" >/dev/null
e2e/render-chart.sh --namespace "$NS" \
  --kinds ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Service >"$dir/chart.yaml" 2>"$tmp_log" ||
  fail "render the chart" "$(cat "$tmp_log")"
out=$(kubectl apply -f "$dir/chart.yaml" 2>&1) || fail "apply the chart's ServiceAccounts, RBAC and Services" "$out"
pass "chart applied: $(grep -c '^kind:' "$dir/chart.yaml") objects ($(grep '^kind:' "$dir/chart.yaml" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}'))"
kubectl -n "$NS" get role,rolebinding -o name | grep -q . ||
  say "note: the chart has no namespaced Role (templates/rbac-operator.yaml not written yet?)"

# pkiplane is installed once per cluster: a second release is refused with a message
# saying so (the chart looks up the cluster-wide objects this installation applied).
helm=$(scripts/tools/helm.sh)
out=$("$helm" install second charts/pkiplane --namespace "$NS" --dry-run=server 2>&1) &&
  fail "helm install of a second release was not refused" "$out"
grep -q "pkiplane is already installed in this cluster" <<<"$out" ||
  fail "the second release is refused with the chart's message" "$out"
pass "a second release is refused: $(grep -o 'pkiplane is already installed[^(]*([^)]*)' <<<"$out")"

# Pod Security "restricted", enforced by the API server's admission: a Pod made from each
# Deployment's template is created with --dry-run=server in a namespace that enforces it.
# pods_admitted NAMESPACE FILE: FILE holds Deployments (YAML or JSON list).
pods_admitted() {
  python3 - "$1" "$2" <<'PY' >"$dir/pods-$1.json"
import json, subprocess, sys
ns, path = sys.argv[1], sys.argv[2]
text = open(path).read()
if not text.lstrip().startswith("{"):
    # YAML: kubectl converts it, printing one JSON object per document.
    text = subprocess.run(["kubectl", "create", "--dry-run=client", "-o", "json", "-f", path],
                          check=True, capture_output=True, text=True).stdout
items, at, decoder = [], 0, json.JSONDecoder()
while text[at:].strip():
    obj, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
    items += obj.get("items", [obj])
    at = end
pods = [{"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "psa-" + d["metadata"]["name"], "namespace": ns},
         "spec": d["spec"]["template"]["spec"]}
        for d in items if d.get("kind") == "Deployment"]
json.dump({"apiVersion": "v1", "kind": "List", "items": pods}, sys.stdout)
PY
  kubectl create --dry-run=server -f "$dir/pods-$1.json" 2>&1
}
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
# The control: a pod without any security settings is refused there.
out=$(kubectl -n "$NS" run psa-control --image=ghcr.io/pkiplane/pkiplane:test --restart=Never --dry-run=server 2>&1) &&
  fail "Pod Security admission refuses a pod without security settings in $NS" "$out"
grep -q 'violates PodSecurity "restricted' <<<"$out" || fail "the control pod is refused by Pod Security admission" "$out"
e2e/render-chart.sh --namespace "$NS" --kinds Deployment >"$dir/chart-deployments.yaml"
out=$(pods_admitted "$NS" "$dir/chart-deployments.yaml") ||
  fail "the chart's pods are admitted under pod-security.kubernetes.io/enforce=restricted" "$out"
pass "Pod Security restricted (enforced, dry-run): the chart's pods admitted: $(grep -c created <<<"$out") of $(grep -c '^kind: Deployment' "$dir/chart-deployments.yaml")"

ca_ip=$(cluster_ip "$NS" pkiplane-ca)
webhook_ip=$(cluster_ip "$NS" pkiplane-webhook)
{ [ -n "$ca_ip" ] && [ -n "$webhook_ip" ]; } || fail "ClusterIPs of pkiplane-ca and pkiplane-webhook" "ca=$ca_ip webhook=$webhook_ip"
pass "Services pkiplane-ca at $ca_ip (9443, 8080), pkiplane-webhook at $webhook_ip (9444)"

op_kc=$(e2e/cluster.sh sa-kubeconfig "$NS" pkiplane-operator)
ca_kc=$(e2e/cluster.sh sa-kubeconfig "$NS" pkiplane-ca)
webhook_kc=$(e2e/cluster.sh sa-kubeconfig "$NS" pkiplane-webhook)
pass "ServiceAccount kubeconfigs for pkiplane-operator, pkiplane-ca, pkiplane-webhook"

# ---------------------------------------------------------------------------- operator

start_operator() {
  e2e/cluster.sh start operator -- env KUBECONFIG="$op_kc" POD_NAMESPACE="$NS" POD_NAME=pkiplane-operator-e2e-0 \
    RUST_LOG="${RUST_LOG:-info}" "$bin" operator --namespace "$NS" --ca-url "https://$ca_ip:9443" \
    --metrics-listen "127.0.0.1:$(free_port)" >/dev/null
}
start_operator
until_ok 120 kubectl -n "$NS" get secret pkiplane-ca-tls ||
  fail "the operator created Secret $NS/pkiplane-ca-tls within 120s"
pass "operator running under its ServiceAccount; it created Secret pkiplane-ca-tls"

# ---------------------------------------------------------------------------- webhook

until_ok 120 kubectl -n "$NS" get secret pkiplane-webhook-tls ||
  fail "the operator created Secret $NS/pkiplane-webhook-tls within 120s"
secret_to_dir "$NS" pkiplane-webhook-tls "$dir/webhook/tls"
e2e/cluster.sh start webhook -- env KUBECONFIG="$webhook_kc" POD_NAMESPACE="$NS" RUST_LOG="${RUST_LOG:-info}" \
  "$bin" webhook --listen "$webhook_ip:9444" --tls-dir "$dir/webhook/tls" >/dev/null
until_ok 60 curl -sS -o /dev/null --cacert "$dir/webhook/tls/ca.crt" \
  --resolve "pkiplane-webhook.$NS.svc:9444:$webhook_ip" "https://pkiplane-webhook.$NS.svc:9444/" ||
  fail "pkiplane webhook answering TLS for pkiplane-webhook.$NS.svc on $webhook_ip:9444 within 60s"
pass "webhook serving pkiplane-webhook.$NS.svc:9444 with a certificate from the internal CA"

if "$bin" webhook manifests --namespace "$NS" --ca-bundle "$dir/webhook/tls/ca.crt" >"$dir/webhook-manifests.yaml" 2>"$tmp_log"; then
  source="pkiplane webhook manifests"
else
  say "note: \`pkiplane webhook manifests\` failed ($(head -n 1 "$tmp_log")); using the chart's webhook configurations"
  e2e/render-chart.sh --namespace "$NS" --kinds ValidatingWebhookConfiguration,MutatingWebhookConfiguration \
    >"$dir/webhook-manifests.yaml"
  source="the chart"
fi
out=$(kubectl apply -f "$dir/webhook-manifests.yaml" 2>&1) || fail "apply the webhook configurations" "$out"
# The API server verifies the webhook with the internal CA; add it where the manifests
# left caBundle empty.
bundle=$(base64 -w0 <"$dir/webhook/tls/ca.crt")
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  for name in $(kubectl get "$kind" -o name | grep pkiplane); do
    n=$(kubectl get "$name" -o jsonpath='{range .webhooks[*]}x{end}')
    for ((i = 0; i < ${#n}; i++)); do
      [ -n "$(kubectl get "$name" -o jsonpath="{.webhooks[$i].clientConfig.caBundle}")" ] && continue
      kubectl patch "$name" --type=json \
        -p "[{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"}]" >/dev/null
    done
  done
done
{ kubectl get validatingwebhookconfiguration pkiplane-validating >/dev/null 2>&1 &&
  kubectl get mutatingwebhookconfiguration pkiplane-mutating >/dev/null 2>&1; } ||
  fail "webhook configurations pkiplane-validating and pkiplane-mutating exist"
pass "webhook configurations applied (from $source), caBundle = the internal CA"

# ---------------------------------------------------------------------------- emulator

e2e/cluster.sh start kubelet-emulator -- env PKIPLANE_BIN="$bin" "$emulator_bin" --state-dir "$dir" >/dev/null
until_ok 30 test -f "$dir/pods.json" || fail "kubelet-emulator started (wrote pods.json)"
pass "kubelet emulator watching Deployments labelled app.kubernetes.io/managed-by=pkiplane-operator"

# ---------------------------------------------------------------------------- CA service

secret_to_dir "$NS" pkiplane-ca-tls "$dir/ca/tls"
openssl x509 -in "$dir/ca/tls/tls.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$ca_ip" ||
  fail "pkiplane-ca-tls carries the ClusterIP $ca_ip as an IP SAN" "$(openssl x509 -in "$dir/ca/tls/tls.crt" -noout -ext subjectAltName 2>&1)"
start_ca() {
  e2e/cluster.sh start ca -- env KUBECONFIG="$ca_kc" POD_NAMESPACE="$NS" RUST_LOG="${RUST_LOG:-info}" \
    "$bin" ca --tls-dir "$dir/ca/tls" --data-dir "$dir/ca/data" --listen "$ca_ip:9443" \
    --publish-listen "$ca_ip:8080" >/dev/null
}
start_ca
until_ok 120 curl -fsS "http://$ca_ip:8080/readyz" ||
  fail "pkiplane ca ready: http://$ca_ip:8080/readyz within 120s"
pass "CA service serving https://$ca_ip:9443 (mTLS) and http://$ca_ip:8080 (readyz 200)"

# ---------------------------------------------------------------------------- quickstart

until_ok 30 kubectl apply -k examples/ ||
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
out=$(kubectl get pkiplane -A 2>&1)
printf '%s\n' "$out" | sed 's/^/operator:      | /' >&2

for ep in $(kubectl -n pki get enrollmentendpoints -o jsonpath='{.items[*].metadata.name}'); do
  for obj in "deployment/$ep-pkiplane" "service/$ep-pkiplane" "secret/$ep-pkiplane-config" "secret/$ep-pkiplane-internal"; do
    kubectl -n pki get "$obj" >/dev/null 2>&1 || fail "endpoint $ep has $obj"
  done
  ready=$(kubectl -n pki get deployment "$ep-pkiplane" -o jsonpath='{.status.readyReplicas}')
  [ "${ready:-0}" -ge 1 ] || fail "Deployment $ep-pkiplane has a ready replica (the emulated pod)" \
    "$(python3 -m json.tool "$dir/pods.json" 2>&1 | head -40)"
done
pass "each endpoint has its Deployment (ready), Service and config/internal Secrets"

kubectl -n pki get deployments -l app.kubernetes.io/managed-by=pkiplane-operator -o json >"$dir/endpoint-deployments.json"
out=$(pods_admitted pki "$dir/endpoint-deployments.json") ||
  fail "the endpoint pods are admitted under pod-security.kubernetes.io/enforce=restricted" "$out"
pass "Pod Security restricted (enforced, dry-run): the operator's endpoint pods admitted: $(grep -c created <<<"$out")"

# Every endpoint announces the URL of its Service (Service port 443 or 80, so no port).
for ep in acme:https://acme-pkiplane.pki.svc/directory est:https://est-pkiplane.pki.svc/.well-known/est \
  scep:http://scep-pkiplane.pki.svc/scep cmp:http://cmp-pkiplane.pki.svc/.well-known/cmp; do
  url=$(kubectl -n pki get enrollmentendpoint "${ep%%:*}" -o jsonpath='{.status.urls[0]}')
  [ "$url" = "${ep#*:}" ] || fail "enrollmentendpoint ${ep%%:*} status.urls[0] is ${ep#*:}" "got: $url"
  log=$(python3 -c 'import json,sys; print(next(p["log"] for p in json.load(open(sys.argv[1])) if p["deployment"] == sys.argv[2]))' \
    "$dir/pods.json" "${ep%%:*}-pkiplane") || fail "pods.json lists a pod of ${ep%%:*}-pkiplane"
  grep -q " ${ep#*:}" "$log" || fail "the ${ep%%:*} pod announces ${ep#*:}" "$(tail -n 5 "$log")"
done
pass "status.urls and the pods announce the Service URLs (https://acme-pkiplane.pki.svc/directory, ...)"
rss=$(python3 -c '
import json, sys
out = []
for p in json.load(open(sys.argv[1])):
    try:
        with open("/proc/%s/status" % p["pid"]) as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        out.append("%s %d MiB" % (p["deployment"], kb // 1024))
    except (OSError, StopIteration):
        pass
print(", ".join(out))' "$dir/pods.json")
say "endpoint pod memory (RSS, debug build): $rss"

# ---------------------------------------------------------------------------- EST enrollment

est_ip=$(cluster_ip pki est-pkiplane)
est_port=$(kubectl -n pki get service est-pkiplane -o jsonpath='{.spec.ports[0].port}')
[ "$est_port" = 443 ] || fail "Service est-pkiplane listens on 443 (the default with TLS)" "port $est_port"
est_host=est-pkiplane.pki.svc
work="$dir/est-client"
mkdir -p "$work"
curl -fsS "http://$ca_ip:8080/issuers/pki/example-root/ca.pem" -o "$work/root.pem" ||
  fail "the CA service publishes pki/example-root at http://$ca_ip:8080/issuers/pki/example-root/ca.pem"
curl -fsS "http://$ca_ip:8080/issuers/pki/example-intermediate/ca.pem" -o "$work/intermediate.pem" ||
  fail "the CA service publishes pki/example-intermediate"
est_user=device-enroller
est_pass=$(kubectl -n pki get secret est-basic-users -o jsonpath="{.data.$est_user}" | base64 -d)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/web.key" \
  -subj /CN=web.example.internal -addext subjectAltName=DNS:web.example.internal \
  -outform DER -out "$work/web.csr.der" 2>/dev/null
openssl base64 -in "$work/web.csr.der" -out "$work/web.csr.b64"
# The endpoint's TLS certificate names its Service (tls.dnsNames of the cluster quickstart);
# the harness has no cluster DNS, so curl resolves that name to the ClusterIP.
code=$(curl -sS --cacert "$work/root.pem" --resolve "$est_host:443:$est_ip" \
  --user "$est_user:$est_pass" -H "Content-Type: application/pkcs10" -H "Content-Transfer-Encoding: base64" \
  --data-binary @"$work/web.csr.b64" -o "$work/web.p7.b64" -w '%{http_code}' \
  "https://$est_host/.well-known/est/tls/simpleenroll" 2>"$tmp_log") || code="curl: $(cat "$tmp_log")"
[ "$code" = 200 ] || fail "EST simpleenroll at https://$est_host (Service ClusterIP $est_ip:443) returned $code" \
  "$(cat "$work/web.p7.b64" 2>/dev/null)"
openssl base64 -d -in "$work/web.p7.b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
  sed -n '/BEGIN/,/END/p' >"$work/web.pem"
out=$(openssl verify -CAfile "$work/root.pem" -untrusted "$work/intermediate.pem" "$work/web.pem" 2>&1) ||
  fail "openssl verify of the EST certificate against pki/example-root" "$out"
serial=$(openssl x509 -in "$work/web.pem" -noout -serial | cut -d= -f2)
pass "EST enrollment via https://$est_host (ClusterIP $est_ip:443) with Basic $est_user: serial $serial, openssl verify OK"

# The certificate's CRL distribution point is the CA service's Service (the cluster
# quickstart's URL); the CRL there is signed by the issuing CA.
cdp=$(openssl x509 -in "$work/web.pem" -noout -ext crlDistributionPoints | grep -o 'URI:.*' | cut -c5-)
[ "$cdp" = "http://pkiplane-ca.$NS.svc:8080/issuers/pki/example-intermediate/crl" ] ||
  fail "the EST certificate's CRL distribution point names Service pkiplane-ca" "got: $cdp"
curl -fsS --resolve "pkiplane-ca.$NS.svc:8080:$ca_ip" "$cdp" -o "$work/intermediate.crl" ||
  fail "fetch the CRL at $cdp through Service pkiplane-ca"
out=$(openssl crl -inform DER -in "$work/intermediate.crl" -CAfile "$work/intermediate.pem" -noout 2>&1) ||
  fail "openssl crl: the CRL at $cdp verifies against the intermediate" "$out"
pass "CRL distribution point $cdp answers through Service pkiplane-ca; the CRL verifies"

# ---------------------------------------------------------------------------- counts

issued_count() { kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status.issued}'; }
count_at_least_one() { [ "$(issued_count)" -ge 1 ] 2>/dev/null; }
until_ok 30 count_at_least_one ||
  fail "certificateprofile enterprise-tls-47d .status.issued >= 1 within 30s" \
    "$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status}' 2>&1)"
pass "certificateprofile enterprise-tls-47d status.issued=$(issued_count) within 30s"

# ---------------------------------------------------------------------------- SCEP and CMP

# Both are plain HTTP on their Service's ClusterIP (as the quickstart configures them).
scepclient=$(scripts/tools/scepclient.sh)
scep_ip=$(cluster_ip pki scep-pkiplane)
scep_port=$(kubectl -n pki get service scep-pkiplane -o jsonpath='{.spec.ports[0].port}')
scep_challenge=$(kubectl -n pki get secret scep-static -o jsonpath='{.data.challenge}' | base64 -d)
work="$dir/scep-client"
mkdir -p "$work"
out=$(cd "$work" && "$scepclient" -server-url "http://$scep_ip:$scep_port/scep" -private-key r1.key \
  -certificate r1.pem -challenge "$scep_challenge" -cn router-1.example.com -dnsname router-1.example.com \
  -key-encipherment-selector 2>&1) || fail "scepclient PKCSReq through Service scep-pkiplane ($scep_ip:$scep_port)" "$out"
out=$(openssl verify -CAfile "$dir/est-client/root.pem" -untrusted "$dir/est-client/intermediate.pem" "$work/r1.pem" 2>&1) ||
  fail "openssl verify of the SCEP certificate" "$out"
pass "SCEP enrollment (scepclient, static challenge) via http://$scep_ip:$scep_port/scep, openssl verify OK"

cmp_ip=$(cluster_ip pki cmp-pkiplane)
cmp_port=$(kubectl -n pki get service cmp-pkiplane -o jsonpath='{.spec.ports[0].port}')
work="$dir/cmp-client"
mkdir -p "$work"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ne1.key" 2>/dev/null
out=$(openssl cmp -cmd ir -server "$cmp_ip:$cmp_port" -path /.well-known/cmp/p/tls -ref device-1 \
  -secret pass:quickstart-cmp-secret -recipient "/CN=pkiplane CMP pki\/cmp" -newkey "$work/ne1.key" \
  -subject /CN=ne1.example.com -sans ne1.example.com -certout "$work/ne1.pem" 2>&1) ||
  fail "openssl cmp ir through Service cmp-pkiplane ($cmp_ip:$cmp_port)" "$out"
out=$(openssl verify -CAfile "$dir/est-client/root.pem" -untrusted "$dir/est-client/intermediate.pem" "$work/ne1.pem" 2>&1) ||
  fail "openssl verify of the CMP certificate" "$out"
pass "CMP ir (openssl cmp, shared-secret MAC) via http://$cmp_ip:$cmp_port, openssl verify OK"

# ACME through the Service only: the directory announces https://acme-pkiplane.pki.svc
# (Service port 443, no port in the URL) and certbot completes an order at that URL. The
# harness has no cluster DNS: certbot runs in a private mount namespace whose /etc/hosts
# maps the Service name to its ClusterIP (the emulator serves ClusterIP:443). The endpoint
# pod answers http-01 by connecting to web.localhost -> 127.0.0.1:5002, where certbot's
# standalone server listens.
acme_ip=$(cluster_ip pki acme-pkiplane)
acme_port=$(kubectl -n pki get service acme-pkiplane -o jsonpath='{.spec.ports[0].port}')
[ "$acme_port" = 443 ] || fail "Service acme-pkiplane listens on 443 (the default with TLS)" "port $acme_port"
acme_url=https://acme-pkiplane.pki.svc/directory
until_ok 10 curl -fsS --cacert "$dir/est-client/root.pem" --resolve "acme-pkiplane.pki.svc:443:$acme_ip" "$acme_url" \
  -o "$dir/acme-directory.json" || fail "ACME directory $acme_url through Service acme-pkiplane ($acme_ip:443)"
new_order=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["newOrder"])' "$dir/acme-directory.json")
case $new_order in
  https://acme-pkiplane.pki.svc/*) ;;
  *) fail "the directory's URLs name the Service without a port" "newOrder: $new_order" ;;
esac
! grep -q ':14000' "$dir/acme-directory.json" || fail "the directory announces the container port" "$(cat "$dir/acme-directory.json")"
grep -v 'acme-pkiplane.pki.svc' /etc/hosts >"$dir/hosts"
echo "$acme_ip acme-pkiplane.pki.svc" >>"$dir/hosts"
certbot=$(scripts/tools/certbot.sh)
# in_service_dns CMD...: runs CMD with $dir/hosts as /etc/hosts (private mount namespace).
in_service_dns() {
  unshare --mount --propagation private -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$dir/hosts" "$@"
}
certbot_order() {
  local work="$dir/certbot" name=$1
  mkdir -p "$work"
  in_service_dns env REQUESTS_CA_BUNDLE="$dir/est-client/root.pem" "$certbot" certonly --standalone --non-interactive \
    --http-01-port 5002 --http-01-address 127.0.0.1 -d "$name" --server "$acme_url" \
    --agree-tos -m ops@example.com --config-dir "$work/config" --work-dir "$work/work" --logs-dir "$work/logs" 2>&1
}
work="$dir/certbot"
out=$(certbot_order web.localhost) || fail "certbot certonly (http-01) at $acme_url, through Service acme-pkiplane only" "$out"
live="$work/config/live/web.localhost"
out=$(openssl verify -CAfile "$dir/est-client/root.pem" -untrusted "$live/chain.pem" "$live/cert.pem" 2>&1) ||
  fail "openssl verify of the certbot certificate" "$out"
openssl x509 -in "$live/cert.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication" ||
  fail "the ACME certificate has serverAuth" "$(openssl x509 -in "$live/cert.pem" -noout -text)"
pass "ACME: certbot http-01 at $acme_url through Service port 443 only (no forwarder), openssl verify OK, serverAuth EKU"

by_protocol() { kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status.perProtocol.CMP.issued}'; }
cmp_counted() { [ "$(by_protocol)" -ge 1 ] 2>/dev/null; }
until_ok 30 cmp_counted || fail "enterprise-tls-47d .status.perProtocol.CMP.issued >= 1 within 30s" \
  "$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status}' 2>&1)"
ep_counted() { [ "$(kubectl -n pki get enrollmentendpoint cmp -o jsonpath='{.status.issued}')" -ge 1 ] 2>/dev/null; }
until_ok 30 ep_counted || fail "enrollmentendpoint cmp .status.issued >= 1 within 30s"
issuer_counted() { [ "$(kubectl -n pki get issuer example-intermediate -o jsonpath='{.status.issued}')" -ge 4 ] 2>/dev/null; }
until_ok 30 issuer_counted || fail "issuer example-intermediate .status.issued >= 4 within 30s" \
  "$(kubectl -n pki get issuer example-intermediate -o jsonpath='{.status}' 2>&1)"
pass "counts on CertificateProfile (per protocol), EnrollmentEndpoint and Issuer status within 30s"

# ---------------------------------------------------------------------------- profile edit

# A shorter validity applies to the next certificate, through a running endpoint pod and
# without restarting anything: the CA service watches the profile.
kubectl -n pki patch certificateprofile enterprise-tls-47d --type=merge -p '{"spec":{"validity":{"duration":"10d"}}}' >/dev/null ||
  fail "kubectl patch enterprise-tls-47d validity 10d"
work="$dir/cmp-client"
cmp_days() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ne2.key" 2>/dev/null
  openssl cmp -cmd ir -server "$cmp_ip:$cmp_port" -path /.well-known/cmp/p/tls -ref device-1 \
    -secret pass:quickstart-cmp-secret -recipient "/CN=pkiplane CMP pki\/cmp" -newkey "$work/ne2.key" \
    -subject /CN=ne2.example.com -sans ne2.example.com -certout "$work/ne2.pem" >/dev/null 2>&1 || return 1
  local end
  end=$(date -d "$(openssl x509 -in "$work/ne2.pem" -noout -enddate | cut -d= -f2)" +%s)
  [ $(((end - $(date +%s)) / 86400)) -le 10 ]
}
until_ok 30 cmp_days || fail "after the edit, a CMP certificate of at most 10 days within 30s" \
  "$(openssl x509 -in "$work/ne2.pem" -noout -dates 2>&1)"
days_left() { echo $((($(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400)); }
cmp_left=$(days_left "$work/ne2.pem")

# The same profile through EST and ACME.
work="$dir/est-client"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/web2.key" \
  -subj /CN=web2.example.internal -addext subjectAltName=DNS:web2.example.internal \
  -outform DER -out "$work/web2.csr.der" 2>/dev/null
openssl base64 -in "$work/web2.csr.der" -out "$work/web2.csr.b64"
code=$(curl -sS --cacert "$work/root.pem" --resolve "$est_host:443:$est_ip" \
  --user "$est_user:$est_pass" -H "Content-Type: application/pkcs10" -H "Content-Transfer-Encoding: base64" \
  --data-binary @"$work/web2.csr.b64" -o "$work/web2.p7.b64" -w '%{http_code}' \
  "https://$est_host/.well-known/est/tls/simpleenroll" 2>"$tmp_log") || code="curl: $(cat "$tmp_log")"
[ "$code" = 200 ] || fail "EST simpleenroll after the profile edit returned $code"
openssl base64 -d -in "$work/web2.p7.b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
  sed -n '/BEGIN/,/END/p' >"$work/web2.pem"
est_left=$(days_left "$work/web2.pem")
[ "$est_left" -le 10 ] || fail "after the edit, the EST certificate has $est_left days (want <= 10)"
work="$dir/certbot"
out=$(certbot_order web2.localhost) || fail "certbot after the profile edit" "$out"
acme_left=$(days_left "$work/config/live/web2.localhost/cert.pem")
[ "$acme_left" -le 10 ] || fail "after the edit, the ACME certificate has $acme_left days (want <= 10)"

# SCEP exposes its own profile: 90d -> 30d.
kubectl -n pki patch certificateprofile scep-device-90d --type=merge -p '{"spec":{"validity":{"duration":"30d"}}}' >/dev/null ||
  fail "kubectl patch scep-device-90d validity 30d"
# A directory of its own: scepclient reuses a csr.pem it finds in its working directory.
work="$dir/scep-client-2"
mkdir -p "$work"
scep_days() {
  rm -f "$work/r2.key" "$work/r2.pem" "$work/csr.pem"
  (cd "$work" && "$scepclient" -server-url "http://$scep_ip:$scep_port/scep" -private-key r2.key \
    -certificate r2.pem -challenge "$scep_challenge" -cn router-2.example.com -dnsname router-2.example.com \
    -key-encipherment-selector >/dev/null 2>&1) || return 1
  [ "$(days_left "$work/r2.pem")" -le 30 ]
}
until_ok 30 scep_days || fail "after the edit, a SCEP certificate of at most 30 days within 30s"
pass "profile edits apply to the next certificate without a restart: enterprise-tls-47d 47d -> 10d gives CMP $cmp_left, EST $est_left, ACME $acme_left days; scep-device-90d 90d -> 30d gives SCEP $(days_left "$work/r2.pem") days"

# ---------------------------------------------------------------------------- operator restart

deployments_before=$(kubectl get deployments -A -l app.kubernetes.io/managed-by=pkiplane-operator -o name | sort)
stop_component operator
start_operator
sleep 12 # at least one full reconcile pass of every object after the restart
deployments_after=$(kubectl get deployments -A -l app.kubernetes.io/managed-by=pkiplane-operator -o name | sort)
[ "$deployments_before" = "$deployments_after" ] ||
  fail "after an operator restart the endpoint Deployments are the same (no duplicates)" \
    "before: $deployments_before
after: $deployments_after"
out=$(kubectl -n pki wait --for=condition=Ready enrollmentendpoints --all --timeout=60s 2>&1) ||
  fail "all enrollmentendpoints still Ready after the operator restart" "$out"
pass "operator restarted: converges without duplicates ($(wc -l <<<"$deployments_after") Deployments), endpoints Ready"

# ---------------------------------------------------------------------------- leader election

holder() { kubectl -n "$NS" get lease pkiplane-operator -o jsonpath='{.spec.holderIdentity}'; }
leader=$(holder)
e2e/cluster.sh start operator-standby -- env KUBECONFIG="$op_kc" POD_NAMESPACE="$NS" POD_NAME=pkiplane-operator-e2e-1 \
  RUST_LOG="${RUST_LOG:-info}" "$bin" operator --namespace "$NS" --ca-url "https://$ca_ip:9443" \
  --metrics-listen "127.0.0.1:$(free_port)" >/dev/null
sleep 8 # more than one renewal period of the leader
[ "$(holder)" = "$leader" ] || fail "a second operator replica stays passive while the leader renews" "holder now: $(holder)"
grep -q "pkiplane-operator-e2e-1" <<<"$leader" && fail "the standby must not have been the leader"
stop_component operator
standby_leads() { holder | grep -q pkiplane-operator-e2e-1; }
until_ok 40 standby_leads || fail "the standby takes the Lease after the leader stops" "holder: $(holder)"
pass "leader election: the second replica stayed passive, took over after the leader stopped ($(holder))"

# The new leader reconciles: an edited Service port is put back.
port_before=$(kubectl -n pki get service cmp-pkiplane -o jsonpath='{.spec.ports[0].port}')
kubectl -n pki patch service cmp-pkiplane --type=json -p '[{"op":"replace","path":"/spec/ports/0/port","value":9999}]' >/dev/null
port_restored() { [ "$(kubectl -n pki get service cmp-pkiplane -o jsonpath='{.spec.ports[0].port}')" = "$port_before" ]; }
until_ok 40 port_restored || fail "drift: the edited Service cmp-pkiplane gets port $port_before back within 40s"
pass "drift: an edited Service port (9999) is reverted to $port_before by the new leader"

# ---------------------------------------------------------------------------- drift

old_uid=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.metadata.uid}')
kubectl -n pki delete deployment est-pkiplane --wait=true >/dev/null
recreated_ready() {
  local uid ready
  uid=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.metadata.uid}') || return 1
  ready=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.status.readyReplicas}')
  [ -n "$uid" ] && [ "$uid" != "$old_uid" ] && [ "${ready:-0}" -ge 1 ]
}
until_ok 90 recreated_ready || fail "deleted Deployment est-pkiplane recreated and ready within 90s"
pass "drift: the deleted Deployment est-pkiplane came back (new uid) and is ready"

# ---------------------------------------------------------------------------- stranding warning

# With real inventory counts on the status (EST, CMP and ACME certificates above), moving
# the profile to another Issuer is admitted with the webhook's warning, printed by kubectl.
active=$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status.active}')
[ "${active:-0}" -ge 1 ] || fail "enterprise-tls-47d has active certificates on its status" "active=$active"
out=$(kubectl -n pki patch certificateprofile enterprise-tls-47d --type=merge \
  -p '{"spec":{"issuerRef":{"name":"example-root"}}}' 2>&1) || fail "the stranding update was refused" "$out"
grep -q "Warning: .*strands $active active" <<<"$out" || fail "kubectl printed no stranding warning naming $active certificates" "$out"
pass "stranding update admitted; kubectl printed: $(grep -o 'Warning: .*' <<<"$out" | head -1 | cut -c1-110)..."

# ---------------------------------------------------------------------------- deletion

kubectl -n pki delete enrollmentendpoint est --wait=true --timeout=60s >/dev/null ||
  fail "delete enrollmentendpoint est within 60s"
children_gone() {
  [ -z "$(kubectl -n pki get deployment,service,secret,configmap -l app.kubernetes.io/instance=est -o name)" ] &&
    ! kubectl -n pki get deployment est-pkiplane >/dev/null 2>&1 &&
    ! kubectl -n pki get service est-pkiplane >/dev/null 2>&1 &&
    ! grep -q '"deployment": "est-pkiplane"' "$dir/pods.json"
}
until_ok 60 children_gone || fail "the children of enrollmentendpoint est are gone within 60s" \
  "$(kubectl -n pki get deployment,service,secret -l app.kubernetes.io/instance=est 2>&1)"
pass "deletion: EnrollmentEndpoint est's Deployment, Service, Secrets and pods are gone"
