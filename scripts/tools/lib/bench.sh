# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR
# What the client-workload benchmarks (cmp-bench.sh, scep-bench.sh) share, sourced from
# the repository root.
#
#   bench_start   sets $WORK (a scratch directory), $PIDS (the servers started, to stop),
#                 $me, and two free loopback ports $PORT_A and $PORT_B; at exit runs
#                 bench_keep (when the script defines it), stops $PIDS, removes $WORK
#   bench_load_table  prints a load tool's JSON lines and the ratio of two servers

# shellcheck disable=SC2034 # me is e2e/lib/common.sh's, the rest the benchmark's
bench_start() {
  WORK=$(mktemp -d)
  PIDS=()
  me=${0##*/}
  trap bench_cleanup EXIT
  # shellcheck source=../../../e2e/lib/common.sh
  . e2e/lib/common.sh # free_ports: outside the kernel's ephemeral range
  read -r PORT_A PORT_B <<<"$(free_ports 2)"
}

bench_cleanup() {
  if declare -F bench_keep >/dev/null; then bench_keep || true; fi
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# bench_load_table JSONL TITLE OURS THEIRS THEIR-NAME: the load tool's JSON lines as a
# table, then OURS's rate against THEIRS's (both --label values) at each client count.
bench_load_table() {
  python3 - "$@" <<'PY'
import json, sys
path, title, ours, theirs, their_name = sys.argv[1:6]
rows = [json.loads(l) for l in open(path) if l.strip()]
print(f"{title}:")
for r in rows:
    print(f"  {r['label']:<28} clients={r['clients']:<3} issued {r['issued']:>4}  failed {r['failed']:>3}"
          f"  {r['per_second']:8.1f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms")
by = {(r["label"], r["clients"]): r["per_second"] for r in rows}
for c in sorted({r["clients"] for r in rows}):
    a, b = by.get((ours, c)), by.get((theirs, c))
    if a is not None and b:
        print(f"  clients={c}: pkiplane {a:.1f}/s vs {their_name} {b:.1f}/s, ratio {a / b:.2f}")
PY
}
