#!/usr/bin/env bash
# The container image as a container runtime sees it: builds it (scripts/image.sh, also
# the OCI archive the real-node harness imports), checks its configuration (user 65532,
# PATH, entrypoint, OCI labels from Cargo and git) and its content (the binary and the
# passwd/group of its user, nothing else), then runs it with podman + runc the way the
# chart's pods run (read-only root filesystem, uid 65532, every capability dropped, no
# privilege escalation, no network but loopback): `pkiplane --version`, `pkiplane` found
# on PATH, and `pkiplane serve` of the quickstart with a real `openssl cmp` enrollment
# against it inside the container's network namespace, verified with `openssl verify`.
#
# Usage: e2e/image.sh [--archive FILE]   (FILE: keep the OCI archive there)
# Last line: "image: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

me=image
# shellcheck source=e2e/lib/report.sh
. e2e/lib/report.sh
work=$(mktemp -d)
container=""
finish() {
  local rc=$?
  [ -z "$container" ] || podman rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
  report_exit $rc
}
trap finish EXIT

archive=$work/pkiplane.oci.tar
[ "${1:-}" != --archive ] || archive=$2

version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')
start=$SECONDS
ref=$(scripts/image.sh --archive "$archive" --iidfile "$work/iid" 2>"$work/build.log") || fail "scripts/image.sh" "$(tail -n 30 "$work/build.log")"
[ "$ref" = "ghcr.io/pkiplane/pkiplane:$version" ] || fail "the image is ghcr.io/pkiplane/pkiplane:$version" "got $ref"
# Inspected and run by ID: another build of the same tag (a second checkout) cannot swap it.
id=$(cat "$work/iid")
pass "built $ref in $((SECONDS - start))s: $(grep -o '(.*MiB.*)' "$work/build.log")"

# podman run on this kernel: runc (crun refuses cgroup v1 hybrid hosts), no default ulimits.
command -v runc >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
}
printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
run() { podman --runtime runc run --rm --network none --read-only --user 65532:65532 --cap-drop ALL \
  --security-opt no-new-privileges "$@"; }

# ---------------------------------------------------------------------------- configuration

podman image inspect "$id" >"$work/inspect.json"
out=$(python3 - "$work/inspect.json" "$version" "$(git rev-parse HEAD)" <<'PY'
import json, sys
image = json.load(open(sys.argv[1]))[0]
version, commit = sys.argv[2], sys.argv[3]
config = image["Config"]
labels = config.get("Labels") or {}
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: {got!r}, want {expected!r}")
want("user", config.get("User"), "65532:65532")
want("entrypoint", config.get("Entrypoint"), ["/usr/local/bin/pkiplane"])
want("PATH", [e for e in config.get("Env", []) if e.startswith("PATH=")], ["PATH=/usr/local/bin"])
want("version label", labels.get("org.opencontainers.image.version"), version)
if labels.get("org.opencontainers.image.revision") not in (commit, commit + "-dirty"):
    problems.append(f"revision label {labels.get('org.opencontainers.image.revision')!r}, want {commit}")
if not labels.get("org.opencontainers.image.source", "").startswith("https://"):
    problems.append("no source label")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
) || fail "image configuration" "$out"
pass "user 65532:65532, PATH=/usr/local/bin, entrypoint /usr/local/bin/pkiplane, labels version $version and revision $(git rev-parse --short HEAD)"

out=$(python3 - "$archive" <<'PY'
import io, json, sys, tarfile
outer = tarfile.open(sys.argv[1])
blob = lambda d: outer.extractfile("blobs/" + d.replace(":", "/"))
manifest = json.load(blob(json.load(outer.extractfile("index.json"))["manifests"][0]["digest"]))
files = []
for layer in manifest["layers"]:
    with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]).read())) as t:
        files += [(m.name.lstrip("./"), m.mode & 0o7777, m.uid) for m in t.getmembers() if m.isfile()]
