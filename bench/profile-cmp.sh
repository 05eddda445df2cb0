#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Where the CMP server's time goes, one ir at a time: the release cmp_bench_server under
# cmp_load (prepared ir messages, implicitConfirm, c=1), sampled with perf (DWARF call
# graphs) for PROFILE_SECONDS, then its CPU per ir, its system calls per ir (strace -c,
# a separate run: strace slows what it traces) and the share of the server's CPU under
# each part of the path: the store's writer thread and its commits (fsync, WAL frames,
# checkpoints), the request handler and its parts (proof of possession, the
# PasswordBasedMac key derivations, signing, encoding the answer).
#
# Usage: bench/profile-cmp.sh [COUNT=6000]  (a benchmark: nothing is asserted)
# Loopback only; bounded in count (COUNT per load run) and time (PROFILE_SECONDS, 120 s
# per load run). Installs perf and strace from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-6000}
SECONDS_SAMPLED=${PROFILE_SECONDS:-4}
# shellcheck source=../scripts/tools/lib/bench.sh
. scripts/tools/lib/bench.sh
bench_start
missing=()
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
  echo "$me: installing ${missing[*]} (Debian)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build -q --release -p pkiplane-cmp --example cmp_bench_server
cargo build -q --release -p pkiplane-bench --bin cmp_load
target/release/examples/cmp_bench_server "127.0.0.1:$PORT_A" >"$WORK/server.log" 2>&1 &
server=$!
PIDS+=("$server")
url=http://127.0.0.1:$PORT_A/.well-known/cmp
for _ in $(seq 50); do grep -q well-known "$WORK/server.log" 2>/dev/null && break; sleep 0.2; done
load() { # PREFIX COUNT
  target/release/cmp_load --url "$url" --own-key --count "$2" --clients 1 --max-seconds 120 --prefix "$1" 2>&1 |
    grep "ok=" || true
}
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
load warm 500 >/dev/null

# CPU per ir, unsampled.
before=$(ticks)
result=$(load cpu "$COUNT")
after=$(ticks)
echo "load: $result"
python3 -c "import sys; t, hz, n = map(int, sys.argv[1:]); print(f'server CPU per ir: {t / hz / n * 1e6:.0f} us')" \
  "$((after - before))" "$(getconf CLK_TCK)" "$COUNT"

# System calls per ir.
strace -c -f -p "$server" -o "$WORK/strace" 2>/dev/null &
tracer=$!
sleep 1
load strace 1000 >/dev/null
kill -INT "$tracer" && wait "$tracer" 2>/dev/null || true
# strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall.
awk '$NF ~ /^(fsync|fdatasync|pwrite64|pread64|fcntl|futex)$/ {printf "%s per ir: %.1f\n", $NF, $4 / 1000}' "$WORK/strace"

# The profile.
load perf "$COUNT" >"$WORK/perf-load.txt" &
loader=$!
sleep 1
perf record -q -F 999 --call-graph dwarf,16384 -p "$server" -o "$WORK/perf.data" -- sleep "$SECONDS_SAMPLED" \
  >/dev/null 2>&1
wait "$loader" || true
perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null >"$WORK/report.txt"
python3 - "$WORK/report.txt" <<'PY'
import re, sys
share = {}
for line in open(sys.argv[1]):
    m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[[.k]\]\s+(.*?)\s*(- +-)?\s*$", line)
    if m:
        share.setdefault(m.group(2), float(m.group(1)))
def part(label, *names):
    v = max((share[k] for k in share for n in names if n in k), default=0.0)
    print(f"  {label:<52} {v:5.1f} %")
print("share of the server's CPU (perf, children included):")
part("store writer thread", "pkiplane_store::writer::writer_loop")
part("  commits (pager commit phase one)", "sqlite3PagerCommitPhaseOne")
part("    fsync", "unixSync")
part("    WAL frame writes", "walWriteOneFrame")
part("  checkpoints (after a commit, on the same thread)", "sqlite3WalCheckpoint")
part("request handler (process)", "pkiplane_cmp::server::process")
part("  issuance requests (checks, proof of possession, CA)", "pkiplane_cmp::enroll::crmf_outcomes")
part("    proof-of-possession verification", "pkiplane_cmp::pop::verify")
part("    the CA core's issue", "as pkiplane_core::service::Authority>::issue")
part("      signing the certificate", "pkiplane_core::x509::cert::sign_certificate")
part("  PasswordBasedMac key derivation", "pkiplane_cmp::protection::mac::MacProtection::key")
part("  encoding the answer", "pkiplane_cmp::respond::encode")
PY
