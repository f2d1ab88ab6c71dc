#!/bin/bash
# Load deterministic sample data into the running private cluster (util/pg.sh).
# Usage: util/load_sample.sh [gen_sample.pl args, e.g. --patients 200]
# Truncates the generated types' tables (and their _history), loads the rows
# with \copy in one transaction, moves transaction_id_seq past the loaded txids
# and prints the row count per table. Starts nothing.
set -euo pipefail

UTIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PG="$UTIL_DIR/pg.sh"
export PGCLIENTENCODING=UTF8

"$PG" status >/dev/null || { echo "load_sample.sh: cluster not running (run util/pg.sh start)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bulk-sample.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

perl "$UTIL_DIR/gen_sample.pl" --format rows --out "$TMP" "$@"

tables=()
for f in "$TMP"/*.tsv; do
    t=$(basename "$f" .tsv)
    [[ $t =~ ^[a-z][a-z0-9]*$ ]] || { echo "load_sample.sh: bad table name $t" >&2; exit 1; }
    tables+=("$t")
done
[ ${#tables[@]} -gt 0 ] || { echo "load_sample.sh: generator wrote nothing" >&2; exit 1; }

{
    echo 'BEGIN;'
    for t in "${tables[@]}"; do
        echo "TRUNCATE \"$t\", \"${t}_history\";"
    done
    for t in "${tables[@]}"; do
        echo "\\copy \"$t\"(id,txid,cts,ts,resource_type,status,resource) from '$TMP/$t.tsv'"
    done
    maxes=$(printf "(select max(txid) from \"%s\")," "${tables[@]}")
    echo "SELECT setval('transaction_id_seq', greatest(${maxes} (select last_value from transaction_id_seq))) \\g /dev/null"
    echo 'COMMIT;'
    for t in "${tables[@]}"; do
        echo "SELECT '$t' AS table, count(*) AS rows FROM \"$t\" \\g (format=unaligned tuples_only=on fieldsep='\t')"
    done
} | "$PG" psql -f -
