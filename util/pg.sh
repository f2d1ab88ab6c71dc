#!/bin/bash
# Private PostgreSQL 15 cluster for ngx_bulk development and tests.
# Usage: util/pg.sh start|stop|status|psql [args]|env
#        util/pg.sh standby start|stop|env
# Env: BULK_PGDIR (default <state>/pg, <state> given by util/state.sh:
# /var/tmp/ngx_bulk-<checkout name>-<hash>), BULK_PGPORT (default 54329),
# BULK_PGBIN.
# standby: a streaming hot standby of the running cluster, made afresh by
# pg_basebackup -R in BULK_STANDBY_DIR (default $BULK_PGDIR-standby) and
# started on BULK_STANDBY_PORT (default BULK_PGPORT + 3); the cluster's
# defaults allow it (wal_level replica, replication entries in pg_hba).
# Invoked as root, the cluster runs as user postgres (initdb refuses root);
# otherwise as the invoking user.
set -euo pipefail

UTIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$UTIL_DIR")
if [ -z "${BULK_PGDIR:-}" ]; then
    BULK_PGDIR=$("$UTIL_DIR/state.sh" create)/pg
fi
BULK_PGPORT=${BULK_PGPORT:-54329}
BULK_PGBIN=${BULK_PGBIN:-/usr/lib/postgresql/15/bin}
DB=bulk
SU=postgres
DATA=$BULK_PGDIR/data
RUN=$BULK_PGDIR/run
LOG=$BULK_PGDIR/postgresql.log
SCHEMA=$REPO/sql/schema.sql

die() { echo "pg.sh: $*" >&2; exit 1; }

# Run a command as the cluster's OS user: postgres when we are root, else
# ourselves.  From /: postgres may not be able to enter the current
# directory (a checkout under a 0700 home); every path here is absolute.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

abs_pgdir() {
    mkdir -p "$BULK_PGDIR" 2>/dev/null || true
    [ -d "$BULK_PGDIR" ] || die "cannot create $BULK_PGDIR"
    BULK_PGDIR=$(cd "$BULK_PGDIR" && pwd -P)
    DATA=$BULK_PGDIR/data; RUN=$BULK_PGDIR/run; LOG=$BULK_PGDIR/postgresql.log
}

is_running() {
    [ -f "$DATA/PG_VERSION" ] && as_pg "$BULK_PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_cmd() {
    "$BULK_PGBIN/psql" -h "$RUN" -p "$BULK_PGPORT" -U "$SU" -d "$DB" -X -q -v ON_ERROR_STOP=1 "$@"
}

