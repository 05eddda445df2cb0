#!/usr/bin/env bash
# Builds the pkiplane container image with podman and prints its reference on stdout.
#
# The binary is compiled on this machine (cargo profile `image`: stripped, LTO, glibc
# linked statically so the image needs no shared libraries) and copied into a FROM
# scratch image (deploy/image/Containerfile) as /usr/local/bin/pkiplane, user 65532,
# with the OCI labels version (the workspace version, also `pkiplane --version`, the
# chart's appVersion and the tag), revision (the git commit, "-dirty" with local changes)
# and source. Installs podman from Debian when it is missing (building needs no runtime).
#
# Usage: scripts/image.sh [--archive FILE] [--ref REF]
#   --archive FILE  also write the image as an OCI archive (`podman save --format
#                   oci-archive`), e.g. to import into containerd
#   --ref REF       the image reference (default ghcr.io/pkiplane/pkiplane:<version>,
#                   the chart's and the operator's default)
#   --iidfile FILE  write the built image's ID there (a tag can be moved by a concurrent
#                   build of the same reference; the ID cannot)
# Env:   CARGO_TARGET_DIR  honoured; PKIPLANE_IMAGE_SOURCE  the source label
#        PKIPLANE_IMAGE_PROFILE  the cargo profile of the binary (default `image`; `release`
#                   or `dev` link much faster while iterating on e2e scripts, same content)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

archive=""
ref=""
iidfile=""
while [ $# -gt 0 ]; do
  case $1 in
    --archive) archive=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --iidfile) iidfile=$2; shift 2 ;;
    *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "image.sh: $*" >&2; exit 1; }

if ! command -v podman >/dev/null 2>&1; then
  echo "image.sh: installing podman (Debian)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq podman >/dev/null
fi

version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["workspace"]["package"]["version"])' Cargo.toml)
ref=${ref:-ghcr.io/pkiplane/pkiplane:$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || revision="$revision-dirty"

case $(uname -m) in
  x86_64) target=x86_64-unknown-linux-gnu ;;
  aarch64) target=aarch64-unknown-linux-gnu ;;
  *) die "unsupported machine $(uname -m)" ;;
esac
# crt-static: glibc linked into the binary (its DNS and /etc/hosts lookups included), so
# the image holds nothing else. With --target, the flag reaches only the binary, not
# build scripts and proc macros.
profile=${PKIPLANE_IMAGE_PROFILE:-image}
echo "image.sh: cargo build --profile $profile --target $target (static)" >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --locked -p pkiplane --profile "$profile" --target "$target"
profile_dir=$profile
[ "$profile" != dev ] || profile_dir=debug
bin=${CARGO_TARGET_DIR:-$root/target}/$target/$profile_dir/pkiplane
grep -qE 'statically linked|not a dynamic executable' <<<"$(ldd "$bin" 2>&1)" ||
  die "$bin is dynamically linked: $(ldd "$bin" 2>&1 | tr '\n' ' ')"
reported=$("$bin" --version)
[ "$reported" = "pkiplane $version" ] || die "the binary reports '$reported', the workspace version is $version"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/pkiplane"
chmod 0555 "$context/pkiplane"
install -m 0444 deploy/image/passwd deploy/image/group "$context/"
# Layer timestamps from the commit: the same commit gives the same image. No layer cache:
# buildah reuses a cached LABEL step whose build-arg changed (the revision label would be
# an older commit's), and the build is only a copy of one file.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
podman build -q --no-cache --timestamp "$epoch" -f deploy/image/Containerfile -t "$ref" --iidfile "$context/iid" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg SOURCE="${PKIPLANE_IMAGE_SOURCE:-https://github.com/pkiplane/pkiplane}" \
  "$context" >/dev/null
id=$(cat "$context/iid")
[ -z "$iidfile" ] || cp "$context/iid" "$iidfile"
size=$(podman image inspect --format '{{.Size}}' "$id")
echo "image.sh: $ref ($((size / 1024 / 1024)) MiB, binary $(($(stat -c %s "$bin") / 1024 / 1024)) MiB, revision $revision)" >&2

if [ -n "$archive" ]; then
  rm -f "$archive"
  podman save -q --format oci-archive -o "$archive" "$ref"
  # The tag may have moved between build and save (a concurrent build of the same ref):
  # the archive must hold the image built here (its config digest is the image ID).
  saved=$(python3 - "$archive" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    index = json.load(t.extractfile("index.json"))
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.load(t.extractfile(f"blobs/sha256/{digest}"))
    print(manifest["config"]["digest"].split(":")[1])
PY
  )
  [ "$saved" = "${id#sha256:}" ] || die "$ref was re-tagged by another build while this one saved it; run again"
  echo "image.sh: wrote $archive" >&2
fi
echo "$ref"
