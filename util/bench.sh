#!/bin/bash
# make bench: each operation's throughput against the same work done by
# PostgreSQL's own tools (psql COPY, \copy) in the same run.
#
# Starts its own PostgreSQL cluster (<state>/pg-bench, <state> being
# util/state.sh's directory outside the checkout; port BULK_PGPORT,
# default 54331) and its own nginx (one worker, 127.0.0.1:BENCH_PORT,
# default 18090), loads BENCH_ROWS rows (default 1000000) and prints one
# line per measured pair:
#
#   BENCH <name> ratio=<median> spread=<min>-<max> ours=<rows/s>
#         baseline=<rows/s> runs=<N> rss_mb=<MB>          (on one line)
#
#   dump       GET /<Type>/$dump             vs psql COPY (resource::text)
#   dump_gzip  GET /<Type>/$dump?gzip=true   vs psql COPY | gzip -1
#   dump_parallel2
#              GET /par2/<Type>/$dump (bulk_dump_parallel 2) vs psql COPY
#   dump_fhir  GET /<Type>/$dump?fhir=true   vs our own plain $dump
#   dump_sql_tsv, dump_sql_csv, dump_sql_ndjson
#              POST /$dump-sql of SELECT id, txid, ts, resource vs psql COPY
#              of the same query (csv: with HEADER; ndjson: of row_to_json)
#   dump_sql_elastic, dump_sql_sql
#              the same query as elastic-bulk (an action line per row) vs
#              psql COPY of row_to_json, and as sql (a psql script) vs psql
#              COPY of the query (tsv)
#   converter  build/bench_format, the converter alone in MB/s against yajl
#              parsing and regenerating the same documents (only with the
#              Synthea sample; no rss_mb)
#   load       POST /fhir/$load of BENCH_ROWS FHIR NDJSON resources into the
#              empty table vs psql \copy of the same resources already
#              converted to rows (build/fhir2rows), into the empty table
#   load_gzip  the same with the source gzipped (gzip -BENCH_GZIP_LEVEL,
#              default 6) vs the same psql \copy of the plain rows
#   load_push  the same NDJSON pushed as the body of POST /fhir/$load
#              (application/fhir+ndjson; curl -T streams the file with its
#              Content-Length, where --data-binary @file would first read
#              all of it into curl's memory) vs the same psql \copy
#   import     POST /fhir/$import of the same resources as 4 inputs, timed
#              until the job is finished, vs the same psql \copy
#   export     GET /fhir/$export?_type=<Type>: kick-off, status until the
#              manifest, then its files fetched BENCH_EXPORT_PARALLEL
#              (default 4) at a time, vs GET /<Type>/$dump?fhir=true
#
# BENCH_ONLY="load load_gzip" (names separated by spaces) runs a subset.
#
# Method (the machine may be shared, so single timings are noise): ours and
# the baseline alternate, ours, baseline, ours, baseline, ..., BENCH_RUNS
# times each (default 5; fewer only for a quick look, which says so).  Run
# i's ratio is ours_rate / baseline_rate of that adjacent pair (run i of
# ours with run i of the baseline); ratio= is the median of those N ratios
# and spread= their min and max; ours= and baseline= are the medians of
# each side's rows/s (MB/s for converter).  An even N takes the mean of
# the two middle values.  For the dumps, each side first runs once more,
# uncounted: that warm-up reads the table into the cache and checks that
# the output is complete.  rss_mb is the nginx worker's peak RSS (VmHWM)
# over that pair's runs of ours, warm-up included: nginx is restarted
# before each pair and the peak is reset before each of our runs (so
# dump_fhir's plain-$dump baseline, on the same worker, is not counted).
# Lines starting with '#' are detail: every run's seconds.
#
# Loads: BENCH_LOAD_RUNS (default BENCH_RUNS) sets the runs per side of
# load, load_gzip, load_push and import.  There is no uncounted run: the table and its
# history are truncated (and CHECKPOINTed) before every run, outside the
# timing, and every run is checked (the answer's count or the job's status,
# and the table's count).  The '#' line gives the CPU seconds of the nginx
# worker and of PostgreSQL (all its processes) during each side's runs.
# The $load source is served by the bench nginx itself (location
# /benchsrc/, sendfile), so the worker's CPU includes serving the file.
#
# converter: build/bench_format runs BENCH_RUNS times, one round each
# (after its own warm-up pass: yajl alone, then our conversion to Aidbox
# and back to FHIR; ours is the slower of the two), ratios as above.
#
# Data: the Synthea MedicationRequest sample (BENCH_SAMPLE, default
# <repo>/../shared/data/synthea-10) converted with build/fhir2rows, or,
# without it, util/gen_sample.pl's Observation rows, multiplied in SQL with
# fresh ids.  The load source is the same template's FHIR lines multiplied
# with fresh ids (util/fresh-ids.pl), written to <state>/bench/data/ and kept
# for the next run with the same BENCH_ROWS and template: for 1M rows about
# 1.1 GB of NDJSON, 1.1 GB of rows and the .gz (about 0.1 GB at level 6).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# nginx takes no blank in a path: a symlink to such a checkout instead
REPO=$("$REPO/util/state.sh" src) || exit 1
cd "$REPO"

