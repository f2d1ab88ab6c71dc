#!/bin/bash
# make soak: one POST /$load of a large source generated on the fly, with
# the nginx worker's memory watched.  SOAK_MODE=pull (default) loads it
# from its URL; SOAK_MODE=push streams it as the request body (curl -T -,
# chunked, application/x-ndjson: a push upload).
#
# Starts its own PostgreSQL cluster (<state>/pg-soak, <state> being
# util/state.sh's directory outside the checkout; port BULK_PGPORT,
# default 54332), its own nginx (one worker, 127.0.0.1:SOAK_PORT, default
# 18091) and util/soak-source.pl on 127.0.0.1:SOAK_SRC_PORT (default
# 18092), which streams SOAK_BYTES (default 2 GiB) of Aidbox NDJSON
# (chunked, ~1 KB lines with fresh ids, generated as it goes; SOAK_RATE
# bytes/s throttles it, default 0: as fast as nginx reads).  The load goes
# into the empty table; the worker's VmRSS is sampled every second.  Prints
#
#   SOAK load_2gb rows=<n> seconds=<s> rows_per_s=<r> peak_rss_mb=<m>
#
# (load_push_2gb in push mode)
#
# (peak_rss_mb: the worker's VmHWM, or the largest VmRSS sample if that is
# larger: the kernel folds per-thread RSS counts in lazily), after checking the answer's count and
# the table's against the rows the source wrote.  Lines starting with '#'
# are detail: the RSS samples, when the source finished (the rest is the
# final upsert), and the CPU seconds of the worker and of PostgreSQL.
#
# Lines come from the Synthea MedicationRequest sample (BENCH_SAMPLE,
# default <repo>/../shared/data/synthea-10) converted with build/fhir2rows,
# or, without it, util/gen_sample.pl's Observation rows.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# nginx takes no blank in a path: a symlink to such a checkout instead
REPO=$("$REPO/util/state.sh" src) || exit 1
cd "$REPO"

NGINX=${NGINX:-/usr/sbin/nginx}
SOAK_BYTES=${SOAK_BYTES:-2147483648}
SOAK_RATE=${SOAK_RATE:-0}
SOAK_MODE=${SOAK_MODE:-pull}
SOAK_PORT=${SOAK_PORT:-18091}
SOAK_SRC_PORT=${SOAK_SRC_PORT:-18092}
BENCH_SAMPLE=${BENCH_SAMPLE:-$REPO/../shared/data/synthea-10}
STATE=$(util/state.sh create)
export BULK_PGDIR=$STATE/pg-soak
export BULK_PGPORT=${BULK_PGPORT:-54332}
RUNDIR=$STATE/soak      # nginx workers (nobody) read and write here
TMP=$RUNDIR/tmp
BASE=http://127.0.0.1:$SOAK_PORT

die() { echo "soak: error: $*" >&2; exit 1; }

[[ $SOAK_BYTES =~ ^[1-9][0-9]*$ ]] || die "SOAK_BYTES must be a positive integer"
[[ $SOAK_RATE =~ ^[0-9]+$ ]] || die "SOAK_RATE must be bytes/s (0: unthrottled)"
[[ $SOAK_MODE =~ ^(pull|push)$ ]] || die "SOAK_MODE must be pull or push"
[[ $SOAK_PORT =~ ^[0-9]+$ ]] || die "SOAK_PORT must be a port number"
[[ $SOAK_SRC_PORT =~ ^[0-9]+$ ]] || die "SOAK_SRC_PORT must be a port number"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

nginx_master=
source_pid=
curl_pid=
feed_pid=

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
    [ -z "$curl_pid" ] || kill "$curl_pid" 2>/dev/null || true
    [ -z "$feed_pid" ] || kill "$feed_pid" 2>/dev/null || true
    [ -z "$source_pid" ] || kill "$source_pid" 2>/dev/null || true
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

