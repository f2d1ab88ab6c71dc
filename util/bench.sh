#!/bin/bash
# make bench: $dump throughput against psql COPY on the same table.
#
# Starts its own PostgreSQL cluster (<repo>/.pg-bench, port BULK_PGPORT,
# default 54331) and its own nginx (one worker, 127.0.0.1:BENCH_PORT,
# default 18090), loads BENCH_ROWS rows (default 1000000) and prints one
# line per measured pair:
#
#   BENCH <name> ratio=<ours/baseline> ours=<rows/s> baseline=<rows/s> rss_mb=<MB>
#
#   dump       GET /<Type>/$dump             vs psql COPY (resource::text)
#   dump_gzip  GET /<Type>/$dump?gzip=true   vs psql COPY | gzip -1
#   dump_fhir  GET /<Type>/$dump?fhir=true   vs our own plain $dump
#   converter  make bench-format (only with the Synthea sample)
#
# rss_mb is the nginx worker's peak RSS (VmHWM) over that pair's own runs
# (nginx is restarted before each pair).  Each side runs twice,
# interleaved; the better time is kept (the first run also warms the cache
# and checks that the output is complete).  Lines starting with '#' are
# detail.
#
# Data: the Synthea MedicationRequest sample (BENCH_SAMPLE, default
# <repo>/../shared/data/synthea-10) converted with build/fhir2rows, or,
# without it, util/gen_sample.pl's Observation rows, multiplied in SQL with
# fresh ids.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"

NGINX=${NGINX:-/usr/sbin/nginx}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_PORT=${BENCH_PORT:-18090}
BENCH_SAMPLE=${BENCH_SAMPLE:-$REPO/../shared/data/synthea-10}
export BULK_PGDIR=$REPO/.pg-bench
export BULK_PGPORT=${BULK_PGPORT:-54331}
RUNDIR=$REPO/build/bench
TMP=$RUNDIR/tmp
BASE=http://127.0.0.1:$BENCH_PORT

die() { echo "bench: error: $*" >&2; exit 1; }

