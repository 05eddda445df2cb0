# shellcheck shell=bash
# Shell helpers shared by e2e/cluster.sh (control plane on loopback) and e2e/node.sh (the
# real node): managed processes, waits, kubeconfigs, the cluster's certificates. Sourced;
# expects $dir (the cluster dir), $me (the script's name, for messages) and $timeout.

# shellcheck disable=SC2034 # used by the scripts that source this file
SA_ISSUER=https://kubernetes.default.svc.cluster.local
# Admission: the defaults (named here for the reader; none needs a node) plus
# OwnerReferencesPermissionEnforcement, which OpenShift runs: setting an ownerReference
# with blockOwnerDeletion needs `update` on the owner's `finalizers` subresource, so a
# chart RBAC that forgets it fails here rather than on a customer's cluster.
# shellcheck disable=SC2034
ADMISSION=${PKIPLANE_E2E_ADMISSION:-NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy,OwnerReferencesPermissionEnforcement}

log() { echo "$me: $*" >&2; }
die() { log "$*"; exit 1; }

# Whether any TCP socket on this machine uses local port $1 (listening or connected: a
# connected socket's port blocks a later bind as well).
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Prints N distinct free TCP ports on 127.0.0.1, chosen outside the kernel's ephemeral
# range: a port picked inside it can be taken by any outgoing connection (the apiserver's
# to etcd, say) between the pick and the bind, which once failed CI with EADDRINUSE.
free_ports() {
  local n=$1 got=() p i lo=32768 hi=60999 base span
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  if [ "$lo" -gt 12000 ]; then
    base=10000 span=$((lo - 10000))
  else
    base=$((hi + 1)) span=$((65536 - hi - 1))
  fi
  [ "$span" -ge $((n * 16)) ] || die "no room for $n ports outside the ephemeral range $lo-$hi"
  while [ ${#got[@]} -lt "$n" ]; do
    p=$((base + (RANDOM * 32768 + RANDOM) % span))
    for i in "${got[@]}"; do [ "$i" = "$p" ] && continue 2; done
    port_in_use "$p" || got+=("$p")
  done
  echo "${got[@]}"
}

# Sets $dir to a fresh cluster directory: $PKIPLANE_E2E_DIR when set (it must be empty
# or missing), else a new temporary one; marks it as the harness's with the marker files
# named, and makes logs/, pids/ and a private etcd/ in it.
make_cluster_dir() {
  if [ -n "${PKIPLANE_E2E_DIR:-}" ]; then
    dir=$PKIPLANE_E2E_DIR
    [ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || die "up: $dir exists and is not empty"
    mkdir -p "$dir"
  else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pkiplane-e2e.XXXXXX")
  fi
  dir=$(cd "$dir" && pwd)
  local marker
  for marker in "$@"; do touch "$dir/$marker"; done
  mkdir -p "$dir/logs" "$dir/pids"
  mkdir -m 700 "$dir/etcd"
}

# A process's start time (clock ticks since boot), to tell it from a later process that
# reuses its pid.
starttime() {
  local st f
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${st##*) }" # fields from the 3rd on; starttime is the 22nd
  echo "${f[19]}"
}

# start NAME CMD...: runs CMD detached (own session, no inherited stdio), logs to
# $dir/logs/NAME.log, records "pid starttime" in $dir/pids/NAME.
start() {
  local name=$1 pid; shift
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "bad process name: $name"
  ! alive "$name" || die "$name is already running"
  setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid $(starttime "$pid" || echo 0)" >"$dir/pids/$name"
}

# alive NAME: the process recorded under NAME is still the one we started, and running
# (an exited process whose parent has not reaped it yet, a zombie, is not).
alive() {
  local pid st stat f
  { [ -f "$dir/pids/$1" ] && read -r pid st <"$dir/pids/$1"; } || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${stat##*) }" # fields from the 3rd on: state, ..., starttime (22nd)
  [ "${f[0]}" != Z ] && [ "${f[19]}" = "$st" ]
}

# stop NAME...: SIGTERM to each one still alive, SIGKILL to those alive after
# $stop_grace (default 10) seconds. The signal goes to the process group `start` made
# (setsid), so children the process started (nsenter's, a shell's) stop with it.
stop() {
  local name pid st pids=() deadline
  for name in "$@"; do
    alive "$name" || continue
    read -r pid st <"$dir/pids/$name"
    { kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; } && pids+=("$name")
  done
  deadline=$(( SECONDS + ${stop_grace:-10} ))
  for name in "${pids[@]}"; do
    read -r pid st <"$dir/pids/$name"
    while alive "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if alive "$name"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

# wait_for WHAT CMD...: polls CMD every 0.2 s until it succeeds, failing early when one of
# the started processes died.
wait_for() {
  local what=$1 deadline=$(( SECONDS + timeout )) f; shift
  until "$@" >/dev/null 2>&1; do
    for f in "$dir"/pids/*; do
      alive "$(basename "$f")" || die "$(basename "$f") exited while waiting for $what (log: $dir/logs/$(basename "$f").log)"
    done
    [ $SECONDS -lt $deadline ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

b64() { base64 -w0 <"$1"; }

# write_kubeconfig FILE USER (cert KEYFILE CERTFILE | token TOKEN): the API server is the
# one host-side clients reach, unless $kc_server names another URL.
write_kubeconfig() {
  local file=$1 user=$2 kind=$3 auth server=${kc_server:-https://127.0.0.1:$(cat "$dir/apiserver-port")}
  if [ "$kind" = cert ]; then
    auth="    client-certificate-data: $(b64 "$5")
    client-key-data: $(b64 "$4")"
  else
    auth="    token: $4"
  fi
  (umask 077 && : >"$file")
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pkiplane-e2e
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$dir/pki/ca.crt")
users:
- name: $user
  user:
$auth
contexts:
- name: $user@pkiplane-e2e
  context:
    cluster: pkiplane-e2e
    user: $user
current-context: $user@pkiplane-e2e
EOF
}

# ---------------------------------------------------------------------------- certificates

ossl() { openssl "$@" 2>>"$dir/logs/openssl.log"; }

# pki_init: the cluster CA (signs the API server's serving cert and every client cert) and
# the service-account token signing key (RSA, as most clusters use), in $dir/pki.
pki_init() {
  local p="$dir/pki"
  mkdir -p "$p"
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -keyout "$p/ca.key" -out "$p/ca.crt" -subj "/CN=pkiplane-e2e-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$p/sa.key"
  ossl pkey -in "$p/sa.key" -pubout -out "$p/sa.pub"
}

# pki_leaf NAME SUBJECT EKU [SAN]: $dir/pki/NAME.{key,crt}, signed by the cluster CA.
pki_leaf() {
  local p="$dir/pki" ext="$dir/pki/$1.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$3"
    [ -z "${4:-}" ] || echo "subjectAltName=$4"
  } >"$ext"
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$p/$1.key" \
    -out "$p/$1.csr" -subj "$2"
  ossl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 7 -extfile "$ext" -out "$p/$1.crt"
  rm -f "$p/$1.csr" "$ext"
}

# ---------------------------------------------------------------------------- commands

on_fail() {
  log "up failed; the logs' last errors:"
  print_log_errors
  cmd_down || true
}

# The last errors of each log in $dir/logs, for a failure report.
print_log_errors() {
  local f errs
  for f in "$dir"/logs/*.log; do
    [ -s "$f" ] || continue
    errs=$(grep -E '^[EF][0-9]{4} |"level":"(error|fatal|panic)"|[Ee]rror' "$f" | tail -n 10 || true)
    # openssl's log is progress dots unless something went wrong.
    [ -n "$errs" ] || [ "$(basename "$f")" != openssl.log ] || continue
    echo "----- $(basename "$f")" >&2
    if [ -n "$errs" ]; then echo "$errs" >&2; else tail -n 10 "$f" >&2; fi
  done
}

cmd_sa_kubeconfig() {
  [ $# -ge 2 ] || die "usage: sa-kubeconfig NAMESPACE NAME [FILE]"
  local ns=$1 name=$2 out=${3:-$dir/sa-$1-$2.kubeconfig} token k
  k=(kubectl --kubeconfig="$dir/kubeconfig")
  "${k[@]}" get namespace "$ns" >/dev/null 2>&1 || "${k[@]}" create namespace "$ns" >/dev/null
  "${k[@]}" -n "$ns" get serviceaccount "$name" >/dev/null 2>&1 ||
    "${k[@]}" -n "$ns" create serviceaccount "$name" >/dev/null
  token=$("${k[@]}" -n "$ns" create token "$name" --duration=24h)
  write_kubeconfig "$out" "system:serviceaccount:$ns:$name" token "$token"
  echo "$out"
}

# The `export` lines every cluster prints (`up`, `env`): its dir, the admin kubeconfig, the
# API server as host-side clients reach it, the cluster CA, the tools on PATH.
print_api_env() {
  printf 'export PKIPLANE_E2E_DIR=%q\n' "$dir"
  printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'export KUBECACHEDIR=%q\n' "$dir/kubectl-cache"
  printf 'export PKIPLANE_E2E_APISERVER=%q\n' "https://127.0.0.1:$(cat "$dir/apiserver-port")"
  printf 'export PKIPLANE_E2E_CA=%q\n' "$dir/pki/ca.crt"
  printf 'export PKIPLANE_E2E_SA_ISSUER=%q\n' "$SA_ISSUER"
  printf 'export PKIPLANE_KUBE_BIN=%q\n' "$(cat "$dir/bin-dir")"
  # shellcheck disable=SC2016 # $PATH expands where the line is eval'd
  printf 'export PATH=%q:"$PATH"\n' "$(cat "$dir/bin-dir")"
}

# cmd_process start NAME -- CMD... | stop NAME... | alive NAME: the managed processes.
cmd_process() {
  local name pid
  case $1 in
    start)
      { [ $# -ge 4 ] && [ "$3" = "--" ]; } || die "usage: start NAME -- CMD..."
      name=$2; shift 3
      start "$name" "$@"
      read -r pid _ <"$dir/pids/$name"
      echo "$pid" ;;
    stop) shift; [ $# -gt 0 ] || die "usage: stop NAME..."; stop "$@" ;;
    alive) alive "${2:?usage: alive NAME}" ;;
  esac
}

cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: run -- CMD..."
  local envs status=0
  envs=$(cmd_up)
  eval "$envs"
  dir=$PKIPLANE_E2E_DIR
  trap 'cmd_down' EXIT
  trap 'exit 130' INT TERM
  "$@" || status=$?
  exit $status
}

need_cluster() {
  [ -n "$dir" ] || die "$1: PKIPLANE_E2E_DIR is not set (eval the output of \`$me up\` first)"
  [ -f "$dir/.pkiplane-e2e" ] || die "$1: no cluster in $dir"
  PATH="$(cat "$dir/bin-dir"):$PATH"
  export PATH KUBECACHEDIR="$dir/kubectl-cache"
}

