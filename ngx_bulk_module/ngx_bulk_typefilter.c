
/*
 * ngx_bulk: a _typeFilter search query to SQL, see ngx_bulk_typefilter.h.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_bulk_typefilter.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_fhir_search.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_time.h"


/*
 * FHIR date, dateTime and instant forms as POSIX regular expressions
 * without a backslash, so that the SQL literals holding them mean the same
 * whatever standard_conforming_strings says.  Only what these accept is
 * cast, so a malformed date in a stored resource never makes the query
 * fail (PostgreSQL 15 has no cast that returns NULL on bad input): the
 * day must exist in its month, leap years included, and year 0 does not.
 */

#define NGX_BULK_TF_YEAR                                                     \
    "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"

#define NGX_BULK_TF_MONTH  "(0[1-9]|1[0-2])"

#define NGX_BULK_TF_DAY                                                      \
    "(" NGX_BULK_TF_YEAR "-(" NGX_BULK_TF_MONTH                              \
    "-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"  \
    "|([0-9]{2}(0[48]|[2468][048]|[13579][26])"                             \
    "|(0[48]|[2468][048]|[13579][26])00)-02-29)"

#define NGX_BULK_TF_TIME                                                     \
    "T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?"

#define NGX_BULK_TF_ZONE                                                     \
    "(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)"

#define NGX_BULK_TF_RE_Y      "'^" NGX_BULK_TF_YEAR "$'"
#define NGX_BULK_TF_RE_YM     "'^" NGX_BULK_TF_YEAR "-" NGX_BULK_TF_MONTH "$'"
#define NGX_BULK_TF_RE_D      "'^" NGX_BULK_TF_DAY "$'"
#define NGX_BULK_TF_RE_TZ                                                    \
    "'^" NGX_BULK_TF_DAY NGX_BULK_TF_TIME NGX_BULK_TF_ZONE "$'"
#define NGX_BULK_TF_RE_T      "'^" NGX_BULK_TF_DAY NGX_BULK_TF_TIME "$'"

#define NGX_BULK_TF_UTC       " AT TIME ZONE 'UTC'"
#define NGX_BULK_TF_TICK                                                     \
    "CASE WHEN tf_x ~ '[.]' THEN interval '1 microsecond' "                 \
    "ELSE interval '1 second' END"

/*
 * The range [lo, hi) of the FHIR date text tf_x: "2020" is the whole
 * year, "2020-05-17T10:00:00Z" one second; NULLs when tf_x is not a date.
 * Partial dates are UTC and their ends are computed on timestamp, not
 * timestamptz, so that the session's TimeZone plays no part.
 */
#define NGX_BULK_TF_RANGE_LO                                                 \
    "(SELECT CASE"                                                           \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_Y                                         \
    " THEN (tf_x || '-01-01')::timestamp" NGX_BULK_TF_UTC                    \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_YM                                        \
    " THEN (tf_x || '-01')::timestamp" NGX_BULK_TF_UTC                       \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_D                                         \
    " THEN tf_x::timestamp" NGX_BULK_TF_UTC                                  \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_TZ                                        \
    " THEN tf_x::timestamptz"                                                \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_T                                         \
    " THEN tf_x::timestamp" NGX_BULK_TF_UTC                                  \
    " END AS lo, CASE"                                                       \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_Y                                         \
    " THEN ((tf_x || '-01-01')::timestamp + interval '1 year')"              \
    NGX_BULK_TF_UTC                                                          \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_YM                                        \
    " THEN ((tf_x || '-01')::timestamp + interval '1 month')"                \
    NGX_BULK_TF_UTC                                                          \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_D                                         \
    " THEN (tf_x::timestamp + interval '1 day')" NGX_BULK_TF_UTC             \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_TZ                                        \
    " THEN tf_x::timestamptz + " NGX_BULK_TF_TICK                            \
    " WHEN tf_x ~ " NGX_BULK_TF_RE_T                                         \
    " THEN (tf_x::timestamp + " NGX_BULK_TF_TICK ")" NGX_BULK_TF_UTC         \
    " END AS hi FROM (SELECT "

#define NGX_BULK_TF_RANGE_HI  " AS tf_x) AS tf_s)"


/* what a search value is compared with, by the FHIR type at its path */
enum {
    NGX_BULK_TF_NONE = 0,
    NGX_BULK_TF_CODING,           /* system, code */
    NGX_BULK_TF_CONCEPT,          /* coding[]: system, code */
    NGX_BULK_TF_IDENTIFIER,       /* system, value */
    NGX_BULK_TF_PRIMITIVE,        /* a string-like value */
    NGX_BULK_TF_BOOLEAN,
    NGX_BULK_TF_REFERENCE,        /* Aidbox {"resourceType","id"}/{"uri"} */
    NGX_BULK_TF_NAME,             /* HumanName */
    NGX_BULK_TF_ADDRESS,
    NGX_BULK_TF_DATE,             /* date, dateTime, instant */
    NGX_BULK_TF_PERIOD
};


typedef struct {
    char                          *data;
    size_t                         len;
    size_t                         cap;
} ngx_bulk_tf_buf_t;


typedef struct {
    ngx_bulk_typefilter_t         *tf;
    const char                    *type;      /* NUL-terminated */
    size_t                         type_len;
    const char                    *param;     /* NUL-terminated name */
    ngx_bulk_tf_buf_t              out;
    ngx_bulk_tf_buf_t              vars;
    ngx_bulk_tf_buf_t              name;
    ngx_bulk_tf_buf_t              value;
    ngx_bulk_tf_buf_t              a;         /* unescaped parts */
    ngx_bulk_tf_buf_t              b;
    unsigned                       nvalues;
} ngx_bulk_tf_ctx_t;


typedef int (*ngx_bulk_tf_value_pt)(ngx_bulk_tf_ctx_t *ctx,
    const ngx_bulk_fhir_param_t *sp, const char *mod, const char *v,
    size_t n);


