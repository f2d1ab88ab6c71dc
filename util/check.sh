#!/bin/bash
# make check: the whole t/ suite twice, exit non-zero on any failure or any
# sanitizer / valgrind report (the runner turns each report into a failing
# test of the block that produced it):
#
#   1. nginx and the module built with ASan + UBSan (make asan), LeakSanitizer
#      at every nginx process exit;
#   2. Debian's /usr/sbin/nginx with the normal module under valgrind memcheck
#      (blocks marked "--- skip_valgrind" are skipped there).
#
# Suppressions, each entry commented (nginx's and libraries' own only):
# t/asan.supp, t/lsan.supp, t/ubsan.supp, t/valgrind.supp.
# Logs: build/check/{asan,valgrind}.log; the summaries are printed last.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
ASAN=$REPO/build/asan
OUT=$REPO/build/check
mkdir -p "$OUT"
t0=$SECONDS

summary() {     # prove's summary: from "Test Summary Report" or the last lines
    local f=$1
    if grep -q '^Test Summary Report' "$f"; then
        sed -n '/^Test Summary Report/,$p' "$f"
    else
        tail -3 "$f"
    fi
}

echo "== make check 1/2: ASan + UBSan + LSan ($ASAN/sbin/nginx)"
t1=$SECONDS
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_odr_violation=2:suppressions=$REPO/t/asan.supp" \
LSAN_OPTIONS="suppressions=$REPO/t/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS="print_stacktrace=1:suppressions=$REPO/t/ubsan.supp" \
TEST_NGINX_BINARY=$ASAN/sbin/nginx \
TEST_NGINX_LOAD_MODULES=$ASAN/modules/ngx_http_bulk_module.so \
    util/run-tests.sh 2>&1 | tee "$OUT/asan.log"
rc1=${PIPESTATUS[0]}
d1=$((SECONDS - t1))

# t/002-unit.t runs ASan/UBSan binaries, not nginx: done in pass 1
echo "== make check 2/2: valgrind memcheck (/usr/sbin/nginx + build/ngx_http_bulk_module.so)"
t2=$SECONDS
TEST_NGINX_USE_VALGRIND=1 \
TESTS="${VALGRIND_TESTS:-$(ls t/*.t | grep -v '^t/002-unit\.t$' | tr '\n' ' ')}" \
    util/run-tests.sh 2>&1 | tee "$OUT/valgrind.log"
rc2=${PIPESTATUS[0]}
d2=$((SECONDS - t2))

skipped=$(grep -c ' - skipped under valgrind: ' "$OUT/valgrind.log")
echo
echo "== make check summary ($((SECONDS - t0))s)"
echo "-- ASan/UBSan/LSan (${d1}s), build/check/asan.log:"
summary "$OUT/asan.log"
echo "-- valgrind memcheck (${d2}s, $skipped block(s) skipped by skip_valgrind), build/check/valgrind.log:"
summary "$OUT/valgrind.log"
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
    echo "make check: FAIL (asan rc=$rc1, valgrind rc=$rc2)"
    exit 1
fi
echo "make check: PASS"