NGINX=${NGINX:-/usr/sbin/nginx}
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_PORT=${BENCH_PORT:-18090}
BENCH_SAMPLE=${BENCH_SAMPLE:-$REPO/../shared/data/synthea-10}
STATE=$(util/state.sh create)
export BULK_PGDIR=$STATE/pg-bench
export BULK_PGPORT=${BULK_PGPORT:-54331}
BENCH_ONLY=${BENCH_ONLY:-dump dump_gzip dump_parallel2 dump_fhir dump_sql_tsv dump_sql_csv dump_sql_ndjson dump_sql_elastic dump_sql_sql export converter load load_gzip load_push import}
BENCH_EXPORT_PARALLEL=${BENCH_EXPORT_PARALLEL:-4}
BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_LOAD_RUNS=${BENCH_LOAD_RUNS:-$BENCH_RUNS}
BENCH_GZIP_LEVEL=${BENCH_GZIP_LEVEL:-6}
RUNDIR=$STATE/bench     # nginx workers (nobody) read and write here
TMP=$RUNDIR/tmp
DATA=$RUNDIR/data
BASE=http://127.0.0.1:$BENCH_PORT

die() { echo "bench: error: $*" >&2; exit 1; }

[[ $BENCH_ROWS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROWS must be a positive integer"
[[ $BENCH_PORT =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a port number"
[[ $BENCH_RUNS =~ ^[1-9][0-9]?$ ]] || die "BENCH_RUNS must be 1 to 99"
[[ $BENCH_LOAD_RUNS =~ ^[1-9][0-9]?$ ]] || die "BENCH_LOAD_RUNS must be 1 to 99"
[[ $BENCH_GZIP_LEVEL =~ ^[1-9]$ ]] || die "BENCH_GZIP_LEVEL must be 1 to 9"
[[ $BENCH_EXPORT_PARALLEL =~ ^[1-9][0-9]?$ ]] || die "BENCH_EXPORT_PARALLEL must be 1 to 99"
for b in $BENCH_ONLY; do
    case $b in
    dump|dump_gzip|dump_parallel2|dump_fhir) ;;
    dump_sql_tsv|dump_sql_csv|dump_sql_ndjson) ;;
    dump_sql_elastic|dump_sql_sql) ;;
    export) ;;
    converter|load|load_gzip|load_push|import) ;;
    *) die "BENCH_ONLY: unknown name '$b'" ;;
    esac
done
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }
want_dump() {
    want dump || want dump_gzip || want dump_parallel2 || want dump_fhir \
        || want dump_sql_tsv || want dump_sql_csv || want dump_sql_ndjson \
        || want dump_sql_elastic || want dump_sql_sql || want export
}
want_load() { want load || want load_gzip || want load_push || want import; }

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

BENCH_T0=$(now)

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
    FHIR_TMPL=$BENCH_SAMPLE/MedicationRequest.000.ndjson
    echo "# template: Synthea $TYPE sample ($BENCH_SAMPLE), converted with build/fhir2rows"
