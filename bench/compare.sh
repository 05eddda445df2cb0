#!/usr/bin/env bash
# Every peer comparison of the performance goals (issue 18), one after the other on this
# machine, and one table of the figures, their ratios and the goal each is held to:
#
#   crypto  `openssl speed` ECDSA P-256 and RSA-2048 sign + verify: the issuance limit
#           (one CSR verification + one signature) per core and for all cores
#   core    criterion `issue` bench (bench/benches/issuance.rs): durable issuances/s,
#           64 in flight on 1 and 2 runtime threads, and one at a time
#   acme    bench/acme-compare.sh: full ACME issuances/s against Pebble and OpenBao
#   scep    scripts/tools/scep-bench.sh: scep_load's prepared PKCSReq messages against
#           micromdm's scepserver, C=1 and C=8
#   cmp     scripts/tools/cmp-bench.sh: cmp_load's prepared ir messages (and `openssl cmp`
#           processes) against OpenSSL's mock server, c=1 and c=8
#   est     est_load (bench/src/bin/est_load.rs) against `pkiplane serve` on the
#           quickstart: simpleenroll over kept-alive TLS, compared with the core rate
#
# Release builds throughout (the SCEP and CMP scripts' servers included). Benchmarks, not
# tests: nothing here fails on a figure. Run it on a quiet machine; the load average is
# printed before and after each section and the figures of one run belong together.
#
# ROUNDS=N runs the sections N times, one round after the other (crypto, core, ..., est,
# then again), so that a drift of the machine's speed reaches every comparison alike; the
# table then shows each figure's median over the rounds, the lowest and highest ratio,
# and in how many rounds the goal was met. This machine kind's speed moves by ~20 %
# within minutes and the peers' rates by more between sessions: one round is a sample,
# not a verdict.
#
# Usage: bench/compare.sh [SECTIONS="crypto core acme scep cmp est"]
# Env:   QUICK=1 (small counts, for trying the script), OUT=dir (default
#        target/compare; round R writes into OUT/round-R), ROUNDS (default 1),
#        ACME_COUNT, SCEP_COUNT, CMP_COUNT (`openssl cmp` processes x4), CMP_LOAD_COUNT
#        (cmp_load's prepared messages), EST_COUNT
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECTIONS=${1:-"crypto core acme scep cmp est"}
BASE=${OUT:-$ROOT/target/compare}
ROUNDS=${ROUNDS:-1}
mkdir -p "$BASE"
if [ -n "${QUICK:-}" ]; then
  ACME_COUNT=${ACME_COUNT:-60} SCEP_COUNT=${SCEP_COUNT:-40} CMP_COUNT=${CMP_COUNT:-24} EST_COUNT=${EST_COUNT:-100}
  CMP_LOAD_COUNT=${CMP_LOAD_COUNT:-100}
  SPEED_SECONDS=1
else
  ACME_COUNT=${ACME_COUNT:-1000} SCEP_COUNT=${SCEP_COUNT:-600} CMP_COUNT=${CMP_COUNT:-300} EST_COUNT=${EST_COUNT:-8000}
  # 300 prepared ir messages took 0.2-0.5 s, too short to average out the machine's noise.
  CMP_LOAD_COUNT=${CMP_LOAD_COUNT:-3000}
  SPEED_SECONDS=5