static int ngx_bulk_tf_fail(ngx_bulk_tf_ctx_t *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;


static const char *ngx_bulk_tf_result_params[] = {
    "_count", "_contained", "_containedType", "_elements", "_format",
    "_include", "_pretty", "_revinclude", "_sort", "_summary", "_total",
    NULL
};


static int
ngx_bulk_tf_fail(ngx_bulk_tf_ctx_t *ctx, const char *fmt, ...)
{
    va_list  args;

    if (ctx->tf->err[0] == '\0') {
        va_start(args, fmt);
        vsnprintf(ctx->tf->err, sizeof(ctx->tf->err), fmt, args);
        va_end(args);
    }

    return -1;
}


/* a user string for a message: at most 40 bytes, printable ASCII only */

static const char *
ngx_bulk_tf_show(char *buf, size_t size, const char *s, size_t n)
{
    size_t         i, max;
    unsigned char  c;

    max = size - 4;

    if (max > 40) {
        max = 40;
    }

    for (i = 0; i < n && i < max; i++) {
        c = (unsigned char) s[i];
        buf[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : c;
    }

    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }

    buf[i] = '\0';

    return buf;
}


/* buffers */

static int
ngx_bulk_tf_grow(ngx_bulk_tf_ctx_t *ctx, ngx_bulk_tf_buf_t *b, size_t n)
{
    size_t   cap;
    char    *p;

    if (b->cap - b->len > n) {
        return 0;
    }

    cap = b->cap ? b->cap : 256;

    while (cap - b->len <= n) {
        if (cap > ((size_t) -1) / 4) {
            goto oom;
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        goto oom;
    }

    b->data = p;
    b->cap = cap;

    return 0;

oom:

    return ngx_bulk_tf_fail(ctx, "out of memory");
}


static int
ngx_bulk_tf_put(ngx_bulk_tf_ctx_t *ctx, ngx_bulk_tf_buf_t *b, const void *s,
    size_t n)
{
    if (ngx_bulk_tf_grow(ctx, b, n) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';

    return 0;
}


#define ngx_bulk_tf_sql(ctx, s)                                              \
    ngx_bulk_tf_put(ctx, &(ctx)->out, s, sizeof(s) - 1)


static int
ngx_bulk_tf_sqls(ngx_bulk_tf_ctx_t *ctx, const char *s)
{
    return ngx_bulk_tf_put(ctx, &ctx->out, s, strlen(s));
}


/*
 * A JSON string, quotes included.  Besides what JSON requires, the single
 * quote is escaped (\u0027): the JSON text then has none for the SQL
 * literal around it to double, a second line of defence.
 */

static int
ngx_bulk_tf_json_string(ngx_bulk_tf_ctx_t *ctx, ngx_bulk_tf_buf_t *b,
    const char *s, size_t n)
{
    char               *p;
    size_t              i;
    unsigned char       c;
    static const char   hex[] = "0123456789abcdef";

    if (ngx_bulk_tf_grow(ctx, b, 6 * n + 2) != 0) {
        return -1;
    }

    p = b->data + b->len;
    *p++ = '"';

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20 || c == '\'' || c == 0x7f) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            *p++ = c;
        }
    }

    *p++ = '"';
    b->len = p - b->data;
    b->data[b->len] = '\0';

    return 0;
}


/* variables: {"s":"...","c":"..."} built in ctx->vars */

static int
ngx_bulk_tf_var(ngx_bulk_tf_ctx_t *ctx, const char *name, const char *s,
    size_t n)
{
    ngx_bulk_tf_buf_t  *b;

    b = &ctx->vars;

    if (ngx_bulk_tf_put(ctx, b, b->len ? "," : "{", 1) != 0
        || ngx_bulk_tf_json_string(ctx, b, name, strlen(name)) != 0
        || ngx_bulk_tf_put(ctx, b, ":", 1) != 0
        || ngx_bulk_tf_json_string(ctx, b, s, n) != 0)
    {
        return -1;
    }

    return 0;
}


/* the variables as an SQL literal: '{...}'::jsonb, then empties them */

static int
ngx_bulk_tf_vars(ngx_bulk_tf_ctx_t *ctx)
{
    size_t       i;
    const char  *s;

    if (ctx->vars.len == 0 && ngx_bulk_tf_put(ctx, &ctx->vars, "{", 1) != 0) {
        return -1;
    }

    if (ngx_bulk_tf_put(ctx, &ctx->vars, "}", 1) != 0
        || ngx_bulk_tf_sql(ctx, "'") != 0)
    {
        return -1;
    }

    s = ctx->vars.data;

    for (i = 0; i < ctx->vars.len; i++) {
        if (s[i] == '\'') {
            if (ngx_bulk_tf_sql(ctx, "''") != 0) {
                return -1;
            }

        } else if (ngx_bulk_tf_put(ctx, &ctx->out, &s[i], 1) != 0) {
            return -1;
        }
    }

    ctx->vars.len = 0;

    return ngx_bulk_tf_sql(ctx, "'::jsonb");
}


/*
 * A jsonpath literal: $ and the keys of a path, then a constant suffix.
 * The keys come from the generated tables, which hold identifiers only;
 * anything else is refused here too rather than trusted.
 */

