#!/bin/bash
# make run: the sample database and nginx with conf/bulk_api.conf on
# 127.0.0.1:8080 (BULK_LISTEN), in the foreground.  Ctrl-C stops nginx and
# PostgreSQL.
#
# Everything nginx's workers (user nobody) and PostgreSQL (user postgres)
# touch lives in util/state.sh's directory, outside the checkout: a
# checkout under a 0700 home is fine.  The same nginx serves the sample as
# NDJSON.gz under /sample/, the source of the printed $load and $import.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# nginx takes no blank in a path: a symlink to such a checkout instead
REPO=$("$REPO/util/state.sh" src) || exit 1
cd "$REPO"

NGINX=${NGINX:-/usr/sbin/nginx}
LISTEN=${BULK_LISTEN:-127.0.0.1:8080}
STATE=$(util/state.sh create)
RUNDIR=$STATE/run

# host:port for URLs (the printed commands and the sample's source URLs)
case $LISTEN in
    *:*) HOST=${LISTEN%:*}; PORT=${LISTEN##*:} ;;
    *) HOST=127.0.0.1; PORT=$LISTEN ;;
esac
case $HOST in ''|'*'|0.0.0.0) HOST=127.0.0.1 ;; '[::]') HOST='[::1]' ;; esac
BASE=http://$HOST:$PORT

util/pg.sh start
trap 'util/pg.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(util/pg.sh env)"

echo "loading the generated sample data set..."
util/load_sample.sh >/dev/null

# the same sample in FHIR format, gzipped, for $load and $import
rm -rf "$RUNDIR/html"
mkdir -p "$RUNDIR/logs" "$RUNDIR/tmp" "$RUNDIR/html/sample"
perl util/gen_sample.pl --format fhir --out "$RUNDIR/html/sample" >/dev/null
cat "$RUNDIR"/html/sample/*.ndjson > "$RUNDIR/html/sample/all.ndjson"
gzip -n -f "$RUNDIR"/html/sample/*.ndjson
chmod -R a+rX "$RUNDIR/html"

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
    types {
        application/gzip gz;
    }

    server {
        listen $LISTEN;

        bulk_pg "$BULK_PG_CONNINFO";
        bulk_pg_pool 8 timeout=10s;
        # The \$load and \$import sources below are served by this nginx on
        # a loopback address, which the module refuses by default (SSRF):
        # a development setup opts in.
        bulk_source_allow 127.0.0.1;

        include $REPO/conf/bulk_api.conf;

        # the sample as NDJSON.gz: all.ndjson.gz and <Type>.ndjson.gz
        location /sample/ {
            alias $RUNDIR/html/sample/;
        }
    }
}
CONF

cat <<MSG

ngx_bulk is serving on $BASE (Ctrl-C stops nginx and PostgreSQL)

  curl -s '$BASE/Patient/\$dump' | head -3
  curl -s '$BASE/Observation/\$dump?_since=2022-01-01' | wc -l
  curl -s '$BASE/Encounter/\$dump?gzip=true' | gunzip | head -1
  curl -sI '$BASE/Patient/\$dump'
  curl -s '$BASE/Nope/\$dump'

  # any read-only SQL, streamed as CSV; the body in YAML
  printf "query: select resource->>'gender' as gender, count(*) as patients from patient group by 1 order by 1\nformat: csv\n" | curl -s '$BASE/\$dump-sql' -H 'Content-Type: text/yaml' --data-binary @-

  # the same as an Elasticsearch _bulk body, and as a psql script
  printf "query: select id, resource->'name' as name from patient limit 2\nformat: elastic-bulk\nindex: patients\n" | curl -s '$BASE/\$dump-sql' -H 'Content-Type: text/yaml' --data-binary @-
  printf "query: select id, ts, resource from patient limit 2\nformat: sql\ntable: patient_copy\n" | curl -s '$BASE/\$dump-sql' -H 'Content-Type: text/yaml' --data-binary @-

  # \$load: the sample as FHIR NDJSON.gz, served by this nginx under /sample/
  curl -s '$BASE/fhir/\$load' -H 'Content-Type: application/json' -d '{"source": "$BASE/sample/all.ndjson.gz"}'

  # \$load of a file on your disk: the NDJSON(.gz) is the body (a push upload)
  curl -s '$BASE/sample/Patient.ndjson.gz' -o /tmp/Patient.ndjson.gz
  curl -s '$BASE/fhir/Patient/\$load' -H 'Content-Type: application/fhir+ndjson' --data-binary @/tmp/Patient.ndjson.gz

  # \$import: 202 at once with Content-Location, then its status
  curl -si '$BASE/fhir/\$import' -H 'Content-Type: application/json' -d '{"id": "sample", "contentEncoding": "gzip", "inputs": [{"resourceType": "Patient", "url": "$BASE/sample/Patient.ndjson.gz"}, {"resourceType": "Observation", "url": "$BASE/sample/Observation.ndjson.gz"}]}'
  curl -s '$BASE/BulkImportStatus/sample'
  curl -s '$BASE/BulkImportStatus?_count=5'        # the jobs, newest first
  # the job view in a browser: $BASE/BulkImportStatus

  # FHIR Bulk Data \$export: 202 with Content-Location, then poll it (the
  # Group "sample" holds ten patients; /fhir/\$export and
  # /fhir/Patient/\$export are the other levels)
  curl -si '$BASE/fhir/Group/sample/\$export' -H 'Accept: application/fhir+json' -H 'Prefer: respond-async'
  curl -s '$BASE/fhir/\$export-status/<id from Content-Location>'
  curl -s '$BASE/fhir/metadata' | head -c 300

  psql: util/pg.sh psql
  PostgreSQL and nginx's files: $STATE (make clean removes it)

MSG

"$NGINX" -p "$RUNDIR" -c "$RUNDIR/nginx.conf"
