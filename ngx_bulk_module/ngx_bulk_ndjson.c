
/*
 * ngx_bulk: NDJSON line splitter with gzip sniffing in front.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "ngx_bulk_ndjson.h"


#define NGX_BULK_ND_WINDOW  65536


typedef enum {
    ngx_bulk_nd_detect = 0,
    ngx_bulk_nd_plain,
    ngx_bulk_nd_inflate,
    ngx_bulk_nd_member_end,
    ngx_bulk_nd_failed
} ngx_bulk_nd_mode_e;


struct ngx_bulk_nd_s {
    size_t                line_max;
    ngx_bulk_nd_mode_e    mode;

    const unsigned char  *in;
    size_t                in_len;

    unsigned char         pre[2];     /* bytes held back while sniffing */
    size_t                pre_len;

    z_stream              z;
    int                   z_inited;
    int                   gzip;
    unsigned char        *win;
    size_t                win_pos;
    size_t                win_last;

    unsigned char        *line;       /* a line spanning pieces */
    size_t                line_len;
    size_t                line_cap;
    int                   skipping;   /* the current line is too long */

    uint64_t              lineno;
    uint64_t              bytes;
    char                  err[128];
};


static int ngx_bulk_nd_append(ngx_bulk_nd_t *nd, const unsigned char *p,
    size_t n);
static int ngx_bulk_nd_scan(ngx_bulk_nd_t *nd, const unsigned char **p,
    const unsigned char *end, ngx_bulk_nd_line_t *l);
static int ngx_bulk_nd_window(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l);
static int ngx_bulk_nd_sniff(ngx_bulk_nd_t *nd);
static int ngx_bulk_nd_inflate_more(ngx_bulk_nd_t *nd);
static int ngx_bulk_nd_fail(ngx_bulk_nd_t *nd, const char *msg);
static int ngx_bulk_nd_bom(ngx_bulk_nd_t *nd, const unsigned char *data,
    size_t n);


ngx_bulk_nd_t *
ngx_bulk_nd_create(size_t line_max)
{
    ngx_bulk_nd_t  *nd;

    nd = calloc(1, sizeof(ngx_bulk_nd_t));
    if (nd == NULL) {
        return NULL;
    }

    nd->line_max = line_max;

    return nd;
}


void
ngx_bulk_nd_destroy(ngx_bulk_nd_t *nd)
{
    if (nd == NULL) {
        return;
    }

    if (nd->z_inited) {
        inflateEnd(&nd->z);
    }

    free(nd->win);
    free(nd->line);
    free(nd);
}


void
ngx_bulk_nd_input(ngx_bulk_nd_t *nd, const unsigned char *data, size_t len)
{
    nd->in = data;
    nd->in_len = len;
}


size_t
ngx_bulk_nd_pending(ngx_bulk_nd_t *nd)
{
    return nd->in_len;
}


const char *
ngx_bulk_nd_error(ngx_bulk_nd_t *nd)
{
    return nd->err;
}


uint64_t
ngx_bulk_nd_bytes(ngx_bulk_nd_t *nd)
{
    return nd->bytes;
}


int
ngx_bulk_nd_gzip(ngx_bulk_nd_t *nd)
{
    return nd->gzip;
}


static int
ngx_bulk_nd_fail(ngx_bulk_nd_t *nd, const char *msg)
{
    snprintf(nd->err, sizeof(nd->err), "%s", msg);
    nd->mode = ngx_bulk_nd_failed;

    return -1;
}


/* adds to the line that spans pieces; past line_max the line is skipped */

static int
ngx_bulk_nd_append(ngx_bulk_nd_t *nd, const unsigned char *p, size_t n)
{
    size_t          cap;
    unsigned char  *line;

    if (nd->skipping || n == 0) {
        return 0;
    }

    if (nd->line_len + n > nd->line_max + 1) {
        /* one byte of slack keeps a "\r" before the newline */
        nd->skipping = 1;
        nd->line_len = 0;
        return 0;
    }

    if (nd->line_len + n > nd->line_cap) {
        cap = nd->line_cap ? nd->line_cap : 4096;

        while (cap < nd->line_len + n) {
            cap *= 2;
        }

        line = realloc(nd->line, cap);
        if (line == NULL) {
            return -1;
        }

        nd->line = line;
        nd->line_cap = cap;
    }

    memcpy(nd->line + nd->line_len, p, n);
    nd->line_len += n;

    return 0;
}


/*
 * 1 when the first line starts with a UTF-8 byte order mark, which some
 * Windows tools write: RFC 8259 lets a parser ignore it, and JSON has no
 * use for it
 */