print("\n".join(f"{n} {oct(mode)} uid {uid}" for n, mode, uid in sorted(files)))
PY
) || fail "read the OCI archive's layers" "$out"
expected="etc/group 0o444 uid 0
etc/passwd 0o444 uid 0
usr/local/bin/pkiplane 0o555 uid 0"
[ "$out" = "$expected" ] || fail "the image holds the binary and its user's passwd/group only (root-owned, read-only)" "$out"
pass "content: /usr/local/bin/pkiplane (0555, root-owned), /etc/passwd, /etc/group; nothing else"

# ---------------------------------------------------------------------------- running

out=$(run "$id" --version 2>&1) || fail "podman run $ref --version" "$out"
[ "$out" = "pkiplane $version" ] || fail "pkiplane --version in the image" "$out"
out=$(run --entrypoint pkiplane "$id" --version 2>&1) || fail "pkiplane from PATH (the chart's command)" "$out"
pass "runs as uid 65532 with a read-only root and no capabilities: '$out' (entrypoint and PATH)"

# The quickstart in the container; a CMP enrollment from this host inside its network
# namespace (it has no other network).
mkdir -p "$work/data"
chown 65532:65532 "$work/data"
container=$(podman --runtime runc run -d --network none --read-only --user 65532:65532 --cap-drop ALL \
  --security-opt no-new-privileges -v "$PWD/examples:/examples:ro" -v "$work/data:/data" \
  -e PKIPLANE_LOG_FORMAT=json "$id" serve -f /examples/quickstart.yaml --data-dir /data \
  --ready-file /data/ready.json) || fail "podman run pkiplane serve"
for _ in $(seq 60); do
  [ -s "$work/data/ready.json" ] && break
  [ "$(podman inspect --format '{{.State.Running}}' "$container")" = true ] ||
    fail "pkiplane serve in the container exited" "$(podman logs "$container" 2>&1 | tail -n 20)"
  sleep 1
done
[ -s "$work/data/ready.json" ] || fail "pkiplane serve wrote its ready file within 60s" "$(podman logs "$container" 2>&1 | tail -n 20)"
pid=$(podman inspect --format '{{.State.Pid}}' "$container")
in_container_net() { nsenter --target "$pid" --net -- "$@"; }
in_container_net curl -fsS http://127.0.0.1:8080/issuers/pki/example-root/ca.pem -o "$work/root.pem" ||
  fail "CA certificate from the container's publication listener"
in_container_net curl -fsS http://127.0.0.1:8080/issuers/pki/example-intermediate/ca.pem -o "$work/intermediate.pem" ||
  fail "intermediate from the container's publication listener"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ne.key" 2>/dev/null
out=$(in_container_net openssl cmp -cmd ir -server 127.0.0.1:8084 -path /.well-known/cmp/p/tls -ref device-1 \
  -secret pass:quickstart-cmp-secret -recipient "/CN=pkiplane CMP pki\/cmp" -newkey "$work/ne.key" \
  -subject /CN=ne.example.com -sans ne.example.com -certout "$work/ne.pem" 2>&1) ||
  fail "openssl cmp ir against pkiplane serve in the container" "$out"
out=$(openssl verify -CAfile "$work/root.pem" -untrusted "$work/intermediate.pem" "$work/ne.pem" 2>&1) ||
  fail "openssl verify of the certificate issued in the container" "$out"
podman logs "$container" >"$work/serve.log" 2>&1
grep -q '^{.*"level":"INFO"' "$work/serve.log" || fail "JSON logs with PKIPLANE_LOG_FORMAT=json" "$(head -n 5 "$work/serve.log")"
podman stop -t 10 "$container" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || fail "pkiplane serve stops cleanly on SIGTERM (exit 0)" "exit $code: $(podman logs "$container" 2>&1 | tail -n 5)"
pass "pkiplane serve of the quickstart in the container: CMP ir with openssl cmp, openssl verify OK, JSON logs, exit 0 on SIGTERM"