fi
me=${0##*/}
load() { cut -d' ' -f1-3 /proc/loadavg; }
# row SECTION WHAT PKIPLANE COMPARED-WITH VALUE GOAL-RATIO (ratio = PKIPLANE / VALUE)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
section() { echo "$me: $1 (load average $(load), $((SECONDS - ${started:-0})) s in)" >&2; }

# ------------------------------------------------------------------ crypto limit
# Sign and verify rates of one core; an issuance costs one of each. Measured in every
# round ($SIGN_VERIFY is the round's), as the limit moves with the machine's speed.
crypto() {
  section "openssl speed"
  openssl speed -seconds "$SPEED_SECONDS" ecdsap256 rsa2048 2>/dev/null >"$SIGN_VERIFY"
}
# fdatasync of a 4 KiB overwrite in the temporary directory the benchmarks' stores live
# in (the same filesystem): a durable issuance waits for one, so one at a time the rate
# cannot exceed 1 / this latency.
fsync_us() {
  python3 - "${TMPDIR:-/tmp}" <<'PY'
import os, sys, tempfile, time
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    fd = f.fileno()
    os.write(fd, b"\0" * 65536)
    os.fdatasync(fd)
    n, start = 500, time.perf_counter()
    for i in range(n):
        os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
        os.fdatasync(fd)
    print(f"{(time.perf_counter() - start) / n * 1e6:.0f}")
PY
}
limit_per_core() { # $1 = p256 | rsa2048: issuances/s of one core
  python3 - "$SIGN_VERIFY" "$1" <<'PY'
import re, sys
text, alg = open(sys.argv[1]).read(), sys.argv[2]
if alg == "p256":
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", text)
else:
    m = re.search(r"rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", text)
sign, verify = float(m.group(1)), float(m.group(2))
print(f"{1 / (1 / sign + 1 / verify):.0f}")
PY
}

# ------------------------------------------------------------------ core issuance
core() {
  section "core issuance (criterion)"
  cargo bench -q -p pkiplane-bench --bench issuance -- --warm-up-time 1 --measurement-time "${SPEED_SECONDS}" \
    >"$OUT/core.txt" 2>&1 || { echo "$me: the core bench failed (see $OUT/core.txt)" >&2; return 0; }
  [ -s "$SIGN_VERIFY" ] || crypto
  local cores alg per_core
  cores=$(nproc)
  for alg in p256 rsa2048; do
    per_core=$(limit_per_core "$alg")
    python3 - "$ROOT/target/criterion" "$alg" "$per_core" "$cores" >>"$ROWS" <<'PY'
import json, os, sys
base, alg, per_core, cores = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
def rate(bench, elements):
    path = os.path.join(base, f"issue_{alg}", bench, "new", "estimates.json")
    ns = json.load(open(path))["mean"]["point_estimate"]
    return elements / (ns / 1e9)
for bench, n, limit, label, goal in [
    ("64-in-flight_1-thread", 64, per_core, "limit of 1 core", ""),
    ("64-in-flight_2-threads", 64, per_core * cores, f"limit of {cores} cores", "0.60"),
    ("sequential_1-thread", 1, 2500.0, "goal one at a time", "1.00" if alg == "p256" else ""),
]:
    try:
        r = rate(bench, n)
    except (OSError, KeyError):
        continue
    print(f"core\t{alg} {bench.replace('_', ' ')}\t{r:.0f}\t{label}\t{limit:.0f}\t{goal}")
PY
  done
  # What one at a time is up against: the disk's flush latency.
  local us seq
  us=$(fsync_us)
  seq=$(awk -F'\t' '$2 == "p256 sequential 1-thread" {print $3}' "$ROWS")
  row core "p256 one at a time vs 1 / fdatasync" "${seq:-0}" "disk flush bound" "$((1000000 / us))" ""
}

# ------------------------------------------------------------------ ACME
acme() {
  section "ACME (bench/acme-compare.sh)"
  RESULTS=$OUT/acme.jsonl bash bench/acme-compare.sh "1 8 32" "$ACME_COUNT" >"$OUT/acme.txt" 2>&1 ||
    echo "$me: acme-compare failed (see $OUT/acme.txt)" >&2
  python3 - "$OUT/acme.jsonl" >>"$ROWS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["label"], r["clients"]): r for r in rows}
goals = {("openbao", 1): "1.5", ("pebble", 1): "1.5", ("openbao", 32): "20"}
for (label, n), r in sorted(by.items()):
    if label != "pkiplane":
        continue
    for peer in ("openbao", "pebble"):
        p = by.get((peer, n))
        if p and not p.get("stalled"):
            print(f"acme\tN={n} issuances/s\t{r['per_second']:.1f}\t{peer}\t{p['per_second']:.1f}\t{goals.get((peer, n), '')}")
        elif p:
            print(f"acme\tN={n} issuances/s\t{r['per_second']:.1f}\t{peer} (stalled)\t\t")
    if n == 32:
        print(f"acme\tN=32 issuances/s\t{r['per_second']:.1f}\tgoal\t1000\t1.0")
PY
}

# ------------------------------------------------------------------ SCEP
scep() {
  section "SCEP (scripts/tools/scep-bench.sh)"
  SCEP_BENCH_PROFILE=release LOAD_N=$SCEP_COUNT SCEP_LOAD_RESULTS=$OUT/scep.jsonl \
    bash scripts/tools/scep-bench.sh "$((SCEP_COUNT / 4))" 8 >"$OUT/scep.txt" 2>&1 ||
    echo "$me: scep-bench failed (see $OUT/scep.txt)" >&2
  python3 - "$OUT/scep.jsonl" >>"$ROWS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["label"], r["clients"]): r["per_second"] for r in rows}
for c in sorted({r["clients"] for r in rows}):
    a, b = by.get(("pkiplane-scep", c)), by.get(("micromdm-scepserver-2.1.0", c))
    if a is not None and b:
        print(f"scep\tC={c} PKCSReq/s (scep_load)\t{a:.1f}\tmicromdm scepserver\t{b:.1f}\t2.0")
PY
}

# ------------------------------------------------------------------ CMP
cmp() {
  section "CMP (scripts/tools/cmp-bench.sh)"
  # One run: `openssl cmp` client processes at c=8, then cmp_load's prepared ir messages
  # at c=1 and c=8 against both servers.
  CMP_BENCH_PROFILE=release LOAD_N=$CMP_LOAD_COUNT CMP_LOAD_RESULTS=$OUT/cmp.jsonl \
    bash scripts/tools/cmp-bench.sh "$((CMP_COUNT / 4))" 8 >"$OUT/cmp.txt" 2>&1 ||
    echo "$me: cmp-bench failed (see $OUT/cmp.txt)" >&2
  python3 - "$OUT/cmp.txt" "$OUT/cmp.jsonl" >>"$ROWS" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
rate = lambda name: (m := re.search(re.escape(name) + r".*?([\d.]+) ir/s", text)) and float(m.group(1))
a, b = rate("pkiplane-cmp"), rate("openssl mock server")
if a and b:
    print(f"cmp\tc=8 ir/s (openssl cmp processes)\t{a:.1f}\topenssl mock server\t{b:.1f}\t")
try:
    rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
except OSError:
    rows = []
by = {(r["label"], r["clients"]): r["per_second"] for r in rows}
for c in sorted({r["clients"] for r in rows}):
    a, b = by.get(("pkiplane-cmp", c)), by.get(("openssl-mock-server", c))
    if a is not None and b:
        print(f"cmp\tc={c} ir/s (cmp_load)\t{a:.1f}\topenssl mock server\t{b:.1f}\t1.5")
PY
}

# ------------------------------------------------------------------ EST
# `pkiplane serve` (release) on the quickstart, every listener on a free port; est_load
# enrolls P-256 CSRs through the EST endpoint's `tls` label over kept-alive TLS. 8,000
# enrollments (about 3 s) instead of 2,000 (under a second): on this machine kind single
# runs of one server varied between 1,800 and 3,100/s, and a longer run averages more.
est() {
  section "EST (est_load against pkiplane serve)"
  cargo build -q --release -p pkiplane -p pkiplane-bench --bins
  local d=$OUT/est-serve
  rm -rf "$d" && mkdir -p "$d"
  sed -E "s/^( +port:) [0-9]+$/\1 0/" examples/quickstart.yaml >"$d/quickstart.yaml"
  target/release/pkiplane serve -f "$d/quickstart.yaml" --data-dir "$d/data" --publish-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --ready-file "$d/ready.json" >"$d/serve.out" 2>"$d/serve.log" &
  local pid=$! url trust
  for _ in $(seq 300); do [ -s "$d/ready.json" ] && break; sleep 0.1; done
  read -r url trust < <(python3 -c '
import json, sys
e = [e for e in json.load(open(sys.argv[1]))["endpoints"] if e["namespace"] == "pki" and e["name"] == "est"][0]
print([u for u in e["urls"] if u.endswith("/tls")][0], e["tlsTrustBundle"])' "$d/ready.json")
  target/release/est_load --url "$url" --ca-bundle "$trust" --user device-enroller --password est-demo-password \
    --count "$EST_COUNT" --clients 8 --json >"$OUT/est.jsonl" 2>"$OUT/est.txt" ||
    echo "$me: est_load failed (see $OUT/est.txt)" >&2
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local line
  line=$(python3 - "$OUT/est.jsonl" "$ROWS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
core = [l.split("\t") for l in open(sys.argv[2]) if l.startswith("core\tp256 64-in-flight 2-threads")]
for r in rows:
    if core:
        print(f"est\tsimpleenroll/s, TLS kept alive, c=8\t{r['per_second']:.1f}\tcore p256, 2 threads\t{core[0][2]}\t0.5")
    else:
        print(f"est\tsimpleenroll/s, TLS kept alive, c=8\t{r['per_second']:.1f}\t(run the core section too)\t\t")
PY
  )
  [ -z "$line" ] || echo "$line" >>"$ROWS"
}

echo "$me: $(nproc) cores, $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), $ROUNDS round(s), load average $(load)" >&2
for s in $SECTIONS; do
  case $s in
    crypto | core | acme | scep | cmp | est) ;;
    *) echo "$me: unknown section $s" >&2; exit 2 ;;
  esac
