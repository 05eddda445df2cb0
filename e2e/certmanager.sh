#!/usr/bin/env bash
# cert-manager issues certificates through pkiplane's ACME endpoint, in a real cluster, as
# a platform team runs it. On the real node (e2e/node.sh: kubelet, containerd, kube-proxy,
# CoreDNS):
#
#   - cert-manager v1.21.1's controller as a pod, from an image built here FROM scratch out
#     of scripts/tools/cert-manager.sh's binary, installed with cert-manager's own chart
#     (its ServiceAccount and ClusterRoles, not cluster-admin); its CRDs installed together
#     with pkiplane's. Its admission webhook and cainjector are left out (see
#     e2e/certmanager/drop-webhook.sh): neither takes part in ACME issuance.
#   - pkiplane from its chart and image (operator, CA service, webhook), and the objects of
#     e2e/certmanager/pkiplane.yaml: two ACME EnrollmentEndpoints (one with EAB required)
#     whose pods the operator runs.
#   - bind9 from Debian, started by this script inside the node's network namespace at
#     the node IP, authoritative for example.test, dynamic updates with a TSIG key.
#
# Checked: a Certificate reaches Ready by dns-01 (cert-manager's rfc2136 provider) and by
# http-01 (cert-manager's acmesolver pod, reached through a Service standing in for an
# ingress controller); tls.crt verifies against the pkiplane root with `openssl verify`,
# stops below the root and carries exactly the profile's validity and extensions; the
# issuance shows in the CertificateProfile and EnrollmentEndpoint counts within 30 s;
# `spec.acme.profile` selects the other profile; a ClusterIssuer without the EAB key stays
# not Ready with the ACME error in its status (and one with it issues); a name the profile
# forbids gets no Challenge and its status names the profile rule; a renewal (the Issuing
# condition, as `cmctl renew` sets it) gets a new certificate linked to the old one in the
# inventory (ARI `replaces`).
#
# Usage: e2e/certmanager.sh
# Env:   PKIPLANE_IMAGE_PROFILE  passed to scripts/image.sh (release or dev while iterating)
#        PKIPLANE_E2E_KEEP=1     leave the node up at the end (prints how to remove it)
# Each step prints PASS or FAIL; the first failure stops the run and prints what the
# cluster shows. The last line is "certmanager: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=e2e/lib/chart.sh
. e2e/lib/chart.sh

CM_VERSION=v1.21.1
CM_NS=cert-manager
PK_NS=pkiplane-system
EP_NS=pki-cm    # pkiplane's objects (e2e/certmanager/pkiplane.yaml)
APP_NS=apps     # the Certificates
ZONE=example.test
DNS_PORT=53
HTTP01_IP=10.96.0.80 # the Service in front of the http-01 solver pods (static range)
EAB_KID=team-a
EAB_KEY=e2e-eab-hmac-key-for-team-a-0123456789 # as in pkiplane.yaml
ACME_URL=https://acme-pkiplane.$EP_NS.svc/directory
ACME_EAB_URL=https://acme-eab-pkiplane.$EP_NS.svc/directory

# ---------------------------------------------------------------------------- reporting

unset PKIPLANE_E2E_DIR PKIPLANE_E2E_CRDS
me=certmanager
# shellcheck source=e2e/lib/flow.sh
. e2e/lib/flow.sh

