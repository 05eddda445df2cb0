# shellcheck shell=bash
# shellcheck disable=SC2154 # set by e2e/operator.sh, which sources this file
# The admin API in the cluster (docs/operations/admin-api.md), sourced by e2e/operator.sh
# after the protocol clients ran (root.pem, intermediate.pem, est_enroll, in_node, $ca_svc
# are its). The pkiplane CLI on the node talks to port 8443 of Service pkiplane-ca with
# tokens from `kubectl create token`: the CA reviews each with the API server
# (TokenReview) and asks RBAC (SubjectAccessReview). A ServiceAccount bound to
# pkiplane-viewer lists but is refused revoke (403); one bound to pkiplane-revoker in
# namespace pki revokes, with its token in a kubeconfig (--kubeconfig --context); the
# CRL and the OCSP answer of the publication port then show the revocation. The admin's
# client-certificate kubeconfig lists too.

# The CLI: the static binary scripts/image.sh built, or the one inside the image archive.
admin_cli() {
  local built=${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/${PKIPLANE_IMAGE_PROFILE:-image}/pkiplane
  if [ -z "${PKIPLANE_IMAGE_ARCHIVE:-}" ] && [ -x "$built" ]; then
    echo "$built"
    return
  fi
  python3 - "$work/pkiplane.tar" "$work/pkiplane-cli" <<'PY'
import io, json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    index = json.load(t.extractfile("index.json"))
    manifest = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
    for layer in manifest["layers"]:
        blob = t.extractfile("blobs/sha256/" + layer["digest"].split(":")[1]).read()
        with tarfile.open(fileobj=io.BytesIO(blob)) as l:
            for m in l.getmembers():
                if m.name.rstrip("/").endswith("/pkiplane") and m.isfile():
                    with open(sys.argv[2], "wb") as out:
                        out.write(l.extractfile(m).read())
                    sys.exit(0)
sys.exit("no pkiplane binary in the image")
PY
  chmod 0755 "$work/pkiplane-cli"
  echo "$work/pkiplane-cli"
}
pkiplane_cli=$(admin_cli) || fail "the pkiplane CLI binary (built by scripts/image.sh or from the image)"
admin_url=https://$ca_svc:8443
kubectl -n "$NS" get secret pkiplane-ca-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >admin-ca.crt
# A certificate of its own to revoke (the lifecycle's counts keep theirs).
until_ok 15 est_enroll admin-target || fail "EST simpleenroll of the certificate to revoke" "$(est_enroll admin-target 2>&1)"
target_serial=$(openssl x509 -in admin-target.pem -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')

kubectl -n pki create serviceaccount cert-viewer >/dev/null
kubectl -n pki create serviceaccount cert-revoker >/dev/null
kubectl create clusterrolebinding e2e-cert-viewer --clusterrole=pkiplane-viewer --serviceaccount=pki:cert-viewer >/dev/null
kubectl -n pki create rolebinding cert-revoker --clusterrole=pkiplane-revoker --serviceaccount=pki:cert-revoker >/dev/null
viewer_token=$(kubectl -n pki create token cert-viewer --duration=1h)
revoker_token=$(kubectl -n pki create token cert-revoker --duration=1h)
admin() { # TOKEN ARGS...: the CLI against the admin port
  local token=$1; shift
  in_node "$pkiplane_cli" "$@" --server "$admin_url" --ca-file admin-ca.crt --token "$token"
}

# No token, and a token the API server does not know: 401.
code=$(in_node curl -s -o admin-401.json -w '%{http_code}' --cacert admin-ca.crt "$admin_url/admin/v1/certificates")
[ "$code" = 401 ] || fail "the admin API without a token answers 401" "HTTP $code: $(cat admin-401.json)"
out=$(admin "not-a-token" inventory list 2>&1) && fail "a made-up token is refused" "$out"
grep -q "401" <<<"$out" || fail "a made-up token gets 401" "$out"
# The publication port has no admin routes.
code=$(in_node curl -s -o /dev/null -w '%{http_code}' "http://$ca_svc:8080/admin/v1/certificates")
[ "$code" = 404 ] || fail "the public publication port does not serve /admin/v1/" "HTTP $code"
pass "admin API at $admin_url: 401 without a token and for a made-up one; the publication port answers 404 for /admin/v1/"

# The viewer lists (RBAC grants the first request once the binding reached the authorizer).
list_target() { admin "$viewer_token" inventory list --serial "$target_serial" -o json >admin-list.json; }
until_ok 20 list_target || fail "cert-viewer lists through the admin API" "$(admin "$viewer_token" inventory list 2>&1)"
grep -q "\"serial\": \"$target_serial\"" admin-list.json || fail "the list has the EST certificate $target_serial" "$(cat admin-list.json)"
grep -q '"status": "issued"' admin-list.json || fail "the certificate is issued" "$(cat admin-list.json)"
n=$(admin "$viewer_token" inventory list -o json | grep -c '"serial"') || fail "cert-viewer lists every certificate"
out=$(admin "$viewer_token" revoke "$target_serial" --reason keyCompromise 2>&1) &&
  fail "cert-viewer (pkiplane-viewer) may not revoke" "$out"
if ! grep -q "403" <<<"$out" || ! grep -q "may not revoke certificates.pkiplane.dev $target_serial in namespace pki" <<<"$out"; then
  fail "the refusal is 403 from SubjectAccessReview and names the verb" "$out"
fi
pass "ServiceAccount pki/cert-viewer (ClusterRole pkiplane-viewer) lists $n certificates via the CLI and is refused revoke: $(grep -o 'answered.*' <<<"$out" | head -c 160)"

# The cluster admin's kubeconfig user is a client certificate: the CA accepts it as the
# API server would (it chains to the client CA of extension-apiserver-authentication).
out=$(in_node "$pkiplane_cli" inventory list --serial "$target_serial" -o json --server "$admin_url" \
  --ca-file admin-ca.crt --kubeconfig "$KUBECONFIG" 2>&1) || fail "the admin kubeconfig (client certificate) lists" "$out"
grep -q "\"serial\": \"$target_serial\"" <<<"$out" || fail "the client-certificate user sees $target_serial" "$out"
pass "a kubeconfig user with a client certificate (the cluster admin's) lists through the admin API"

# The revoker, with its token in a kubeconfig user.
cat >revoker.kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://kubernetes.default.svc"}}]
users: [{name: cert-revoker, user: {token: "$revoker_token"}}]
contexts: [{name: revoker, context: {cluster: e2e, user: cert-revoker, namespace: pki}}]
current-context: revoker
KC
revoke_target() {
  in_node "$pkiplane_cli" revoke "$target_serial" --reason keyCompromise --server "$admin_url" --ca-file admin-ca.crt \
    --kubeconfig revoker.kubeconfig --context revoker
}
until_ok 20 revoke_target || fail "cert-revoker (pkiplane-revoker in pki) revokes $target_serial" "$(revoke_target 2>&1)"
admin "$viewer_token" inventory list --serial "$target_serial" -o json >admin-list.json
grep -q '"status": "revoked"' admin-list.json || fail "the inventory says revoked" "$(cat admin-list.json)"

# The next CRL of the publication port lists it, and OCSP answers revoked.
in_node curl -fsS "http://$ca_svc:8080/issuers/pki/example-intermediate/crl" -o admin.crl || fail "fetch the CRL after the revocation"
crl=$(openssl crl -inform DER -in admin.crl -CAfile intermediate.pem -noout -text 2>&1) || fail "the CRL verifies" "$crl"
if ! grep -qi "Serial Number: $target_serial" <<<"$crl" || ! grep -q "Key Compromise" <<<"$crl"; then
  fail "the CRL lists $target_serial with reason keyCompromise" "$crl"
fi
ocsp=$(in_node openssl ocsp -url "http://$ca_svc:8080/issuers/pki/example-intermediate/ocsp" -issuer intermediate.pem \
  -cert admin-target.pem -CAfile root.pem -verify_other intermediate.pem 2>&1) || fail "openssl ocsp at the CA's responder" "$ocsp"
for want in "admin-target.pem: revoked" "Reason: keyCompromise" "Response verify OK"; do
  grep -q "$want" <<<"$ocsp" || fail "OCSP answers revoked (keyCompromise): $want" "$ocsp"
done
pass "ServiceAccount pki/cert-revoker (RoleBinding to pkiplane-revoker in pki, token in a kubeconfig) revoked $target_serial; the next CRL lists it (Key Compromise) and openssl ocsp answers revoked"
