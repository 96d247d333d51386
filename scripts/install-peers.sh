#!/usr/bin/env bash
# Install the pinned external peers that Cargobay's tests and benchmarks run against.
#
#   scripts/install-peers.sh              install what is missing, then print the env lines
#   scripts/install-peers.sh --tests      the same, for what the test suite uses only (everything but
#                                         the reference registry v3, which only `make bench` runs)
#   scripts/install-peers.sh --print-env  only print the env lines (no install, no checks)
#   scripts/install-peers.sh --check      exit 1 (listing what is missing) if anything is not installed
#                                         (combine with --tests to check the test peers only)
#
# The Go tools build one after the other: side by side was measured slower on 2 cores (145 s vs 90 s).
# Idempotent: a rerun where everything is present prints only the env lines and takes well
# under a second.  Progress goes to stderr, env lines (KEY=value, shell-quoted) to stdout, so
#   eval "$(scripts/install-peers.sh)"   or   scripts/install-peers.sh > peers.env
# both work.  Build logs go to $CACHE/logs/; a failure prints the tail of the relevant log.
#
# Cache layout (CARGOBAY_CACHE_DIR, default <repo>/.cache — keep it out of git):
#   bin/        crane oras regctl registry-v3 versitygw (S3 server for the storage tests) conformance
#               osv-scanner
#   stamps/     <tool>.pin — the pin each binary was built from; a changed pin rebuilds it
#   go/mod      GOMODCACHE   go/build  GOCACHE   (nothing is written to ~/go or ~/.cache)
#   src/        writable copy of the conformance suite module, where it is built
#   logs/       output of the last apt/go run of each step
#
# Debian packages (apt, root needed only when something is missing):
#   skopeo, umoci, docker-registry (CNCF distribution 2.8), postgresql (server binaries in
#   /usr/lib/postgresql/<ver>/bin), apache2-utils (htpasswd -B, for registry auth configs),
#   wrk (HTTP load generator for the manifest-GET benchmark in benchmarks/).
#   Services are never started by the install (policy-rc.d), and if one was started anyway it is
#   stopped: tests start their own instances on free loopback ports.
#
# PostgreSQL and root: initdb/postgres refuse to run as root.  Tests running as root (CI does)
# must run them as the unprivileged `postgres` user (created by the Debian package), with a
# data dir that user owns, e.g.
#   d=$(mktemp -d); chown postgres: "$d"
#   runuser -u postgres -- "$PG_BINDIR/initdb" -D "$d/data" -U cargobay --auth=trust -E UTF8
#   runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/log" -w \
#       -o "-c listen_addresses=127.0.0.1 -p $PORT -k $d" start
# When not root, run them directly as the current user (drop the runuser prefix).
set -euo pipefail

# ---- pins --------------------------------------------------------------------------------
# Each Go tool: name|package|candidate versions (first that builds wins)|binary name in the module
GO_TOOLS=(
  "crane|github.com/google/go-containerregistry/cmd/crane|v0.22.1 v0.21.9|crane"
  "oras|oras.land/oras/cmd/oras|v1.3.6|oras"
  "regctl|github.com/regclient/regclient/cmd/regctl|v0.11.7|regctl"
  "registry-v3|github.com/distribution/distribution/v3/cmd/registry|v3.1.1|registry"
  # v2.6.0 needs Go 1.27; v2.5.1 builds with Go 1.26. The scanning cross-check runs it offline.
  "osv-scanner|github.com/google/osv-scanner/v2/cmd/osv-scanner|v2.5.1|osv-scanner"
  "versitygw|github.com/versity/versitygw/cmd/versitygw|v1.8.0|versitygw"
)
CONFORMANCE_MOD=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VER=v0.0.0-20260831232431-97274622c111
APT_PKGS=(skopeo umoci docker-registry postgresql apache2-utils wrk)

# ---- setup -------------------------------------------------------------------------------
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CARGOBAY_CACHE_DIR:-$REPO/.cache}
MODE=install
ONLY_TESTS=""
for arg in "$@"; do
  case $arg in
    --print-env) MODE=print ;;
    --check) MODE=check ;;
    --tests) ONLY_TESTS=1 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install-peers: unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done
# Peers that only the benchmarks use (make bench); --tests leaves them out.
BENCH_ONLY=(registry-v3)

if [[ $MODE != print ]]; then
  mkdir -p "$CACHE"/{bin,stamps,logs}