# --------------------------------------------------------------- template
# Aidbox NDJSON lines {"resourceType":T,"id":I,<resource>} from COPY rows
# (columns given as 1-based numbers of id, resource_type, resource)
rows2ndjson() {
    perl -ne '
        BEGIN { ($i, $t, $r) = map { $_ - 1 } split /,/, shift }
        chomp; my @f = split /\t/, $_, -1;
        s/\\(.)/$1 eq "t" ? "\t" : $1 eq "n" ? "\n" : $1 eq "r" ? "\r" : $1/ge for @f;
        my $res = $f[$r] eq "{}" ? "}" : "," . substr($f[$r], 1);
        print qq({"resourceType":"$f[$t]","id":"$f[$i]"$res\n);
    ' "$1"
}

if [ -s "$BENCH_SAMPLE/MedicationRequest.000.ndjson" ]; then
    TYPE=MedicationRequest
    build/fhir2rows < "$BENCH_SAMPLE/MedicationRequest.000.ndjson" 2>"$TMP/fhir2rows.log" |
        rows2ndjson 1,2,3 > "$TMP/template.ndjson" ||
        { cat "$TMP/fhir2rows.log" >&2; die "fhir2rows failed"; }
    echo "# template: Synthea $TYPE sample ($BENCH_SAMPLE) in Aidbox format (build/fhir2rows)"
else
    TYPE=Observation
    perl util/gen_sample.pl --patients 50 --format rows --out "$TMP" >/dev/null 2>&1 ||
        die "gen_sample.pl failed"
    rows2ndjson 1,5,7 < "$TMP/observation.tsv" > "$TMP/template.ndjson"
    echo "# template: util/gen_sample.pl $TYPE rows in Aidbox format (no Synthea sample)"
fi
TABLE=$(tr 'A-Z' 'a-z' <<< "$TYPE")
echo "# template: $(wc -l < "$TMP/template.ndjson") lines," \
     "$(awk '{ s += length($0) + 1 } END { printf "%d", s / NR }' "$TMP/template.ndjson") bytes a line on average"

# ----------------------------------------------------------------- source
perl util/soak-source.pl --port "$SOAK_SRC_PORT" --bytes "$SOAK_BYTES" \
    --rate "$SOAK_RATE" --template "$TMP/template.ndjson" \
    --status "$TMP/source.status" > "$TMP/source.out" 2>"$TMP/source.err" &
source_pid=$!
for i in $(seq 50); do
    grep -q '^ready' "$TMP/source.out" 2>/dev/null && break
    kill -0 "$source_pid" 2>/dev/null || { cat "$TMP/source.err" >&2; die "soak-source.pl died"; }
    sleep 0.1
done
grep -q '^ready' "$TMP/source.out" || die "soak-source.pl did not start"

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
        listen 127.0.0.1:$SOAK_PORT;
        log_not_found off;

        bulk_pg "$BULK_PG_CONNINFO";
        bulk_pg_pool 4 timeout=10s;

        include $REPO/conf/bulk_api.conf;
    }
}
CONF

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
    code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/soak-404" || true)
    [ "$code" = 404 ] && break
    sleep 0.1
done
[ "$code" = 404 ] || die "nginx on $BASE answers '$code' instead of 404"
nginx_worker=$(ps -o pid= --ppid "$nginx_master" | head -1 | tr -d ' ')
[ -n "$nginx_worker" ] || die "no nginx worker"

# ------------------------------------------------------------------- load
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() {
    local p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat"
    done | awk '{ s += $12 + $13 + $14 + $15 } END { print s + 0 }'
}

pg_ticks() {
    local pm
    pm=$(head -1 "$BULK_PGDIR/data/postmaster.pid")
    cpu_ticks "$pm" $(ps -o pid= --ppid "$pm")
}

secs() { awk -v t="$1" -v h="$CLK_TCK" 'BEGIN { printf "%.1f", t / h }'; }

rss_kb() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$nginx_worker/status"; }

"${PSQL[@]}" -c "TRUNCATE \"$TABLE\", \"${TABLE}_history\"" -c "CHECKPOINT"
echo 5 > "/proc/$nginx_worker/clear_refs" 2>/dev/null || true
rss0=$(rss_kb VmRSS)

w0=$(cpu_ticks "$nginx_worker"); p0=$(pg_ticks)
t0=$(now)
if [ "$SOAK_MODE" = push ]; then
    # the source's bytes through a fifo into the body of the upload
    rm -f "$TMP/feed"
    mkfifo "$TMP/feed"
    curl -sS -o "$TMP/feed" "http://127.0.0.1:$SOAK_SRC_PORT/soak.ndjson" \
        2>"$TMP/feed.err" &
    feed_pid=$!
    curl -sS -o "$TMP/answer" -w '%{http_code}\n' -X POST -T - \
        -H 'Content-Type: application/x-ndjson' \
        "$BASE/\$load" < "$TMP/feed" > "$TMP/curl.out" 2>"$TMP/curl.err" &
    curl_pid=$!
    NAME=load_push_2gb
