
/*
 * libFuzzer target of the NDJSON splitter with gzip in front.
 *
 * The first byte sets the line limit (1..256 bytes, or 64 KB for 0) and the
 * second the size of the pieces the source is fed in (1..254, 0: whole).
 * A second byte of 255 takes the next 8 bytes as a schedule of piece sizes
 * of 0..3 bytes (0: an empty piece, as a source can send), used in turn.
 * Every line returned must be within the limit, hold no "\n" and not be
 * empty (one "\r" before the newline goes; a second stays, and the line is
 * then not JSON); line numbers must grow; all input must be taken.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_ndjson.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
ngx_bulk_fuzz_check(ngx_bulk_nd_line_t *l, size_t line_max, uint64_t *last)
{
    if (l->lineno <= *last) {
        abort();
    }

    *last = l->lineno;

    if (l->too_long) {
        return;
    }

    if (l->len == 0 || l->len > line_max
        || memchr(l->data, '\n', l->len) != NULL)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    size_t               line_max, step, off, n, k, nsched;
    size_t               sched[8];
    uint64_t             last;
    ngx_bulk_nd_t       *nd;
    ngx_bulk_nd_line_t   l;

    if (size < 2) {
        return 0;
    }

    line_max = data[0] ? data[0] : 65536;
    step = data[1];
    data += 2;
    size -= 2;

    nsched = 0;

    if (step == 255) {
        if (size < 8) {
            return 0;
        }

        for (k = 0; k < 8; k++) {
            sched[k] = data[k] % 4;
            nsched += sched[k];
        }

        if (nsched == 0) {
            sched[0] = 1;
        }

        nsched = 8;
        data += 8;
        size -= 8;
    }

    nd = ngx_bulk_nd_create(line_max);
    if (nd == NULL) {
        return 0;
    }

    last = 0;

    k = 0;

    for (off = 0; off < size; off += n) {
        n = nsched ? sched[k++ % nsched] : (step ? step : size);
        if (n > size - off) {
            n = size - off;
        }

        ngx_bulk_nd_input(nd, data + off, n);

        while ((rc = ngx_bulk_nd_next(nd, &l)) == 1) {
            ngx_bulk_fuzz_check(&l, line_max, &last);
        }

        if (rc < 0) {
            goto done;
        }

        if (ngx_bulk_nd_pending(nd) != 0) {
            abort();
        }
    }

    if (ngx_bulk_nd_end(nd, &l) == 1) {
        ngx_bulk_fuzz_check(&l, line_max, &last);
    }

done:

    ngx_bulk_nd_destroy(nd);

    return 0;
}