fi
if [[ -d $CACHE ]]; then CACHE=$(cd "$CACHE" && pwd); fi
BIN=$CACHE/bin STAMPS=$CACHE/stamps LOGS=$CACHE/logs

log() { printf 'install-peers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
show_log() { log "last lines of $1:"; tail -n 30 "$1" | sed 's/^/    /' >&2; }

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
  done
  return 1
}

print_env() {
  local pgbin
  pgbin=$(pg_bindir || true)
  printf '%s=%q\n' \
    CARGOBAY_CACHE_DIR "$CACHE" \
    CARGOBAY_PEERS_BIN "$BIN" \
    CARGOBAY_CRANE "$BIN/crane" \
    CARGOBAY_ORAS "$BIN/oras" \
    CARGOBAY_REGCTL "$BIN/regctl" \
    CARGOBAY_REGISTRY_V3 "$BIN/registry-v3" \
    CARGOBAY_VERSITYGW "$BIN/versitygw" \
    CARGOBAY_REGISTRY_V2 "$(command -v docker-registry || echo /usr/bin/docker-registry)" \
    CARGOBAY_CONFORMANCE "$BIN/conformance" \
    CARGOBAY_OSV_SCANNER "$BIN/osv-scanner" \
    CARGOBAY_SKOPEO "$(command -v skopeo || echo /usr/bin/skopeo)" \
    CARGOBAY_UMOCI "$(command -v umoci || echo /usr/bin/umoci)" \
    CARGOBAY_PG_BINDIR "$pgbin" \
    CARGOBAY_PG_USER "$( [[ $(id -u) == 0 ]] && echo postgres || id -un)"
}

if [[ $MODE == print ]]; then print_env; exit 0; fi

# ---- Debian packages ---------------------------------------------------------------------
# A package counts as present when the binary the tests use is there (cheaper than dpkg).
apt_missing() {
  local p missing=()
  for p in "${APT_PKGS[@]}"; do
    case $p in
      postgresql) pg_bindir >/dev/null || missing+=("$p") ;;
      apache2-utils) command -v htpasswd >/dev/null || missing+=("$p") ;;
      *) command -v "$p" >/dev/null || missing+=("$p") ;;
    esac
  done
  echo "${missing[*]}"
}

stop_started_services() {
  # Only called right after we installed packages: stop anything their postinst started.
  local ver name port status _
  if command -v pg_lsclusters >/dev/null; then
    while read -r ver name port status _; do
      [[ $status == online* ]] && pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done < <(pg_lsclusters -h 2>/dev/null)
  fi
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker-registry.service postgresql.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/docker-registry ]]; then
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  fi
}

install_apt() {
  local missing sudo="" plog=$LOGS/apt.log policy_created=""
  missing=$(apt_missing)
  [[ -z $missing ]] && return 0
  if [[ $MODE == check ]]; then echo "missing Debian packages: $missing"; return 1; fi
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to apt-get install: $missing"
    sudo="sudo"
  fi
  log "apt-get install $missing"
  # Keep postinst scripts from starting services (invoke-rc.d honours policy-rc.d exit 101).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    $sudo sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    policy_created=1
    # shellcheck disable=SC2064  # expand $sudo now
    trap "$sudo rm -f /usr/sbin/policy-rc.d" EXIT
  fi
  local -a apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0
                install --no-install-recommends)
  local rc=0
  # shellcheck disable=SC2086  # $missing is a word list
  if ! "${apt[@]}" $missing >"$plog" 2>&1; then
    log "apt-get install failed; running apt-get update and retrying"
    # shellcheck disable=SC2086
    { $sudo apt-get -q update && "${apt[@]}" $missing; } >>"$plog" 2>&1 || rc=$?
  fi
  if [[ -n $policy_created ]]; then $sudo rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  if [[ $rc != 0 ]]; then show_log "$plog"; die "apt-get install failed"; fi
  stop_started_services
  missing=$(apt_missing)
  [[ -z $missing ]] || die "still missing after apt-get install: $missing"
  getent passwd postgres >/dev/null || die "postgresql installed but there is no 'postgres' user"
}