static int
ngx_bulk_nd_bom(ngx_bulk_nd_t *nd, const unsigned char *data, size_t n)
{
    return nd->lineno == 1 && n >= 3
           && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf;
}


/* 1: a line in l; 0: the bytes up to end are used up */

static int
ngx_bulk_nd_scan(ngx_bulk_nd_t *nd, const unsigned char **p,
    const unsigned char *end, ngx_bulk_nd_line_t *l)
{
    size_t                n;
    const unsigned char  *q, *data;

    while (*p < end) {
        q = memchr(*p, '\n', end - *p);

        if (q == NULL) {
            if (ngx_bulk_nd_append(nd, *p, end - *p) != 0) {
                return ngx_bulk_nd_fail(nd, "out of memory");
            }

            *p = end;
            return 0;
        }

        nd->lineno++;
        n = q - *p;

        if (nd->skipping) {
            data = NULL;

        } else if (nd->line_len == 0) {
            data = *p;

        } else {
            if (ngx_bulk_nd_append(nd, *p, n) != 0) {
                return ngx_bulk_nd_fail(nd, "out of memory");
            }

            data = nd->skipping ? NULL : nd->line;
            n = nd->line_len;
        }

        *p = q + 1;
        nd->line_len = 0;

        if (data && n && data[n - 1] == '\r') {
            n--;
        }

        if (data && ngx_bulk_nd_bom(nd, data, n)) {
            data += 3;
            n -= 3;
        }

        if (data == NULL || n > nd->line_max) {
            nd->skipping = 0;
            l->data = NULL;
            l->len = 0;
            l->lineno = nd->lineno;
            l->too_long = 1;
            return 1;
        }

        if (n == 0) {
            continue;
        }

        l->data = data;
        l->len = n;
        l->lineno = nd->lineno;
        l->too_long = 0;

        return 1;
    }

    return 0;
}


/*
 * Looks at the first two bytes of the source, or of what follows a gzip
 * member: 1: decided, 0: more input needed, -1: error.
 */

static int
ngx_bulk_nd_sniff(ngx_bulk_nd_t *nd)
{
    unsigned char  b0, b1;

    if (nd->pre_len + nd->in_len == 0) {
        return 0;
    }

    b0 = nd->pre_len ? nd->pre[0] : nd->in[0];

    if (b0 == 0x1f) {
        if (nd->pre_len + nd->in_len < 2) {
            /* one byte so far: hold it (it may be the only byte of this
               piece, or the next piece may be empty) until a second one */

            if (nd->in_len) {
                nd->pre[nd->pre_len++] = nd->in[0];
                nd->in++;
                nd->in_len--;
            }

            return 0;
        }

        b1 = (nd->pre_len == 2) ? nd->pre[1]
             : (nd->pre_len == 1) ? nd->in[0] : nd->in[1];

        if (b1 == 0x8b) {
            if (!nd->z_inited) {
                if (inflateInit2(&nd->z, 16 + MAX_WBITS) != Z_OK) {
                    return ngx_bulk_nd_fail(nd, "inflateInit2() failed");
                }

                nd->z_inited = 1;

                nd->win = malloc(NGX_BULK_ND_WINDOW);
                if (nd->win == NULL) {
                    return ngx_bulk_nd_fail(nd, "out of memory");
                }

            } else if (inflateReset(&nd->z) != Z_OK) {
                return ngx_bulk_nd_fail(nd, "inflateReset() failed");
            }

            nd->gzip = 1;
            nd->mode = ngx_bulk_nd_inflate;
            return 1;
        }
    }

    if (nd->mode == ngx_bulk_nd_member_end) {
        return ngx_bulk_nd_fail(nd, "gzip: data after the end of a member "
                                    "is not another gzip member");
    }

    nd->mode = ngx_bulk_nd_plain;

    return 1;
}


/* 1: the window has new bytes; 0: more input needed; -1: error */