else
    SAMPLE=0
    TYPE=Observation
    perl util/gen_sample.pl --patients 50 --format rows --out "$TMP" >/dev/null 2>&1 ||
        die "gen_sample.pl failed"
    TMPL_COPY="\\copy tmpl (id, txid, cts, ts, resource_type, status, resource) from '$TMP/observation.tsv'"
    if want_load; then
        perl util/gen_sample.pl --patients 50 --format fhir --out "$TMP/fhir" >/dev/null 2>&1 ||
            die "gen_sample.pl --format fhir failed"
    fi
    FHIR_TMPL=$TMP/fhir/Observation.ndjson
    echo "# template: util/gen_sample.pl $TYPE rows (no Synthea sample at $BENCH_SAMPLE)"
fi
TABLE=$(tr 'A-Z' 'a-z' <<< "$TYPE")

if want_dump; then
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
fi

# the $load source: FHIR NDJSON, its gzip, and the same as COPY rows, kept
# in $DATA for the next run when the row count and the template match
if want_load; then
    mkdir -p "$DATA"
    key="rows=$BENCH_ROWS template=$(md5sum < "$FHIR_TMPL" | cut -c1-32)"
    if [ "$(cat "$DATA/load.stamp" 2>/dev/null)" != "$key" ]; then
        rm -f "$DATA"/load.*
        t0=$(now)
        perl util/fresh-ids.pl "$BENCH_ROWS" < "$FHIR_TMPL" > "$DATA/load.ndjson.tmp" ||
            die "fresh-ids.pl failed"
        # fhir2rows: id, resource_type, resource -> + txid 1, status created
        build/fhir2rows < "$DATA/load.ndjson.tmp" 2>"$TMP/fhir2rows.log" |
            perl -pe 's/^([^\t]*)\t([^\t]*)\t/$1\t1\t$2\tcreated\t/' > "$DATA/load.tsv" ||
            { cat "$TMP/fhir2rows.log" >&2; die "fhir2rows failed"; }
        mv "$DATA/load.ndjson.tmp" "$DATA/load.ndjson"
        echo "$key" > "$DATA/load.stamp"
        t1=$(now)
        echo "# load source generated in $(elapsed "$t0" "$t1") s"
    fi
    gzkey="$key level=$BENCH_GZIP_LEVEL"
    if want load_gzip && [ "$(cat "$DATA/load.gz.stamp" 2>/dev/null)" != "$gzkey" ]; then
        t0=$(now)
        gzip -c "-$BENCH_GZIP_LEVEL" "$DATA/load.ndjson" > "$DATA/load.ndjson.gz" ||
            die "gzip failed"
        echo "$gzkey" > "$DATA/load.gz.stamp"
        t1=$(now)
        echo "# load source gzipped (gzip -$BENCH_GZIP_LEVEL) in $(elapsed "$t0" "$t1") s"
    fi
    chmod a+r "$DATA"/load.* 2>/dev/null || true
    n=$(wc -l < "$DATA/load.ndjson")
    [ "$n" = "$BENCH_ROWS" ] || die "$DATA/load.ndjson has $n lines, expected $BENCH_ROWS"
    n=$(wc -l < "$DATA/load.tsv")
    [ "$n" = "$BENCH_ROWS" ] || die "$DATA/load.tsv has $n rows, expected $BENCH_ROWS"
    echo "# load source: $DATA: ndjson $(mb "$(stat -c %s "$DATA/load.ndjson")") MB," \
         "rows $(mb "$(stat -c %s "$DATA/load.tsv")") MB$(
         [ -e "$DATA/load.ndjson.gz" ] &&
             echo ", ndjson.gz $(mb "$(stat -c %s "$DATA/load.ndjson.gz")") MB"
         ); disk use $(du -sh "$DATA" | cut -f1)"
fi

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
    $( [ -n "${BENCH_IMPORT_LEASE:-}" ] && echo "bulk_import_lease $BENCH_IMPORT_LEASE;" )
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
        # the \$load and \$import sources are served by this nginx on a
        # loopback address, which the module refuses by default (SSRF)
        bulk_source_allow 127.0.0.1;

        include $REPO/conf/bulk_api.conf;

        location ~ ^/par2/(?<bulk_ptype>[A-Za-z0-9]+)/\\\$dump\$ {
            bulk_dump \$bulk_ptype;
            bulk_dump_parallel 2;
        }

        location /benchsrc/ {
            alias $DATA/;
            sendfile on;
        }
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

echo "# $BENCH_RUNS runs per side (loads: $BENCH_LOAD_RUNS), ours and the baseline" \
     "alternating; ratio = median of the per-pair ratios, spread = their min-max"