show_state() {
  local f
  say "----- pods"
  kubectl get pods -A -o wide 2>&1 | sed 's/^/certmanager:      | /' >&2 || true
  say "----- cert-manager objects"
  kubectl get clusterissuers,certificates,certificaterequests,orders,challenges -A 2>&1 |
    sed 's/^/certmanager:      | /' >&2 || true
  say "----- cert-manager controller (last 30 lines)"
  kubectl -n "$CM_NS" logs deploy/cert-manager --tail=30 2>&1 | sed 's/^/certmanager:      | /' >&2 || true
  say "----- pkiplane CA service (last 15 lines, and of its previous container)"
  { kubectl -n "$PK_NS" logs deploy/pkiplane-ca --tail=15; kubectl -n "$PK_NS" logs deploy/pkiplane-ca --previous --tail=15; } 2>&1 |
    sed 's/^/certmanager:      | /' >&2 || true
  say "----- ACME endpoint pods (last 15 lines)"
  kubectl -n "$EP_NS" logs -l app.kubernetes.io/component=endpoint --tail=15 --prefix 2>&1 |
    sed 's/^/certmanager:      | /' >&2 || true
  f="$PKIPLANE_E2E_DIR/logs/named.log"
  if [ -s "$f" ]; then
    say "----- named (last 15 lines)"
    tail -n 15 "$f" | sed 's/^/certmanager:      | /' >&2
  fi
}

on_failure=show_state
trap flow_finish EXIT
trap 'say "interrupted"; exit 130' INT TERM
work=$(mktemp -d)

# ---------------------------------------------------------------------------- tools and images

cm=$(scripts/tools/cert-manager.sh)
# bind9 (named, tsig-keygen), dig and jq from Debian, only what is missing.
missing=()
for pair in named:bind9 tsig-keygen:bind9 dig:bind9-dnsutils jq:jq; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (Debian)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# cert-manager's images: each binary alone in a FROM scratch image, as a non-root user
# (the chart's and the solver pods' runAsNonRoot needs a numeric user).
cm_image() { # NAME BINARY
  local ref="localhost/pkiplane-e2e/$1:$CM_VERSION" ctx="$work/image-$1"
  mkdir -p "$ctx"
  cp "$cm/bin/$2" "$ctx/$2"
  printf 'FROM scratch\nCOPY %s /usr/local/bin/%s\nUSER 65532:65532\nENTRYPOINT ["/usr/local/bin/%s"]\n' "$2" "$2" "$2" \
    >"$ctx/Containerfile"
  podman build -q --timestamp 0 -f "$ctx/Containerfile" -t "$ref" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "$ref"
}
controller_image=$(cm_image cm-controller cm-controller)
solver_image=$(cm_image cm-acmesolver cm-acmesolver)
# pkiplane's image as an OCI archive (e2e/lib/chart.sh: $PKIPLANE_IMAGE_ARCHIVE, or built).
pkiplane_image=$(chart_image "$work/pkiplane.tar")
pass "images: $controller_image, $solver_image (FROM scratch, uid 65532), $pkiplane_image"

# ---------------------------------------------------------------------------- node

# Both CRD sets at once, Established before anything else starts.
cat crds/all.yaml >"$work/crds.yaml"
for f in "$cm"/crds/*.yaml; do
  printf '\n---\n' >>"$work/crds.yaml"
  cat "$f" >>"$work/crds.yaml"
done
eval "$(PKIPLANE_E2E_CRDS="$work/crds.yaml" e2e/node.sh up)"
NODE_IP=$PKIPLANE_E2E_NODE_IP
for img in "$controller_image" "$solver_image"; do
  e2e/node.sh load-image "$img"
done
chart_load "$work/pkiplane.tar" "$pkiplane_image"
out=$(kubectl get crd issuers.cert-manager.io issuers.pkiplane.dev -o name 2>&1) || fail "both Issuer CRDs" "$out"
group=$(kubectl explain issuers 2>&1 | sed -n 's/^GROUP: *//p')
[ "$group" = cert-manager.io ] || fail "with both CRD sets, the bare name issuers means cert-manager's" "$group"
out=$(kubectl explain pkiss 2>&1 | sed -n 's/^GROUP: *//p')
[ "$out" = pkiplane.dev ] || fail "the short name pkiss means issuers.pkiplane.dev" "$out"
pass "node up with both CRD sets: issuers means cert-manager's, pkiss and issuers.pkiplane.dev pkiplane's"

# ---------------------------------------------------------------------------- bind9

