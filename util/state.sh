#!/bin/bash
# Where a checkout keeps what users other than the invoking one must reach:
# the private PostgreSQL clusters (run as user postgres when invoked as
# root), nginx's temp paths and the files `make run` serves (its workers run
# as nobody).  A checkout may sit under a 0700 home, so this lives outside
# it, in /var/tmp, named after the checkout (its directory name and a hash
# of its absolute path: two checkouts never share one):
#
#   /var/tmp/ngx_bulk-<name>-<hash>/
#       pg/        make run's cluster (util/pg.sh)
#       pg-test/   make test's cluster
#       pg-bench/  pg-soak/  bench/  soak/
#       run/       make run's nginx: conf, logs, temp paths, sample files
#       src        a symlink to a checkout whose path nginx cannot take
#
# Usage: util/state.sh path     print it
#        util/state.sh create   create it if missing (mode 0755), print it
#        util/state.sh src      the checkout's path as nginx's configure and
#                               configuration files can take it: the
#                               checkout's own, or when that holds a blank,
#                               a quote, ';' or the like, the symlink src
#        util/state.sh clean    stop what runs from it, remove it (make clean)
# Env: BULK_STATE_DIR sets another directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

die() { echo "state.sh: $*" >&2; exit 1; }

state_path() {
    if [ -n "${BULK_STATE_DIR:-}" ]; then
        echo "$BULK_STATE_DIR"
        return
    fi
    local name hash
    # short: PostgreSQL's socket path below it has at most 107 bytes
    name=$(basename "$REPO" | tr -c 'A-Za-z0-9._\n-' '_' | cut -c1-32)
    hash=$(printf '%s' "$REPO" | sha256sum | cut -c1-8)
    echo "/var/tmp/ngx_bulk-$name-$hash"
}

cmd_create() {
    local dir
    dir=$(state_path)
    # /var/tmp is writable by everyone: a directory of that name made by
    # another user (or a symlink) is refused, never used
    if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
        (umask 022 && mkdir -p "$dir")
    fi
    [ -d "$dir" ] && [ ! -L "$dir" ] || die "$dir is not a directory"
    [ "$(stat -c %u "$dir")" = "$(id -u)" ] ||
        die "$dir belongs to another user (set BULK_STATE_DIR)"
    chmod 0755 "$dir"
    echo "$dir"
}

cmd_clean() {
    local dir d pid
    dir=$(state_path)
    [ -e "$dir" ] || return 0
    [ -d "$dir" ] && [ ! -L "$dir" ] || die "$dir is not a directory"
    [ "$(stat -c %u "$dir")" = "$(id -u)" ] ||
        die "$dir belongs to another user: not removing it"
    # an nginx of make run, bench or soak started from here
    for d in "$dir"/*/; do
        [ -f "$d/nginx.pid" ] || continue
        pid=$(cat "$d/nginx.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
            grep -q "nginx.*${d%/}"; then
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    done
    # the clusters
    for d in "$dir"/*/data; do
        [ -f "$d/PG_VERSION" ] || continue
        BULK_PGDIR=$(dirname "$d") "$REPO/util/pg.sh" stop >/dev/null 2>&1 ||
            echo "state.sh: could not stop the cluster in $(dirname "$d")" >&2
    done
    rm -rf "$dir"
    echo "removed $dir"
}

cmd_src() {
    local dir
    if [[ $REPO =~ ^[A-Za-z0-9._/+@%,=:-]+$ ]]; then
        echo "$REPO"
        return
    fi
    dir=$(cmd_create)
    ln -sfn "$REPO" "$dir/src"
    echo "$dir/src"
}

case "${1:-}" in
    path) state_path ;;
    create) cmd_create ;;
    src) cmd_src ;;
    clean) cmd_clean ;;
    *) echo "usage: $0 path|create|src|clean" >&2; exit 2 ;;
esac