if [ "$BENCH_RUNS" -lt 5 ] || [ "$BENCH_LOAD_RUNS" -lt 5 ]; then
    echo "# fewer than 5 runs per side: a quick look, not a measurement"
fi

# run <label> <command...>: runs it, sets T (seconds)
run() {
    local label=$1 t0 t1
    shift
    t0=$(now)
    "$@" || die "$label failed"
    t1=$(now)
    T=$(elapsed "$t0" "$t1")
}

# our_run <label> <command...>: run, with the worker's peak RSS reset
# before and read after; RSS keeps the highest since the pair began
RSS=0
our_run() {
    local hwm
    worker_hwm_reset
    run "$@"
    hwm=$(worker_hwm)
    RSS=$(awk -v a="$RSS" -v b="$hwm" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
}

# alternate <ours label> <ours function> <base label> <base function>:
# BENCH_RUNS runs of each, ours first, then the baseline, and so on;
# OS and BS get the seconds of each side's runs (" t1 t2 ...")
alternate() {
    local i
    OS=; BS=
    for i in $(seq "$BENCH_RUNS"); do
        our_run "$1" "$2"
        OS="$OS $T"
        run "$3" "$4"
        BS="$BS $T"
    done
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

# the statistics of one pair; $1 and $2 are the seconds of ours and of the
# baseline, run i of one with run i of the other
PAIR_AWK='
function median(a, k,    i, j, t) {    # sorts a[1..k]
    for (i = 2; i <= k; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--)
            a[j + 1] = a[j]
        a[j + 1] = t
    }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
BEGIN {
    k = split(os, o, " ")
    if (k == 0 || split(bs, b, " ") != k) {
        bad = 1    # (exit in BEGIN still runs END)
        exit 1
    }
    for (i = 1; i <= k; i++) {
        if (o[i] <= 0) o[i] = 0.001
        if (b[i] <= 0) b[i] = 0.001
        r[i] = b[i] / o[i]    # (n / o) / (n / b)
        ro[i] = n / o[i]
        rb[i] = n / b[i]
        rs = rs sprintf(" %.2f", r[i])
    }
}'

# ratios "<ours seconds>" "<baseline seconds>": the per-pair ratios
ratios() {
    awk -v n="$BENCH_ROWS" -v os="$1" -v bs="$2" "$PAIR_AWK"'
        END { if (!bad) print substr(rs, 2) }' < /dev/null
}

# report <name> "<ours seconds>" "<baseline seconds>" <rss>
report() {
    awk -v name="$1" -v n="$BENCH_ROWS" -v os="$2" -v bs="$3" -v rss="$4" "$PAIR_AWK"'
        END {
            if (bad)
                exit 1
            m = median(r, k)
            printf "BENCH %s ratio=%.2f spread=%.2f-%.2f ours=%d baseline=%d runs=%d rss_mb=%s\n",
                   name, m, r[1], r[k], median(ro, k), median(rb, k), k, rss
        }' < /dev/null || die "report $1: no runs"
}

# detail <name> <ours label> <base label> [text]: the '#' lines of a pair
detail() {
    echo "# $1: $2$OS s; $3$BS s${4:+; $4}"
    echo "# $1: per-pair ratios $(ratios "$OS" "$BS")"
}

URL=$BASE/$TYPE/\$dump

# dump: ours and psql COPY
o_dump() { curl_plain "$URL"; }

if want dump; then
    nginx_restart; RSS=0
    our_run "curl \$dump" curl_check "$URL" cat;  wo=$T
    check_lines "\$dump"
    read -r code dump_bytes < "$TMP/w"
    run "psql COPY" psql_check;                   wb=$T
    check_lines "psql COPY"
    alternate "curl \$dump" o_dump "psql COPY" psql_plain
    detail dump ours "psql COPY" \
        "warm-up (checked) $wo s, $wb s; \$dump output $(mb "$dump_bytes") MB"
    report dump "$OS" "$BS" "$RSS"
fi

# dump_gzip: ours and psql COPY | gzip -1
o_dump_gzip() { curl_plain "$URL?gzip=true"; }

if want dump_gzip; then
    nginx_restart; RSS=0
    our_run "curl \$dump?gzip=true" curl_check "$URL?gzip=true" gunzip; wo=$T
    check_lines "\$dump?gzip=true (gunzipped)"
    read -r code gz_bytes < "$TMP/w"
    run "psql COPY | gzip -1" psql_gzip_check;    wb=$T
    alternate "curl \$dump?gzip=true" o_dump_gzip "psql COPY | gzip -1" psql_gzip
    detail dump_gzip ours "psql | gzip -1" \
        "warm-up $wo s (checked, with gunzip | wc), $wb s; ours $(mb "$gz_bytes") MB, gzip -1 $(mb "$(cat "$TMP/gzsize")") MB"
    report dump_gzip "$OS" "$BS" "$RSS"
fi

# dump_parallel2: ours over two connections (bulk_dump_parallel 2) and
# psql COPY over one
PURL=$BASE/par2/$TYPE/\$dump
o_dump_par() { curl_plain "$PURL"; }

if want dump_parallel2; then
    nginx_restart; RSS=0
    our_run "curl par2 \$dump" curl_check "$PURL" cat;  wo=$T
    check_lines "par2 \$dump"
    run "psql COPY" psql_check;                   wb=$T
    check_lines "psql COPY"
    alternate "curl par2 \$dump" o_dump_par "psql COPY" psql_plain
    detail dump_parallel2 ours "psql COPY" "warm-up (checked) $wo s, $wb s"
    report dump_parallel2 "$OS" "$BS" "$RSS"
fi

# dump_fhir: ours with fhir=true against our own plain $dump (the plain
# runs share the worker: only the fhir runs count for its peak RSS)
o_dump_fhir() { curl_plain "$URL?fhir=true"; }

if want dump_fhir; then
    nginx_restart; RSS=0
    our_run "curl \$dump?fhir=true" curl_check "$URL?fhir=true" cat; wo=$T
    check_lines "\$dump?fhir=true"
    read -r code fhir_bytes < "$TMP/w"
    run "curl \$dump" o_dump;                      wb=$T
    alternate "curl \$dump?fhir=true" o_dump_fhir "curl \$dump" o_dump
    detail dump_fhir fhir=true plain \
        "warm-up $wo s (checked), $wb s; fhir output $(mb "$fhir_bytes") MB"
    report dump_fhir "$OS" "$BS" "$RSS"
fi

# dump_sql_<format>: POST /$dump-sql against psql COPY of the same query
# (ndjson and elastic-bulk against COPY of row_to_json); csv has one header
# line more, elastic-bulk an action line per row, sql its head (two SETs,
# CREATE TABLE with a line per column, its end, COPY) and "\." more
SQL_QUERY="SELECT id, txid, ts, resource FROM \"$TABLE\""
SQL_COLS=4
SQL_EXTRA=

curl_sql() {    # format filter...
    local fmt=$1
    shift
    curl -sS --fail -X POST -H 'Content-Type: application/json' \
        --data "{\"query\": \"$(sed 's/"/\\"/g' <<< "$SQL_QUERY")\", \"format\": \"$fmt\"$SQL_EXTRA}" \
        -w '%{stderr}%{http_code} %{size_download}\n' "$BASE/\$dump-sql" \
        2>"$TMP/w" | "$@" | wc -l > "$TMP/lines"
}

psql_sql() {    # copy-sql filter...
    local q=$1
    shift
    "${PSQL[@]}" -c "$q" | "$@" | wc -l > "$TMP/lines"
}

o_sql() { curl_sql "$SQL_FMT" cat; }
b_sql() { psql_sql "$SQL_BASE" cat; }

# lines that are not rows: the csv header (both sides), elastic-bulk's
# action lines, the sql script's head and end (ours only)
sql_check_lines() {
    local n
    n=$(cat "$TMP/lines")
    case "$SQL_FMT:$1" in
    csv:*)            n=$(( n - 1 )) ;;
    elastic-bulk:\$*) n=$(( n / 2 )) ;;
    sql:\$*)          n=$(( n - SQL_COLS - 6 )) ;;
    esac
    echo "$n" > "$TMP/lines"
    check_lines "$1"
}