bind="$PKIPLANE_E2E_DIR/bind"
mkdir -p "$bind"
tsig-keygen -a hmac-sha256 cm-e2e >"$bind/tsig.key"
tsig_secret=$(sed -n 's/^[[:space:]]*secret "\(.*\)";/\1/p' "$bind/tsig.key")
[ -n "$tsig_secret" ] || fail "tsig-keygen wrote a key" "$(cat "$bind/tsig.key")"
cat >"$bind/$ZONE.zone" <<EOF
\$TTL 5
@    IN SOA ns.$ZONE. hostmaster.$ZONE. 1 60 60 600 5
@    IN NS  ns.$ZONE.
ns   IN A   $NODE_IP
web  IN A   $HTTP01_IP
EOF
cat >"$bind/named.conf" <<EOF
include "$bind/tsig.key";
controls { };
options {
  directory "$bind";
  pid-file "$bind/named.pid";
  session-keyfile "$bind/session.key";
  managed-keys-directory "$bind";
  listen-on port $DNS_PORT { $NODE_IP; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  dnssec-validation no;
  notify no;
};
zone "$ZONE" {
  type primary;
  file "$bind/$ZONE.zone";
  update-policy { grant cm-e2e. zonesub TXT; };
};
EOF
chmod -R go-rwx "$bind"
e2e/node.sh start named -- e2e/node.sh exec -- named -g -c "$bind/named.conf" >/dev/null
web_answer() { [ "$(e2e/node.sh exec -- dig +short +time=1 +tries=1 "@$NODE_IP" "web.$ZONE" A)" = "$HTTP01_IP" ]; }
until_ok 30 web_answer || fail "bind9 answers web.$ZONE at $NODE_IP:$DNS_PORT" "$(tail -n 20 "$PKIPLANE_E2E_DIR/logs/named.log")"
pass "bind9 (Debian) in the node's network namespace at $NODE_IP:$DNS_PORT, zone $ZONE, TSIG key cm-e2e"

# ---------------------------------------------------------------------------- pkiplane

kubectl create namespace "$PK_NS" >/dev/null
out=$(chart_install pkiplane "$PK_NS" --skip-crds --set image.pullPolicy=Never 2>&1) || fail "helm install pkiplane" "$out"
out=$(kubectl -n "$PK_NS" rollout status deployment/pkiplane-operator deployment/pkiplane-ca deployment/pkiplane-webhook \
  --timeout=180s 2>&1) || fail "pkiplane's Deployments roll out" "$out"
# Admission of pkiplane kinds fails closed until the operator has filled in the webhook's
# caBundle: retry the apply.
apply_pkiplane() { kubectl apply -f e2e/certmanager/pkiplane.yaml; }
until_ok 60 apply_pkiplane || fail "kubectl apply -f e2e/certmanager/pkiplane.yaml" "$(apply_pkiplane 2>&1)"
out=$(kubectl -n "$EP_NS" wait --for=condition=Ready --timeout=180s \
  issuers.pkiplane.dev/cm-root issuers.pkiplane.dev/cm-issuing certificateprofiles/web-30d certificateprofiles/web-7d \
  enrollmentendpoints/acme enrollmentendpoints/acme-eab 2>&1) || fail "pkiplane objects Ready" "$out"
urls=$(kubectl -n "$EP_NS" get enrollmentendpoints acme -o jsonpath='{.status.urls}')
[[ $urls == *"\"$ACME_URL\""* ]] || fail "the ACME endpoint announces $ACME_URL" "$urls"
# caBundle: the root that signed the endpoints' TLS certificates.
kubectl -n "$EP_NS" get issuers.pkiplane.dev cm-root -o jsonpath='{.status.certificate}' >"$work/root.pem"
openssl x509 -in "$work/root.pem" -noout 2>/dev/null || fail "the root certificate from the Issuer's status" "$(cat "$work/root.pem")"
ca_bundle=$(base64 -w0 <"$work/root.pem")
pass "pkiplane (chart, image) with ACME endpoints Ready at $ACME_URL and $ACME_EAB_URL"

# ---------------------------------------------------------------------------- cert-manager

cat >"$work/cm-values.yaml" <<EOF
crds: {enabled: false}
cainjector: {enabled: false}
startupapicheck: {enabled: false}
prometheus: {enabled: false}
image: {repository: localhost/pkiplane-e2e/cm-controller, tag: $CM_VERSION, pullPolicy: Never}
acmesolver:
  image: {repository: localhost/pkiplane-e2e/cm-acmesolver, tag: $CM_VERSION}
featureGates: ACMEUseARI=true
extraArgs:
  # The zone's only server is the test's bind9: cert-manager's propagation checks and
  # its http-01 self-check ask it (cluster DNS knows only cluster.local).
  - --dns01-recursive-nameservers-only
  - --dns01-recursive-nameservers=$NODE_IP:$DNS_PORT
  - --acme-http01-solver-nameservers=$NODE_IP:$DNS_PORT
  # Its propagation self-checks every 2 s instead of 10 s: the records are there at once.
  - --dns01-check-retry-period=2s
EOF
out=$(CM_RELEASE=cert-manager chart_helm install cert-manager "$cm/chart" --namespace "$CM_NS" --create-namespace \
  --skip-crds -f "$work/cm-values.yaml" --post-renderer e2e/certmanager/drop-webhook.sh 2>&1) ||
  fail "helm install cert-manager (its chart from the tool cache)" "$out"
out=$(kubectl -n "$CM_NS" rollout status deployment/cert-manager --timeout=180s 2>&1) ||
  fail "cert-manager's controller rolls out" "$out"
sa=$(kubectl -n "$CM_NS" get deployment cert-manager -o jsonpath='{.spec.template.spec.serviceAccountName}')
[ "$sa" = cert-manager ] || fail "the controller runs as ServiceAccount cert-manager" "$sa"
admin=$(kubectl get clusterrolebindings -o json |
  jq -r --arg ns "$CM_NS" '.items[] | select(.roleRef.name == "cluster-admin") | .subjects[]? | select(.namespace == $ns) | .name')
[ -z "$admin" ] || fail "no cert-manager ServiceAccount is bound to cluster-admin" "$admin"
out=$(kubectl auth can-i create clusterrolebindings --as="system:serviceaccount:$CM_NS:cert-manager" 2>&1) &&
  fail "cert-manager's ServiceAccount cannot create ClusterRoleBindings" "$out"
pass "cert-manager $CM_VERSION controller pod from its chart, ServiceAccount cert-manager (chart RBAC, not cluster-admin)"

# ---------------------------------------------------------------------------- issuers

eab_b64url=$(printf '%s' "$EAB_KEY" | base64 -w0 | tr '+/' '-_' | tr -d '=')
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: bind-tsig, namespace: $CM_NS}
stringData: {secret: "$tsig_secret"}
---
apiVersion: v1
kind: Secret
metadata: {name: pkiplane-eab-team-a, namespace: $CM_NS}
stringData: {secret: "$eab_b64url"}
EOF
# cluster_issuer NAME SERVER SOLVER [EXTRA]: a ClusterIssuer for a pkiplane ACME endpoint,
# trusting the pkiplane root; SOLVER is dns01 (rfc2136 into bind9) or http01; EXTRA, one
# more line of spec.acme.
cluster_issuer() {
  local solver
  case $3 in
    dns01) solver="dns01: {rfc2136: {nameserver: \"$NODE_IP:$DNS_PORT\", tsigKeyName: cm-e2e, tsigAlgorithm: HMACSHA256, tsigSecretSecretRef: {name: bind-tsig, key: secret}}}" ;;
    http01) solver="http01: {ingress: {ingressClassName: e2e-none, serviceType: ClusterIP}}" ;;
  esac
  cat <<EOF
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: $1}
spec:
  acme:
    server: $2
    caBundle: $ca_bundle
    privateKeySecretRef: {name: $1-account}
    ${4:-}
    solvers:
      - $solver
