#!/bin/bash
# make run: the sample database and nginx with conf/bulk_api.conf on
# 127.0.0.1:8080, in the foreground.  Ctrl-C stops nginx and PostgreSQL.
#
# Everything nginx's workers (user nobody) and PostgreSQL (user postgres)
# touch lives in util/state.sh's directory, outside the checkout: a
# checkout under a 0700 home is fine.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"

NGINX=${NGINX:-/usr/sbin/nginx}
LISTEN=${BULK_LISTEN:-127.0.0.1:8080}
STATE=$(util/state.sh create)
RUNDIR=$STATE/run

util/pg.sh start
trap 'util/pg.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(util/pg.sh env)"

echo "loading the generated sample data set..."
util/load_sample.sh >/dev/null

mkdir -p "$RUNDIR/logs" "$RUNDIR/tmp"
cat > "$RUNDIR/nginx.conf" <<CONF
load_module $REPO/build/ngx_http_bulk_module.so;

daemon off;
worker_processes 2;
error_log stderr notice;
pid $RUNDIR/nginx.pid;

events {
    worker_connections 1024;
}

http {
    access_log $RUNDIR/logs/access.log;
    client_body_temp_path $RUNDIR/tmp/body;
    proxy_temp_path $RUNDIR/tmp/proxy;
    fastcgi_temp_path $RUNDIR/tmp/fastcgi;
    uwsgi_temp_path $RUNDIR/tmp/uwsgi;
    scgi_temp_path $RUNDIR/tmp/scgi;

    server {
        listen $LISTEN;

        bulk_pg "$BULK_PG_CONNINFO";
        bulk_pg_pool 8 timeout=10s;

        include $REPO/conf/bulk_api.conf;
    }
}
CONF

cat <<MSG

ngx_bulk is serving on http://$LISTEN (Ctrl-C stops nginx and PostgreSQL)

  curl -s 'http://$LISTEN/Patient/\$dump' | head -3
  curl -s 'http://$LISTEN/Observation/\$dump?_since=2022-01-01' | wc -l
  curl -s 'http://$LISTEN/Encounter/\$dump?gzip=true' | gunzip | head -1
  curl -sI 'http://$LISTEN/Patient/\$dump'
  curl -s 'http://$LISTEN/Nope/\$dump'

  psql: util/pg.sh psql
  PostgreSQL and nginx's files: $STATE (make clean removes it)

MSG

"$NGINX" -p "$RUNDIR" -c "$RUNDIR/nginx.conf"
