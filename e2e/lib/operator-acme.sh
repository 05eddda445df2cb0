# shellcheck shell=bash
# shellcheck disable=SC2154 # set by the script that sources this file
# The operator flow's ACME part (sourced by e2e/operator.sh, in $clients): certbot reaches
# the endpoint only through its Service on port 443, at the URL the endpoint announces,
# resolved by the cluster DNS in the node's network namespace (no forwarder, no port in any
# URL); the endpoint pod validates http-01 by connecting back to certbot.
#
# Where certbot answers: a headless Service acme-client in pki whose one endpoint is the
# node's address (where certbot's standalone server listens), so the endpoint pod resolves
# acme-client.pki.svc through CoreDNS as it would any workload's name. Validation refuses
# private addresses unless allowed: the endpoint's allowedTargetRanges gets the node's
# address, which also shows a config-hash rollout (the pods are replaced with the new
# configuration, and only those).

acme_port=$(kubectl -n pki get service acme-pkiplane -o jsonpath='{.spec.ports[0].port}')
[ "$acme_port" = 443 ] || fail "Service acme-pkiplane listens on 443 (the default with TLS)" "port $acme_port"
acme_url=https://acme-pkiplane.pki.svc/directory
out=$(in_node curl -fsS --cacert root.pem "$acme_url" -o acme-directory.json 2>&1) ||
  fail "ACME directory $acme_url through Service acme-pkiplane" "$out"
new_order=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["newOrder"])' acme-directory.json)
case $new_order in
  https://acme-pkiplane.pki.svc/*) ;;
  *) fail "the directory's URLs name the Service without a port" "newOrder: $new_order" ;;
esac
! grep -q ':14000' acme-directory.json || fail "the directory announces the container port" "$(cat acme-directory.json)"
pass "ACME directory at $acme_url (Service port 443) announces $new_order"

kubectl apply -f - >/dev/null <<EOF || fail "Service acme-client (the node's address) for http-01"
apiVersion: v1
kind: Service
metadata: {name: acme-client, namespace: pki}
spec:
  clusterIP: None
  ports: [{name: http, port: 5002, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: acme-client-node
  namespace: pki
  labels: {kubernetes.io/service-name: acme-client}
addressType: IPv4
ports: [{name: http, port: 5002, protocol: TCP}]
endpoints: [{addresses: ["$PKIPLANE_E2E_NODE_IP"]}]
EOF

# ---------------------------------------------------------------------------- config-hash rollout

config_hash() {
  kubectl -n pki get deployment acme-pkiplane -o jsonpath='{.spec.template.metadata.annotations.pkiplane\.dev/config-hash}'
}
hash_before=$(config_hash)
acme_pods_before=$(pods_of pki acme-pkiplane)
others_before=$(for d in est scep cmp; do pods_of pki "$d-pkiplane"; done)
kubectl -n pki patch enrollmentendpoint acme --type=merge -p "{\"spec\":{\"acme\":{\"validation\":{\"allowedTargetRanges\":[\"127.0.0.0/8\",\"::1\",\"$PKIPLANE_E2E_NODE_IP/32\"]}}}}" >/dev/null ||
  fail "kubectl patch enrollmentendpoint acme: allowedTargetRanges += $PKIPLANE_E2E_NODE_IP/32"
hash_changed() { [ -n "$(config_hash)" ] && [ "$(config_hash)" != "$hash_before" ]; }
until_ok 30 hash_changed || fail "the acme Deployment's config-hash changes within 30s"
out=$(kubectl -n pki rollout status deployment/acme-pkiplane --timeout=120s 2>&1) || fail "acme-pkiplane rolls out" "$out"
rolled_out() {
  local now
  now=$(pods_of pki acme-pkiplane)
  [ -n "$now" ] && [ "$(wc -w <<<"$now")" = "$(wc -w <<<"$acme_pods_before")" ] || return 1
  for p in $acme_pods_before; do grep -qw "$p" <<<"$now" && return 1; done
  for p in $now; do
    [ "$(kubectl -n pki get pod "$p" -o jsonpath='{.metadata.annotations.pkiplane\.dev/config-hash}')" = "$(config_hash)" ] || return 1
  done
}
until_ok 60 rolled_out || fail "the acme pods are replaced by pods with the new config-hash" \
  "before: $acme_pods_before, now: $(pods_of pki acme-pkiplane)"
[ "$(for d in est scep cmp; do pods_of pki "$d-pkiplane"; done)" = "$others_before" ] ||
  fail "the other endpoints' pods are untouched by the acme change"
pass "config-hash rollout: acme's configuration changed (hash ${hash_before:0:12} -> $(config_hash | cut -c1-12)), pods $acme_pods_before-> $(pods_of pki acme-pkiplane)(the other endpoints' pods unchanged)"

# ---------------------------------------------------------------------------- certbot

certbot=$("$root"/scripts/tools/certbot.sh)
certbot_order() { # CERT-NAME: an order for acme-client.pki.svc, saved under CERT-NAME
  in_node env REQUESTS_CA_BUNDLE="$clients/root.pem" "$certbot" certonly --standalone --non-interactive \
    --http-01-port 5002 --http-01-address "$PKIPLANE_E2E_NODE_IP" -d acme-client.pki.svc --cert-name "$1" \
    --server "$acme_url" --agree-tos -m ops@example.com --config-dir "$clients/certbot/config" \
    --work-dir "$clients/certbot/work" --logs-dir "$clients/certbot/logs" 2>&1
}
# kube-proxy and CoreDNS pick up the new pod a moment after it is Ready.
until_ok 20 certbot_order first || fail "certbot certonly (http-01) at $acme_url, through Service acme-pkiplane only" \
  "$(certbot_order first)"
live=$clients/certbot/config/live/first
out=$(openssl verify -CAfile root.pem -untrusted "$live/chain.pem" "$live/cert.pem" 2>&1) ||
  fail "openssl verify of the certbot certificate" "$out"
grep -q "TLS Web Server Authentication" <<<"$(openssl x509 -in "$live/cert.pem" -noout -ext extendedKeyUsage)" ||
  fail "the ACME certificate has serverAuth" "$(openssl x509 -in "$live/cert.pem" -noout -text)"
grep -q "DNS:acme-client.pki.svc" <<<"$(openssl x509 -in "$live/cert.pem" -noout -ext subjectAltName)" ||
  fail "the ACME certificate names acme-client.pki.svc" "$(openssl x509 -in "$live/cert.pem" -noout -ext subjectAltName)"
pass "ACME (acceptance): certbot completed an order at $acme_url through Service port 443 only (no forwarder), http-01 validated at acme-client.pki.svc -> $PKIPLANE_E2E_NODE_IP:5002, openssl verify OK, serverAuth EKU"
