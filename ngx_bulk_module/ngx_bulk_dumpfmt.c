
/*
 * ngx_bulk: the text of the elastic-bulk and sql formats of $dump-sql.
 */


#include <string.h>
#include "ngx_bulk_dumpfmt.h"
#include "ngx_bulk_json.h"


static int ngx_bulk_es_upper(unsigned long c);
static size_t ngx_bulk_sql_encoding(unsigned char *out, const char *enc);


/* a capital letter: lower-casing it (Locale.ROOT) would change the name */

static int
ngx_bulk_es_upper(unsigned long c)
{
    if (c < 0x80) {
        return c >= 'A' && c <= 'Z';
    }

    /* Latin-1 */

    if (c >= 0xc0 && c <= 0xde) {
        return c != 0xd7;
    }

    /* Latin Extended-A: pairs, the capital first or second */

    if (c >= 0x100 && c <= 0x137) {
        return (c & 1) == 0;
    }

    if (c >= 0x139 && c <= 0x148) {
        return c & 1;
    }

    if (c >= 0x14a && c <= 0x177) {
        return (c & 1) == 0;
    }

    if (c == 0x178) {
        return 1;
    }

    if (c >= 0x179 && c <= 0x17e) {
        return c & 1;
    }

    /* Greek */

    if (c == 0x386 || (c >= 0x388 && c <= 0x38a) || c == 0x38c
        || c == 0x38e || c == 0x38f
        || (c >= 0x391 && c <= 0x3ab && c != 0x3a2))
    {
        return 1;
    }

    /* Cyrillic */

    if (c >= 0x400 && c <= 0x42f) {
        return 1;
    }

    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf)
        || (c >= 0x4d0 && c <= 0x52f))
    {
        return (c & 1) == 0;
    }

    if (c == 0x4c0) {
        return 1;
    }

    if (c >= 0x4c1 && c <= 0x4ce) {
        return c & 1;
    }

    /* Armenian */

    if (c >= 0x531 && c <= 0x556) {
        return 1;
    }

    /* Latin Extended Additional */

    if ((c >= 0x1e00 && c <= 0x1e95) || (c >= 0x1ea0 && c <= 0x1eff)) {
        return (c & 1) == 0;
    }

    /* full-width Latin */

    return c >= 0xff21 && c <= 0xff3a;
}


const char *
ngx_bulk_es_index_invalid(const unsigned char *name, size_t len)
{
    unsigned long         c;
    const unsigned char  *p, *end;

    if (len == 0) {
        return "must not be empty";
    }

    if (len > NGX_BULK_ES_INDEX_MAX) {
        return "must not be longer than 255 bytes";
    }

    if (!ngx_bulk_utf8_valid(name, len)) {
        return "must be UTF-8";
    }

    if (name[0] == '-' || name[0] == '_' || name[0] == '+') {
        return "must not start with '-', '_' or '+'";
    }

    if ((len == 1 && name[0] == '.')
        || (len == 2 && name[0] == '.' && name[1] == '.'))
    {
        return "must not be \".\" or \"..\"";
    }

    p = name;
    end = name + len;

    while (p < end) {
        c = *p;

        if (c < 0x80) {
            p++;

            if (c < 0x20 || c == 0x7f) {
                return "must not contain control characters";
            }

            if (strchr("\\/*?\"<>|,#: ", (int) c) != NULL) {
                return "must not contain \\ / * ? \" < > | , # : or a "
                       "space";
            }

        } else if (c < 0xe0) {
            c = ((c & 0x1f) << 6) | (p[1] & 0x3f);
            p += 2;

        } else if (c < 0xf0) {
            c = ((c & 0x0f) << 12) | ((p[1] & 0x3f) << 6) | (p[2] & 0x3f);
            p += 3;

        } else {
            /* no capital letters of the scripts checked out there */
            p += 4;
            continue;
        }

        if (ngx_bulk_es_upper(c)) {
            return "must be lowercase";
        }
    }

    return NULL;
}


