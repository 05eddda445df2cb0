#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Throughput of CMP `ir` transactions: pkiplane's CMP server beside OpenSSL's own mock
# CMP server (`openssl cmp -port`), both driven by the same client workload: N runs of
# `openssl cmp -cmd ir` with a shared secret (PasswordBasedMac) and implicitConfirm,
# C at a time, one pre-generated P-256 key. The mock server does not really issue: it
# returns a fixed certificate (-rsp_cert) without policy, signing or an inventory write,
# so it bounds what the client side and the message handling cost.
#
# Spawning an `openssl cmp` process per transaction measures mostly the client, so the
# same two servers are then driven by cmp_load (bench/src/bin/cmp_load.rs): LOAD_N
# prepared ir messages (distinct P-256 keys, subjects and transactionIDs, signature POP,
# implicitConfirm, the same shared secret), sent by 1 and by C concurrent senders; an
# answer counts only when its MAC verifies and it is an accepted ip with a certificate
# (for pkiplane: certifying the request's key; the mock returns its fixed -rsp_cert).
# pkiplane's connections are kept alive; the mock closes every connection after its
# answer (OpenSSL 3.0's `cmp -port` serves one connection at a time), so it gets a new
# connection per request. With CMP_LOAD_RESULTS=file.jsonl the load rows are copied
# there, one JSON object per run: label `pkiplane-cmp` or `openssl-mock-server`,
# clients, issued, failed, seconds, per_second, p50_ms, p99_ms.
#
# Usage: [CMP_BENCH_PROFILE=release] [LOAD_N=400] [CMP_LOAD_RESULTS=file.jsonl]
#        scripts/tools/cmp-bench.sh [N=200] [C=4]
# Loopback only; bounded in count (N, LOAD_N) and time (120 s per load run); stops its
# servers on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-200}
C=${2:-4}
# shellcheck source=lib/bench.sh
. scripts/tools/lib/bench.sh
bench_start

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/key.pem" 2>/dev/null

# pkiplane: the example server (the debug build; dependencies are optimised).
# The debug build (dependencies optimised) unless CMP_BENCH_PROFILE=release.
PROFILE=${CMP_BENCH_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p pkiplane-cmp --example cmp_bench_server
  cargo build -q --release -p pkiplane-bench --bin cmp_load
else
  cargo build -q -p pkiplane-cmp --example cmp_bench_server
  cargo build -q -p pkiplane-bench --bin cmp_load
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

# The prepared-message load: the servers' rates without a process per transaction.
LOAD_N=${LOAD_N:-400}
for c in 1 "$C"; do
  "target/$PROFILE/cmp_load" --url "http://127.0.0.1:$PORT_A/.well-known/cmp" --own-key --count "$LOAD_N" \
    --clients "$c" --max-seconds 120 --prefix "load-$c" --label pkiplane-cmp --json >>"$WORK/load.jsonl" \
    2>>"$WORK/load.log" || echo "$me: cmp_load against pkiplane failed" >&2
  "target/$PROFILE/cmp_load" --url "http://127.0.0.1:$PORT_B/" --close --count "$LOAD_N" \
    --clients "$c" --max-seconds 120 --prefix "load-$c" --label openssl-mock-server --json >>"$WORK/load.jsonl" \
    2>>"$WORK/load.log" || echo "$me: cmp_load against the mock failed" >&2
done
grep -h "failed:\|cmp_load:" "$WORK/load.log" | grep -v "prepared in" | head -n 5 >&2 || true
[ -z "${CMP_LOAD_RESULTS:-}" ] || cp "$WORK/load.jsonl" "$CMP_LOAD_RESULTS"
bench_load_table "$WORK/load.jsonl" "prepared ir load (cmp_load)" pkiplane-cmp openssl-mock-server "openssl mock server"