for SQL_NAME in tsv csv ndjson elastic sql; do
    want "dump_sql_$SQL_NAME" || continue

    SQL_FMT=$SQL_NAME
    SQL_EXTRA=
    case $SQL_FMT in
    tsv)    SQL_BASE="COPY ($SQL_QUERY) TO STDOUT" ;;
    csv)    SQL_BASE="COPY ($SQL_QUERY) TO STDOUT (FORMAT csv, HEADER)" ;;
    ndjson) SQL_BASE="COPY (SELECT row_to_json(q) FROM ($SQL_QUERY) q) TO STDOUT" ;;
    elastic)
        SQL_FMT=elastic-bulk
        SQL_EXTRA=', "index": "bench"'
        SQL_BASE="COPY (SELECT row_to_json(q) FROM ($SQL_QUERY) q) TO STDOUT" ;;
    sql)    SQL_BASE="COPY ($SQL_QUERY) TO STDOUT" ;;
    esac

    nginx_restart; RSS=0
    our_run "\$dump-sql $SQL_FMT" o_sql;          wo=$T
    sql_check_lines "\$dump-sql $SQL_FMT"
    read -r code sql_bytes < "$TMP/w"
    run "psql $SQL_FMT" b_sql;                    wb=$T
    sql_check_lines "psql $SQL_FMT"
    alternate "\$dump-sql $SQL_FMT" o_sql "psql $SQL_FMT" b_sql
    detail "dump_sql_$SQL_NAME" ours psql \
        "warm-up (checked) $wo s, $wb s; output $(mb "$sql_bytes") MB"
    report "dump_sql_$SQL_NAME" "$OS" "$BS" "$RSS"
