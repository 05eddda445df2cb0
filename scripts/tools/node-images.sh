#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the container images the e2e harness's real node (e2e/node.sh) needs before
# any test image, as OCI archives, and prints the directory that holds them:
#
#   pause.tar     e2e.pkiplane.test/pause:3.10.1      the pod sandbox: Kubernetes' own
#                 build/pause/linux/pause.c (from the pinned k8s.io/kubernetes module),
#                 compiled with `gcc -static`, as the release's image is
#   coredns.tar   e2e.pkiplane.test/coredns:<version> the cluster DNS (scripts/tools/coredns.sh)
#   netcheck.tar  e2e.pkiplane.test/netcheck:<hash>   e2e/netcheck, a static Go program that
#                 serves and checks HTTP and DNS in the node's smoke test
#
# Each image is FROM scratch, holding one static binary, built by podman in a throwaway
# store (nothing is left in the host's container storage). `images` in the directory
# lists "ARCHIVE IMAGE-NAME" lines; e2e/node.sh imports them into containerd.
# `.test` is a reserved top-level domain: the names can never be pulled from anywhere.
#
# The directory is ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/node-images, rebuilt
# when its stamp (the inputs' hashes: pause.c, e2e/netcheck, the CoreDNS build, this
# script) changes.
#
# Usage: scripts/tools/node-images.sh       prints the directory (stdout only)
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_NODE_IMAGES_REBUILD=1  force a rebuild
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "node-images.sh: $*" >&2; exit 1; }
for c in go gcc podman; do
  command -v "$c" >/dev/null 2>&1 || die "$c is not installed (scripts/tools/node-packages.sh installs podman)"
done

coredns=$("$root/scripts/tools/coredns.sh")
coredns_version=$(basename "$(dirname "$(dirname "$coredns")")"); coredns_version=${coredns_version#coredns-}
# pause.c of the pinned Kubernetes release, from the module cache (downloaded if missing).
k8s_dir=$(cd "$root/e2e/tools" && GOFLAGS=-mod=readonly go mod download -json k8s.io/kubernetes |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
pause_c="$k8s_dir/build/pause/linux/pause.c"
[ -f "$pause_c" ] || die "no $pause_c in the k8s.io/kubernetes module"
pause_tag=$(sed -n 's/^TAG ?= *//p' "$k8s_dir/build/pause/Makefile")
[ -n "$pause_tag" ] || die "cannot read the pause TAG from $k8s_dir/build/pause/Makefile"
netcheck_hash=$(cat "$root/e2e/netcheck/go.mod" "$root/e2e/netcheck/main.go" | sha256sum | cut -c1-12)

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cache_dir node-images
stamp=$( { sha256sum <"$pause_c"; echo "$netcheck_hash"; cat "$(dirname "$coredns")/../stamp"; sha256sum <"$0"; } |
  sha256sum | cut -c1-16)

fresh() { ! cache_rebuild_requested && [ -f "$dir/images" ] && cache_stamped stamp "$stamp"; }
cache_reuse_or_lock fresh echo "$dir"
# podman refuses a run root path longer than 50 characters.
runroot=$(mktemp -d /tmp/pkiplane-podman.XXXXXX)
trap 'rm -rf "$tmp" "$runroot"' EXIT
mkdir -p "$tmp/out"
start=$(date +%s)
echo "node-images.sh: building the node's images into $dir" >&2

# A podman of its own: store, run root and config in the build dir, removed afterwards.
pm() {
  podman --root "$tmp/store" --runroot "$runroot" --storage-driver vfs \
    --cgroup-manager cgroupfs --events-backend none "$@"
}

# image NAME ARCHIVE BINARY USER: packs BINARY FROM scratch as /NAME, run as USER.
image() {
  local name=$1 archive=$2 binary=$3 user=$4 ctx="$tmp/ctx-$2"
  mkdir -p "$ctx"
  cp "$binary" "$ctx/entrypoint"
  cat >"$ctx/Containerfile" <<EOF
FROM scratch
COPY entrypoint /$(basename "$binary")
USER $user
ENTRYPOINT ["/$(basename "$binary")"]
EOF
  pm build --quiet --timestamp 0 --label "org.opencontainers.image.source=pkiplane e2e" \
    -t "$name" "$ctx" >/dev/null
  pm save --quiet --format oci-archive -o "$tmp/out/$archive.tar" "$name"
  echo "$archive.tar $name" >>"$tmp/out/images"
  echo "node-images.sh:   $name ($(du -k "$tmp/out/$archive.tar" | cut -f1) KiB)" >&2
}

mkdir -p "$tmp/bin"
gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-pkiplane" -o "$tmp/bin/pause" "$pause_c"
strip "$tmp/bin/pause"
(cd "$root/e2e/netcheck" && CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=${GOTOOLCHAIN:-local} \
  go build -ldflags "-s -w" -o "$tmp/bin/netcheck" .)

image "e2e.pkiplane.test/pause:$pause_tag" pause "$tmp/bin/pause" 65535:65535
image "e2e.pkiplane.test/coredns:$coredns_version" coredns "$coredns" 65532:65532
image "e2e.pkiplane.test/netcheck:$netcheck_hash" netcheck "$tmp/bin/netcheck" 65532:65532

echo "$stamp" >"$tmp/out/stamp"
# The podman store holds read-only layers of the vfs driver: make them removable.
chmod -R u+w "$tmp/store" 2>/dev/null || true
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "node-images.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$dir"
