#!/usr/bin/env bash
# Throughput of CMP `ir` transactions: pkiplane's CMP server beside OpenSSL's own mock
# CMP server (`openssl cmp -port`), both driven by the same client workload: N runs of
# `openssl cmp -cmd ir` with a shared secret (PasswordBasedMac) and implicitConfirm,
# C at a time, one pre-generated P-256 key. The mock server does not really issue: it
# returns a fixed certificate (-rsp_cert) without policy, signing or an inventory write,
# so it bounds what the client side and the message handling cost. A last line measures
# pkiplane's server alone (see the `load` mode of the cmp_bench_server example).
#
# Usage: [CMP_BENCH_PROFILE=release] scripts/tools/cmp-bench.sh [N=200] [C=4]
# Loopback only; bounded in count; stops its servers on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-200}
C=${2:-4}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

me=${0##*/}
# shellcheck source=../../e2e/lib/common.sh
. e2e/lib/common.sh # free_ports: outside the kernel's ephemeral range
read -r PORT_A PORT_B <<<"$(free_ports 2)"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/key.pem" 2>/dev/null

# pkiplane: the example server (the debug build; dependencies are optimised).
# The debug build (dependencies optimised) unless CMP_BENCH_PROFILE=release.
PROFILE=${CMP_BENCH_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p pkiplane-cmp --example cmp_bench_server
else
  cargo build -q -p pkiplane-cmp --example cmp_bench_server
fi
"target/$PROFILE/examples/cmp_bench_server" "127.0.0.1:$PORT_A" > "$WORK/pkiplane.log" 2>&1 &
PIDS+=($!)

# OpenSSL's mock server, with a fixed certificate to hand out.
openssl req -x509 -new -key "$WORK/key.pem" -subj /CN=mock.example.com -days 30 -out "$WORK/rsp.pem" 2>/dev/null
openssl cmp -port "$PORT_B" -srv_ref mock -srv_secret pass:bench-secret-1 -rsp_cert "$WORK/rsp.pem" \
  -grant_implicitconf > "$WORK/mock.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 50); do
  grep -q "well-known/cmp" "$WORK/pkiplane.log" 2>/dev/null && break
  sleep 0.2
done
sleep 0.5

one() { # $1 = server URL, $2 = index
  openssl cmp -server "$1" -recipient /CN=bench -cmd ir -ref bench -secret pass:bench-secret-1 \
    -newkey "$WORK/key.pem" -subject "/CN=h$2.example.com" -sans "h$2.example.com" -implicit_confirm \
    -certout "$WORK/out-$2.pem" -msg_timeout 30 >/dev/null 2>&1 || echo fail
}
export -f one
export WORK

run() { # $1 = name, $2 = URL
  local start end fails
  one "$2" warmup >/dev/null
  start=$(date +%s.%N)
  fails=$(seq "$N" | xargs -P "$C" -I{} bash -c "one '$2' {}" | grep -c fail || true)
  end=$(date +%s.%N)
  python3 - "$1" "$N" "$C" "$start" "$end" "$fails" <<'PY'
import sys
name, n, c, start, end, fails = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
secs = end - start
print(f"{name:<22} {n} ir in {secs:6.2f}s  concurrency {c}  {n/secs:7.1f} ir/s  failures {fails}")
PY
}

echo "openssl: $(openssl version)"
run "pkiplane-cmp" "http://127.0.0.1:$PORT_A/.well-known/cmp"
run "openssl mock server" "http://127.0.0.1:$PORT_B/"
# The server alone: recorded OpenSSL ir messages re-protected and sent from one process.
"target/$PROFILE/examples/cmp_bench_server" load "$N" "$C" | tail -1
