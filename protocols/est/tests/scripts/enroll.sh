#!/bin/sh
# POST /simpleenroll (RFC 7030 4.2.1): makes a P-256 key and a CSR for SUBJECT (e.g.
# "/CN=dev-001"), and writes $OUT/device.key and $OUT/device.pem.
. "$(dirname "$0")/common.sh"
: "${SUBJECT:?set SUBJECT, e.g. /CN=dev-001}"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$OUT/device.key" -subj "$SUBJECT" ${SAN:+-addext "subjectAltName=$SAN"} \
  -outform DER -out "$OUT/device.csr.der" 2>/dev/null
est_post_csr simpleenroll "$OUT/device.csr.der" > "$OUT/device.p7.b64"
certs_only_to_pem < "$OUT/device.p7.b64" > "$OUT/device.pem"
openssl x509 -in "$OUT/device.pem" -noout -subject -serial -enddate
