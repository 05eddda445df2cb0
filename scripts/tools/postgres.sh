#!/usr/bin/env bash
# Installs Debian's PostgreSQL server (the `postgresql` package: PostgreSQL 15 on Debian
# 12) if missing, for the tests of the PostgreSQL store. Idempotent. Prints two lines:
# the directory holding initdb, postgres and pg_ctl, then the user the test servers run
# as: the invoking user, or `postgres` (made by the package) when run as root, since
# PostgreSQL refuses to run as root.
#
# Tests start a throwaway server from Rust (pkiplane_store::testing::TestPostgres):
# initdb in a temporary folder, loopback only on a port outside the kernel's ephemeral
# range, fsync on, stopped and removed when the test ends. `postgres.sh serve DIR PORT
# PWFILE` does the same for shell scripts: it runs a server in the foreground until it
# gets SIGTERM/SIGINT (or its parent dies), then removes DIR. `postgres.sh serve DIR PORT
# PWFILE TLSDIR` turns TLS on: TLSDIR holds server.crt and server.key (PEM), optionally
# client-ca.crt (the CA of client certificates) and pg_hba.conf (replacing initdb's).
# The Rust tests do the same through TestPostgres::start_tls.
set -euo pipefail

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ]; then bin=$d; return 0; fi
  done
  return 1
}

bin=""
if ! find_bin; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "postgres.sh: installing the Debian package postgresql" >&2
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  fi
  find_bin || { echo "postgres.sh: the postgresql package installed no server binaries" >&2; exit 1; }
fi
if [ "$(id -u)" -eq 0 ]; then run_as=postgres; else run_as=$(id -un); fi
id "$run_as" >/dev/null 2>&1 || { echo "postgres.sh: no user $run_as to run the server as" >&2; exit 1; }

if [ "${1:-}" != serve ]; then
  echo "$bin"
  echo "$run_as"
  exit 0
fi

# serve DIR PORT PWFILE [TLSDIR]: a throwaway server for shell-driven tests.
dir=$2 port=$3 pwfile=$4 tlsdir=${5:-}
mkdir -p "$dir"
chmod 700 "$dir"
# The server dies with this script (parent-death signal), even if it is killed.
as_user=(setpriv --pdeathsig KILL --)
if [ "$(id -u)" -eq 0 ]; then
  as_user=(setpriv "--reuid=$run_as" "--regid=$run_as" --init-groups --pdeathsig KILL --)
  chown "$run_as" "$dir" "$pwfile"
fi
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 0' TERM INT HUP
"${as_user[@]}" "$bin/initdb" -D "$dir/data" -U pkiplane --pwfile="$pwfile" --auth=scram-sha-256 \
  -E UTF8 --locale=C --no-sync >/dev/null
tls_args=()
if [ -n "$tlsdir" ]; then
  # The server refuses a key others can read, and reads the files as $run_as.
  mkdir -p "$dir/tls"
  for f in server.crt server.key client-ca.crt pg_hba.conf; do
    [ -f "$tlsdir/$f" ] && install -m 600 "$tlsdir/$f" "$dir/tls/$f"
  done
  [ "$(id -u)" -ne 0 ] || chown -R "$run_as" "$dir/tls"
  tls_args=(-c ssl=on -c "ssl_cert_file=$dir/tls/server.crt" -c "ssl_key_file=$dir/tls/server.key")
  [ ! -f "$dir/tls/client-ca.crt" ] || tls_args+=(-c "ssl_ca_file=$dir/tls/client-ca.crt")
  [ ! -f "$dir/tls/pg_hba.conf" ] || tls_args+=(-c "hba_file=$dir/tls/pg_hba.conf")
fi
"${as_user[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories= -c fsync=on -c synchronous_commit=on "${tls_args[@]}" &
pid=$!
wait "$pid"
