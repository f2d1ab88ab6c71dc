/*
 * Unit tests of ngx_bulk_pgcopy.c: binary COPY read and written, and every
 * truncated or altered message refused.  TAP output, then
 * "N passed, N failed".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ngx_bulk_pgcopy.h"


#define MAX_FIELDS  8


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


/* one message in memory of its exact size, so ASan sees any overread */

static int
read_msg(ngx_bulk_pgcopy_reader_t *rd, const unsigned char *msg, size_t len,
    ngx_bulk_pgcopy_field_t *f, size_t max, size_t *n)
{
    int             rc;
    unsigned char  *copy;

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, msg, len);
    rc = ngx_bulk_pgcopy_read(rd, copy, len, f, max, n);

    /* the fields point into the copy: compare them before it goes */

    if (rc == 1) {
        size_t  i;

        for (i = 0; i < *n; i++) {
            if (f[i].data) {
                f[i].data = msg + (f[i].data - copy);
            }
        }
    }

    free(copy);

    return rc;
}


static int
field_is(ngx_bulk_pgcopy_field_t *f, const char *s)
{
    if (s == NULL) {
        return f->data == NULL && f->len == NGX_BULK_PGCOPY_NULL;
    }

    return f->data != NULL && f->len == (int32_t) strlen(s)
           && memcmp(f->data, s, f->len) == 0;
}


/* a tuple of text fields (NULL: a NULL field) */

static size_t
tuple(unsigned char *p, const char **v, size_t nv)
{
    size_t          i;
    unsigned char  *start;

    start = p;
    p = ngx_bulk_pgcopy_write_count(p, (uint16_t) nv);

    for (i = 0; i < nv; i++) {
        if (v[i] == NULL) {
            p = ngx_bulk_pgcopy_write_len(p, NGX_BULK_PGCOPY_NULL);

        } else {
            p = ngx_bulk_pgcopy_write_field(p, (const unsigned char *) v[i],
                                            strlen(v[i]));
        }
    }

    return p - start;
}


static void
test_writer(void)
{
    unsigned char   buf[64], *p;
    static const unsigned char  header[] =
        "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const unsigned char  int8[] =
        { 0, 0, 0, 8, 0x80, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char  load[] = {
        0, 4,
        0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2,
        0, 0, 0, 7, 'P', 'a', 't', 'i', 'e', 'n', 't',
        0, 0, 0, 2, 'p', '1',
        0, 0, 0, 9
    };

    p = ngx_bulk_pgcopy_write_header(buf);
    check(p - buf == NGX_BULK_PGCOPY_HEADER_LEN
          && memcmp(buf, header, NGX_BULK_PGCOPY_HEADER_LEN) == 0,
          "the header: signature, no flags, no extension");

    p = ngx_bulk_pgcopy_write_trailer(buf);
    check(p - buf == 2 && buf[0] == 0xff && buf[1] == 0xff, "the trailer");

    p = ngx_bulk_pgcopy_write_int8(buf, INT64_MIN + 1);
    check(p - buf == NGX_BULK_PGCOPY_INT8_LEN
          && memcmp(buf, int8, sizeof(int8)) == 0, "an int8 field");

    /* the tuple $load stages: line number, type, id, document length */

    p = ngx_bulk_pgcopy_write_count(buf, 4);
    p = ngx_bulk_pgcopy_write_int8(p, (4LL << 32) / 4 + 2);
    p = ngx_bulk_pgcopy_write_field(p, (const unsigned char *) "Patient", 7);
    p = ngx_bulk_pgcopy_write_field(p, (const unsigned char *) "p1", 2);
    p = ngx_bulk_pgcopy_write_len(p, 9);
    check((size_t) (p - buf) == sizeof(load)
          && memcmp(buf, load, sizeof(load)) == 0,
          "a staging tuple, byte for byte");
}


static void
test_int8(void)
{
    size_t         i;
    unsigned char  buf[16];
    char           name[64];
    static const int64_t  v[] = {
        0, 1, -1, 670683811057462LL, INT64_MAX, INT64_MIN
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        (void) ngx_bulk_pgcopy_write_int8(buf, v[i]);
        snprintf(name, sizeof(name), "int8 %lld back", (long long) v[i]);
        check(ngx_bulk_pgcopy_int8(buf + NGX_BULK_PGCOPY_LEN_LEN) == v[i],
              name);
    }
}


static void
test_stream(void)
{
    int                        rc;
    size_t                     n, len;
    unsigned char              msg[256], *p;
    ngx_bulk_pgcopy_field_t    f[MAX_FIELDS];
    ngx_bulk_pgcopy_reader_t   rd;
    static const char         *row1[] = { "id-1", NULL, "", "{\"a\":1}" };
    static const char         *row2[] = { "x" };

    memset(&rd, 0, sizeof(rd));

    /* as PostgreSQL sends it: the header in front of the first tuple */

    p = ngx_bulk_pgcopy_write_header(msg);
    len = (p - msg) + tuple(p, row1, 4);

    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 1 && n == 4 && field_is(&f[0], "id-1")
          && field_is(&f[1], NULL) && field_is(&f[2], "")
          && field_is(&f[3], "{\"a\":1}"),
          "header and first tuple: four fields, NULL and empty apart");

    len = tuple(msg, row2, 1);
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 1 && n == 1 && field_is(&f[0], "x"), "a second tuple");

    len = ngx_bulk_pgcopy_write_count(msg, 0) - msg;
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 1 && n == 0, "a tuple of no fields");

    len = ngx_bulk_pgcopy_write_trailer(msg) - msg;
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 0 && rd.trailer, "the trailer");

    len = tuple(msg, row2, 1);
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == -1, "nothing after the trailer");

    /* the header alone, then the trailer: an empty result */

    memset(&rd, 0, sizeof(rd));
    len = ngx_bulk_pgcopy_write_header(msg) - msg;
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 0 && rd.header && !rd.trailer, "the header alone");

    memset(&rd, 0, sizeof(rd));
    p = ngx_bulk_pgcopy_write_header(msg);
    len = ngx_bulk_pgcopy_write_trailer(p) - msg;
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 0 && rd.trailer, "header and trailer: no rows");

    /* a tuple without a header is not a COPY stream */

    memset(&rd, 0, sizeof(rd));
    len = tuple(msg, row2, 1);
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == -1, "a tuple before the header");
}