static int
ngx_bulk_tf_jsonpath(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_path_t *p,
    const char *extra, const char *suffix)
{
    size_t       i, n;
    const char  *k;

    if (ngx_bulk_tf_sql(ctx, "'$") != 0) {
        return -1;
    }

    for (i = 0; i <= p->nkeys; i++) {
        if (i == p->nkeys) {
            if (extra == NULL) {
                break;
            }

            k = extra;

        } else {
            k = p->keys[i];
        }

        n = strlen(k);

        if (n == 0 || strspn(k, "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != n)
        {
            return ngx_bulk_tf_fail(ctx, "internal error: bad key");
        }

        if (ngx_bulk_tf_sql(ctx, ".\"") != 0
            || ngx_bulk_tf_put(ctx, &ctx->out, k, n) != 0
            || ngx_bulk_tf_sql(ctx, "\"") != 0)
        {
            return -1;
        }
    }

    if (ngx_bulk_tf_sqls(ctx, suffix) != 0) {
        return -1;
    }

    return ngx_bulk_tf_sql(ctx, "'");
}


/* jsonb_path_exists(resource, '<path><filter>', <vars>, true) */

static int
ngx_bulk_tf_exists(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_path_t *p,
    const char *extra, const char *filter)
{
    if (ngx_bulk_tf_sql(ctx, "jsonb_path_exists(resource, ") != 0
        || ngx_bulk_tf_jsonpath(ctx, p, extra, filter) != 0
        || ngx_bulk_tf_sql(ctx, ", ") != 0
        || ngx_bulk_tf_vars(ctx) != 0
        || ngx_bulk_tf_sql(ctx, ", true)") != 0)
    {
        return -1;
    }

    return 0;
}


/* the values of a path: SELECT ... FROM jsonb_path_query(...) AS tf_j(tf_v) */

static int
ngx_bulk_tf_query(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_path_t *p,
    const char *extra, const char *filter)
{
    if (ngx_bulk_tf_sql(ctx, "jsonb_path_query(resource, ") != 0
        || ngx_bulk_tf_jsonpath(ctx, p, extra, filter) != 0
        || ngx_bulk_tf_sql(ctx, ", '{}', true) AS tf_j(tf_v)") != 0)
    {
        return -1;
    }

    return 0;
}


static int
ngx_bulk_tf_kind(const char *vtype)
{
    size_t              i;
    static const char  *primitives[] = {
        "code", "string", "id", "uri", "url", "canonical", "oid", "uuid",
        "markdown", NULL
    };

    if (strcmp(vtype, "Coding") == 0) {
        return NGX_BULK_TF_CODING;
    }

    if (strcmp(vtype, "CodeableConcept") == 0) {
        return NGX_BULK_TF_CONCEPT;
    }

    if (strcmp(vtype, "Identifier") == 0
        || strcmp(vtype, "ContactPoint") == 0)
    {
        return NGX_BULK_TF_IDENTIFIER;
    }

    if (strcmp(vtype, "boolean") == 0) {
        return NGX_BULK_TF_BOOLEAN;
    }

    if (strcmp(vtype, "Reference") == 0) {
        return NGX_BULK_TF_REFERENCE;
    }

    if (strcmp(vtype, "HumanName") == 0) {
        return NGX_BULK_TF_NAME;
    }

    if (strcmp(vtype, "Address") == 0) {
        return NGX_BULK_TF_ADDRESS;
    }

    if (strcmp(vtype, "date") == 0 || strcmp(vtype, "dateTime") == 0
        || strcmp(vtype, "instant") == 0)
    {
        return NGX_BULK_TF_DATE;
    }

    if (strcmp(vtype, "Period") == 0) {
        return NGX_BULK_TF_PERIOD;
    }

    for (i = 0; primitives[i]; i++) {
        if (strcmp(vtype, primitives[i]) == 0) {
            return NGX_BULK_TF_PRIMITIVE;
        }
    }

    return NGX_BULK_TF_NONE;
}


/* the paths of a parameter a search of its type can use */

static int
ngx_bulk_tf_usable(const ngx_bulk_fhir_param_t *sp, size_t i)
{
    int  k;

    k = ngx_bulk_tf_kind(sp->paths[i].vtype);

    switch (sp->type) {

    case NGX_BULK_FHIR_SP_TOKEN:
        return k == NGX_BULK_TF_CODING || k == NGX_BULK_TF_CONCEPT
               || k == NGX_BULK_TF_IDENTIFIER || k == NGX_BULK_TF_PRIMITIVE
               || k == NGX_BULK_TF_BOOLEAN;

    case NGX_BULK_FHIR_SP_REFERENCE:
        return k == NGX_BULK_TF_REFERENCE || k == NGX_BULK_TF_PRIMITIVE;

    case NGX_BULK_FHIR_SP_STRING:
        return k == NGX_BULK_TF_PRIMITIVE || k == NGX_BULK_TF_NAME
               || k == NGX_BULK_TF_ADDRESS;

    case NGX_BULK_FHIR_SP_URI:
        return k == NGX_BULK_TF_PRIMITIVE;

    case NGX_BULK_FHIR_SP_DATE:
        return k == NGX_BULK_TF_DATE || k == NGX_BULK_TF_PERIOD;

    default:
        return 0;
    }
}


/* percent-decoding; '+' is a space */

static int
ngx_bulk_tf_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


static int
ngx_bulk_tf_decode(ngx_bulk_tf_ctx_t *ctx, ngx_bulk_tf_buf_t *b,
    const unsigned char *s, size_t n, const char *what)
{
    int            h, l;
    char          *p;
    size_t         i;
    unsigned char  c;

    b->len = 0;

    if (ngx_bulk_tf_grow(ctx, b, n) != 0) {
        return -1;
    }

    p = b->data;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (c == '+') {
            c = ' ';

        } else if (c == '%') {
            if (n - i < 3 || (h = ngx_bulk_tf_hex(s[i + 1])) < 0
                || (l = ngx_bulk_tf_hex(s[i + 2])) < 0)
            {
                return ngx_bulk_tf_fail(ctx, "invalid percent-encoding in "
                                        "a %s of the _typeFilter", what);
            }

            c = (unsigned char) (h * 16 + l);
            i += 2;
        }

        if (c == '\0') {
            return ngx_bulk_tf_fail(ctx, "a NUL character in a %s of the "
                                    "_typeFilter", what);
        }

        *p++ = c;
    }

    b->len = p - b->data;
    b->data[b->len] = '\0';

    if (!ngx_bulk_utf8_valid((unsigned char *) b->data, b->len)) {
        return ngx_bulk_tf_fail(ctx, "invalid UTF-8 in a %s of the "
                                "_typeFilter", what);
    }

    return 0;
}


/*
 * FHIR search escapes: "\," "\|" "\$" "\\" stand for the character.  The
 * value is split on the separators first, then each part unescaped.
 */

static const char *
ngx_bulk_tf_find(const char *s, size_t n, int sep)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }

        if (s[i] == sep) {
            return s + i;
        }
    }

    return NULL;
}


static int
ngx_bulk_tf_unescape(ngx_bulk_tf_ctx_t *ctx, ngx_bulk_tf_buf_t *b,
    const char *s, size_t n)
{
    size_t  i;
    char   *p;

    b->len = 0;

    if (ngx_bulk_tf_grow(ctx, b, n) != 0) {
        return -1;
    }

    p = b->data;

    for (i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n
            && (s[i + 1] == ',' || s[i + 1] == '|' || s[i + 1] == '$'
                || s[i + 1] == '\\'))
        {
            i++;
        }

        *p++ = s[i];
    }

    b->len = p - b->data;
    b->data[b->len] = '\0';

    return 0;
}


static int
ngx_bulk_tf_id_valid(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > 64) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* token: [system]|[code] or code */

static int
ngx_bulk_tf_token(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_param_t *sp,
    const char *mod, const char *v, size_t n)
{
    int                          k, has_sys, has_code, first;
    size_t                       i;
    const char                  *bar, *filter;
    ngx_bulk_tf_buf_t           *sys, *code;
    const ngx_bulk_fhir_path_t  *p;

    (void) mod;

    sys = &ctx->a;
    code = &ctx->b;
    sys->len = 0;

    bar = ngx_bulk_tf_find(v, n, '|');

    if (bar) {
        if (ngx_bulk_tf_unescape(ctx, sys, v, bar - v) != 0
            || ngx_bulk_tf_unescape(ctx, code, bar + 1, n - (bar - v) - 1)
               != 0)
        {
            return -1;
        }

    } else if (ngx_bulk_tf_unescape(ctx, code, v, n) != 0) {
        return -1;
    }

    has_sys = (sys->len > 0);
    has_code = (code->len > 0);

    if (!has_code && !has_sys) {
        return ngx_bulk_tf_fail(ctx, "\"%s\": an empty token", ctx->param);
    }

    first = 1;

    for (i = 0; i < sp->npaths; i++) {
        if (!ngx_bulk_tf_usable(sp, i)) {
            continue;
        }

        p = &sp->paths[i];
        k = ngx_bulk_tf_kind(p->vtype);

        if (k == NGX_BULK_TF_BOOLEAN || k == NGX_BULK_TF_PRIMITIVE) {

            /* a plain code has no system of its own: only the code counts */

            if (!has_code) {
                return ngx_bulk_tf_fail(ctx, "unsupported: \"%s\": a system "
                                        "without a code on a %s element",
                                        ctx->param, p->vtype);
            }

            if (k == NGX_BULK_TF_BOOLEAN) {
                if (code->len == 4 && memcmp(code->data, "true", 4) == 0) {
                    filter = " ? (@ == true)";

                } else if (code->len == 5
                           && memcmp(code->data, "false", 5) == 0)
                {
                    filter = " ? (@ == false)";

                } else {
                    return ngx_bulk_tf_fail(ctx, "\"%s\": a boolean is true "
                                            "or false", ctx->param);
                }

            } else {
                filter = " ? (@ == $c)";

                if (ngx_bulk_tf_var(ctx, "c", code->data, code->len) != 0) {
                    return -1;
                }
            }

            if ((!first && ngx_bulk_tf_sql(ctx, " OR ") != 0)
                || ngx_bulk_tf_exists(ctx, p, NULL, filter) != 0)
            {
                return -1;
            }

            first = 0;
            continue;
        }

        if (has_sys && ngx_bulk_tf_var(ctx, "s", sys->data, sys->len) != 0) {
            return -1;
        }

        if (has_code && ngx_bulk_tf_var(ctx, "c", code->data, code->len)
            != 0)
        {
            return -1;
        }

        if (has_sys && has_code) {
            filter = (k == NGX_BULK_TF_IDENTIFIER)
                     ? " ? (@.\"system\" == $s && @.\"value\" == $c)"
                     : " ? (@.\"system\" == $s && @.\"code\" == $c)";

        } else if (has_sys) {
            filter = " ? (@.\"system\" == $s)";

        } else if (bar) {
            /* "|code": a code without a system */
            filter = (k == NGX_BULK_TF_IDENTIFIER)
                     ? " ? (@.\"value\" == $c && !(exists(@.\"system\")))"
                     : " ? (@.\"code\" == $c && !(exists(@.\"system\")))";

        } else {
            filter = (k == NGX_BULK_TF_IDENTIFIER)
                     ? " ? (@.\"value\" == $c)" : " ? (@.\"code\" == $c)";
        }

        if ((!first && ngx_bulk_tf_sql(ctx, " OR ") != 0)
            || ngx_bulk_tf_exists(ctx, p,
                                  k == NGX_BULK_TF_CONCEPT ? "coding" : NULL,
                                  filter)
               != 0)
        {
            return -1;
        }

        first = 0;
    }

    return 0;
}