# ---- Go tools ----------------------------------------------------------------------------
go_env() {
  command -v go >/dev/null || die "go not found in PATH"
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go/path
  export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
  # -modcacherw: the cache dir can be removed with plain rm -rf.
  # -buildvcs=false: the build dirs live inside Cargobay's git work tree.
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw -buildvcs=false"
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# up_to_date <binary...> <stamp> <pin>: all binaries exist and the stamp records this pin.
up_to_date() {
  local args=("$@") n=$#
  local pin=${args[n-1]} stamp=${args[n-2]} f
  for f in "${args[@]:0:n-2}"; do [[ -x $f ]] || return 1; done
  [[ -f $stamp && $(head -n 1 "$stamp") == "$pin" ]]
}

install_go_tool() {
  local name=$1 pkg=$2 versions=$3 product=$4
  local dest=$BIN/$name stamp=$STAMPS/$name.pin pin="$pkg@{$versions}"
  up_to_date "$dest" "$stamp" "$pin" && return 0
  if [[ $MODE == check ]]; then echo "missing or stale: $name ($pkg@{$versions})"; return 1; fi
  local v tmp=$CACHE/tmp/gobin.$name tlog=$LOGS/$name.log
  : >"$tlog"
  for v in $versions; do
    log "go install $pkg@$v -> bin/$name"
    rm -rf "$tmp"; mkdir -p "$tmp"
    if GOBIN=$tmp go install -trimpath "$pkg@$v" >>"$tlog" 2>&1 && [[ -x $tmp/$product ]]; then
      mv -f "$tmp/$product" "$dest"
      rm -rf "$tmp"
      printf '%s\ninstalled %s@%s\n' "$pin" "$pkg" "$v" >"$stamp"
      return 0
    fi
    log "go install $pkg@$v failed"
  done
  rm -rf "$tmp"
  show_log "$tlog"
  die "could not build $name from any of: $versions"
}

install_conformance() {
  local pin="$CONFORMANCE_MOD@$CONFORMANCE_VER build" stamp=$STAMPS/conformance.pin
  local bin=$BIN/conformance
  up_to_date "$bin" "$stamp" "$pin" && return 0
  if [[ $MODE == check ]]; then echo "missing or stale: conformance ($CONFORMANCE_MOD@$CONFORMANCE_VER)"; return 1; fi
  local clog=$LOGS/conformance.log dir src=$CACHE/src/conformance@$CONFORMANCE_VER
  log "building OCI conformance suite $CONFORMANCE_VER"
  : >"$clog"
  dir=$(go mod download -json "$CONFORMANCE_MOD@$CONFORMANCE_VER" 2>>"$clog" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || true
  [[ -n $dir && -d $dir ]] || { show_log "$clog"; die "go mod download $CONFORMANCE_MOD@$CONFORMANCE_VER failed"; }
  rm -rf "$src"; mkdir -p "$(dirname "$src")"
  cp -R "$dir" "$src"; chmod -R u+w "$src"
  # The module cache copy is read-only and a dependency, not a main module: build a copy.
  # The suite is a main package since 2025 (`go build`).
  local commit=${CONFORMANCE_VER##*-}
  if ! ( cd "$src" \
         && GOFLAGS="$GOFLAGS -mod=mod" go mod download \
         && GOFLAGS="$GOFLAGS -mod=mod" go build -trimpath -ldflags "-X main.Version=$commit" -o "$bin.tmp" . \
       ) >>"$clog" 2>&1; then
    rm -f "$bin.tmp"; show_log "$clog"; die "building the conformance suite failed"
  fi
  # Smoke-check that the binary is the suite.
  if ! go version -m "$bin.tmp" 2>>"$clog" | grep -q "$CONFORMANCE_MOD"; then
    rm -f "$bin.tmp"; show_log "$clog"; die "the conformance binary does not look right"
  fi
  mv -f "$bin.tmp" "$bin"
  printf '%s\nsource %s\n' "$pin" "$src" >"$stamp"
}

# ---- main --------------------------------------------------------------------------------
# In --check mode a step returns 1 for "missing" and we go on; otherwise a step runs outside
# any `||` so that `set -e` stays in force inside it.
status=0
step() { if [[ $MODE == check ]]; then "$@" || status=1; else "$@"; fi; }
step install_apt
go_env
wanted() { [[ -z $ONLY_TESTS || " ${BENCH_ONLY[*]} " != *" $1 "* ]]; }
for spec in "${GO_TOOLS[@]}"; do
  IFS='|' read -r t_name t_pkg t_versions t_product <<<"$spec"
  wanted "$t_name" || continue
  step install_go_tool "$t_name" "$t_pkg" "$t_versions" "$t_product"
done
step install_conformance
rmdir "$CACHE/tmp" 2>/dev/null || true

if [[ $MODE == check ]]; then exit $status; fi
print_env