/* every prefix of a good message is refused, or read as the header alone */

static void
test_truncated(void)
{
    int                        rc, bad;
    size_t                     n, len, cut, hdr;
    unsigned char              msg[256], *p;
    ngx_bulk_pgcopy_field_t    f[MAX_FIELDS];
    ngx_bulk_pgcopy_reader_t   rd;
    static const char         *row[] = { "abc", NULL, "0123456789" };

    p = ngx_bulk_pgcopy_write_header(msg);
    hdr = p - msg;
    len = hdr + tuple(p, row, 3);

    bad = 0;

    for (cut = 0; cut < len; cut++) {
        memset(&rd, 0, sizeof(rd));
        rc = read_msg(&rd, msg, cut, f, MAX_FIELDS, &n);

        if (rc != (cut == hdr ? 0 : -1)) {
            printf("# first message cut at %zu: %d\n", cut, rc);
            bad++;
        }
    }

    check(bad == 0, "every cut of the first message");

    bad = 0;

    for (cut = 0; cut < len - hdr; cut++) {
        memset(&rd, 0, sizeof(rd));
        rd.header = 1;
        rc = read_msg(&rd, msg + hdr, cut, f, MAX_FIELDS, &n);

        if (rc != -1) {
            printf("# tuple cut at %zu: %d\n", cut, rc);
            bad++;
        }
    }

    check(bad == 0, "every cut of a tuple");

    memset(&rd, 0, sizeof(rd));
    rd.header = 1;
    msg[len] = 0;
    rc = read_msg(&rd, msg + hdr, len - hdr + 1, f, MAX_FIELDS, &n);
    check(rc == -1, "a byte after the tuple");

    memset(&rd, 0, sizeof(rd));
    rd.header = 1;
    p = ngx_bulk_pgcopy_write_trailer(msg);
    *p = 0;
    rc = read_msg(&rd, msg, 3, f, MAX_FIELDS, &n);
    check(rc == -1 && !rd.trailer, "a byte after the trailer");

    memset(&rd, 0, sizeof(rd));
    rd.header = 1;
    rc = read_msg(&rd, msg, 1, f, MAX_FIELDS, &n);
    check(rc == -1, "half a trailer");
}