EOF
}
{
  cluster_issuer pkiplane-dns01 "$ACME_URL" dns01
  cluster_issuer pkiplane-http01 "$ACME_URL" http01
  cluster_issuer pkiplane-short "$ACME_URL" dns01 "profile: short"
  cluster_issuer pkiplane-eab-missing "$ACME_EAB_URL" dns01
  cluster_issuer pkiplane-eab "$ACME_EAB_URL" dns01 \
    "externalAccountBinding: {keyID: $EAB_KID, keySecretRef: {name: pkiplane-eab-team-a, key: secret}}"
} | kubectl apply -f - >/dev/null
out=$(kubectl wait --for=condition=Ready --timeout=120s \
  clusterissuers/pkiplane-dns01 clusterissuers/pkiplane-http01 clusterissuers/pkiplane-short clusterissuers/pkiplane-eab 2>&1) ||
  fail "ClusterIssuers Ready (ACME accounts registered, one with EAB)" "$out"
pass "ClusterIssuers Ready: dns-01 (rfc2136), http-01, profile short, EAB key $EAB_KID"

eab_error() {
  kubectl get clusterissuer pkiplane-eab-missing \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}'
}
eab_refused() { [[ $(eab_error) == False*externalAccountRequired* ]]; }
until_ok 60 eab_refused || fail "ClusterIssuer without the EAB key: Ready False with the ACME error" "$(eab_error)"
sleep 5
eab_refused || fail "ClusterIssuer without the EAB key stays not Ready" "$(eab_error)"
pass "ClusterIssuer without the EAB key not Ready: $(eab_error | cut -c1-160)"

