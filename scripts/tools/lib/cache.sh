# shellcheck shell=bash
# The cache discipline of the tool builds in scripts/tools (sourced): one directory per
# tool and version under ${PKIPLANE_TOOLS_CACHE:-~/.cache/pkiplane/tools}, one build at a
# time per directory (flock, so test runs starting together build once), and a build in a
# temporary directory that replaces the old one only when complete.
#
#   cache_dir NAME    sets $cache (the root) and $dir ($cache/NAME)
#   cache_lock        waits for NAME's build lock (held on fd 9 until the script exits)
#   cache_build_dir   sets $tmp: an empty build directory, removed at exit unless installed
#   cache_install     replaces $dir with $tmp
#   go_build_env      static builds, -trimpath, at most 2 cores, the installed Go

cache_dir() {
  cache_name=$1
  cache=${PKIPLANE_TOOLS_CACHE:-$HOME/.cache/pkiplane/tools}
  dir="$cache/$cache_name"
}

cache_lock() {
  mkdir -p "$cache"
  exec 9>"$cache/.$cache_name.lock"
  flock 9
}

cache_build_dir() {
  tmp=$(mktemp -d "$cache/.$cache_name.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
}

cache_install() {
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
}

go_build_env() {
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
  export GOMAXPROCS=${GOMAXPROCS:-2}
  export CGO_ENABLED=0
  export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
}
