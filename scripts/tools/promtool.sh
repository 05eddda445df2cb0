#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds promtool (Prometheus' checker: `promtool check metrics` on an exposition,
# `promtool check rules` on alerting rules) from the Go module github.com/prometheus/prometheus
# and prints the path of the binary. Used by the metrics tests: server/tests/metrics.rs (a
# real exposition) and server/tests/chart_monitoring.rs (the chart's alerting rules).
#
# The binary goes to ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/promtool-<version>/bin/promtool,
# outside the repository; a rerun with it in place prints the path at once. Built with
# the tag remove_all_sd: the checks need no cloud service discovery, and leaving it out
# halves the build (cold, modules downloaded: 3.3 CPU-minutes instead of 7.5; 54 MB).
#
# Usage: scripts/tools/promtool.sh             prints the promtool binary's path (stdout only)
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_PROMTOOL_VERSION  (default below; the
#        Prometheus v3.x releases are tagged v0.3xx.y in the Go module)
#        PKIPLANE_PROMTOOL_REBUILD=1  force a rebuild
set -euo pipefail

version=${PKIPLANE_PROMTOOL_VERSION:-v0.316.0}

build() { # output folder
  # `go install pkg@version` builds with Prometheus' own go.mod (its pinned dependencies).
  GOBIN="$1" go install -p "$GOMAXPROCS" -tags remove_all_sd -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$version" || {
    echo "promtool.sh: building github.com/prometheus/prometheus/cmd/promtool@$version failed (is the Go module proxy reachable?)" >&2
    return 1
  }
  "$1/promtool" --version
}

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cached_go_binary "promtool-$version-nosd" bin/promtool build
