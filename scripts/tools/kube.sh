#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the Kubernetes tools of the e2e harness from the Go module proxy and prints the
# directory that holds them:
#
#   kube-apiserver  kube-controller-manager  kubectl  etcd  etcdctl   (e2e/cluster.sh)
#   kube-scheduler  kubelet  kube-proxy                                (e2e/node.sh, the real node)
#
# Versions are pinned by e2e/tools/go.mod (k8s.io/kubernetes and go.etcd.io/etcd). The
# binaries go to ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}/kube-<k8s version>/bin,
# outside the repository; a rerun with that directory in place only checks a stamp and
# prints it. A cold build of all eight takes about 13 minutes on a busy 2-core machine
# (~510 CPU-s, 1.9 GB peak when linking kube-apiserver; 3.5 GB of Go build cache, after
# which a rebuild takes ~35 s) and is kept small in memory: -p 2, GOMAXPROCS=2, -trimpath, stripped
# (-ldflags "-s -w"). The result is reproducible byte for byte.
#
# Usage: scripts/tools/kube.sh            prints the bin directory (stdout only)
#        eval "$(scripts/tools/kube.sh --env)"   exports PATH and PKIPLANE_KUBE_BIN
# Env:   PKIPLANE_TOOLS_CACHE  cache root     PKIPLANE_KUBE_REBUILD=1  force a rebuild
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
mod="$root/e2e/tools"

die() { echo "kube.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go is not installed (Go >= 1.25 is needed to build the e2e tools)"
{ [ -f "$mod/go.mod" ] && [ -f "$mod/go.sum" ]; } || die "missing $mod/go.mod or go.sum"

# The pinned versions, read from go.mod's require block.
modver() { awk -v p="$1" '$1==p && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod"; }
k8s=$(modver k8s.io/kubernetes)
etcd=$(modver go.etcd.io/etcd/server/v3)
{ [ -n "$k8s" ] && [ -n "$etcd" ]; } || die "cannot read the k8s.io/kubernetes and etcd versions from $mod/go.mod"

# shellcheck source=lib/cache.sh
. "$(dirname "$0")/lib/cache.sh"
cache_dir "kube-$k8s"
bin="$dir/bin"
# The stamp ties the cached binaries to the exact dependency graph (go.mod + go.sum, less
# comments), so a bumped etcd or a changed replace line rebuilds even when the Kubernetes
# version did not change.
stamp=$(cat "$mod/go.mod" "$mod/go.sum" | grep -v '^ *//' | sha256sum | cut -c1-16)
tools=(kube-apiserver kube-controller-manager kubectl etcd etcdctl kube-scheduler kubelet kube-proxy)

print() { print_bin_dir "$bin" PKIPLANE_KUBE_BIN "${1:-}"; }

fresh() { ! cache_rebuild_requested && cache_stamped stamp "$stamp" && cache_executables "$bin" "${tools[@]}"; }
cache_reuse_or_lock fresh print "${1:-}"
mkdir -p "$tmp/bin"

# What `kubectl version` and the API server's /version report, set as Kubernetes' own
# build does (hack/lib/version.sh); a plain `go build` would say v0.0.0-master.
minor=${k8s#v1.}; minor=${minor%%.*}
x=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  x+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

go_build_env
export GOFLAGS="$GOFLAGS -mod=readonly"

echo "kube.sh: building Kubernetes $k8s and etcd $etcd into $bin (cold: several minutes)" >&2
start=$(date +%s)
cd "$mod"
go mod download
build() { # output package
  echo "kube.sh:   $1" >&2
  go build -p 2 -ldflags "-s -w$x" -o "$tmp/bin/$1" "$2"
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl
build etcd go.etcd.io/etcd/server/v3
build etcdctl go.etcd.io/etcd/etcdctl/v3
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-proxy k8s.io/kubernetes/cmd/kube-proxy

"$tmp/bin/kubectl" version --client=true >&2
echo "$stamp" >"$tmp/stamp"
printf 'kubernetes %s\netcd %s\ngo %s\n' "$k8s" "$etcd" "$(go env GOVERSION)" >"$tmp/versions"

cache_install
echo "kube.sh: built in $(( $(date +%s) - start ))s" >&2
print "${1:-}"