[[ $BENCH_ROWS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROWS must be a positive integer"
[[ $BENCH_PORT =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a port number"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? a : b }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

nginx_master=

nginx_stop() {
    local pid=$nginx_master i
    nginx_master=
    [ -n "$pid" ] || return 0
    kill -QUIT "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    sleep 0.5
}

cleanup() {
    local rc=$?
    nginx_stop || true
    util/pg.sh stop >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build
make -s all build/fhir2rows

# ---------------------------------------------------------------- cluster
rm -rf "$TMP"
mkdir -p "$RUNDIR/logs" "$TMP"
util/pg.sh start
eval "$(util/pg.sh env)"
export PGCLIENTENCODING=UTF8
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

# ------------------------------------------------------------------- data
if [ -s "$BENCH_SAMPLE/MedicationRequest.000.ndjson" ]; then
    SAMPLE=1
    TYPE=MedicationRequest
    build/fhir2rows < "$BENCH_SAMPLE/MedicationRequest.000.ndjson" \
        > "$TMP/tmpl.tsv" 2>"$TMP/fhir2rows.log" ||
        { cat "$TMP/fhir2rows.log" >&2; die "fhir2rows failed"; }
    TMPL_COPY="\\copy tmpl (id, resource_type, resource) from '$TMP/tmpl.tsv'"
    echo "# template: Synthea $TYPE sample ($BENCH_SAMPLE), converted with build/fhir2rows"
else
    SAMPLE=0
    TYPE=Observation
    perl util/gen_sample.pl --patients 50 --format rows --out "$TMP" >/dev/null 2>&1 ||
        die "gen_sample.pl failed"
    TMPL_COPY="\\copy tmpl (id, txid, cts, ts, resource_type, status, resource) from '$TMP/observation.tsv'"
    echo "# template: util/gen_sample.pl $TYPE rows (no Synthea sample at $BENCH_SAMPLE)"
fi
TABLE=$(tr 'A-Z' 'a-z' <<< "$TYPE")

t0=$(now)
"${PSQL[@]}" <<SQL
CREATE TEMP TABLE tmpl (id text, txid bigint, cts timestamptz, ts timestamptz,
                        resource_type text, status resource_status,
                        resource jsonb);
$TMPL_COPY
BEGIN;
TRUNCATE "$TABLE", "${TABLE}_history";
INSERT INTO "$TABLE" (id, txid, cts, ts, resource_type, status, resource)
SELECT t.id || '-' || g, 1, now(), now(), '$TYPE', 'created', t.resource
FROM generate_series(1, ceil($BENCH_ROWS::numeric
                             / greatest((SELECT count(*) FROM tmpl), 1))::int) g,
     tmpl t
LIMIT $BENCH_ROWS;
COMMIT;
SQL
"${PSQL[@]}" -c "VACUUM ANALYZE \"$TABLE\""
t1=$(now)

IFS='|' read -r rows tmpl_rows total heap <<< "$("${PSQL[@]}" -Atc "
    SELECT count(*), (SELECT count(DISTINCT id) FROM \"$TABLE\" WHERE id LIKE '%-1'),
           pg_total_relation_size('\"$TABLE\"'), pg_relation_size('\"$TABLE\"')
    FROM \"$TABLE\"")"
[ "$rows" = "$BENCH_ROWS" ] || die "loaded $rows rows into $TABLE, expected $BENCH_ROWS"
echo "# table $TABLE: $rows rows ($tmpl_rows template rows), $(mb "$total") MB total," \
     "$(mb "$heap") MB heap; loaded in $(elapsed "$t0" "$t1") s"

# ------------------------------------------------------------------ nginx
cat > "$RUNDIR/nginx.conf" <<CONF
load_module $REPO/build/ngx_http_bulk_module.so;

daemon on;
master_process on;
worker_processes 1;
error_log $RUNDIR/logs/error.log warn;
pid $RUNDIR/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log off;
    client_body_temp_path $RUNDIR/tmp/body;
    proxy_temp_path $RUNDIR/tmp/proxy;
    fastcgi_temp_path $RUNDIR/tmp/fastcgi;
    uwsgi_temp_path $RUNDIR/tmp/uwsgi;
    scgi_temp_path $RUNDIR/tmp/scgi;

    server {
        listen 127.0.0.1:$BENCH_PORT;
        log_not_found off;

        bulk_pg "$BULK_PG_CONNINFO";
        bulk_pg_pool 4 timeout=10s;

        include $REPO/conf/bulk_api.conf;
    }
}
CONF

nginx_start() {
    local i code
    rm -f "$RUNDIR/nginx.pid"
    "$NGINX" -p "$RUNDIR" -e "$RUNDIR/logs/error.log" -c "$RUNDIR/nginx.conf" ||
        die "nginx did not start (see $RUNDIR/logs/error.log)"
    for i in $(seq 50); do
        [ -s "$RUNDIR/nginx.pid" ] && break
        sleep 0.1
    done
    nginx_master=$(cat "$RUNDIR/nginx.pid" 2>/dev/null || true)
    [ -n "$nginx_master" ] || die "nginx wrote no pid file"
    for i in $(seq 50); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/bench-404" || true)
        [ "$code" = 404 ] && break
        sleep 0.1
    done
    [ "$code" = 404 ] || die "nginx on $BASE answers '$code' instead of 404"
    nginx_worker=$(ps -o pid= --ppid "$nginx_master" | head -1 | tr -d ' ')
    [ -n "$nginx_worker" ] || die "no nginx worker"
}

nginx_restart() { nginx_stop; nginx_start; }

# peak RSS of the worker in MB
worker_hwm() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$nginx_worker/status"
}

# reset the worker's peak RSS to its current RSS (Linux clear_refs 5)
worker_hwm_reset() {
    echo 5 > "/proc/$nginx_worker/clear_refs" 2>/dev/null || true
}

# ------------------------------------------------------------- measuring
COPY_SQL="COPY (SELECT resource::text FROM \"$TABLE\") TO STDOUT"

# run <label> <command...>: runs it, sets T (seconds)
run() {
    local label=$1 t0 t1
    shift
    t0=$(now)
    "$@" || die "$label failed"
    t1=$(now)
    T=$(elapsed "$t0" "$t1")
}

# curl_check <url> <filter...>: the output piped through filter | wc -l
# into $TMP/lines; status and size into $TMP/w
curl_check() {
    local url=$1
    shift
    curl -sS --fail -w '%{stderr}%{http_code} %{size_download}\n' "$url" \
        2>"$TMP/w" | "$@" | wc -l > "$TMP/lines"
}

curl_plain() {
    curl -sS --fail -o /dev/null -w '%{http_code} %{size_download}\n' "$1" > "$TMP/w"
}

check_lines() {
    local what=$1 n
    n=$(tr -d ' ' < "$TMP/lines")
    [ "$n" = "$BENCH_ROWS" ] ||
        die "$what returned $n lines, expected $BENCH_ROWS (incomplete output; $(cat "$TMP/w" 2>/dev/null))"
}

psql_copy() { "${PSQL[@]}" -c "$COPY_SQL"; }
psql_plain() { psql_copy > /dev/null; }
psql_check() { psql_copy | wc -l > "$TMP/lines"; }
psql_gzip() { psql_copy | gzip -1 > /dev/null; }
psql_gzip_check() { psql_copy | gzip -1 | wc -c > "$TMP/gzsize"; }

rate() { awk -v n="$BENCH_ROWS" -v t="$1" 'BEGIN { printf "%d", n / t }'; }

report() {    # name ours_t base_t rss
    awk -v name="$1" -v n="$BENCH_ROWS" -v o="$2" -v b="$3" -v rss="$4" 'BEGIN {
        printf "BENCH %s ratio=%.2f ours=%d baseline=%d rss_mb=%s\n",
               name, b / o, n / o, n / b, rss }'
}

URL=$BASE/$TYPE/\$dump

# dump: ours and psql COPY, interleaved
nginx_restart
run "curl \$dump" curl_check "$URL" cat;    o1=$T
check_lines "\$dump"
read -r code dump_bytes < "$TMP/w"
run "psql COPY" psql_check;                b1=$T
check_lines "psql COPY"
run "curl \$dump" curl_plain "$URL";        o2=$T
run "psql COPY" psql_plain;                b2=$T
rss=$(worker_hwm)
dump_o=$(min "$o1" "$o2"); dump_b=$(min "$b1" "$b2")
echo "# dump: ours $o1 s, $o2 s; psql COPY $b1 s, $b2 s; \$dump output $(mb "$dump_bytes") MB"
report dump "$dump_o" "$dump_b" "$rss"

# dump_gzip: ours and psql COPY | gzip -1
nginx_restart
run "curl \$dump?gzip=true" curl_check "$URL?gzip=true" gunzip; o1=$T
check_lines "\$dump?gzip=true (gunzipped)"
read -r code gz_bytes < "$TMP/w"
run "psql COPY | gzip -1" psql_gzip_check;  b1=$T
run "curl \$dump?gzip=true" curl_plain "$URL?gzip=true";  o2=$T
run "psql COPY | gzip -1" psql_gzip;        b2=$T
rss=$(worker_hwm)
echo "# dump_gzip: ours $o1 s (with gunzip | wc), $o2 s; psql | gzip -1 $b1 s, $b2 s;" \
     "ours $(mb "$gz_bytes") MB, gzip -1 $(mb "$(cat "$TMP/gzsize")") MB"
report dump_gzip "$(min "$o1" "$o2")" "$(min "$b1" "$b2")" "$rss"

# dump_fhir: ours with fhir=true against our own plain $dump
# (the plain runs share the worker: its peak is reset before each fhir run)
nginx_restart
run "curl \$dump?fhir=true" curl_check "$URL?fhir=true" cat; o1=$T
check_lines "\$dump?fhir=true"
read -r code fhir_bytes < "$TMP/w"
rss1=$(worker_hwm)
run "curl \$dump" curl_plain "$URL";        b1=$T
worker_hwm_reset
run "curl \$dump?fhir=true" curl_plain "$URL?fhir=true"; o2=$T
rss=$(worker_hwm)
rss=$(awk -v a="$rss1" -v b="$rss" 'BEGIN { print (a > b) ? a : b }')
run "curl \$dump" curl_plain "$URL";        b2=$T
echo "# dump_fhir: fhir=true $o1 s, $o2 s; plain $b1 s, $b2 s; fhir output $(mb "$fhir_bytes") MB"
report dump_fhir "$(min "$o1" "$o2")" "$(min "$b1" "$b2")" "$rss"

# converter: the format converter alone, on the sample
if [ "$SAMPLE" = 1 ]; then
    make -s bench-format UNIT_SAMPLE="$BENCH_SAMPLE" 2>&1 | grep -E '^(BENCH|#)' ||
        die "make bench-format printed no BENCH line"
else
    echo "# converter: skipped (no Synthea sample)"
fi

if grep -q '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" 2>/dev/null; then
    echo "# nginx error.log has alerts:"
    grep '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" | tail -5 | sed 's/^/#   /'
fi
