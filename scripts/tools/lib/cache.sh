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
#   cached_go_binary  the whole fetch-or-build cycle of a one-binary Go tool (below)
#   cache_reuse_or_lock  the reuse check, lock and build directory of the others (below)

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

# cached_go_binary NAME RELPATH BUILD_FUNCTION
#   The whole cycle for a tool that is one Go binary: prints $dir/RELPATH (dir = the cache
#   directory NAME) when it is there; otherwise, under NAME's lock, calls BUILD_FUNCTION
#   with the folder the binary must be written to (inside the build directory, with
#   go_build_env exported), installs the result and prints the path. The env variable
#   PKIPLANE_<TOOL>_REBUILD=1 (TOOL from the script's name) forces one rebuild.
cached_go_binary() {
  local name=$1 rel=$2 build=$3 me=${0##*/}
  cache_dir "$name"
  local bin="$dir/$rel"
  if ! cache_rebuild_requested && [ -x "$bin" ]; then echo "$bin"; return 0; fi
  command -v go >/dev/null 2>&1 || { echo "$me: go is not installed (needed to build $name)" >&2; exit 1; }
  cache_lock
  if ! cache_rebuild_requested && [ -x "$bin" ]; then echo "$bin"; return 0; fi
  cache_build_dir
  local out
  out=$(dirname "$tmp/$rel")
  mkdir -p "$out"
  go_build_env
  echo "$me: building $name into $bin" >&2
  local start
  start=$(date +%s)
  "$build" "$out" >&2
  [ -x "$tmp/$rel" ] || { echo "$me: the build of $name wrote no $rel" >&2; exit 1; }
  cache_install
  echo "$me: built in $(( $(date +%s) - start ))s" >&2
  echo "$bin"
}

# cache_rebuild_requested
#   True when PKIPLANE_<TOOL>_REBUILD=1 (TOOL from the script's name) asks for a rebuild.
cache_rebuild_requested() {
  local var
  var="PKIPLANE_$(basename "$0" .sh | tr '[:lower:]-' '[:upper:]_')_REBUILD"
  [ "${!var:-}" = 1 ]
}

# cache_stamped FILE VALUE
#   True when $dir/FILE holds VALUE (the version or the stamp of the inputs built from).
cache_stamped() {
  [ "$(cat "$dir/$1" 2>/dev/null)" = "$2" ]
}

# cache_executables DIR NAME...
#   True when every NAME is an executable in DIR.
cache_executables() {
  local d=$1 t
  shift
  for t in "$@"; do [ -x "$d/$t" ] || return 1; done
}

# cache_reuse_or_lock FRESH PRINT...
#   When the function FRESH finds the cached build usable, runs PRINT (a command and its
#   arguments) and exits; otherwise takes the build lock, checks again (a run that held
#   the lock may have built it), drops the rebuild request so that it is honoured once,
#   and sets up the build directory $tmp.
cache_reuse_or_lock() {
  local fresh=$1
  shift
  if "$fresh"; then "$@"; exit 0; fi
  cache_lock
  if "$fresh"; then "$@"; exit 0; fi
  unset "PKIPLANE_$(basename "$0" .sh | tr '[:lower:]-' '[:upper:]_')_REBUILD"
  cache_build_dir
}

# go_build_in_scratch_module PACKAGE VERSION OUTPUT [GO BUILD ARGS...]
#   Builds PACKAGE (a main package) at module version VERSION inside a throwaway module
#   that requires exactly that version. For modules whose version list the proxy here
#   refuses: `go install pkg@version` reads that list for its deprecation check and fails.
go_build_in_scratch_module() {
  local pkg=$1 version=$2 output=$3
  shift 3
  local work rc=0
  work=$(mktemp -d)
  (cd "$work" && go mod init pkiplane-tool-build >/dev/null 2>&1 &&
    GOFLAGS="$GOFLAGS -mod=mod" go get "$pkg@$version" &&
    GOFLAGS="$GOFLAGS -mod=mod -buildvcs=false" go build -p "$GOMAXPROCS" "$@" -o "$output" "$pkg") || rc=$?
  rm -rf "$work"
  return $rc
}

# print_bin_dir DIR ENV_NAME [--env]
#   Prints DIR, or with --env the lines that export ENV_NAME=DIR and put DIR first on PATH
#   (for `eval "$(scripts/tools/X.sh --env)"`).
print_bin_dir() {
  if [ "${3:-}" = "--env" ]; then
    # shellcheck disable=SC2016 # $PATH expands where the line is eval'd
    printf 'export %s=%q\nexport PATH=%q:"$PATH"\n' "$2" "$1" "$1"
  else
    echo "$1"
  fi
}