else
    curl -sS -o "$TMP/answer" -w '%{http_code}\n' -H 'Content-Type: application/json' \
        --data-binary "{\"source\": \"http://127.0.0.1:$SOAK_SRC_PORT/soak.ndjson\"}" \
        "$BASE/\$load" > "$TMP/curl.out" 2>"$TMP/curl.err" &
    curl_pid=$!
    NAME=load_2gb
fi

# one VmRSS sample (kB) a second while the load runs
: > "$TMP/rss"
while kill -0 "$curl_pid" 2>/dev/null; do
    rss_kb VmRSS >> "$TMP/rss" || true
    sleep 1
done
rc=0
wait "$curl_pid" || rc=$?
curl_pid=
if [ -n "$feed_pid" ]; then
    wait "$feed_pid" || die "the feed of the push failed: $(cat "$TMP/feed.err")"
    feed_pid=
fi
t1=$(now)
w1=$(cpu_ticks "$nginx_worker"); p1=$(pg_ticks)
hwm=$(rss_kb VmHWM)

code=$(cat "$TMP/curl.out" 2>/dev/null || true)
[ "$rc" = 0 ] && [ "$code" = 200 ] ||
    die "\$load failed (curl exit $rc, status '$code'): $(cat "$TMP/curl.err") $(head -c 500 "$TMP/answer" 2>/dev/null)"

st=$(tail -1 "$TMP/source.status" 2>/dev/null || true)
[[ $st == done\ * ]] || die "the source did not finish: '$st'"
src_rows=$(sed 's/.* rows=\([0-9]*\).*/\1/' <<< "$st")
src_bytes=$(sed 's/.* bytes=\([0-9]*\).*/\1/' <<< "$st")
src_end=$(sed 's/.* end=\([0-9.]*\).*/\1/' <<< "$st")

n=$(perl -ne 'print $1 if /^\{\s*"'"$TYPE"'"\s*:\s*(\d+)\s*\}\s*$/' "$TMP/answer")
[ "$n" = "$src_rows" ] ||
    die "\$load answered '$(head -c 500 "$TMP/answer")', expected {\"$TYPE\":$src_rows}"
n=$("${PSQL[@]}" -Atc "SELECT count(*) FROM \"$TABLE\"")
[ "$n" = "$src_rows" ] || die "table $TABLE has $n rows, expected $src_rows"

secs_total=$(elapsed "$t0" "$t1")
echo "# source: $src_rows lines, $(mb "$src_bytes") MB$([ "$SOAK_RATE" = 0 ] ||
     echo ", throttled to $SOAK_RATE bytes/s"); finished $(elapsed "$t0" "$src_end") s" \
     "after the start, the answer came $(elapsed "$src_end" "$t1") s later (COPY end + upsert + commit)"
echo "# CPU: nginx worker $(secs $((w1 - w0))) s, PostgreSQL $(secs $((p1 - p0))) s," \
     "wall $secs_total s"
awk -v r0="$rss0" -v hwm="$hwm" '
    { v[NR] = $1; if ($1 > max) max = $1 }
    END {
        printf "# worker RSS: %.1f MB before, VmRSS max %.1f MB over %d samples, VmHWM %.1f MB\n",
               r0 / 1024, max / 1024, NR, hwm / 1024
        step = NR > 20 ? NR / 20 : 1
        s = "# VmRSS MB every " (NR > 20 ? sprintf("%.0f", step) : 1) " s:"
        for (i = 1; i <= NR; i += step) s = s sprintf(" %.1f", v[int(i)] / 1024)
        print s
    }' "$TMP/rss"
peak=$(sort -n "$TMP/rss" | tail -1)
peak=$(( ${peak:-0} > hwm ? ${peak:-0} : hwm ))
awk -v name="$NAME" -v n="$src_rows" -v t="$secs_total" -v hwm="$peak" 'BEGIN {
    printf "SOAK %s rows=%d seconds=%.1f rows_per_s=%d peak_rss_mb=%.1f\n",
           name, n, t, n / t, hwm / 1024 }'

if grep -q '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" 2>/dev/null; then
    echo "# nginx error.log has alerts:"
    grep '\[\(alert\|crit\|emerg\)\]' "$RUNDIR/logs/error.log" | tail -5 | sed 's/^/#   /'
fi