# ---------------------------------------------------------------------------- certificates

kubectl create namespace "$APP_NS" >/dev/null
certificate() { # NAME DNSNAME ISSUER [ECDSA|RSA]
  local size=256
  [ "${4:-ECDSA}" = ECDSA ] || size=2048
  cat <<EOF
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: $1, namespace: $APP_NS}
spec:
  secretName: $1-tls
  dnsNames: [$2]
  privateKey: {algorithm: ${4:-ECDSA}, size: $size, rotationPolicy: Always}
  issuerRef: {group: cert-manager.io, kind: ClusterIssuer, name: $3}
EOF
}
# The http-01 solver pods answer behind this Service at the address web.example.test has
# in bind9: the part an ingress controller plays in a cluster that has one.
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: http01-solvers, namespace: $APP_NS}
spec:
  clusterIP: $HTTP01_IP
  selector: {acme.cert-manager.io/http01-solver: "true"}
  ports: [{name: http, port: 80, targetPort: 8089}]
EOF

# All Certificates at once: each dns-01 issuance waits out the TXT record's TTL (60 s, set
# by cert-manager's rfc2136 provider) after its propagation check, so in parallel they
# take that minute once. An RSA key for web-short: keyEncipherment is in web-7d's key
# usage, and only RSA keys get it (pkiplane leaves it out for ECDSA keys, which cannot
# encipher).
{
  certificate web-dns01 "dns01.$ZONE" pkiplane-dns01
  echo ---
  certificate web-http01 "web.$ZONE" pkiplane-http01
  echo ---
  certificate web-short "short.$ZONE" pkiplane-short RSA
  echo ---
  certificate web-eab "eab.$ZONE" pkiplane-eab
  echo ---
  certificate forbidden "www.forbidden.test" pkiplane-dns01
} | kubectl apply -f - >/dev/null
ready() { # NAME
  kubectl -n "$APP_NS" wait --for=condition=Ready --timeout=180s "certificate/$1" >/dev/null 2>&1
}
cert_state() { kubectl -n "$APP_NS" get certificate "$1" -o jsonpath='{.status.conditions}'; }
ready web-dns01 || fail "Certificate web-dns01 (dns-01, rfc2136) Ready" "$(cert_state web-dns01)"
pass "Certificate for dns01.$ZONE Ready by dns-01 (rfc2136 into bind9)"
ready web-http01 || fail "Certificate web-http01 (http-01, acmesolver pod) Ready" "$(cert_state web-http01)"
solver_ran=$(kubectl get events -n "$APP_NS" -o json |
  jq -r '[.items[] | select(.involvedObject.kind == "Pod" and (.involvedObject.name | startswith("cm-acme-http-solver")) and .reason == "Started")] | length')
