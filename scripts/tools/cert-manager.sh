#!/usr/bin/env bash
# Builds cert-manager's controller and ACME http-01 solver, and fetches its CRDs and chart,
# for the cert-manager e2e test. Prints the directory that holds them:
#
#   bin/cm-controller  bin/cm-acmesolver  crds/*.yaml  chart/  versions
#
# The controller's and acmesolver's `main` packages are nested Go modules that the module
# proxy does not serve, and one of their dependencies (github.com/Venafi/vcert/v5) is
# refused by the proxy here. Their unmodified upstream sources come from, in order:
#   1. $PKIPLANE_CERT_MANAGER_SRC (a folder holding cert-manager-<version>/ and vcert-<v>/),
#   2. ../shared/third_party beside the checkout,
#   3. a `git clone` of the pinned tags, where the network allows it.
# The library module github.com/cert-manager/cert-manager@<version> (and with it
# deploy/crds and deploy/charts) comes from the Go module proxy. Nothing of cert-manager
# is copied into this repository.
#
# Cached under ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/cert-manager-<version>;
# a rerun with it in place prints the path at once. Cold build: about 6.5 CPU-minutes and
# 1.6 GB of memory for the controller, seconds for the solver after it.
#
# Usage: scripts/tools/cert-manager.sh      prints the directory (stdout only)
# Env:   PKIPLANE_TOOLS_CACHE  cache root   PKIPLANE_CERT_MANAGER_SRC  source folder
#        PKIPLANE_CERT_MANAGER_REBUILD=1    force a rebuild
set -euo pipefail

version=v1.21.1
vcert=v5.13.7
root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "cert-manager.sh: $*" >&2; exit 1; }

cache=${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}
dir="$cache/cert-manager-$version"

fresh() {
  [ "${PKIPLANE_CERT_MANAGER_REBUILD:-}" != 1 ] || return 1
  [ -x "$dir/bin/cm-controller" ] && [ -x "$dir/bin/cm-acmesolver" ] && [ -d "$dir/crds" ] && [ -d "$dir/chart" ]
}
if fresh; then echo "$dir"; exit 0; fi

command -v go >/dev/null 2>&1 || die "go is not installed (needed to build cert-manager $version)"
mkdir -p "$cache"
exec 9>"$cache/.cert-manager-$version.lock"
flock 9
if fresh; then echo "$dir"; exit 0; fi

tmp=$(mktemp -d "$cache/.cert-manager-$version.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/src"

# Where the nested modules' sources are.
src=""
for candidate in "${PKIPLANE_CERT_MANAGER_SRC:-}" "$root/../shared/third_party"; do
  [ -n "$candidate" ] || continue
  if [ -f "$candidate/cert-manager-$version/cmd/controller/go.mod" ] && [ -f "$candidate/vcert-$vcert/go.mod" ]; then
    src=$(cd "$candidate" && pwd)
    break
  fi
done
if [ -z "$src" ]; then
  echo "cert-manager.sh: no local sources; trying git clone of the pinned tags" >&2
  if git clone -q --depth 1 --branch "$version" https://github.com/cert-manager/cert-manager "$tmp/src/cert-manager-$version" 2>/dev/null &&
    git clone -q --depth 1 --branch "$vcert" https://github.com/Venafi/vcert "$tmp/src/vcert-$vcert" 2>/dev/null; then
    src="$tmp/src"
  else
    die "cert-manager $version sources not found: set PKIPLANE_CERT_MANAGER_SRC to a folder holding cert-manager-$version/cmd/{controller,acmesolver} and vcert-$vcert/, or put them in ../shared/third_party beside the checkout (the network does not reach github.com)"
  fi
fi
echo "cert-manager.sh: building cert-manager $version from $src" >&2

export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
export GOMAXPROCS=${GOMAXPROCS:-2}
export CGO_ENABLED=0
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
start=$(date +%s)

# The library module (its deploy/ folder holds the CRDs and the chart).
lib=$(go mod download -json "github.com/cert-manager/cert-manager@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$lib/deploy/crds" ] || die "the module github.com/cert-manager/cert-manager@$version has no deploy/crds"
cp -r "$lib/deploy/crds" "$tmp/crds"
cp -r "$lib/deploy/charts/cert-manager" "$tmp/chart"
chmod -R u+w "$tmp/crds" "$tmp/chart"

# The nested main modules, pointed at the library module of the same version and at the
# vcert sources the proxy refuses. Built in a scratch copy: the sources stay unmodified.
build() { # name folder
  local work="$tmp/work-$1"
  cp -r "$src/cert-manager-$version/cmd/$2" "$work"
  chmod -R u+w "$work"
  (
    cd "$work"
    go mod edit -dropreplace github.com/cert-manager/cert-manager \
      -require "github.com/cert-manager/cert-manager@$version" \
      -replace "github.com/Venafi/vcert/v5=$src/vcert-$vcert"
    go mod tidy >/dev/null 2>&1 || go mod tidy
    go build -p "$GOMAXPROCS" -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$version" \
      -o "$tmp/bin/$1" .
  )
  rm -rf "$work"
}
echo "cert-manager.sh:   controller" >&2
build cm-controller controller
echo "cert-manager.sh:   acmesolver" >&2
build cm-acmesolver acmesolver

printf 'cert-manager %s\nvcert %s\ngo %s\n' "$version" "$vcert" "$(go env GOVERSION)" >"$tmp/versions"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "cert-manager.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$dir"
