
/*
 * ngx_bulk: PostgreSQL's binary COPY format (see ngx_bulk_pgcopy.h).
 *
 * The reader trusts nothing of its input: every length is checked against
 * the bytes left before it is used, so a truncated or hostile message is
 * refused and never read past.
 */


#include <string.h>

#include "ngx_bulk_pgcopy.h"


/* flags bits 16-31 mark format changes a reader must not ignore */
#define NGX_BULK_PGCOPY_CRITICAL  0xffff0000u


static uint32_t ngx_bulk_pgcopy_get32(const unsigned char *p);
static unsigned char *ngx_bulk_pgcopy_put32(unsigned char *p, uint32_t v);


static uint32_t
ngx_bulk_pgcopy_get32(const unsigned char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}


int
ngx_bulk_pgcopy_read(ngx_bulk_pgcopy_reader_t *rd, const unsigned char *data,
    size_t len, ngx_bulk_pgcopy_field_t *fields, size_t max, size_t *n)
{
    int32_t               flen;
    uint32_t              ext;
    const unsigned char  *p, *end;
    size_t                i, count;

    p = data;
    end = data + len;
    *n = 0;

    if (rd->trailer) {
        return -1;
    }

    if (!rd->header) {
        if (len < NGX_BULK_PGCOPY_HEADER_LEN
            || memcmp(p, NGX_BULK_PGCOPY_SIGNATURE,
                      NGX_BULK_PGCOPY_SIGNATURE_LEN) != 0
            || (ngx_bulk_pgcopy_get32(p + NGX_BULK_PGCOPY_SIGNATURE_LEN)
                & NGX_BULK_PGCOPY_CRITICAL))
        {
            return -1;
        }

        ext = ngx_bulk_pgcopy_get32(p + NGX_BULK_PGCOPY_HEADER_LEN
                                    - NGX_BULK_PGCOPY_LEN_LEN);

        if (ext > len - NGX_BULK_PGCOPY_HEADER_LEN) {
            return -1;
        }

        p += NGX_BULK_PGCOPY_HEADER_LEN + ext;
        rd->header = 1;

        if (p == end) {
            return 0;
        }
    }

    if (end - p < NGX_BULK_PGCOPY_COUNT_LEN) {
        return -1;
    }

    if (p[0] == 0xff && p[1] == 0xff) {
        if (end - p != NGX_BULK_PGCOPY_TRAILER_LEN) {
            return -1;
        }

        rd->trailer = 1;
        return 0;
    }

    count = ((size_t) p[0] << 8) | p[1];
    p += NGX_BULK_PGCOPY_COUNT_LEN;

    /* a count with the high bit set is negative: only -1 has a meaning */

    if (count > 0x7fff || count > max) {
        return -1;
    }

    for (i = 0; i < count; i++) {
        if (end - p < NGX_BULK_PGCOPY_LEN_LEN) {
            return -1;
        }

        flen = (int32_t) ngx_bulk_pgcopy_get32(p);
        p += NGX_BULK_PGCOPY_LEN_LEN;

        if (flen == NGX_BULK_PGCOPY_NULL) {
            fields[i].data = NULL;
            fields[i].len = NGX_BULK_PGCOPY_NULL;
            continue;
        }

        if (flen < 0 || flen > end - p) {
            return -1;
        }

        fields[i].data = p;
        fields[i].len = flen;
        p += flen;
    }

    if (p != end) {
        return -1;
    }

    *n = count;

    return 1;
}


unsigned char *
ngx_bulk_pgcopy_write_header(unsigned char *p)
{
    memcpy(p, NGX_BULK_PGCOPY_SIGNATURE, NGX_BULK_PGCOPY_SIGNATURE_LEN);
    p += NGX_BULK_PGCOPY_SIGNATURE_LEN;

    /* no flags, no header extension */

    memset(p, 0, NGX_BULK_PGCOPY_HEADER_LEN - NGX_BULK_PGCOPY_SIGNATURE_LEN);

    return p + NGX_BULK_PGCOPY_HEADER_LEN - NGX_BULK_PGCOPY_SIGNATURE_LEN;
}


unsigned char *
ngx_bulk_pgcopy_write_count(unsigned char *p, uint16_t n)
{
    *p++ = (unsigned char) (n >> 8);
    *p++ = (unsigned char) n;

    return p;
}


static unsigned char *
ngx_bulk_pgcopy_put32(unsigned char *p, uint32_t v)
{
    *p++ = (unsigned char) (v >> 24);
    *p++ = (unsigned char) (v >> 16);
    *p++ = (unsigned char) (v >> 8);
    *p++ = (unsigned char) v;

    return p;
}


unsigned char *
ngx_bulk_pgcopy_write_len(unsigned char *p, int32_t len)
{
    return ngx_bulk_pgcopy_put32(p, (uint32_t) len);
}


unsigned char *
ngx_bulk_pgcopy_write_field(unsigned char *p, const unsigned char *data,
    size_t len)
{
    p = ngx_bulk_pgcopy_write_len(p, (int32_t) len);

    if (len) {
        memcpy(p, data, len);
    }

    return p + len;
}


unsigned char *
ngx_bulk_pgcopy_write_int8(unsigned char *p, int64_t v)
{
    uint64_t  u;

    u = (uint64_t) v;

    p = ngx_bulk_pgcopy_put32(p, 8);
    p = ngx_bulk_pgcopy_put32(p, (uint32_t) (u >> 32));

    return ngx_bulk_pgcopy_put32(p, (uint32_t) u);
}


unsigned char *
ngx_bulk_pgcopy_write_trailer(unsigned char *p)
{
    return ngx_bulk_pgcopy_write_count(p, 0xffff);
}