/*
 * reference: Type/id, id, or any other text (absolute URL, urn:uuid:,
 * Type/id/_history/v), which Aidbox format keeps as {"uri": ...}
 */

static int
ngx_bulk_tf_reference(ngx_bulk_tf_ctx_t *ctx,
    const ngx_bulk_fhir_param_t *sp, const char *mod, const char *v,
    size_t n)
{
    int                          first, k;
    size_t                       i, tlen, ilen;
    const char                  *slash, *type, *id, *filter;
    ngx_bulk_tf_buf_t           *val;
    const ngx_bulk_fhir_path_t  *p;
    char                         show[48];

    val = &ctx->a;

    if (ngx_bulk_tf_unescape(ctx, val, v, n) != 0) {
        return -1;
    }

    type = NULL;
    tlen = 0;
    id = NULL;
    ilen = 0;

    slash = memchr(val->data, '/', val->len);

    if (slash && ngx_bulk_fhir_resource_type(val->data, slash - val->data)
                 >= 0
        && ngx_bulk_tf_id_valid(slash + 1, val->len - (slash - val->data) - 1))
    {
        type = val->data;
        tlen = slash - val->data;
        id = slash + 1;
        ilen = val->len - tlen - 1;

        if (mod && (strlen(mod) != tlen || memcmp(mod, type, tlen) != 0)) {
            return ngx_bulk_tf_fail(ctx, "\"%s:%s\": the reference is to "
                                    "another type", ctx->param, mod);
        }

    } else if (ngx_bulk_tf_id_valid(val->data, val->len)) {
        id = val->data;
        ilen = val->len;

        if (mod) {
            type = mod;

        } else if (sp->ntargets == 1) {
            type = sp->targets[0];

        } else {
            /* every path restricted to the same type will do too */

            for (i = 0; i < sp->npaths; i++) {
                if (sp->paths[i].target == NULL
                    || (type && strcmp(type, sp->paths[i].target) != 0))
                {
                    type = NULL;
                    break;
                }

                type = sp->paths[i].target;
            }

            if (type == NULL) {
                return ngx_bulk_tf_fail(ctx, "unsupported: \"%s=%s\": the "
                                        "parameter refers to several resource "
                                        "types, give Type/id", ctx->param,
                                        ngx_bulk_tf_show(show, sizeof(show),
                                                         id, ilen));
            }
        }

        tlen = strlen(type);

    } else if (val->len && val->data[0] == '#') {
        return ngx_bulk_tf_fail(ctx, "unsupported: \"%s\": a local "
                                "reference", ctx->param);

    } else if (mod) {
        return ngx_bulk_tf_fail(ctx, "\"%s:%s\": not a Type/id or id",
                                ctx->param, mod);
    }

    first = 1;

    for (i = 0; i < sp->npaths; i++) {
        if (!ngx_bulk_tf_usable(sp, i)) {
            continue;
        }

        p = &sp->paths[i];
        k = ngx_bulk_tf_kind(p->vtype);

        if (k == NGX_BULK_TF_PRIMITIVE) {
            /* canonical or uri: the text as it is */
            filter = " ? (@ == $u)";

            if (ngx_bulk_tf_var(ctx, "u", val->data, val->len) != 0) {
                return -1;
            }

        } else if (type) {
            if (p->target && (strlen(p->target) != tlen
                              || memcmp(p->target, type, tlen) != 0))
            {
                /* where(resolve() is Patient): never another type here */
                continue;
            }

            filter = " ? (@.\"resourceType\" == $t && @.\"id\" == $i)";

            if (ngx_bulk_tf_var(ctx, "t", type, tlen) != 0
                || ngx_bulk_tf_var(ctx, "i", id, ilen) != 0)
            {
                return -1;
            }

        } else {
            filter = " ? (@.\"uri\" == $u)";

            if (ngx_bulk_tf_var(ctx, "u", val->data, val->len) != 0) {
                return -1;
            }
        }

        if ((!first && ngx_bulk_tf_sql(ctx, " OR ") != 0)
            || ngx_bulk_tf_exists(ctx, p, NULL, filter) != 0)
        {
            return -1;
        }

        first = 0;
    }

    if (first) {
        /* no path may hold a reference to that type */
        return ngx_bulk_tf_sql(ctx, "FALSE");
    }

    return 0;
}


/* string: a case-insensitive prefix, :exact, :contains */