int
ngx_bulk_es_id(const unsigned char *row, size_t len, ngx_bulk_es_id_t *id)
{
    int                   rc;
    const unsigned char  *p, *end;
    ngx_bulk_member_t     m;

    p = row;
    end = row + len;

    if (ngx_bulk_json_open(&p, end) != 0) {
        return -1;
    }

    for ( ;; ) {
        rc = ngx_bulk_json_next(&p, end, &m);

        if (rc <= 0) {
            return rc;
        }

        if (m.key_len == 2 && m.key[0] == 'i' && m.key[1] == 'd') {
            break;
        }
    }

    switch (m.value[0]) {

    case '"':
        id->data = m.value + 1;
        id->len = m.end - m.value - 2;
        id->escape = 0;
        return 1;

    case '{':
    case '[':
        id->data = m.value;
        id->len = m.end - m.value;
        id->escape = 1;
        return 1;

    case 'n':
        return 0;

    default:
        id->data = m.value;
        id->len = m.end - m.value;
        id->escape = 0;
        return 1;
    }
}


#define NGX_BULK_ES_HEAD  "{\"index\":{\"_index\":\""
#define NGX_BULK_ES_ID    "\",\"_id\":\""
#define NGX_BULK_ES_TAIL  "\"}}\n"


size_t
ngx_bulk_es_action(unsigned char *out, size_t size,
    const unsigned char *index, size_t index_len, const ngx_bulk_es_id_t *id)
{
    size_t          len;
    unsigned char  *p;

    len = sizeof(NGX_BULK_ES_HEAD) - 1 + index_len
          + sizeof(NGX_BULK_ES_TAIL) - 1;

    if (id) {
        len += sizeof(NGX_BULK_ES_ID) - 1
               + (id->escape ? 6 * id->len : id->len);
    }

    if (len > size) {
        return len;
    }

    p = out;

    memcpy(p, NGX_BULK_ES_HEAD, sizeof(NGX_BULK_ES_HEAD) - 1);
    p += sizeof(NGX_BULK_ES_HEAD) - 1;

    memcpy(p, index, index_len);
    p += index_len;

    if (id) {
        memcpy(p, NGX_BULK_ES_ID, sizeof(NGX_BULK_ES_ID) - 1);
        p += sizeof(NGX_BULK_ES_ID) - 1;

        if (id->escape) {
            p += ngx_bulk_json_escape(p, id->data, id->len);

        } else {
            memcpy(p, id->data, id->len);
            p += id->len;
        }
    }

    memcpy(p, NGX_BULK_ES_TAIL, sizeof(NGX_BULK_ES_TAIL) - 1);
    p += sizeof(NGX_BULK_ES_TAIL) - 1;

    return p - out;
}


size_t
ngx_bulk_sql_ident(unsigned char *out, const unsigned char *s, size_t len)
{
    unsigned char        *p;
    const unsigned char  *end;

    p = out;
    *p++ = '"';

    for (end = s + len; s < end; s++) {
        if (*s == '"') {
            *p++ = '"';
        }

        *p++ = *s;
    }

    *p++ = '"';

    return p - out;
}


long
ngx_bulk_sql_duplicate(const ngx_bulk_sql_column_t *cols, size_t n)
{
    size_t  i, j;

    for (i = 1; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (cols[i].name_len == cols[j].name_len
                && memcmp(cols[i].name, cols[j].name, cols[i].name_len) == 0)
            {
                return (long) i;
            }
        }
    }

    return -1;
}


#define NGX_BULK_SQL_ENC1  "SET client_encoding = '"
#define NGX_BULK_SQL_ENC2  "';\n"
#define NGX_BULK_SQL_SCS   "SET standard_conforming_strings = on;\n"
#define NGX_BULK_SQL_CT    "CREATE TABLE "
#define NGX_BULK_SQL_OPEN  " (\n"
#define NGX_BULK_SQL_COL   "    "
#define NGX_BULK_SQL_CLOSE ");\n"
#define NGX_BULK_SQL_COPY  "COPY "
#define NGX_BULK_SQL_FROM  " FROM stdin;\n"


