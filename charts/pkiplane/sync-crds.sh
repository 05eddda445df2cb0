#!/usr/bin/env bash
# Copies the generated CRDs (crds/<plural>.pkiplane.dev.yaml, kept fresh by a test and
# `pkiplane crds --out crds/`) into the chart's crds/ directory, which Helm installs before
# the templates. With --check, changes nothing and exits 1 when the chart's copy is stale.
#
# Usage: charts/pkiplane/sync-crds.sh [--check]
set -euo pipefail
chart=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$chart/../../crds" && pwd)
dst="$chart/crds"

stale=0
for f in "$src"/*.pkiplane.dev.yaml; do
  name=$(basename "$f")
  if ! cmp -s "$f" "$dst/$name"; then
    stale=1
    [ "${1:-}" = --check ] || cp "$f" "$dst/$name"
  fi
done
for f in "$dst"/*.yaml; do
  [ -e "$f" ] || continue
  if [ ! -e "$src/$(basename "$f")" ]; then
    stale=1
    [ "${1:-}" = --check ] || rm "$f"
  fi
done
if [ "${1:-}" = --check ] && [ $stale = 1 ]; then
  echo "sync-crds.sh: charts/pkiplane/crds/ differs from crds/; run charts/pkiplane/sync-crds.sh" >&2
  exit 1
fi
