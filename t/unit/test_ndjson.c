/*
 * Unit tests of ngx_bulk_ndjson.c: line splitting, CRLF, blank lines,
 * long lines, gzip (one and several members), fed whole and byte by byte,
 * and broken gzip.  TAP output, then "N passed, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "ngx_bulk_ndjson.h"


static int  passed, failed;


static void
check(int cond, const char *name)
{
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, name);

    } else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, name);
    }
}


/* gzip of in as one member, into out; returns the length */

static size_t
gz(const char *in, size_t len, unsigned char *out, size_t cap)
{
    z_stream  z;

    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *) in;
    z.avail_in = len;
    z.next_out = out;
    z.avail_out = cap;
    deflate(&z, Z_FINISH);
    len = cap - z.avail_out;
    deflateEnd(&z);

    return len;
}


/*
 * Splits src fed in pieces of step bytes (0: whole); writes the lines as
 * "<lineno>:<text>|" (too long: "<lineno>:TOO_LONG|") into out.  Returns
 * 0, or -1 on error with the message in out.
 */

static int
split_pieces(const unsigned char *src, size_t len, const size_t *sched,
    size_t nsched, size_t line_max, char *out, size_t cap);


static int
split(const unsigned char *src, size_t len, size_t step, size_t line_max,
    char *out, size_t cap)
{
    size_t  whole;

    if (step) {
        return split_pieces(src, len, &step, 1, line_max, out, cap);
    }

    whole = len ? len : 1;

    return split_pieces(src, len, &whole, 1, line_max, out, cap);
}


/*
 * The source in pieces whose sizes come from sched in turn; a size of 0
 * is an empty piece (a source can send an empty buffer).
 */

static int
split_pieces(const unsigned char *src, size_t len, const size_t *sched,
    size_t nsched, size_t line_max, char *out, size_t cap)
{
    int                  rc;
    size_t               off, n, o, k;
    ngx_bulk_nd_t       *nd;
    ngx_bulk_nd_line_t   l;

    nd = ngx_bulk_nd_create(line_max);
    o = 0;
    k = 0;
    out[0] = '\0';

    for (off = 0; off < len || (len == 0 && off == 0); off += n) {
        n = sched[k++ % nsched];
        if (n > len - off) {
            n = len - off;
        }

        ngx_bulk_nd_input(nd, src + off, n);

        while ((rc = ngx_bulk_nd_next(nd, &l)) == 1) {
            if (l.too_long) {
                o += snprintf(out + o, cap - o, "%llu:TOO_LONG|",
                              (unsigned long long) l.lineno);
            } else {
                o += snprintf(out + o, cap - o, "%llu:%.*s|",
                              (unsigned long long) l.lineno, (int) l.len,
                              l.data);
            }
        }

        if (rc < 0) {
            snprintf(out, cap, "ERROR %s", ngx_bulk_nd_error(nd));
            ngx_bulk_nd_destroy(nd);
            return -1;
        }

        if (ngx_bulk_nd_pending(nd) != 0) {
            snprintf(out, cap, "ERROR input left");
            ngx_bulk_nd_destroy(nd);
            return -1;
        }

        if (len == 0 || (n == 0 && k > 4 * (len + nsched))) {
            break;
        }
    }

    rc = ngx_bulk_nd_end(nd, &l);

    if (rc == 1) {
        if (l.too_long) {
            o += snprintf(out + o, cap - o, "%llu:TOO_LONG|",
                          (unsigned long long) l.lineno);
        } else {
            o += snprintf(out + o, cap - o, "%llu:%.*s|",
                          (unsigned long long) l.lineno, (int) l.len, l.data);
        }

    } else if (rc < 0) {
        snprintf(out, cap, "ERROR %s", ngx_bulk_nd_error(nd));
        ngx_bulk_nd_destroy(nd);
        return -1;
    }

    ngx_bulk_nd_destroy(nd);

    return 0;
}


static void
expect(const char *name, const unsigned char *src, size_t len,
    size_t line_max, const char *want)
{
    size_t  steps[] = { 0, 1, 2, 3, 7, 64, 4096 };
    size_t  i;
    char    out[65536], label[512];

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        split(src, len, steps[i], line_max, out, sizeof(out));
        snprintf(label, sizeof(label), "%s (pieces of %zu)", name, steps[i]);
        check(strcmp(out, want) == 0, label);

        if (strcmp(out, want) != 0) {
            printf("# got:  %.300s\n# want: %.300s\n", out, want);
        }
    }
}


