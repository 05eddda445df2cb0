#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Throughput of SCEP PKCSReq enrollments: pkiplane's SCEP router (the scep_bench_server
# example, the same router `pkiplane serve` mounts) beside micromdm's scepserver 2.1.0
# (Debian package `scep`, scripts/tools/scep-debian.sh), both driven by the same client
# workload: N runs of micromdm's scepclient v2.3.0 (scripts/tools/scepclient.sh), C at a
# time, each a full GetCACaps + GetCACert + PKIOperation PKCSReq with a static challenge,
# SHA-1 + DES (scepclient's algorithms), a pre-generated RSA-2048 key and a distinct CN
# per run (pkiplane refuses a reused transactionID, which scepclient derives from the key). Both CAs are RSA-2048.
# Counts a run as an issuance only when scepclient wrote a certificate.
#
# Then the same two servers are driven by scep_load (bench/src/bin/scep_load.rs): LOAD_N
# prepared PKCSReq messages (distinct RSA-2048 keys, CNs and transactionIDs; AES and
# SHA-256 as both servers advertise them), sent by 1 and by C concurrent senders, so the
# figure is the server's rather than the client processes'.
#
# Usage: [SCEP_BENCH_PROFILE=release] [LOAD_N=400] [SCEP_LOAD_RESULTS=file.jsonl]
#        scripts/tools/scep-bench.sh [N=200] [C=8]
# Loopback only; bounded in count (N) and time (60 s per client run, 600 s per server);
# stops its servers on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-200}
C=${2:-8}
bench_keep() { [ -z "${SCEP_BENCH_KEEP:-}" ] || cp "$WORK"/*.log "$SCEP_BENCH_KEEP"/ 2>/dev/null; }
# shellcheck source=lib/bench.sh
. scripts/tools/lib/bench.sh
bench_start
wait_http() { # $1 = URL
  for _ in $(seq 100); do
    curl -fs -o /dev/null "$1?operation=GetCACaps" && return 0
    sleep 0.2
  done
  echo "scep-bench.sh: $1 did not come up" >&2
  return 1
}

SCEPCLIENT=$(bash scripts/tools/scepclient.sh)
DEBIAN=$(bash scripts/tools/scep-debian.sh)
export SCEPCLIENT WORK

# One RSA-2048 key per run, made before the clock starts: scepclient derives the
# transactionID from the public key, and pkiplane refuses a transactionID reused for
# another request (replay protection), so every enrollment needs its own key.
seq 0 "$N" | xargs -P "$C" -I{} openssl genrsa -traditional -out "$WORK/key-{}.pem" 2048 2>/dev/null
cp "$WORK/key-0.pem" "$WORK/key-warmup.pem"

# pkiplane: the example server, the debug build (dependencies optimised) unless
# SCEP_BENCH_PROFILE=release.
PROFILE=${SCEP_BENCH_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p pkiplane-scep --example scep_bench_server
  cargo build -q --release -p pkiplane-bench --bin scep_load
else
  cargo build -q -p pkiplane-scep --example scep_bench_server
  cargo build -q -p pkiplane-bench --bin scep_load
fi
"${CARGO_TARGET_DIR:-target}/$PROFILE/examples/scep_bench_server" "127.0.0.1:$PORT_A" > "$WORK/pkiplane.log" 2>&1 &
PIDS+=($!)

# micromdm's scepserver with a fresh 2048-bit CA (its default is 4096; pkiplane's is 2048).
mkdir -p "$WORK/depot"
(cd "$WORK" && "$DEBIAN/scepserver" ca -init -depot depot -keySize 2048 >/dev/null 2>&1)
(cd "$WORK" && exec "$DEBIAN/scepserver" -depot depot -port "$PORT_B" -challenge bench-challenge \
  -allowrenew 0 -crtvalid 90 > "$WORK/scepserver.log" 2>&1) &
PIDS+=($!)

wait_http "http://127.0.0.1:$PORT_A/scep"
wait_http "http://127.0.0.1:$PORT_B/scep"

one() { # $1 = server URL, $2 = name, $3 = index
  local d="$WORK/$2-$3"
  mkdir -p "$d"
  cp "$WORK/key-$3.pem" "$d/key.pem"
  (cd "$d" && timeout 60 "$SCEPCLIENT" -server-url "$1" -private-key "$d/key.pem" -certificate "$d/cert.pem" \
    -challenge bench-challenge -cn "h$3.example.com" -dnsname "h$3.example.com" >"$d/log" 2>&1) || true
  [ -s "$d/cert.pem" ] && echo ok || echo "fail $d"
}
export -f one

run() { # $1 = name, $2 = URL; prints issuances/s
  local start end ok
  one "$2" "$1" warmup >/dev/null
  start=$(date +%s.%N)
  seq "$N" | timeout 600 xargs -P "$C" -I{} bash -c "one '$2' '$1' {}" > "$WORK/results-$1" || true
  end=$(date +%s.%N)
  ok=$(grep -c '^ok' "$WORK/results-$1" || true)
  local failed
  failed=$(grep -m1 '^fail' "$WORK/results-$1" | cut -d' ' -f2 || true)
  if [ -n "$failed" ]; then echo "$1: first failure ($failed/log):" >&2; tail -n 3 "$failed/log" >&2; fi
  python3 - "$1" "$N" "$C" "$start" "$end" "$ok" <<'PY'
import sys
name, n, c, start, end, ok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
secs = end - start
print(f"{name:<28} N={n} C={c}  {secs:7.2f}s  issued {ok}  failures {n-ok}  {ok/secs:7.1f} issuances/s", flush=True)
with open(f"{__import__('os').environ['WORK']}/rate-{name}", "w") as f:
    f.write(str(ok/secs))
PY
}

echo "client: micromdm scepclient v2.3.0; servers: pkiplane-scep ($PROFILE example) and scepserver $("$DEBIAN/scepserver" -version 2>&1 | head -1)"
run "pkiplane-scep" "http://127.0.0.1:$PORT_A/scep"
run "micromdm-scepserver-2.1.0" "http://127.0.0.1:$PORT_B/scep"
python3 - "$WORK" <<'PY'
import sys
a = float(open(f"{sys.argv[1]}/rate-pkiplane-scep").read())
b = float(open(f"{sys.argv[1]}/rate-micromdm-scepserver-2.1.0").read())
print(f"ratio pkiplane/scepserver: {a/b:.2f}" if b else "ratio: scepserver issued nothing")
PY

# The prepared-message load: the server's rate without a process per enrollment.
LOAD_N=${LOAD_N:-400}
# The requesters' RSA keys are kept between runs (generating them takes minutes on two
# cores); every message of a run still has its own key, CN and transactionID.
KEYS=${XDG_CACHE_HOME:-$HOME/.cache}/pkiplane/scep-load-keys
for c in 1 "$C"; do
  for server in "pkiplane-scep http://127.0.0.1:$PORT_A/scep" "micromdm-scepserver-2.1.0 http://127.0.0.1:$PORT_B/scep"; do
    read -r name url <<<"$server"
    "${CARGO_TARGET_DIR:-target}/$PROFILE/scep_load" --url "$url" --count "$LOAD_N" --clients "$c" --max-seconds 120 --key-cache "$KEYS" \
      --prefix "load-$c" --label "$name" --json >>"$WORK/load.jsonl" 2>>"$WORK/load.log" ||
      echo "$me: scep_load against $name failed (see below)" >&2
  done
done
grep -h "failed:" "$WORK/load.log" | head -n 5 >&2 || true
[ -n "${SCEP_LOAD_RESULTS:-}" ] && cp "$WORK/load.jsonl" "$SCEP_LOAD_RESULTS"
bench_load_table "$WORK/load.jsonl" "prepared PKCSReq load (scep_load)" pkiplane-scep micromdm-scepserver-2.1.0 "micromdm scepserver"
