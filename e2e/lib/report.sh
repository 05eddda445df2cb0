# shellcheck shell=bash
# shellcheck disable=SC2034 # read by the script that sources this file
# shellcheck disable=SC2154 # $me is set by the script that sources this file
# The PASS/FAIL reporting every e2e script shares (sourced). Expects $me, the prefix of
# every line. A failed check ends the script: the EXIT trap then prints the totals.
#
#   say TEXT...          one line on stderr
#   pass NAME            counts a passed check, with the seconds since the last one
#   fail NAME [DETAIL]   counts a failed check, prints DETAIL indented, exits 1
#   e2e_teardown SCRIPT LOG LINES RC
#                        when a cluster or node of this run exists ($PKIPLANE_E2E_DIR): on
#                        failure (RC != 0) the last LINES of its logs/LOG, then `SCRIPT down`
#   report_exit RC       the last lines (total time, "ME: N passed, N failed"); exits RC

passed=0
failed=0
t_start=$SECONDS
step_start=$SECONDS

say() { echo "$me: $*" >&2; }
pass() { passed=$((passed + 1)); say "PASS $1 ($((SECONDS - step_start))s)"; step_start=$SECONDS; }
fail() {
  failed=$((failed + 1))
  say "FAIL $1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | sed "s/^/$me:      | /" >&2
  exit 1
}

e2e_teardown() {
  { [ -n "${PKIPLANE_E2E_DIR:-}" ] && [ -d "$PKIPLANE_E2E_DIR" ]; } || return 0
  if [ "$4" != 0 ]; then
    say "$2 tail:"
    tail -n "$3" "$PKIPLANE_E2E_DIR/logs/$2" >&2 2>/dev/null || true
  fi
  "$1" down || say "teardown failed"
}

report_exit() {
  [ "$1" = 0 ] || [ "$failed" -gt 0 ] || failed=1
  say "total $((SECONDS - t_start))s"
  echo "$me: $passed passed, $failed failed"
  exit "$1"
}