[ "$solver_ran" -ge 1 ] || fail "an acmesolver pod ran" "$(kubectl get events -n "$APP_NS" 2>&1 | tail -n 20)"
pass "Certificate for web.$ZONE Ready by http-01 (cert-manager's acmesolver pod)"

# check_tls SECRET NAME DAYS "KU" "EKU": the Secret's chain verifies against the root,
# stops below it, and the leaf carries exactly the profile's validity and extensions.
check_tls() {
  local secret=$1 name=$2 days=$3 ku=$4 eku=$5 d="$work/$1"
  mkdir -p "$d"
  kubectl -n "$APP_NS" get secret "$secret" -o jsonpath='{.data.tls\.crt}' | base64 -d >"$d/tls.crt"
  awk -v d="$d" '/BEGIN CERT/ {n++} {print > (d "/c" n ".pem")}' "$d/tls.crt"
  local count
  count=$(grep -c 'BEGIN CERTIFICATE' "$d/tls.crt")
  [ "$count" = 2 ] || fail "$secret: tls.crt holds the leaf and the issuing CA ($count certificates)" "$(cat "$d/tls.crt")"
  cmp -s <(openssl x509 -in "$d/c2.pem" -outform DER) <(openssl x509 -in "$work/root.pem" -outform DER) &&
    fail "$secret: the root is not in tls.crt"
  out=$(openssl verify -CAfile "$work/root.pem" -untrusted "$d/c2.pem" "$d/c1.pem" 2>&1) ||
    fail "$secret: openssl verify against the pkiplane root" "$out"
  local nb na
  nb=$(date -d "$(openssl x509 -in "$d/c1.pem" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$d/c1.pem" -noout -enddate | cut -d= -f2)" +%s)
  [ $((na - nb)) = $((days * 86400)) ] || fail "$secret: validity exactly ${days}d" "notBefore $nb notAfter $na"
  local text exts expected
  text=$(openssl x509 -in "$d/c1.pem" -noout -text)
  exts=$(sed -n '/X509v3 extensions:/,/Signature Algorithm:/p' <<<"$text" |
    grep -E '^ {12}[A-Za-z][A-Za-z0-9 ]*: ?(critical)?$' | sed 's/^ *//' | sort | tr '\n' ';')
  expected=$6
  [ "$exts" = "$expected" ] || fail "$secret: exactly the profile's extensions" "got      $exts
expected $expected
$text"
  grep -A1 'X509v3 Key Usage' <<<"$text" | tail -n 1 | grep -qx " *$ku" || fail "$secret: key usage $ku" "$text"
  grep -A1 'X509v3 Extended Key Usage' <<<"$text" | tail -n 1 | grep -qx " *$eku" || fail "$secret: EKU $eku" "$text"
  grep -A1 'Subject Alternative Name' <<<"$text" | tail -n 1 | grep -qx " *DNS:$name" || fail "$secret: SAN DNS:$name only" "$text"
  # The profile's URLs, and no others.
  local uris
  uris=$({ grep -oE '(URI|CA Issuers - URI):[^ ]+' <<<"$text" || true; } | sort | tr '\n' ' ')
  [ "$uris" = "$7" ] || fail "$secret: the profile's CRL and AIA URLs" "got      $uris
expected $7"
  openssl x509 -in "$d/c1.pem" -noout -serial | cut -d= -f2
}
ca_url="http://pkiplane-ca.$PK_NS.svc:8080/issuers/$EP_NS/cm-issuing"
uris_30d="CA Issuers - URI:$ca_url/ca.crt URI:$ca_url/crl "
exts_30d="Authority Information Access: ;X509v3 Authority Key Identifier: ;X509v3 Basic Constraints: critical;X509v3 CRL Distribution Points: ;X509v3 Extended Key Usage: ;X509v3 Key Usage: critical;X509v3 Subject Alternative Name: ;X509v3 Subject Key Identifier: ;"
exts_7d="X509v3 Authority Key Identifier: ;X509v3 Basic Constraints: critical;X509v3 Extended Key Usage: ;X509v3 Key Usage: critical;X509v3 Subject Alternative Name: ;X509v3 Subject Key Identifier: ;"
serial_dns01=$(check_tls web-dns01-tls "dns01.$ZONE" 30 "Digital Signature" "TLS Web Server Authentication" "$exts_30d" "$uris_30d")
check_tls web-http01-tls "web.$ZONE" 30 "Digital Signature" "TLS Web Server Authentication" "$exts_30d" "$uris_30d" >/dev/null
pass "tls.crt = leaf + issuing CA (no root), openssl verify OK, exactly 30d and web-30d's extensions (both)"

