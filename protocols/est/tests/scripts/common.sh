# Shared settings of the EST device scripts: what an embedded Linux device has (a shell,
# curl and openssl) and nothing else. Source it; every script takes these variables:
#
#   EST_URL     EST base URL with or without a label, e.g.
#               https://est.example.com:8443/.well-known/est/ldevid   (required)
#   EST_CA      PEM to trust the server's TLS certificate                (required)
#   EST_CERT, EST_KEY   TLS client certificate (chain, leaf first) and key: the IDevID
#               for a first enrollment, the current certificate to re-enroll  (optional)
#   EST_USER, EST_PASS  HTTP Basic credentials                           (optional)
#   OUT         output directory                                         (default .)
set -eu

: "${EST_URL:?set EST_URL to the EST base, e.g. https://host:8443/.well-known/est}"
: "${EST_CA:?set EST_CA to the PEM that signs the server certificate}"
OUT="${OUT:-.}"
mkdir -p "$OUT"

# curl with the trust and client authentication the device has. The body goes to
# stdout; on an HTTP error the status and the server's text go to stderr and the
# script stops (RFC 7030 errors are human-readable text).
est_curl() {
  set -- --silent --show-error --cacert "$EST_CA" --output "$OUT/.est-response" \
    --write-out '%{http_code}' "$@"
  if [ -n "${EST_CERT:-}" ]; then set -- --cert "$EST_CERT" --key "$EST_KEY" "$@"; fi
  if [ -n "${EST_USER:-}" ]; then set -- --user "$EST_USER:$EST_PASS" "$@"; fi
  status="$(curl "$@")" || { echo "curl failed" >&2; exit 1; }
  if [ "$status" != 200 ]; then
    echo "HTTP $status" >&2
    cat "$OUT/.est-response" >&2
    rm -f "$OUT/.est-response"
    exit 22
  fi
  cat "$OUT/.est-response"
  rm -f "$OUT/.est-response"
}

# The certificates of a base64 certs-only CMS response (stdin) as PEM (stdout).
certs_only_to_pem() {
  openssl base64 -d | openssl pkcs7 -inform DER -print_certs | sed -n '/BEGIN/,/END/p'
}

# POSTs the DER CSR in file $2 to operation $1 as base64 (RFC 7030 4.2.1); the response
# body goes to stdout.
est_post_csr() {
  openssl base64 -in "$2" -out "$2.b64"
  est_curl -H "Content-Type: application/pkcs10" -H "Content-Transfer-Encoding: base64" \
    --data-binary @"$2.b64" "$EST_URL/$1"
}