done
started=$SECONDS
for round in $(seq "$ROUNDS"); do
  OUT=$BASE/round-$round ROWS=$BASE/round-$round/rows.tsv SIGN_VERIFY=$BASE/round-$round/speed.txt
  mkdir -p "$OUT" && : >"$ROWS"
  echo "$me: round $round of $ROUNDS ($((SECONDS - started)) s in)" >&2
  for s in $SECTIONS; do "$s"; done
done

# One table: a row per figure, its medians over the rounds, the range of its ratio, and
# in how many rounds its goal was met.
# Only this run's rounds: OUT may hold more from an earlier run with a larger ROUNDS.
files=()
for round in $(seq "$ROUNDS"); do files+=("$BASE/round-$round/rows.tsv"); done
python3 - "$(nproc)" "$(load)" "$(date -u +%F)" "$((SECONDS - started))" "${files[@]}" <<'PY'
import statistics, sys
cores, load, day, seconds, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
figures = {}  # (section, what, peer) -> {"goal": str, "runs": [(mine, value)]}
for path in files:
    for line in open(path):
        if not line.strip():
            continue
        sec, what, mine, peer, value, goal = line.rstrip("\n").split("\t")
        f = figures.setdefault((sec, what, peer), {"goal": goal, "runs": []})
        f["runs"].append((float(mine), float(value) if value else None))
print(f"\n{day}, {cores} cores, {len(files)} round(s) in {seconds} s, load average at the end {load}\n")
print("| section | what | pkiplane | compared with | value | ratio | ratio range | goal |")
print("|---|---|---|---|---|---|---|---|")
for (sec, what, peer), f in figures.items():
    mine = statistics.median(m for m, _ in f["runs"])
    values = [v for _, v in f["runs"] if v]
    ratios = [m / v for m, v in f["runs"] if v]
    value = f"{statistics.median(values):.0f}" if values else ""
    ratio = f"{statistics.median(ratios):.2f}" if ratios else ""
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else ""
    goal = f["goal"]
    verdict = ""
    if goal and ratios:
        met = sum(r >= float(goal) for r in ratios)
        verdict = f">= {goal}: " + ("met" if statistics.median(ratios) >= float(goal) else "not met")
        if len(ratios) > 1:
            verdict += f" ({met} of {len(ratios)} rounds)"
    print(f"| {sec} | {what} | {mine:.0f} | {peer} | {value} | {ratio} | {spread} | {verdict} |")
PY