profile_count() { kubectl -n "$EP_NS" get certificateprofile web-30d -o jsonpath='{.status.perProtocol.ACME.issued}'; }
endpoint_count() { kubectl -n "$EP_NS" get enrollmentendpoint acme -o jsonpath='{.status.issued}'; }
counted() { [ "$(profile_count)" -ge 2 ] && [ "$(endpoint_count)" -ge 2 ]; } 2>/dev/null
until_ok 30 counted || fail "web-30d .status.perProtocol.ACME.issued and acme .status.issued >= 2 within 30s" \
  "profile $(profile_count) endpoint $(endpoint_count)"
pass "issuance counted on CertificateProfile web-30d (ACME $(profile_count)) and EnrollmentEndpoint acme ($(endpoint_count)) within 30s"

# ---------------------------------------------------------------------------- profile, EAB

ready web-short || fail "Certificate web-short (spec.acme.profile: short) Ready" "$(cert_state web-short)"
check_tls web-short-tls "short.$ZONE" 7 "Digital Signature, Key Encipherment" \
  "TLS Web Server Authentication, TLS Web Client Authentication" "$exts_7d" "" >/dev/null
short_counted() { [ "$(kubectl -n "$EP_NS" get certificateprofile web-7d -o jsonpath='{.status.issued}')" -ge 1 ]; } 2>/dev/null
until_ok 30 short_counted || fail "web-7d .status.issued >= 1 within 30s"
pass "spec.acme.profile short: the certificate follows web-7d (7d, RSA key: digitalSignature+keyEncipherment, serverAuth+clientAuth, no CRL/AIA)"
ready web-eab || fail "Certificate web-eab (EAB account) Ready" "$(cert_state web-eab)"
pass "a ClusterIssuer with the EAB key issues"

# ---------------------------------------------------------------------------- forbidden name

cr_failure() {
  kubectl -n "$APP_NS" get certificaterequests -o json |
    jq -r '.items[] | select(.metadata.annotations["cert-manager.io/certificate-name"] == "forbidden")
      | .status.conditions[]? | select(.type == "Ready" and .status == "False" and .reason == "Failed") | .message'
}
refused() { grep -q 'subjectAltNames.dns.suffixes' <<<"$(cr_failure)"; }
until_ok 90 refused || fail "the CertificateRequest for www.forbidden.test fails naming subjectAltNames.dns.suffixes" \
  "$(cr_failure; kubectl -n "$APP_NS" get orders -o yaml 2>&1 | tail -n 30)"
challenges=$(kubectl -n "$APP_NS" get challenges -o json | jq -r '[.items[] | select(.spec.dnsName == "www.forbidden.test")] | length')
[ "$challenges" = 0 ] || fail "no Challenge for www.forbidden.test" "$(kubectl -n "$APP_NS" get challenges -o yaml)"
order_state=$(kubectl -n "$APP_NS" get orders -o json |
  jq -r '.items[] | select(.spec.dnsNames == ["www.forbidden.test"]) | .status.state + " " + .status.reason')
