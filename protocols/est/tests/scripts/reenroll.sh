#!/bin/sh
# POST /simplereenroll (RFC 7030 4.2.2): authenticates with the current certificate
# ($OUT/device.pem, $OUT/device.key), asks for a new one with the same subject and
# SANs and a new key (rekey), and replaces $OUT/device.pem and $OUT/device.key.
. "$(dirname "$0")/common.sh"
EST_CERT="$OUT/device.pem"
EST_KEY="$OUT/device.key"
# The subject in openssl's -subj form, and the SANs, copied from the current certificate.
subject="$(openssl x509 -in "$EST_CERT" -noout -subject -nameopt compat | sed 's/^subject=//')"
san="$(openssl x509 -in "$EST_CERT" -noout -ext subjectAltName 2>/dev/null | sed -n '2p' | sed 's/^ *//; s/IP Address:/IP:/g; s/, /,/g')"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$OUT/device.new.key" -subj "$subject" ${san:+-addext "subjectAltName=$san"} \
  -outform DER -out "$OUT/device.renew.csr.der" 2>/dev/null
est_post_csr simplereenroll "$OUT/device.renew.csr.der" > "$OUT/device.renew.p7.b64"
certs_only_to_pem < "$OUT/device.renew.p7.b64" > "$OUT/device.new.pem"
mv "$OUT/device.new.pem" "$OUT/device.pem"
mv "$OUT/device.new.key" "$OUT/device.key"
openssl x509 -in "$OUT/device.pem" -noout -subject -serial -enddate