cmd_start() {
    [ -x "$BULK_PGBIN/initdb" ] || die "PostgreSQL binaries not found in $BULK_PGBIN"
    abs_pgdir
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$BULK_PGDIR"
        chmod 0755 "$BULK_PGDIR"
    fi
    as_pg test -x "$BULK_PGDIR" -a -w "$BULK_PGDIR" ||
        die "user $(as_pg id -un) cannot reach/write $BULK_PGDIR (a parent directory is not traversable by that user? set BULK_PGDIR)"
    mkdir -p "$RUN"
    chmod 0777 "$RUN"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$RUN"; fi

    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_pg "$BULK_PGBIN/initdb" -D "$DATA" -U "$SU" --auth=trust -E UTF8 --locale=C.UTF-8 >"$BULK_PGDIR/initdb.log" 2>&1 ||
            { cat "$BULK_PGDIR/initdb.log" >&2; die "initdb failed"; }
    fi
    # (Re)write our settings on every start so port/dir changes take effect.
    as_pg tee "$DATA/postgresql.auto.conf" >/dev/null <<CONF
# Written by util/pg.sh on every start; do not edit.
listen_addresses = '127.0.0.1'
port = $BULK_PGPORT
unix_socket_directories = '$RUN'
unix_socket_permissions = 0777
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
CONF

    if ! is_running; then
        as_pg "$BULK_PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -s start ||
            { tail -n 20 "$LOG" >&2 || true; die "pg_ctl start failed (log: $LOG)"; }
    fi
    if [ "$(psql_cmd -d postgres -Atc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
        psql_cmd -d postgres -c "CREATE DATABASE $DB"
    fi
    if [ -f "$SCHEMA" ]; then
        psql_cmd -f "$SCHEMA" >/dev/null
    else
        echo "pg.sh: warning: $SCHEMA not found, schema not applied" >&2
    fi
}

cmd_stop() {
    abs_pgdir
    if is_running; then
        as_pg "$BULK_PGBIN/pg_ctl" -D "$DATA" -m fast -w -s stop
    fi
}

cmd_status() {
    abs_pgdir
    if is_running; then
        echo "running: dir=$BULK_PGDIR port=$BULK_PGPORT socket=$RUN"
    else
        echo "stopped: dir=$BULK_PGDIR"
        return 3
    fi
}

cmd_env() {
    abs_pgdir
    cat <<ENV
export PGHOST="$RUN"
export PGPORT="$BULK_PGPORT"
export PGUSER="$SU"
export PGDATABASE="$DB"
export BULK_PG_CONNINFO="host=$RUN port=$BULK_PGPORT user=$SU dbname=$DB"
ENV
}

standby_vars() {
    abs_pgdir
    SB_DIR=${BULK_STANDBY_DIR:-$BULK_PGDIR-standby}
    SB_PORT=${BULK_STANDBY_PORT:-$((BULK_PGPORT + 3))}
    SB_DATA=$SB_DIR/data
    SB_RUN=$SB_DIR/run
    SB_LOG=$SB_DIR/postgresql.log
}

sb_running() {
    [ -f "$SB_DATA/PG_VERSION" ] && as_pg "$BULK_PGBIN/pg_ctl" -D "$SB_DATA" status >/dev/null 2>&1
}

cmd_standby() {
    standby_vars
    case "${1:-}" in
    start)
        is_running || die "the primary in $BULK_PGDIR is not running"
        [ -x "$BULK_PGBIN/pg_basebackup" ] || die "no pg_basebackup in $BULK_PGBIN"
        if sb_running; then
            as_pg "$BULK_PGBIN/pg_ctl" -D "$SB_DATA" -m immediate -w -s stop
        fi
        rm -rf "$SB_DIR"
        mkdir -p "$SB_DIR" "$SB_RUN"
        chmod 0755 "$SB_DIR"; chmod 0777 "$SB_RUN"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$SB_DIR" "$SB_RUN"; fi
        # its own port and socket directory on the command line: they win
        # over the primary's postgresql.auto.conf that the backup copies
        as_pg "$BULK_PGBIN/pg_basebackup" -h "$RUN" -p "$BULK_PGPORT" -U "$SU" \
            -D "$SB_DATA" -R -X stream -c fast --no-sync >"$SB_DIR/basebackup.log" 2>&1 ||
            { cat "$SB_DIR/basebackup.log" >&2; die "pg_basebackup failed"; }
        as_pg "$BULK_PGBIN/pg_ctl" -D "$SB_DATA" -l "$SB_LOG" -w -t 60 -s \
            -o "-p $SB_PORT -k $SB_RUN" start ||
            { tail -n 20 "$SB_LOG" >&2 || true; die "standby start failed (log: $SB_LOG)"; }
        ;;
    stop)
        if sb_running; then
            as_pg "$BULK_PGBIN/pg_ctl" -D "$SB_DATA" -m fast -w -s stop
        fi
        ;;
    env)
        echo "export BULK_STANDBY_HOST=\"$SB_RUN\""
        echo "export BULK_STANDBY_PORT=\"$SB_PORT\""
        ;;
    *) echo "usage: $0 standby start|stop|env" >&2; exit 2 ;;
    esac
}

case "${1:-}" in
    start) cmd_start ;;
    standby) shift; cmd_standby "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    psql) shift; abs_pgdir; psql_cmd "$@" ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop|status|psql [args]|env|standby start|stop|env" >&2; exit 2 ;;
esac
