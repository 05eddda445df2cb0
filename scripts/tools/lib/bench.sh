# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR
# What the client-workload benchmarks (cmp-bench.sh, scep-bench.sh) share, sourced from
# the repository root.
#
#   bench_start   sets $WORK (a scratch directory), $PIDS (the servers started, to stop),
#                 $me, and two free loopback ports $PORT_A and $PORT_B; at exit runs
#                 bench_keep (when the script defines it), stops $PIDS, removes $WORK

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
