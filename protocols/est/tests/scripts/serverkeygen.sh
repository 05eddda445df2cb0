#!/bin/sh
# POST /serverkeygen (RFC 7030 4.4): the server makes the key. The multipart/mixed
# answer is split with awk; writes $OUT/keygen.key (PKCS#8 PEM) and $OUT/keygen.pem.
. "$(dirname "$0")/common.sh"
: "${SUBJECT:?set SUBJECT, e.g. /CN=dev-002}"
# The CSR only carries the subject and SANs (and proves the client can sign); its key is
# thrown away.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
  -subj "$SUBJECT" ${SAN:+-addext "subjectAltName=$SAN"} -outform DER -out "$OUT/keygen.csr.der" 2>/dev/null
est_post_csr serverkeygen "$OUT/keygen.csr.der" > "$OUT/keygen.multipart"
# Each part: headers, a blank line, base64, until the next --boundary line.
awk -v out="$OUT" '
  /^--/ { part = ""; body = 0; next }
  body == 0 && tolower($0) ~ /^content-type: application\/pkcs8/ { part = "key" }
  body == 0 && tolower($0) ~ /^content-type: application\/pkcs7-mime/ { part = "cert" }
  body == 0 && $0 ~ /^\r?$/ { body = 1; next }
  body == 1 && part != "" { sub(/\r$/, ""); print > (out "/keygen." part ".b64") }
' "$OUT/keygen.multipart"
openssl base64 -d -in "$OUT/keygen.key.b64" | openssl pkey -inform DER -out "$OUT/keygen.key"
certs_only_to_pem < "$OUT/keygen.cert.b64" > "$OUT/keygen.pem"
rm -f "$OUT/keygen.key.b64" "$OUT/keygen.cert.b64"
openssl x509 -in "$OUT/keygen.pem" -noout -subject -serial -enddate