static int
ngx_bulk_tf_string(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_param_t *sp,
    const char *mod, const char *v, size_t n)
{
    int                          k, first;
    size_t                       i, j;
    const char                 **parts;
    ngx_bulk_tf_buf_t           *val;
    const ngx_bulk_fhir_path_t  *p;
    static const char           *name[] = { "family", "given", "text",
                                            "prefix", "suffix", NULL };
    static const char           *address[] = { "line", "city", "district",
                                               "state", "postalCode",
                                               "country", "text", NULL };

    val = &ctx->a;

    if (ngx_bulk_tf_unescape(ctx, val, v, n) != 0) {
        return -1;
    }

    if (ngx_bulk_tf_sql(ctx, "EXISTS (SELECT 1 FROM (") != 0) {
        return -1;
    }

    first = 1;

    for (i = 0; i < sp->npaths; i++) {
        if (!ngx_bulk_tf_usable(sp, i)) {
            continue;
        }

        p = &sp->paths[i];
        k = ngx_bulk_tf_kind(p->vtype);

        parts = (k == NGX_BULK_TF_NAME) ? name
                : (k == NGX_BULK_TF_ADDRESS) ? address : NULL;

        /* a HumanName or Address: each of its string parts */

        for (j = 0; parts ? parts[j] != NULL : j == 0; j++) {
            if ((!first && ngx_bulk_tf_sql(ctx, " UNION ALL ") != 0)
                || ngx_bulk_tf_sql(ctx, "SELECT tf_v FROM ") != 0
                || ngx_bulk_tf_query(ctx, p, parts ? parts[j] : NULL,
                                     " ? (@.type() == \"string\")") != 0)
            {
                return -1;
            }

            first = 0;
        }
    }

    if (ngx_bulk_tf_sql(ctx, ") AS tf_q(tf_v) WHERE ") != 0
        || ngx_bulk_tf_var(ctx, "v", val->data, val->len) != 0)
    {
        return -1;
    }

    if (mod == NULL) {
        if (ngx_bulk_tf_sql(ctx, "starts_with(lower(tf_v #>> '{}'), "
                                 "lower(") != 0
            || ngx_bulk_tf_vars(ctx) != 0
            || ngx_bulk_tf_sql(ctx, " ->> 'v')))") != 0)
        {
            return -1;
        }

    } else if (strcmp(mod, "exact") == 0) {
        if (ngx_bulk_tf_sql(ctx, "tf_v #>> '{}' = (") != 0
            || ngx_bulk_tf_vars(ctx) != 0
            || ngx_bulk_tf_sql(ctx, " ->> 'v'))") != 0)
        {
            return -1;
        }

    } else {
        if (ngx_bulk_tf_sql(ctx, "strpos(lower(tf_v #>> '{}'), lower(") != 0
            || ngx_bulk_tf_vars(ctx) != 0
            || ngx_bulk_tf_sql(ctx, " ->> 'v')) > 0)") != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* uri: the same text */

static int
ngx_bulk_tf_uri(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_param_t *sp,
    const char *mod, const char *v, size_t n)
{
    int     first;
    size_t  i;

    (void) mod;

    if (ngx_bulk_tf_unescape(ctx, &ctx->a, v, n) != 0) {
        return -1;
    }

    first = 1;

    for (i = 0; i < sp->npaths; i++) {
        if (!ngx_bulk_tf_usable(sp, i)) {
            continue;
        }

        if (ngx_bulk_tf_var(ctx, "u", ctx->a.data, ctx->a.len) != 0
            || (!first && ngx_bulk_tf_sql(ctx, " OR ") != 0)
            || ngx_bulk_tf_exists(ctx, &sp->paths[i], NULL, " ? (@ == $u)")
               != 0)
        {
            return -1;
        }

        first = 0;
    }

    return 0;
}


/*
 * A date search value: its prefix and its range [lo, hi) as two
 * timestamptz literals in the variables "lo" and "hi".  The range is the
 * precision of the value: "2020" is the year, "2020-05-17T10:00:00Z" the
 * second, "...:00.25Z" the hundredth of a second.
 */

static int
ngx_bulk_tf_days(int y, int m)
{
    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }

    return days[m - 1];
}


static int
ngx_bulk_tf_date_value(ngx_bulk_tf_ctx_t *ctx, const char *v, size_t n,
    const char **prefix)
{
    int                  y, mo, d, h, mi, s, len, carry;
    size_t               i, flen;
    char                 lo[NGX_BULK_SINCE_MAX], hi[NGX_BULK_SINCE_MAX];
    char                 err[128], show[48], stamp[80], *frac;
    static const char   *prefixes[] = {
        "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", NULL
    };

    *prefix = "eq";

    if (n >= 2 && v[0] >= 'a' && v[0] <= 'z') {
        for (i = 0; prefixes[i]; i++) {
            if (memcmp(v, prefixes[i], 2) == 0) {
                *prefix = prefixes[i];
                break;
            }
        }

        if (prefixes[i] == NULL) {
            if (memcmp(v, "ap", 2) == 0) {
                return ngx_bulk_tf_fail(ctx, "unsupported: \"%s\": the ap "
                                        "prefix", ctx->param);
            }

            return ngx_bulk_tf_fail(ctx, "\"%s\": unknown prefix \"%s\"",
                                    ctx->param,
                                    ngx_bulk_tf_show(show, sizeof(show),
                                                     v, 2));
        }

        v += 2;
        n -= 2;
    }

    len = ngx_bulk_since_parse((const unsigned char *) v, n, lo, err);

    if (len < 0) {
        return ngx_bulk_tf_fail(ctx, "\"%s\": \"%s\" is not a FHIR date, "
                                "dateTime or instant", ctx->param,
                                ngx_bulk_tf_show(show, sizeof(show), v, n));
    }

    /* "YYYY-MM-DDThh:mm:ss[.f...](Z|+hh:mm)", see ngx_bulk_since_parse() */

    y = atoi(lo);
    mo = atoi(lo + 5);
    d = atoi(lo + 8);
    h = atoi(lo + 11);
    mi = atoi(lo + 14);
    s = atoi(lo + 17);

    frac = (lo[19] == '.') ? lo + 20 : NULL;
    flen = frac ? strspn(frac, "0123456789") : 0;

    memcpy(hi, lo, sizeof(hi));

    if (n == 4) {
        y++;

    } else if (n == 7) {
        if (++mo > 12) {
            mo = 1;
            y++;
        }

    } else {
        carry = 1;

        /* the last fraction digit, up through the digits, then a second */

        for (i = flen; carry && i > 0; i--) {
            if (hi[20 + i - 1] == '9') {
                hi[20 + i - 1] = '0';

            } else {
                hi[20 + i - 1]++;
                carry = 0;
            }
        }

        if (carry && n == 10) {
            d++;

        } else if (carry && ++s > 59) {
            s = 0;

            if (++mi > 59) {
                mi = 0;

                if (++h > 23) {
                    h = 0;
                    d++;
                }
            }
        }

        if (d > ngx_bulk_tf_days(y, mo)) {
            d = 1;

            if (++mo > 12) {
                mo = 1;
                y++;
            }
        }
    }

    if (y > 9999) {
        memcpy(hi, "infinity", sizeof("infinity"));

    } else {
        /* the fraction and the zone stay where they are, after these */
        snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d",
                 y, mo, d, h, mi, s);
        memcpy(hi, stamp, 19);
    }

    if (ngx_bulk_tf_var(ctx, "lo", lo, strlen(lo)) != 0
        || ngx_bulk_tf_var(ctx, "hi", hi, strlen(hi)) != 0)
    {
        return -1;
    }

    return 0;
}


/*
 * The comparisons of a value's range [lo, hi) with the search range
 * [$lo, $hi), by prefix (FHIR R4 search, 3.1.1.4.7): eq, the value is
 * within the search range; gt, some of it is after; ge, some of it is at
 * or after the start; sa, all of it is after; and their mirrors.  The ts
 * column is an instant, [ts, ts + 1 microsecond), for which the same
 * comparisons read as plain ones on ts.
 */

typedef struct {
    const char                    *prefix;
    char                           col1;     /* 'l': lo, 'h': hi */
    const char                    *op1;
    const char                    *var1;
    char                           col2;     /* 0: none */
    const char                    *op2;
    const char                    *var2;
} ngx_bulk_tf_cmp_t;


static const ngx_bulk_tf_cmp_t  ngx_bulk_tf_range_cmps[] = {
    { "eq", 'l', ">=", "lo", 'h', "<=", "hi" },
    { "ne", 'l', ">=", "lo", 'h', "<=", "hi" },
    { "gt", 'h', ">",  "hi", 0, NULL, NULL },
    { "lt", 'l', "<",  "lo", 0, NULL, NULL },
    { "ge", 'h', ">",  "lo", 0, NULL, NULL },
    { "le", 'l', "<",  "hi", 0, NULL, NULL },
    { "sa", 'l', ">=", "hi", 0, NULL, NULL },
    { "eb", 'h', "<=", "lo", 0, NULL, NULL },
    { NULL, 0, NULL, NULL, 0, NULL, NULL }
};


static const ngx_bulk_tf_cmp_t  ngx_bulk_tf_point_cmps[] = {
    { "eq", 'l', ">=", "lo", 'h', "<",  "hi" },
    { "ne", 'l', ">=", "lo", 'h', "<",  "hi" },
    { "gt", 'h', ">=", "hi", 0, NULL, NULL },
    { "lt", 'l', "<",  "lo", 0, NULL, NULL },
    { "ge", 'h', ">=", "lo", 0, NULL, NULL },
    { "le", 'l', "<",  "hi", 0, NULL, NULL },
    { "sa", 'l', ">=", "hi", 0, NULL, NULL },
    { "eb", 'h', "<",  "lo", 0, NULL, NULL },
    { NULL, 0, NULL, NULL, 0, NULL, NULL }
};


/* <col> <op> (<vars> ->> '<var>')::timestamptz */

static int
ngx_bulk_tf_side(ngx_bulk_tf_ctx_t *ctx, const char *col, const char *op,
    const char *var)
{
    if (ngx_bulk_tf_sqls(ctx, col) != 0
        || ngx_bulk_tf_sql(ctx, " ") != 0
        || ngx_bulk_tf_sqls(ctx, op) != 0
        || ngx_bulk_tf_sql(ctx, " (") != 0
        || ngx_bulk_tf_vars(ctx) != 0
        || ngx_bulk_tf_sql(ctx, " ->> '") != 0
        || ngx_bulk_tf_sqls(ctx, var) != 0
        || ngx_bulk_tf_sql(ctx, "')::timestamptz") != 0)
    {
        return -1;
    }

    return 0;
}


/* the search range is in ctx->vars (ngx_bulk_tf_date_value()) */

static int
ngx_bulk_tf_compare(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_tf_cmp_t *cmps,
    const char *prefix, const char *lo, const char *hi)
{
    int                       rc;
    char                     *vars;
    size_t                    vl;
    const ngx_bulk_tf_cmp_t  *c;

    for (c = cmps; c->prefix; c++) {
        if (strcmp(c->prefix, prefix) == 0) {
            break;
        }
    }

    if (c->prefix == NULL) {
        return ngx_bulk_tf_fail(ctx, "internal error: prefix");
    }

    /* a second comparison needs the variables again */

    vl = ctx->vars.len;
    vars = malloc(vl + 1);

    if (vars == NULL) {
        return ngx_bulk_tf_fail(ctx, "out of memory");
    }

    memcpy(vars, ctx->vars.data, vl);

    rc = -1;

    if (c->col2 == 0) {
        if (ngx_bulk_tf_side(ctx, c->col1 == 'l' ? lo : hi, c->op1, c->var1)
            == 0)
        {
            rc = 0;
        }

        goto done;
    }

    if (ngx_bulk_tf_sqls(ctx, prefix[0] == 'n' ? "NOT (" : "(") != 0
        || ngx_bulk_tf_side(ctx, c->col1 == 'l' ? lo : hi, c->op1, c->var1)
           != 0
        || ngx_bulk_tf_sql(ctx, " AND ") != 0
        || ngx_bulk_tf_put(ctx, &ctx->vars, vars, vl) != 0
        || ngx_bulk_tf_side(ctx, c->col2 == 'l' ? lo : hi, c->op2, c->var2)
           != 0
        || ngx_bulk_tf_sql(ctx, ")") != 0)
    {
        goto done;
    }

    rc = 0;

done:

    free(vars);
    ctx->vars.len = 0;

    return rc;
}


/* date: the ranges of every date and Period at the parameter's paths */

static int
ngx_bulk_tf_date(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_param_t *sp,
    const char *mod, const char *v, size_t n)
{
    int          first;
    size_t       i;
    const char  *prefix;

    (void) mod;

    if (ngx_bulk_tf_date_value(ctx, v, n, &prefix) != 0
        || ngx_bulk_tf_sql(ctx, "EXISTS (SELECT 1 FROM (") != 0)
    {
        return -1;
    }

    first = 1;

    for (i = 0; i < sp->npaths; i++) {
        if (!ngx_bulk_tf_usable(sp, i)) {
            continue;
        }

        if (!first && ngx_bulk_tf_sql(ctx, " UNION ALL ") != 0) {
            return -1;
        }

        first = 0;

        if (ngx_bulk_tf_kind(sp->paths[i].vtype) == NGX_BULK_TF_DATE) {
            if (ngx_bulk_tf_sql(ctx, "SELECT tf_r.lo, tf_r.hi FROM ") != 0
                || ngx_bulk_tf_query(ctx, &sp->paths[i], NULL,
                                     " ? (@.type() == \"string\")") != 0
                || ngx_bulk_tf_sql(ctx, " CROSS JOIN LATERAL "
                                   NGX_BULK_TF_RANGE_LO
                                   "tf_j.tf_v #>> '{}'"
                                   NGX_BULK_TF_RANGE_HI " AS tf_r") != 0)
            {
                return -1;
            }

            continue;
        }

        /*
         * a Period: an absent start or end is open; a malformed one makes
         * the whole period unknown, as a malformed date is
         */

        if (ngx_bulk_tf_sql(ctx, "SELECT CASE WHEN tf_j.tf_v -> 'start' IS "
                            "NULL THEN '-infinity'::timestamptz ELSE "
                            "tf_a.lo END, CASE WHEN tf_j.tf_v -> 'end' IS "
                            "NULL THEN 'infinity'::timestamptz ELSE "
                            "tf_b.hi END FROM ") != 0
            || ngx_bulk_tf_query(ctx, &sp->paths[i], NULL,
                                 " ? (@.type() == \"object\")") != 0
            || ngx_bulk_tf_sql(ctx, " CROSS JOIN LATERAL "
                               NGX_BULK_TF_RANGE_LO
                               "tf_j.tf_v ->> 'start'"
                               NGX_BULK_TF_RANGE_HI " AS tf_a"
                               " CROSS JOIN LATERAL "
                               NGX_BULK_TF_RANGE_LO
                               "tf_j.tf_v ->> 'end'"
                               NGX_BULK_TF_RANGE_HI " AS tf_b"
                               " WHERE (tf_j.tf_v -> 'start' IS NULL OR "
                               "tf_a.lo IS NOT NULL) AND (tf_j.tf_v -> 'end' "
                               "IS NULL OR tf_b.hi IS NOT NULL)") != 0)
        {
            return -1;
        }
    }

    if (ngx_bulk_tf_sql(ctx, ") AS tf_d(lo, hi) WHERE ") != 0
        || ngx_bulk_tf_compare(ctx, ngx_bulk_tf_range_cmps, prefix,
                               "tf_d.lo", "tf_d.hi") != 0
        || ngx_bulk_tf_sql(ctx, ")") != 0)
    {
        return -1;
    }

    return 0;
}


/* _lastUpdated: the ts column */

static int
ngx_bulk_tf_last_updated(ngx_bulk_tf_ctx_t *ctx,
    const ngx_bulk_fhir_param_t *sp, const char *mod, const char *v,
    size_t n)
{
    const char  *prefix;

    (void) sp;
    (void) mod;

    if (ngx_bulk_tf_date_value(ctx, v, n, &prefix) != 0) {
        return -1;
    }

    return ngx_bulk_tf_compare(ctx, ngx_bulk_tf_point_cmps, prefix, "ts",
                               "ts");
}


/* _id: a list of ids, the id column */

static int
ngx_bulk_tf_ids(ngx_bulk_tf_ctx_t *ctx, const char *v, size_t n)
{
    const char  *p, *end, *comma;
    char         show[48];

    if (ngx_bulk_tf_sql(ctx, "id IN (SELECT jsonb_array_elements_text(") != 0
        || ngx_bulk_tf_put(ctx, &ctx->vars, "{\"id\":[", 7) != 0)
    {
        return -1;
    }

    p = v;
    end = v + n;

    for ( ;; ) {
        comma = ngx_bulk_tf_find(p, end - p, ',');

        if (comma == NULL) {
            comma = end;
        }

        if (!ngx_bulk_tf_id_valid(p, comma - p)) {
            return ngx_bulk_tf_fail(ctx, "\"_id\": \"%s\" is not a FHIR id",
                                    ngx_bulk_tf_show(show, sizeof(show), p,
                                                     comma - p));
        }

        if (++ctx->nvalues > NGX_BULK_TF_MAX_VALUES) {
            return ngx_bulk_tf_fail(ctx, "more than %d values in the "
                                    "_typeFilter", NGX_BULK_TF_MAX_VALUES);
        }

        if ((p != v && ngx_bulk_tf_put(ctx, &ctx->vars, ",", 1) != 0)
            || ngx_bulk_tf_json_string(ctx, &ctx->vars, p, comma - p) != 0)
        {
            return -1;
        }

        if (comma == end) {
            break;
        }

        p = comma + 1;
    }

    if (ngx_bulk_tf_put(ctx, &ctx->vars, "]", 1) != 0
        || ngx_bulk_tf_vars(ctx) != 0
        || ngx_bulk_tf_sql(ctx, " -> 'id'))") != 0)
    {
        return -1;
    }

    return 0;
}


/* one parameter: (value OR value ...) */

static int
ngx_bulk_tf_param(ngx_bulk_tf_ctx_t *ctx, const ngx_bulk_fhir_param_t *sp,
    const char *mod, ngx_bulk_tf_value_pt handler)
{
    size_t       n;
    const char  *p, *end, *comma;

    p = ctx->value.data;
    end = p + ctx->value.len;

    if (ngx_bulk_tf_sql(ctx, "(") != 0) {
        return -1;
    }

    for ( ;; ) {
        comma = ngx_bulk_tf_find(p, end - p, ',');

        if (comma == NULL) {
            comma = end;
        }

        n = comma - p;

        if (n == 0) {
            return ngx_bulk_tf_fail(ctx, "\"%s\": an empty value",
                                    ctx->param);
        }

        if (++ctx->nvalues > NGX_BULK_TF_MAX_VALUES) {
            return ngx_bulk_tf_fail(ctx, "more than %d values in the "
                                    "_typeFilter", NGX_BULK_TF_MAX_VALUES);
        }

        if ((p != ctx->value.data && ngx_bulk_tf_sql(ctx, " OR ") != 0)
            || ngx_bulk_tf_sql(ctx, "(") != 0
            || handler(ctx, sp, mod, p, n) != 0
            || ngx_bulk_tf_sql(ctx, ")") != 0)
        {
            return -1;
        }

        if (comma == end) {
            break;
        }

        p = comma + 1;
    }

    return ngx_bulk_tf_sql(ctx, ")");
}


static const char *
ngx_bulk_tf_type_name(ngx_bulk_fhir_sp_type_e t)
{
    switch (t) {
    case NGX_BULK_FHIR_SP_NUMBER:
        return "number";
    case NGX_BULK_FHIR_SP_DATE:
        return "date";
    case NGX_BULK_FHIR_SP_STRING:
        return "string";
    case NGX_BULK_FHIR_SP_TOKEN:
        return "token";
    case NGX_BULK_FHIR_SP_REFERENCE:
        return "reference";
    case NGX_BULK_FHIR_SP_COMPOSITE:
        return "composite";
    case NGX_BULK_FHIR_SP_QUANTITY:
        return "quantity";
    case NGX_BULK_FHIR_SP_URI:
        return "uri";
    default:
        return "special";
    }
}


/* name[:modifier]=value, decoded in ctx->name and ctx->value */

static int
ngx_bulk_tf_clause(ngx_bulk_tf_ctx_t *ctx)
{
    size_t                        i, n;
    char                         *colon, *mod;
    ngx_bulk_tf_value_pt          handler;
    const ngx_bulk_fhir_param_t  *sp;
    char                          show[48];

    n = ctx->name.len;

    if (memchr(ctx->name.data, '.', n)) {
        return ngx_bulk_tf_fail(ctx, "unsupported: chained parameter \"%s\"",
                                ngx_bulk_tf_show(show, sizeof(show),
                                                 ctx->name.data, n));
    }

    colon = memchr(ctx->name.data, ':', n);
    mod = NULL;

    if (colon) {
        *colon = '\0';
        mod = colon + 1;
        n = colon - ctx->name.data;
    }

    ctx->param = ctx->name.data;

    if (n == 0) {
        return ngx_bulk_tf_fail(ctx, "a parameter without a name in the "
                                "_typeFilter");
    }

    if (strcmp(ctx->param, "_has") == 0) {
        return ngx_bulk_tf_fail(ctx, "unsupported: _has");
    }

    if (strspn(ctx->param, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
    {
        return ngx_bulk_tf_fail(ctx, "\"%s\" is not a search parameter name",
                                ngx_bulk_tf_show(show, sizeof(show),
                                                 ctx->param, n));
    }

    for (i = 0; ngx_bulk_tf_result_params[i]; i++) {
        if (strcmp(ctx->param, ngx_bulk_tf_result_params[i]) == 0) {
            return ngx_bulk_tf_fail(ctx, "unsupported: result parameter "
                                    "\"%s\" in a _typeFilter", ctx->param);
        }
    }

    sp = ngx_bulk_fhir_search_param(ctx->type, ctx->type_len, ctx->param, n);

    if (sp == NULL) {
        return ngx_bulk_tf_fail(ctx, "unsupported: search parameter \"%s\" "
                                "of %s (unknown, or not a simple path)",
                                ctx->param, ctx->type);
    }

    if (mod && (strspn(mod, "abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
                != strlen(mod) || mod[0] == '\0'))
    {
        return ngx_bulk_tf_fail(ctx, "\"%s\": \"%s\" is not a modifier",
                                ctx->param,
                                ngx_bulk_tf_show(show, sizeof(show), mod,
                                                 strlen(mod)));
    }

    if (ctx->value.len == 0) {
        return ngx_bulk_tf_fail(ctx, "\"%s\": an empty value", ctx->param);
    }

    if (ctx->value.len > NGX_BULK_TF_MAX_VALUE) {
        return ngx_bulk_tf_fail(ctx, "\"%s\": a value longer than %d bytes",
                                ctx->param, NGX_BULK_TF_MAX_VALUE);
    }

    if (strcmp(ctx->param, "_id") == 0) {
        if (mod) {
            goto bad_modifier;
        }

        if (ngx_bulk_tf_sql(ctx, "(") != 0
            || ngx_bulk_tf_ids(ctx, ctx->value.data, ctx->value.len) != 0)
        {
            return -1;
        }

        return ngx_bulk_tf_sql(ctx, ")");
    }

    if (strcmp(ctx->param, "_lastUpdated") == 0) {
        if (mod) {
            goto bad_modifier;
        }

        return ngx_bulk_tf_param(ctx, sp, NULL, ngx_bulk_tf_last_updated);
    }

    switch (sp->type) {

    case NGX_BULK_FHIR_SP_TOKEN:
        handler = ngx_bulk_tf_token;

        if (mod) {
            goto bad_modifier;
        }

        break;

    case NGX_BULK_FHIR_SP_REFERENCE:
        handler = ngx_bulk_tf_reference;

        if (mod && ngx_bulk_fhir_resource_type(mod, strlen(mod)) < 0) {
            goto bad_modifier;
        }

        break;

    case NGX_BULK_FHIR_SP_STRING:
        handler = ngx_bulk_tf_string;

        if (mod && strcmp(mod, "exact") != 0 && strcmp(mod, "contains") != 0)
        {
            goto bad_modifier;
        }

        break;

    case NGX_BULK_FHIR_SP_URI:
        handler = ngx_bulk_tf_uri;

        if (mod) {
            goto bad_modifier;
        }

        break;

    case NGX_BULK_FHIR_SP_DATE:
        handler = ngx_bulk_tf_date;

        if (mod) {
            goto bad_modifier;
        }

        break;

    default:
        return ngx_bulk_tf_fail(ctx, "unsupported: %s parameter \"%s\"",
                                ngx_bulk_tf_type_name(sp->type), ctx->param);
    }

    for (i = 0; i < sp->npaths; i++) {
        if (ngx_bulk_tf_usable(sp, i)) {
            break;
        }
    }

    if (i == sp->npaths) {
        return ngx_bulk_tf_fail(ctx, "unsupported: %s search on the %s of "
                                "\"%s\"", ngx_bulk_tf_type_name(sp->type),
                                sp->paths[0].vtype, ctx->param);
    }

    return ngx_bulk_tf_param(ctx, sp, mod, handler);

bad_modifier:

    return ngx_bulk_tf_fail(ctx, "unsupported: modifier \":%s\" on \"%s\"",
                            mod, ctx->param);
}


int
ngx_bulk_typefilter_sql(ngx_bulk_typefilter_t *tf, const unsigned char *in,
    size_t len)
{
    int                   rc, nparams;
    char                  type[65], show[48];
    const unsigned char  *q, *end, *amp, *eq;
    ngx_bulk_tf_ctx_t     ctx;

    memset(tf, 0, sizeof(ngx_bulk_typefilter_t));
    memset(&ctx, 0, sizeof(ngx_bulk_tf_ctx_t));

    ctx.tf = tf;
    rc = -1;

    end = in + len;
    q = memchr(in, '?', len);

    if (q == NULL) {
        ngx_bulk_tf_fail(&ctx, "a _typeFilter is Type?query, \"%s\" has no "
                         "\"?\"", ngx_bulk_tf_show(show, sizeof(show),
                                                   (const char *) in, len));
        goto done;
    }

    if (ngx_bulk_fhir_resource_type((const char *) in, q - in) < 0) {
        ngx_bulk_tf_fail(&ctx, "_typeFilter: unknown resource type \"%s\"",
                         ngx_bulk_tf_show(show, sizeof(show),
                                          (const char *) in, q - in));
        goto done;
    }

    tf->type = (const char *) in;
    tf->type_len = q - in;

    memcpy(type, in, q - in);
    type[q - in] = '\0';
    ctx.type = type;
    ctx.type_len = q - in;

    nparams = 0;

    for (q++; q < end; q = amp + 1) {
        amp = memchr(q, '&', end - q);

        if (amp == NULL) {
            amp = end;
        }

        if (amp == q) {
            continue;
        }

        if (++nparams > NGX_BULK_TF_MAX_PARAMS) {
            ngx_bulk_tf_fail(&ctx, "more than %d parameters in a _typeFilter",
                             NGX_BULK_TF_MAX_PARAMS);
            goto done;
        }

        eq = memchr(q, '=', amp - q);

        if (eq == NULL) {
            ngx_bulk_tf_fail(&ctx, "_typeFilter parameter \"%s\" has no "
                             "value", ngx_bulk_tf_show(show, sizeof(show),
                                                       (const char *) q,
                                                       amp - q));
            goto done;
        }

        if (ngx_bulk_tf_decode(&ctx, &ctx.name, q, eq - q, "name") != 0
            || ngx_bulk_tf_decode(&ctx, &ctx.value, eq + 1, amp - eq - 1,
                                  "value") != 0)
        {
            goto done;
        }

        if ((nparams > 1 && ngx_bulk_tf_sql(&ctx, " AND ") != 0)
            || ngx_bulk_tf_clause(&ctx) != 0)
        {
            goto done;
        }

        if (amp == end) {
            break;
        }
    }

    if (nparams == 0 && ngx_bulk_tf_sql(&ctx, "TRUE") != 0) {
        goto done;
    }

    tf->sql = ctx.out.data;
    tf->sql_len = ctx.out.len;
    ctx.out.data = NULL;
    rc = 0;

done:

    free(ctx.out.data);
    free(ctx.vars.data);
    free(ctx.name.data);
    free(ctx.value.data);
    free(ctx.a.data);
    free(ctx.b.data);

    if (rc != 0 && tf->err[0] == '\0') {
        snprintf(tf->err, sizeof(tf->err), "_typeFilter: internal error");
    }

    return rc;
}


void
ngx_bulk_typefilter_free(ngx_bulk_typefilter_t *tf)
{
    free(tf->sql);
    tf->sql = NULL;
    tf->sql_len = 0;
}
