#!/bin/sh
# GET /csrattrs (RFC 7030 4.5): writes the DER to $OUT/csrattrs.der and prints it.
. "$(dirname "$0")/common.sh"
est_curl "$EST_URL/csrattrs" > "$OUT/csrattrs.b64"
openssl base64 -d -in "$OUT/csrattrs.b64" -out "$OUT/csrattrs.der"
openssl asn1parse -inform DER -in "$OUT/csrattrs.der"