int
main(void)
{
    size_t          n, m;
    char           *big, want[8192];
    unsigned char   z[65536], z2[65536];
    const char     *text = "{\"a\":1}\n\n{\"b\":2}\r\n\r\n{\"c\":3}";

    expect("plain lines, CRLF, blank lines, no final newline",
           (const unsigned char *) text, strlen(text), 100,
           "1:{\"a\":1}|3:{\"b\":2}|5:{\"c\":3}|");

    expect("final newline", (const unsigned char *) "x\ny\n", 4, 100,
           "1:x|2:y|");

    expect("a byte order mark before the first line is dropped",
           (const unsigned char *) "\xef\xbb\xbf{\"a\":1}\r\n"
                                   "\xef\xbb\xbf{\"b\":2}\n", 23, 100,
           "1:{\"a\":1}|2:\xef\xbb\xbf{\"b\":2}|");

    expect("a byte order mark alone on the first line is a blank line",
           (const unsigned char *) "\xef\xbb\xbf\nx", 5, 100, "2:x|");

    expect("a byte order mark and one line without a newline",
           (const unsigned char *) "\xef\xbb\xbfxy", 5, 100, "1:xy|");

    expect("a byte order mark alone", (const unsigned char *) "\xef\xbb\xbf",
           3, 100, "");

    expect("empty source", (const unsigned char *) "", 0, 100, "");

    expect("one byte", (const unsigned char *) "\x1f", 1, 100, "1:\x1f|");

    expect("a 0x1f that is not gzip",
           (const unsigned char *) "\x1fx\nz", 4, 100, "1:\x1fx|2:z|");

    expect("a line over the limit is reported, the rest goes on",
           (const unsigned char *) "short\nthis is too long\nok\n", 26, 8,
           "1:short|2:TOO_LONG|3:ok|");

    expect("a last line over the limit",
           (const unsigned char *) "ok\n0123456789", 13, 8,
           "1:ok|2:TOO_LONG|");

    expect("exactly the limit, with CRLF",
           (const unsigned char *) "12345678\r\n", 10, 8, "1:12345678|");

    n = gz(text, strlen(text), z, sizeof(z));
    expect("gzip", z, n, 100, "1:{\"a\":1}|3:{\"b\":2}|5:{\"c\":3}|");

    /* two members: the first ends inside a line */
    n = gz("{\"a\":1}\n{\"b\"", 12, z, sizeof(z));
    m = gz(":2}\n{\"c\":3}\n", 12, z2, sizeof(z2));
    memcpy(z + n, z2, m);
    expect("multi-member gzip", z, n + m, 100,
           "1:{\"a\":1}|2:{\"b\":2}|3:{\"c\":3}|");

    /* a big line across many inflate windows */
    big = malloc(300001);
    memset(big, 'x', 300000);
    big[0] = '"';
    big[299999] = '\n';
    big[300000] = '\0';
    n = gz(big, 300000, z, sizeof(z));
    snprintf(want, sizeof(want), "1:%.*s|", 20, big);
    {
        char  *out = malloc(400000);

        split(z, n, 1000, 400000, out, 400000);
        check(strlen(out) == 300002 && out[2] == '"'
              && out[300000] == 'x' && out[300001] == '|',
              "a 300 KB line out of gzip");

        split(z, n, 1000, 1000, out, 400000);
        check(strcmp(out, "1:TOO_LONG|") == 0,
              "a 300 KB gzip line over a 1000 byte limit");
        free(out);
    }

    n = gz(text, strlen(text), z, sizeof(z));
    {
        char  out[1024];

        check(split(z, n - 5, 0, 100, out, sizeof(out)) == -1
              && strstr(out, "truncated") != NULL, "truncated gzip fails");

        z[n / 2] ^= 0xff;
        z[n / 2 + 1] ^= 0xff;
        check(split(z, n, 0, 100, out, sizeof(out)) == -1
              && strstr(out, "gzip") != NULL, "corrupt gzip fails");

        n = gz(text, strlen(text), z, sizeof(z));
        memcpy(z + n, "junk", 4);
        check(split(z, n + 4, 0, 100, out, sizeof(out)) == -1
              && strstr(out, "not another gzip member") != NULL,
              "garbage after a gzip member fails");

        check(split(z, n + 4, 1, 100, out, sizeof(out)) == -1,
              "garbage after a gzip member fails, byte by byte");
    }

    /* a lone first byte 0x1f, then empty pieces, then the rest */
    {
        char          out[1024];
        size_t        i;
        const size_t  scheds[][4] = {
            { 1, 0, 0, 4096 }, { 1, 0, 1, 0 }, { 0, 1, 0, 2 }, { 1, 0, 0, 1 }
        };

        n = gz(text, strlen(text), z, sizeof(z));

        for (i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++) {
            split_pieces(z, n, scheds[i], 4, 100, out, sizeof(out));
            snprintf(want, sizeof(want), "gzip after a held 0x1f and empty "
                     "pieces (schedule %zu)", i);
            check(strcmp(out, "1:{\"a\":1}|3:{\"b\":2}|5:{\"c\":3}|") == 0,
                  want);
        }

        split_pieces((const unsigned char *) "\x1fx\nz", 4, scheds[0], 4,
                     100, out, sizeof(out));
        check(strcmp(out, "1:\x1fx|2:z|") == 0,
              "plain after a held 0x1f and empty pieces");
    }

    free(big);

    printf("1..%d\n%d passed, %d failed\n", passed + failed, passed, failed);

    return failed ? 1 : 0;
}