[[ $order_state == errored* ]] || fail "the Order for www.forbidden.test errored at newOrder" "$order_state"
cert_msg() { kubectl -n "$APP_NS" get certificate forbidden -o jsonpath='{.status.conditions[?(@.type=="Issuing")].message}'; }
cert_names_rule() { [[ $(cert_msg) == *rejectedIdentifier*subjectAltNames.dns.suffixes* ]]; }
until_ok 30 cert_names_rule || fail "the Certificate's Issuing condition names the rule" "$(cert_msg)"
pass "www.forbidden.test refused at newOrder, no Challenge; CertificateRequest and Certificate say: $(cr_failure | grep -o 'rejectedIdentifier.*' | cut -c1-150)"

# ---------------------------------------------------------------------------- renewal

# What `cmctl renew` does: add the Issuing condition (reason ManuallyTriggered). Only
# once cert-manager has dropped its own Issuing condition of the first issuance (Ready can
# come first): appending a second one is refused as a duplicate, and is then retried.
trigger_renewal() {
  local now
  [ -z "$(kubectl -n "$APP_NS" get certificate web-dns01 -o jsonpath='{.status.conditions[?(@.type=="Issuing")].type}')" ] ||
    return 1
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kubectl -n "$APP_NS" patch certificate web-dns01 --subresource=status --type=json -p "[{\"op\": \"add\",
    \"path\": \"/status/conditions/-\", \"value\": {\"type\": \"Issuing\", \"status\": \"True\",
    \"reason\": \"ManuallyTriggered\", \"message\": \"Certificate re-issuance manually triggered\",
    \"lastTransitionTime\": \"$now\"}}]" >/dev/null
}
until_ok 60 trigger_renewal || fail "renewal triggered (Issuing condition added)" "$(cert_state web-dns01)"
renewed() {
  [ "$(kubectl -n "$APP_NS" get certificate web-dns01 -o jsonpath='{.status.revision}')" -ge 2 ] &&
    ready web-dns01
}
until_ok 180 renewed || fail "web-dns01 renewed (revision 2, Ready)" "$(cert_state web-dns01)"
serial_new=$(check_tls web-dns01-tls "dns01.$ZONE" 30 "Digital Signature" "TLS Web Server Authentication" "$exts_30d" "$uris_30d")
[ "$serial_new" != "$serial_dns01" ] || fail "the renewal is a new certificate" "$serial_new"
# The running CA owns its data directory: the inventory is asked through its admin API,
# with the token of a ServiceAccount bound to pkiplane-viewer (docs/operations/admin-api.md).
kubectl -n "$PK_NS" get serviceaccount inventory-reader >/dev/null 2>&1 ||
  kubectl -n "$PK_NS" create serviceaccount inventory-reader >/dev/null
kubectl get clusterrolebinding e2e-inventory-reader >/dev/null 2>&1 ||
  kubectl create clusterrolebinding e2e-inventory-reader --clusterrole=pkiplane-viewer \
    --serviceaccount="$PK_NS:inventory-reader" >/dev/null
reader_token=$(kubectl -n "$PK_NS" create token inventory-reader --duration=1h)
inventory() { # SERIAL
  kubectl -n "$PK_NS" exec deploy/pkiplane-ca -- pkiplane inventory show "$1" -o json --server https://127.0.0.1:8443 \
    --tls-server-name "pkiplane-ca.$PK_NS.svc" --ca-file /etc/pkiplane/tls/ca.crt --token "$reader_token"
}
until_ok 20 inventory "$serial_new" || true
record=$(inventory "$serial_new" 2>&1) || fail "pkiplane inventory show $serial_new (through the admin API)" "$record"
renewed_from=$(jq -r '.renewedFrom // empty' <<<"$record")
hex() { tr -d ':' | tr 'A-F' 'a-f' | sed 's/^0*//'; }
[ "$(hex <<<"$renewed_from")" = "$(hex <<<"$serial_dns01")" ] ||
  fail "the inventory links the renewal to the certificate it replaces (ARI replaces)" "$record"
pass "renewal (Issuing condition as cmctl renew sets it): new certificate $serial_new renewed_from $serial_dns01 in the inventory"
