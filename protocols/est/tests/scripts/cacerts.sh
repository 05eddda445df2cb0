#!/bin/sh
# GET /cacerts (RFC 7030 4.1): writes the CA chain to $OUT/cacerts.pem.
. "$(dirname "$0")/common.sh"
est_curl "$EST_URL/cacerts" > "$OUT/cacerts.b64"
certs_only_to_pem < "$OUT/cacerts.b64" > "$OUT/cacerts.pem"
grep -c 'BEGIN CERTIFICATE' "$OUT/cacerts.pem" | sed 's/$/ CA certificate(s) in cacerts.pem/'