done

# export: the FHIR $export of the table (kick-off, status until the
# manifest, its files BENCH_EXPORT_PARALLEL at a time, then DELETE) against
# one $dump?fhir=true of the same table
export_run() {    # [check]: the lines of all files into $TMP/lines
    local loc code
    loc=$(curl -sS -D - -o /dev/null -H 'Accept: application/fhir+json' \
               -H 'Prefer: respond-async' "$BASE/fhir/\$export?_type=$TYPE" |
          tr -d '\r' | awk 'tolower($1) == "content-location:" { print $2 }')
    [ -n "$loc" ] || return 1
    while :; do
        code=$(curl -sS -o "$TMP/manifest" -w '%{http_code}' "$loc") || return 1
        [ "$code" = 200 ] && break
        [ "$code" = 202 ] || return 1
        sleep 0.05
    done
    grep -o '"url":"[^"]*"' "$TMP/manifest" | cut -d'"' -f4 > "$TMP/urls"
    if [ "${1:-}" = check ]; then
        xargs -P "$BENCH_EXPORT_PARALLEL" -n 1 sh -c 'curl -sS --fail "$0" | wc -l' \
            < "$TMP/urls" | awk '{ n += $1 } END { print n + 0 }' > "$TMP/lines"
    else
        xargs -P "$BENCH_EXPORT_PARALLEL" -n 1 curl -sS --fail -o /dev/null \
            < "$TMP/urls"
    fi || return 1
    curl -sS -o /dev/null -X DELETE "$loc"
}
o_export() { export_run; }
o_export_check() { export_run check; }

if want export; then
    nginx_restart; RSS=0
    our_run "\$export" o_export_check;           wo=$T
    check_lines "\$export"
    files=$(wc -l < "$TMP/urls")
    run "curl \$dump?fhir=true" o_dump_fhir;      wb=$T
    alternate "\$export" o_export "curl \$dump?fhir=true" o_dump_fhir
    detail export "\$export ($files files, $BENCH_EXPORT_PARALLEL at a time)" \
        "\$dump?fhir=true" "warm-up (checked) $wo s, $wb s"
    report export "$OS" "$BS" "$RSS"
fi

# converter: the format converter alone, on the sample, BENCH_RUNS times
# one round (build/bench_format <dir> 1: yajl alone, then ours)
if ! want converter; then
    :