static void
test_header(void)
{
    int                        rc, bad;
    size_t                     i, n, len;
    unsigned char              msg[256], *p;
    ngx_bulk_pgcopy_field_t    f[MAX_FIELDS];
    ngx_bulk_pgcopy_reader_t   rd;
    static const char         *row[] = { "v" };

    bad = 0;

    for (i = 0; i < NGX_BULK_PGCOPY_SIGNATURE_LEN; i++) {
        p = ngx_bulk_pgcopy_write_header(msg);
        len = (p - msg) + tuple(p, row, 1);
        msg[i] ^= 0x20;

        memset(&rd, 0, sizeof(rd));

        if (read_msg(&rd, msg, len, f, MAX_FIELDS, &n) != -1) {
            bad++;
        }
    }

    check(bad == 0, "each byte of the signature matters");

    /* flags: bit 16 (OIDs) and up are critical, bits 0-15 are not */

    p = ngx_bulk_pgcopy_write_header(msg);
    len = (p - msg) + tuple(p, row, 1);
    msg[12] = 0x01;
    memset(&rd, 0, sizeof(rd));
    check(read_msg(&rd, msg, len, f, MAX_FIELDS, &n) == -1,
          "a critical flag (OIDs) is refused");

    msg[12] = 0;
    msg[14] = 0x01;
    memset(&rd, 0, sizeof(rd));
    check(read_msg(&rd, msg, len, f, MAX_FIELDS, &n) == 1,
          "a flag in the low half is ignored");

    /* a header extension is skipped */

    p = ngx_bulk_pgcopy_write_header(msg);
    p[-1] = 5;
    memcpy(p, "\1\2\3\4\5", 5);
    p += 5;
    len = (p - msg) + tuple(p, row, 1);
    memset(&rd, 0, sizeof(rd));
    rc = read_msg(&rd, msg, len, f, MAX_FIELDS, &n);
    check(rc == 1 && n == 1 && field_is(&f[0], "v"),
          "a header extension is skipped");

    memset(&rd, 0, sizeof(rd));
    check(read_msg(&rd, msg, NGX_BULK_PGCOPY_HEADER_LEN + 4, f, MAX_FIELDS,
                   &n) == -1,
          "an extension longer than the message");

    p = ngx_bulk_pgcopy_write_header(msg);
    memset(p - 4, 0xff, 4);
    memset(&rd, 0, sizeof(rd));
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == -1,
          "an extension length of 2^32 - 1");
}


static void
test_fields(void)
{
    size_t                     n, len;
    unsigned char              msg[256], *p;
    ngx_bulk_pgcopy_field_t    f[MAX_FIELDS];
    ngx_bulk_pgcopy_reader_t   rd;
    static const char         *row[] = { "1", "2", "3", "4" };

    memset(&rd, 0, sizeof(rd));
    rd.header = 1;

    len = tuple(msg, row, 4);
    check(read_msg(&rd, msg, len, f, 4, &n) == 1 && n == 4,
          "as many fields as allowed");
    check(read_msg(&rd, msg, len, f, 3, &n) == -1,
          "more fields than allowed");
    check(read_msg(&rd, msg, len, NULL, 0, &n) == -1,
          "no field allowed");

    p = ngx_bulk_pgcopy_write_count(msg, 0x8000);
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == -1,
          "a negative field count");

    p = ngx_bulk_pgcopy_write_count(msg, 0xfffe);
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == -1,
          "a field count of -2");

    p = ngx_bulk_pgcopy_write_count(msg, 1);
    p = ngx_bulk_pgcopy_write_len(p, -2);
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == -1,
          "a field length of -2");

    p = ngx_bulk_pgcopy_write_count(msg, 1);
    p = ngx_bulk_pgcopy_write_len(p, INT32_MIN);
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == -1,
          "a field length of -2^31");

    p = ngx_bulk_pgcopy_write_count(msg, 1);
    p = ngx_bulk_pgcopy_write_len(p, INT32_MAX);
    memset(p, 'x', 16);
    check(read_msg(&rd, msg, p - msg + 16, f, MAX_FIELDS, &n) == -1,
          "a field longer than the message");

    p = ngx_bulk_pgcopy_write_count(msg, 2);
    p = ngx_bulk_pgcopy_write_len(p, NGX_BULK_PGCOPY_NULL);
    p = ngx_bulk_pgcopy_write_len(p, NGX_BULK_PGCOPY_NULL);
    check(read_msg(&rd, msg, p - msg, f, MAX_FIELDS, &n) == 1 && n == 2
          && field_is(&f[0], NULL) && field_is(&f[1], NULL),
          "NULL fields take no bytes");
}


int
main(void)
{
    test_writer();
    test_int8();
    test_stream();
    test_truncated();
    test_header();
    test_fields();

    printf("1..%d\n%d passed, %d failed\n", passed + failed, passed, failed);

    return failed ? 1 : 0;
}