/* the SET client_encoding line of a plain encoding name, else nothing */

static size_t
ngx_bulk_sql_encoding(unsigned char *out, const char *enc)
{
    size_t          len;
    const char     *s;
    unsigned char  *p;

    if (enc == NULL || *enc == '\0') {
        return 0;
    }

    for (s = enc; *s; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
              || (*s >= '0' && *s <= '9') || *s == '_'))
        {
            return 0;
        }
    }

    len = s - enc;

    if (out == NULL) {
        return sizeof(NGX_BULK_SQL_ENC1) - 1 + len
               + sizeof(NGX_BULK_SQL_ENC2) - 1;
    }

    p = out;
    memcpy(p, NGX_BULK_SQL_ENC1, sizeof(NGX_BULK_SQL_ENC1) - 1);
    p += sizeof(NGX_BULK_SQL_ENC1) - 1;
    memcpy(p, enc, len);
    p += len;
    memcpy(p, NGX_BULK_SQL_ENC2, sizeof(NGX_BULK_SQL_ENC2) - 1);
    p += sizeof(NGX_BULK_SQL_ENC2) - 1;

    return p - out;
}


#define ngx_bulk_sql_cpy(p, s)                                               \
    (memcpy(p, s, sizeof(s) - 1), (p) + sizeof(s) - 1)


size_t
ngx_bulk_sql_head(unsigned char *out, size_t size, const char *encoding,
    const unsigned char *table, size_t table_len,
    const ngx_bulk_sql_column_t *cols, size_t n)
{
    size_t          i, len, names;
    unsigned char  *p;

    /* the quoted names, each at most twice as long and its quotes */

    names = 0;

    for (i = 0; i < n; i++) {
        names += 2 * cols[i].name_len + 2;
    }

    len = ngx_bulk_sql_encoding(NULL, encoding)
          + sizeof(NGX_BULK_SQL_SCS) - 1
          + 2 * (2 * table_len + 2)
          + sizeof(NGX_BULK_SQL_CT) - 1 + sizeof(NGX_BULK_SQL_OPEN) - 1
          + names + sizeof(NGX_BULK_SQL_CLOSE) - 1
          + sizeof(NGX_BULK_SQL_COPY) - 1 + sizeof(NGX_BULK_SQL_FROM) - 1
          + names + 3;                  /* " (" and ")" */

    for (i = 0; i < n; i++) {
        len += sizeof(NGX_BULK_SQL_COL) - 1 + 1 + cols[i].type_len + 2
               + 2;                     /* ", " */
    }

    if (len > size) {
        return len;
    }

    p = out;

    p += ngx_bulk_sql_encoding(p, encoding);
    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_SCS);

    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_CT);
    p += ngx_bulk_sql_ident(p, table, table_len);
    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_OPEN);

    for (i = 0; i < n; i++) {
        p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_COL);
        p += ngx_bulk_sql_ident(p, cols[i].name, cols[i].name_len);
        *p++ = ' ';
        memcpy(p, cols[i].type, cols[i].type_len);
        p += cols[i].type_len;

        if (i + 1 < n) {
            *p++ = ',';
        }

        *p++ = '\n';
    }

    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_CLOSE);

    /* a table without columns: COPY takes no empty column list */

    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_COPY);
    p += ngx_bulk_sql_ident(p, table, table_len);

    if (n) {
        *p++ = ' ';
        *p++ = '(';

        for (i = 0; i < n; i++) {
            if (i) {
                *p++ = ',';
                *p++ = ' ';
            }

            p += ngx_bulk_sql_ident(p, cols[i].name, cols[i].name_len);
        }

        *p++ = ')';
    }

    p = ngx_bulk_sql_cpy(p, NGX_BULK_SQL_FROM);

    return p - out;
}
