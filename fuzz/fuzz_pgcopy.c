
/*
 * libFuzzer target of the binary COPY reader.
 *
 * The first byte sets how many fields a tuple may have (0..16); the rest
 * is a stream of messages, each one length byte (255: the rest of the
 * input) and that many bytes, read in turn by one reader until it refuses
 * one, as the COPY OUT driver does.  Every message goes in memory of its
 * exact size (ASan catches an overread).  A tuple read must lie inside its
 * message, within the field limit, and be written back by the writer to
 * exactly the bytes it was read from; a header, once read, is not read
 * again; nothing is accepted after the trailer.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_pgcopy.h"


#define FUZZ_FIELDS_MAX  16


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
ngx_bulk_fuzz_tuple(const unsigned char *msg, size_t len,
    ngx_bulk_pgcopy_field_t *f, size_t n, size_t max)
{
    size_t          i, out_len;
    unsigned char  *out, *p;

    if (n > max) {
        abort();
    }

    out_len = NGX_BULK_PGCOPY_COUNT_LEN + n * NGX_BULK_PGCOPY_LEN_LEN;

    for (i = 0; i < n; i++) {
        if (f[i].data == NULL) {
            if (f[i].len != NGX_BULK_PGCOPY_NULL) {
                abort();
            }

            continue;
        }

        if (f[i].len < 0 || f[i].data < msg
            || f[i].data + f[i].len > msg + len)
        {
            abort();
        }

        out_len += f[i].len;
    }

    /* the tuple is the end of the message: the header, if any, before */

    if (out_len > len) {
        abort();
    }

    out = malloc(out_len);
    if (out == NULL) {
        abort();
    }

    p = ngx_bulk_pgcopy_write_count(out, (uint16_t) n);

    for (i = 0; i < n; i++) {
        if (f[i].data == NULL) {
            p = ngx_bulk_pgcopy_write_len(p, NGX_BULK_PGCOPY_NULL);

        } else {
            p = ngx_bulk_pgcopy_write_field(p, f[i].data, f[i].len);
        }
    }

    if ((size_t) (p - out) != out_len
        || memcmp(out, msg + len - out_len, out_len) != 0)
    {
        abort();
    }

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        rc;
    size_t                     max, len, n, off;
    unsigned char             *msg;
    ngx_bulk_pgcopy_field_t    f[FUZZ_FIELDS_MAX];
    ngx_bulk_pgcopy_reader_t   rd, before;

    if (size < 1) {
        return 0;
    }

    max = data[0] % (FUZZ_FIELDS_MAX + 1);
    off = 1;

    memset(&rd, 0, sizeof(rd));

    while (off < size) {
        len = data[off++];

        if (len == 255 || len > size - off) {
            len = size - off;
        }

        msg = malloc(len ? len : 1);
        if (msg == NULL) {
            abort();
        }

        memcpy(msg, data + off, len);
        off += len;

        before = rd;

        rc = ngx_bulk_pgcopy_read(&rd, msg, len, f, max, &n);

        if (rc == 1) {
            if (!rd.header || rd.trailer) {
                abort();
            }

            ngx_bulk_fuzz_tuple(msg, len, f, n, max);

        } else if (rc == 0) {
            if (n != 0 || !rd.header || before.trailer) {
                abort();
            }

        } else if (rc != -1 || before.trailer != rd.trailer) {
            abort();
        }

        free(msg);

        if (rc == -1) {
            break;
        }
    }

    return 0;
}