elif [ "$SAMPLE" = 1 ]; then
    make -s build/bench_format
    conv=
    for i in $(seq "$BENCH_RUNS"); do
        line=$(build/bench_format "$BENCH_SAMPLE" 1 | grep '^BENCH converter ') ||
            die "build/bench_format printed no BENCH line"
        conv="$conv$line"$'\n'
    done
    awk -v runs="$BENCH_RUNS" '
        function median(a, k,    i, j, t) {
            for (i = 2; i <= k; i++) {
                t = a[i]
                for (j = i - 1; j >= 1 && a[j] > t; j--)
                    a[j + 1] = a[j]
                a[j + 1] = t
            }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        {
            k++
            for (f = 3; f <= NF; f++) {
                split($f, kv, "=")
                v[kv[1], k] = kv[2]
            }
            o[k] = v["ours", k]; b[k] = v["baseline", k]
            a[k] = v["to_aidbox", k]; h[k] = v["to_fhir", k]
            r[k] = o[k] / b[k]
            os = os " " o[k]; bs = bs " " b[k]; rs = rs sprintf(" %.2f", r[k])
        }
        END {
            if (k != runs)
                exit 1
            print "# converter: ours" os " MB/s; yajl" bs " MB/s"
            print "# converter: per-pair ratios" substr(rs, 1)
            m = median(r, k)
            printf "BENCH converter ratio=%.2f spread=%.2f-%.2f ours=%.1f baseline=%.1f " \
                   "to_aidbox=%.1f to_fhir=%.1f runs=%d\n",
                   m, r[1], r[k], median(o, k), median(b, k), median(a, k), median(h, k), k
        }' <<< "${conv%$'\n'}" || die "build/bench_format: unexpected output"
else
    echo "# converter: skipped (no Synthea sample)"
fi

# ------------------------------------------------------------------ loads
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks <pid>...: utime + stime + cutime + cstime of the live ones
cpu_ticks() {
    local p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat"
    done | awk '{ s += $12 + $13 + $14 + $15 } END { print s + 0 }'
}

# CPU ticks of the whole cluster: the postmaster (its cutime/cstime hold
# the backends it reaped) and its live children
pg_ticks() {
    local pm
    pm=$(head -1 "$BULK_PGDIR/data/postmaster.pid")
    cpu_ticks "$pm" $(ps -o pid= --ppid "$pm")
}

worker_ticks() { cpu_ticks "$nginx_worker"; }

secs() { awk -v t="$1" -v h="$CLK_TCK" 'BEGIN { printf "%.1f", t / h }'; }

load_reset() {
    "${PSQL[@]}" -c "TRUNCATE \"$TABLE\", \"${TABLE}_history\"" -c "CHECKPOINT"
}

check_table() {
    local what=$1 n
    n=$("${PSQL[@]}" -Atc "SELECT count(*) FROM \"$TABLE\"")
    [ "$n" = "$BENCH_ROWS" ] || die "$what: table $TABLE has $n rows, expected $BENCH_ROWS"
}

# ours_load <file>: POST /fhir/$load of /benchsrc/<file>; checks the answer
# {"<Type>": BENCH_ROWS} and the table
ours_load() {
    local n
    curl -sS --fail-with-body -o "$TMP/answer" -H 'Content-Type: application/json' \
        --data-binary "{\"source\": \"$BASE/benchsrc/$1\"}" "$BASE/fhir/\$load" ||
        { echo "bench: \$load answered: $(head -c 500 "$TMP/answer")" >&2; return 1; }
    n=$(perl -ne 'print $1 if /^\{\s*"'"$TYPE"'"\s*:\s*(\d+)\s*\}\s*$/' "$TMP/answer")
    [ "$n" = "$BENCH_ROWS" ] ||
        die "\$load of $1 answered '$(head -c 500 "$TMP/answer")', expected {\"$TYPE\":$BENCH_ROWS}"
}

base_load() {
    "${PSQL[@]}" -c "\\copy \"$TABLE\" (id, txid, resource_type, status, resource) FROM '$DATA/load.tsv'"
}

# load_runs <label> <command...>: BENCH_LOAD_RUNS runs of the command and
# of psql \copy, alternating, each into the truncated table and checked
# (outside the timing); OS, BS as alternate(); CPU ticks in OWT (the
# worker during ours), OPT (PostgreSQL during ours), BPT (during \copy)
load_runs() {
    local label=$1 i w0 p0
    shift
    OS=; BS=; OWT=0; OPT=0; BPT=0
    for i in $(seq "$BENCH_LOAD_RUNS"); do
        load_reset
        w0=$(worker_ticks); p0=$(pg_ticks)
        our_run "$label" "$@"
        OWT=$((OWT + $(worker_ticks) - w0)); OPT=$((OPT + $(pg_ticks) - p0))
        check_table "$label"
        OS="$OS $T"

        load_reset
        p0=$(pg_ticks)
        run "psql \\copy" base_load
        sleep 0.2    # let the postmaster reap psql's backend
        BPT=$((BPT + $(pg_ticks) - p0))
        check_table "psql \\copy"
        BS="$BS $T"
    done
}

load_cpu() {
    echo "# $1: CPU over $BENCH_LOAD_RUNS run(s): ours nginx worker $(secs "$OWT") s," \
         "PostgreSQL $(secs "$OPT") s; psql \\copy PostgreSQL $(secs "$BPT") s"
}

# load_pair <name> <source file>
load_pair() {
    nginx_restart; RSS=0
    load_runs "\$load $2" ours_load "$2"
    detail "$1" ours "psql \\copy"
    load_cpu "$1"
    report "$1" "$OS" "$BS" "$RSS"
}

if want load; then
    load_pair load load.ndjson
fi

if want load_gzip; then
    load_pair load_gzip load.ndjson.gz
fi

# load_push: the NDJSON file as the body of POST /fhir/$load
ours_push() {
    local n
    curl -sS --fail-with-body -o "$TMP/answer" -X POST \
        -H 'Content-Type: application/fhir+ndjson' -T "$DATA/load.ndjson" \
        "$BASE/fhir/\$load" ||
        { echo "bench: \$load answered: $(head -c 500 "$TMP/answer")" >&2; return 1; }
    n=$(perl -ne 'print $1 if /^\{\s*"'"$TYPE"'"\s*:\s*(\d+)\s*\}\s*$/' "$TMP/answer")
    [ "$n" = "$BENCH_ROWS" ] ||
        die "push \$load answered '$(head -c 500 "$TMP/answer")', expected {\"$TYPE\":$BENCH_ROWS}"
}

if want load_push; then
    nginx_restart; RSS=0
    load_runs "push \$load" ours_push
    detail load_push ours "psql \\copy"
    load_cpu load_push
    report load_push "$OS" "$BS" "$RSS"
fi

# import: POST /fhir/$import of the same resources split over 4 inputs
# (bulk_import_concurrency 2, batches committed as they go), timed from the
# POST to the status "finished", against the same psql \copy.
# BENCH_IMPORT_LEASE=<time> runs it as a job shared through the tables
# (bulk_import_lease): the cost of claims, leases and progress rows
ours_import() {
    local id=bench-$RANDOM-$1 st= i
    curl -sS --fail-with-body -o "$TMP/answer" -H 'Content-Type: application/json' \
        --data-binary "{\"id\": \"$id\", \"inputs\": [$(
            for i in 00 01 02 03; do
                printf '%s{"resourceType": "%s", "url": "%s/benchsrc/import.part.%s"}' \
                    "$([ "$i" = 00 ] || echo ,)" "$TYPE" "$BASE" "$i"
            done)]}" "$BASE/fhir/\$import" ||
        { echo "bench: \$import answered: $(head -c 500 "$TMP/answer")" >&2; return 1; }
    while :; do
        st=$(curl -sS "$BASE/BulkImportStatus/$id" |
             perl -ne 'print $1 if /"status":"(\w+)","type"/')
        [ "$st" = active ] || break
        sleep 0.1
    done
    [ "$st" = finished ] ||
        die "\$import $id ended $st: $(curl -sS "$BASE/BulkImportStatus/$id" | head -c 800)"
}

IMPORT_N=0
o_import() { IMPORT_N=$((IMPORT_N + 1)); ours_import "$IMPORT_N"; }

if want import; then
    if [ ! -e "$DATA/import.part.03" ] || [ "$DATA/load.ndjson" -nt "$DATA/import.part.03" ]; then
        split -n l/4 -d -a 2 "$DATA/load.ndjson" "$DATA/import.part."
    fi

    nginx_restart; RSS=0
    load_runs "\$import" o_import
    detail import ours "psql \\copy" "4 inputs, 2 at a time${BENCH_IMPORT_LEASE:+, bulk_import_lease $BENCH_IMPORT_LEASE}"
    load_cpu import
    report import "$OS" "$BS" "$RSS"
fi

if grep -q '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" 2>/dev/null; then
    echo "# nginx error.log has alerts:"
    grep '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" | tail -5 | sed 's/^/#   /'
fi

echo "# bench took $(elapsed "$BENCH_T0" "$(now)") s"
