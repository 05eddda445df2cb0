#!/usr/bin/env bash
# Issuance throughput of the CA service: 1 replica on SQLite, then 1, 2 and 3 replicas
# on one PostgreSQL (Debian's, via scripts/tools/postgres.sh), same machine, same run.
# The load is `ca_load` (bench/src/bin/ca_load.rs): CLIENTS concurrent callers of the
# internal API (mutual TLS, POST /v1/issue, as endpoint pods call it) spread round-robin
# over the replicas, COUNT issuances per configuration, each for a fresh P-256 key. A
# benchmark, not a test: it prints numbers and asserts none. Loopback only.
#
#   bench/ca-replicas.sh [CLIENTS=16] [COUNT=600]
#   PROFILE=debug bench/ca-replicas.sh     # a debug build (numbers not comparable with
#                                          # release ones)
#   PKIPLANE_BIN=... CA_LOAD_BIN=... bench/ca-replicas.sh   # binaries built already
set -euo pipefail
clients=${1:-16}
count=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
profile=${PROFILE:-release}
bin=${PKIPLANE_BIN:-$target/$profile/pkiplane}
load=${CA_LOAD_BIN:-$target/$profile/ca_load}
if [ -z "${PKIPLANE_BIN:-}" ] || [ -z "${CA_LOAD_BIN:-}" ]; then
  flags=(-q -p pkiplane --bin pkiplane -p pkiplane-bench --bin ca_load)
  if [ "$profile" = release ]; then cargo build --release "${flags[@]}"; else cargo build "${flags[@]}"; fi
fi

work=$(mktemp -d)
# The database's folder: traversable by the user the server runs as (postgres when root).
pgroot=$(mktemp -d)
chmod 755 "$pgroot"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$pgroot"
}
trap cleanup EXIT
cd "$work"

# The internal CA and the identities: the CA service's and the est endpoint's.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ica.key -out ica.crt \
  -subj /CN=bench-internal-ca -days 2 2>/dev/null
leaf() { # name sans
  mkdir -p "$1"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/tls.key" -subj "/CN=$1" \
    -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ica.crt -CAkey ica.key -CAcreateserial -days 1 -extfile "$1.ext" \
    -out "$1/tls.crt" 2>/dev/null
  cp ica.crt "$1/ca.crt"
}
leaf ca-tls "IP:127.0.0.1,URI:spiffe://pkiplane.dev/ca"
leaf est-tls "URI:spiffe://pkiplane.dev/ns/pki/endpoint/est"
# The CA's manifests: the quickstart's Issuers, CertificateProfiles and Secrets.
awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } /(^|\n)kind: (Issuer|CertificateProfile|Secret)\n/' \
  "$root/examples/quickstart.yaml" > ca.yaml

me=ca-replicas
# shellcheck source=../e2e/lib/common.sh
. "$root/e2e/lib/common.sh" # free_ports: outside the kernel's ephemeral range
port() { free_ports 1; }

# PostgreSQL: one server, a fresh database per configuration.
pgbin=$(bash "$root/scripts/tools/postgres.sh" | sed -n 1p)
pgport=$(port)
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" > "$pgroot/pw"
setpriv --pdeathsig TERM -- bash "$root/scripts/tools/postgres.sh" serve "$pgroot/pg" "$pgport" "$pgroot/pw" \
  > pg.log 2>&1 &
pids+=($!)
for _ in $(seq 300); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break; sleep 0.2; done
"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" || { cat pg.log >&2; exit 1; }
export PGPASSWORD=$password

run() { # backend replicas
  local backend=$1 n=$2 urls=() ca_pids=()
  local db="bench_${backend}_$n"
  if [ "$backend" = postgres ]; then
    "$pgbin/psql" -q -h 127.0.0.1 -p "$pgport" -U pkiplane -d postgres -c "CREATE DATABASE $db" >/dev/null
  fi
  for i in $(seq "$n"); do
    local api pub args
    api=$(port) pub=$(port)
    args=(ca --manifests ca.yaml --data-dir "data-$db-$i" --tls-dir ca-tls
      --listen "127.0.0.1:$api" --publish-listen "127.0.0.1:$pub")
    if [ "$backend" = postgres ]; then
      args+=(--store "postgres://pkiplane:$password@127.0.0.1:$pgport/$db?sslmode=disable")
    fi
    PKIPLANE_LOG=warn "$bin" "${args[@]}" > "ca-$db-$i.log" 2>&1 &
    ca_pids+=($!)
    pids+=($!)
    for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$pub/readyz" && break; sleep 0.2; done
    curl -sf -o /dev/null "http://127.0.0.1:$pub/readyz" || { cat "ca-$db-$i.log" >&2; exit 1; }
    urls+=(--ca "https://127.0.0.1:$api")
  done
  printf '%-9s %s: ' "$backend" "$n"
  "$load" "${urls[@]}" --identity est-tls --clients "$clients" --count "$count" --max-seconds 120
  for p in "${ca_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
}

echo "ca-replicas: $clients clients, $count issuances per configuration, $(nproc) CPUs, $bin"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run sqlite 1
run postgres 1
run postgres 2
run postgres 3
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