static int
ngx_bulk_nd_inflate_more(ngx_bulk_nd_t *nd)
{
    int       rc;
    size_t    used;
    z_stream  *z;

    z = &nd->z;

    nd->win_pos = 0;
    nd->win_last = 0;

    while (nd->win_last == 0) {

        if (nd->pre_len) {
            z->next_in = nd->pre;
            z->avail_in = nd->pre_len;

        } else if (nd->in_len) {
            z->next_in = (unsigned char *) nd->in;
            z->avail_in = nd->in_len;

        } else {
            return 0;
        }

        z->next_out = nd->win;
        z->avail_out = NGX_BULK_ND_WINDOW;

        rc = inflate(z, Z_NO_FLUSH);

        used = (nd->pre_len ? nd->pre_len : nd->in_len) - z->avail_in;

        if (nd->pre_len) {
            /* the header's first bytes always go in whole */
            nd->pre_len = 0;

        } else {
            nd->in += used;
            nd->in_len -= used;
        }

        nd->win_last = NGX_BULK_ND_WINDOW - z->avail_out;
        nd->bytes += nd->win_last;

        if (rc == Z_STREAM_END) {
            nd->mode = ngx_bulk_nd_member_end;
            return nd->win_last ? 1 : 0;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(nd->err, sizeof(nd->err), "gzip: %s",
                     z->msg ? z->msg : "corrupt data");
            nd->mode = ngx_bulk_nd_failed;
            return -1;
        }

        if (nd->win_last == 0 && used == 0 && nd->pre_len == 0) {
            /* no progress: the input is used up */
            return 0;
        }
    }

    return 1;
}


/* lines left in the inflate window: as ngx_bulk_nd_scan(), 0 when none */

static int
ngx_bulk_nd_window(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l)
{
    int                   rc;
    const unsigned char  *p;

    if (nd->win_pos >= nd->win_last) {
        return 0;
    }

    p = nd->win + nd->win_pos;
    rc = ngx_bulk_nd_scan(nd, &p, nd->win + nd->win_last, l);
    nd->win_pos = p - nd->win;

    return rc;
}


int
ngx_bulk_nd_next(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l)
{
    int                   rc;
    const unsigned char  *p;

    for ( ;; ) {

        switch (nd->mode) {

        case ngx_bulk_nd_detect:
        case ngx_bulk_nd_member_end:

            /* the end of the previous member's window first */

            rc = ngx_bulk_nd_window(nd, l);
            if (rc != 0) {
                return rc;
            }

            rc = ngx_bulk_nd_sniff(nd);
            if (rc <= 0) {
                return rc;
            }

            continue;

        case ngx_bulk_nd_plain:

            if (nd->pre_len) {
                if (ngx_bulk_nd_append(nd, nd->pre, nd->pre_len) != 0) {
                    return ngx_bulk_nd_fail(nd, "out of memory");
                }

                nd->bytes += nd->pre_len;
                nd->pre_len = 0;
            }

            p = nd->in;
            rc = ngx_bulk_nd_scan(nd, &p, nd->in + nd->in_len, l);
            nd->bytes += p - nd->in;
            nd->in_len -= p - nd->in;
            nd->in = p;

            return rc;

        case ngx_bulk_nd_inflate:

            rc = ngx_bulk_nd_window(nd, l);
            if (rc != 0) {
                return rc;
            }

            rc = ngx_bulk_nd_inflate_more(nd);
            if (rc <= 0) {
                if (rc == 0 && nd->mode == ngx_bulk_nd_member_end) {
                    continue;
                }

                return rc;
            }

            continue;

        default:
            return -1;
        }
    }
}


int
ngx_bulk_nd_end(ngx_bulk_nd_t *nd, ngx_bulk_nd_line_t *l)
{
    size_t  n;

    switch (nd->mode) {

    case ngx_bulk_nd_failed:
        return -1;

    case ngx_bulk_nd_inflate:
        return ngx_bulk_nd_fail(nd, "gzip: the data ends in the middle of "
                                    "a member (truncated)");

    case ngx_bulk_nd_detect:
        if (nd->pre_len) {
            /* a source of one byte */
            if (ngx_bulk_nd_append(nd, nd->pre, nd->pre_len) != 0) {
                return ngx_bulk_nd_fail(nd, "out of memory");
            }

            nd->bytes += nd->pre_len;
            nd->pre_len = 0;
        }
        break;

    default:
        break;
    }

    if (nd->line_len == 0 && !nd->skipping) {
        return 0;
    }

    nd->lineno++;
    n = nd->line_len;
    nd->line_len = 0;

    if (nd->skipping || n > nd->line_max) {
        nd->skipping = 0;
        l->data = NULL;
        l->len = 0;
        l->lineno = nd->lineno;
        l->too_long = 1;
        return 1;
    }

    if (n && nd->line[n - 1] == '\r') {
        n--;
    }

    l->data = nd->line;

    if (ngx_bulk_nd_bom(nd, nd->line, n)) {
        l->data += 3;
        n -= 3;
    }

    if (n == 0) {
        return 0;
    }

    l->len = n;
    l->lineno = nd->lineno;
    l->too_long = 0;

    return 1;
}
