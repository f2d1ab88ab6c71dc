
/*
 * ngx_bulk: a minimal scanner over the members of a JSON object's text.
 */


#include <stdint.h>
#include <string.h>
#include "ngx_bulk_json.h"


static const unsigned char *ngx_bulk_json_ws(const unsigned char *p,
    const unsigned char *end);
static const unsigned char *ngx_bulk_json_string(const unsigned char *p,
    const unsigned char *end);
static const unsigned char *ngx_bulk_json_value(const unsigned char *p,
    const unsigned char *end);


static const unsigned char *
ngx_bulk_json_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    return p;
}


/* p at the opening quote; returns one past the closing quote or NULL */

static const unsigned char *
ngx_bulk_json_string(const unsigned char *p, const unsigned char *end)
{
    const unsigned char  *start, *q, *b;

    start = ++p;

    for ( ;; ) {
        q = memchr(p, '"', end - p);
        if (q == NULL) {
            return NULL;
        }

        /* the quote is escaped when an odd number of backslashes precede */

        b = q;

        while (b > start && b[-1] == '\\') {
            b--;
        }

        if (((q - b) & 1) == 0) {
            return q + 1;
        }

        p = q + 1;
    }
}


static const unsigned char *
ngx_bulk_json_value(const unsigned char *p, const unsigned char *end)
{
    size_t  depth;

    if (p == end) {
        return NULL;
    }

    if (*p == '"') {
        return ngx_bulk_json_string(p, end);
    }

    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']'
               && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        {
            p++;
        }

        return p;
    }

    depth = 0;

    while (p < end) {
        switch (*p) {

        case '"':
            p = ngx_bulk_json_string(p, end);
            if (p == NULL) {
                return NULL;
            }
            continue;

        case '{':
        case '[':
            depth++;
            break;

        case '}':
        case ']':
            if (--depth == 0) {
                return p + 1;
            }
            break;
        }

        p++;
    }

    return NULL;
}


int
ngx_bulk_json_open(const unsigned char **p, const unsigned char *end)
{
    const unsigned char  *q;

    q = ngx_bulk_json_ws(*p, end);

    if (q == end || *q != '{') {
        return -1;
    }

    *p = q + 1;

    return 0;
}


int
ngx_bulk_json_next(const unsigned char **p, const unsigned char *end,
    ngx_bulk_member_t *m)
{
    const unsigned char  *q;

    q = ngx_bulk_json_ws(*p, end);

    if (q < end && *q == ',') {
        q = ngx_bulk_json_ws(q + 1, end);
    }

    if (q == end) {
        return -1;
    }

    if (*q == '}') {
        *p = q + 1;
        return 0;
    }

    if (*q != '"') {
        return -1;
    }

    m->start = q;
    m->key = q + 1;

    q = ngx_bulk_json_string(q, end);
    if (q == NULL) {
        return -1;
    }

    m->key_len = q - 1 - m->key;

    q = ngx_bulk_json_ws(q, end);
    if (q == end || *q != ':') {
        return -1;
    }

    q = ngx_bulk_json_ws(q + 1, end);

    m->value = q;

    q = ngx_bulk_json_value(q, end);
    if (q == NULL || q == m->value) {
        return -1;
    }

    m->end = q;
    *p = q;

    return 1;
}


size_t
ngx_bulk_json_escape(unsigned char *out, const unsigned char *s, size_t len)
{
    unsigned char         c, *o;
    const unsigned char  *end;
    static const char     hex[] = "0123456789abcdef";

    o = out;

    for (end = s + len; s < end; s++) {
        c = *s;

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;

        } else if (c < 0x20) {
            *o++ = '\\';

            switch (c) {
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0xf];
            }

        } else {
            *o++ = c;
        }
    }

    return o - out;
}


/*
 * The length of the strict UTF-8 (RFC 3629) sequence at p, 0 when there
 * is none: no overlong forms, no surrogates, nothing past U+10FFFF, which
 * PostgreSQL refuses.  The one set of rules of the functions below.
 */

static size_t
ngx_bulk_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char  c, c1;

    c = *p;

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        return (end - p >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (end - p < 3) {
            return 0;
        }

        c1 = p[1];

        return ((c1 & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80
                && !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 > 0x9f))
               ? 3 : 0;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (end - p < 4) {
            return 0;
        }

        c1 = p[1];

        return ((c1 & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80
                && (p[3] & 0xc0) == 0x80
                && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 > 0x8f))
               ? 4 : 0;
    }

    return 0;
}


/* ASCII runs are skipped 8 bytes at a time */

int
ngx_bulk_utf8_valid(const unsigned char *p, size_t len)
{
    size_t                n;
    uint64_t              w;
    const unsigned char  *end;

    end = p + len;

    while (p < end) {

        while (end - p >= 8) {
            memcpy(&w, p, 8);

            if (w & UINT64_C(0x8080808080808080)) {
                break;
            }

            p += 8;
        }

        if (p == end) {
            break;
        }

        n = ngx_bulk_utf8_seq(p, end);

        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


void
ngx_bulk_utf8_fix(unsigned char *p, size_t len)
{
    size_t                n;
    const unsigned char  *end;

    end = p + len;

    while (p < end) {
        n = ngx_bulk_utf8_seq(p, end);

        if (n == 0) {
            *p++ = '?';
            continue;
        }

        p += n;
    }
}


size_t
ngx_bulk_utf8_cut(const unsigned char *p, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }

    /* p[max] continues a character: that character goes whole */

    while (max > 0 && (p[max] & 0xc0) == 0x80) {
        max--;
    }

    return max;
}
