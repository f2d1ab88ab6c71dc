
/*
 * ngx_bulk: request bodies in JSON or YAML.
 *
 * YAML goes through libyaml's event parser and comes out as JSON text, so
 * that one JSON parser reads every body afterwards.  The conversion keeps
 * no tree: a stack of the open collections is all its state.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ngx_bulk_body.h"


#define NGX_BULK_YAML_TAG  "tag:yaml.org,2002:"


typedef struct {
    ngx_bulk_buf_t  *out;
    int              depth;
    unsigned char    map[NGX_BULK_BODY_DEPTH_MAX + 1];
    size_t           count[NGX_BULK_BODY_DEPTH_MAX + 1];
    char            *err;
    size_t           errlen;
} ngx_bulk_yaml_ctx_t;


static int ngx_bulk_buf_put(ngx_bulk_buf_t *b, const char *data, size_t len);
static int ngx_bulk_yaml_node(ngx_bulk_yaml_ctx_t *ctx, int scalar);
static int ngx_bulk_yaml_scalar(ngx_bulk_yaml_ctx_t *ctx, yaml_event_t *ev);
static int ngx_bulk_yaml_string(ngx_bulk_yaml_ctx_t *ctx,
    const unsigned char *s, size_t len);
static const char *ngx_bulk_yaml_tag(const yaml_char_t *tag);
static int ngx_bulk_yaml_null(const unsigned char *s, size_t len);
static int ngx_bulk_yaml_bool(const unsigned char *s, size_t len);
static int ngx_bulk_json_number(const unsigned char *s, size_t len,
    int integer);
static int ngx_bulk_json_key_cmp(const void *a, const void *b);


void
ngx_bulk_buf_free(ngx_bulk_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}


static int
ngx_bulk_buf_put(ngx_bulk_buf_t *b, const char *data, size_t len)
{
    char    *p;
    size_t   size, max;

    max = b->max ? b->max : NGX_BULK_BODY_OUT_MAX;

    if (len > max || b->len + len > max) {
        return -1;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 1024;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);
        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}


int
ngx_bulk_yaml_to_json(const unsigned char *in, size_t len,
    ngx_bulk_buf_t *out, char *err, size_t errlen)
{
    int                   rc, docs, done;
    const char           *tag, *want;
    yaml_event_t          ev;
    yaml_parser_t         parser;
    ngx_bulk_yaml_ctx_t   ctx;

    memset(&ctx, 0, sizeof(ngx_bulk_yaml_ctx_t));
    ctx.out = out;
    ctx.err = err;
    ctx.errlen = errlen;

    if (errlen) {
        err[0] = '\0';
    }

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    yaml_parser_set_input_string(&parser, in, len);

    rc = -1;
    docs = 0;
    done = 0;

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errlen, "invalid YAML: %s%s%s at line %lu, "
                     "column %lu",
                     parser.problem ? parser.problem : "parse error",
                     parser.context ? " " : "",
                     parser.context ? parser.context : "",
                     (unsigned long) parser.problem_mark.line + 1,
                     (unsigned long) parser.problem_mark.column + 1);
            goto failed;
        }

        switch (ev.type) {

        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                snprintf(err, errlen, "more than one YAML document");
                goto failed_event;
            }
            break;

        case YAML_STREAM_END_EVENT:
            done = 1;
            break;

        case YAML_ALIAS_EVENT:
            snprintf(err, errlen, "YAML aliases are not allowed (line %lu)",
                     (unsigned long) ev.start_mark.line + 1);
            goto failed_event;

        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.anchor) {
                goto anchor;
            }

            if (ngx_bulk_yaml_scalar(&ctx, &ev) != 0) {
                goto failed_event;
            }
            break;

        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (ev.type == YAML_SEQUENCE_START_EVENT) {
                if (ev.data.sequence_start.anchor) {
                    goto anchor;
                }

                tag = (const char *) ev.data.sequence_start.tag;
                want = "seq";

            } else {
                if (ev.data.mapping_start.anchor) {
                    goto anchor;
                }

                tag = (const char *) ev.data.mapping_start.tag;
                want = "map";
            }

            if (tag && strcmp(tag, "!") != 0) {
                tag = ngx_bulk_yaml_tag((const yaml_char_t *) tag);

                if (tag == NULL || strcmp(tag, want) != 0) {
                    snprintf(err, errlen, "YAML tag %s not allowed on a "
                             "%s (line %lu)",
                             ev.type == YAML_SEQUENCE_START_EVENT
                             ? (const char *) ev.data.sequence_start.tag
                             : (const char *) ev.data.mapping_start.tag,
                             ev.type == YAML_SEQUENCE_START_EVENT
                             ? "sequence" : "mapping",
                             (unsigned long) ev.start_mark.line + 1);
                    goto failed_event;
                }
            }

            if (ngx_bulk_yaml_node(&ctx, 0) != 0) {
                goto failed_event;
            }

            if (ctx.depth == NGX_BULK_BODY_DEPTH_MAX) {
                snprintf(err, errlen, "YAML nested deeper than %d levels",
                         NGX_BULK_BODY_DEPTH_MAX);
                goto failed_event;
            }

            ctx.depth++;
            ctx.map[ctx.depth] = (ev.type == YAML_MAPPING_START_EVENT);
            ctx.count[ctx.depth] = 0;

            if (ngx_bulk_buf_put(out, ctx.map[ctx.depth] ? "{" : "[", 1)
                != 0)
            {
                goto too_large;
            }
            break;

        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (ngx_bulk_buf_put(out, ctx.map[ctx.depth] ? "}" : "]", 1)
                != 0)
            {
                goto too_large;
            }

            ctx.depth--;
            break;

        default:
            break;
        }

        yaml_event_delete(&ev);
    }

    if (docs == 0) {
        snprintf(err, errlen, "empty YAML document");
        goto failed;
    }

    rc = 0;
    goto failed;

anchor:

    snprintf(err, errlen, "YAML anchors are not allowed (line %lu)",
             (unsigned long) ev.start_mark.line + 1);
    goto failed_event;

too_large:

    snprintf(err, errlen, "YAML document too large as JSON");

failed_event:

    yaml_event_delete(&ev);

failed:

    yaml_parser_delete(&parser);

    return rc;
}


/* the separator before a node, which is counted; scalar keys only */

static int
ngx_bulk_yaml_node(ngx_bulk_yaml_ctx_t *ctx, int scalar)
{
    size_t  *count;

    if (ctx->depth == 0) {
        return 0;
    }

    count = &ctx->count[ctx->depth];

    if (ctx->map[ctx->depth] && *count % 2 == 0 && !scalar) {
        snprintf(ctx->err, ctx->errlen,
                 "YAML mapping keys must be scalars");
        return -1;
    }

    if (*count && (!ctx->map[ctx->depth] || *count % 2 == 0)) {
        if (ngx_bulk_buf_put(ctx->out, ",", 1) != 0) {
            snprintf(ctx->err, ctx->errlen, "YAML document too large as JSON");
            return -1;
        }
    }

    (*count)++;

    return 0;
}


static int
ngx_bulk_yaml_scalar(ngx_bulk_yaml_ctx_t *ctx, yaml_event_t *ev)
{
    int                   rc, plain, key;
    size_t                len;
    const char           *tag, *text;
    const unsigned char  *s;

    s = ev->data.scalar.value;
    len = ev->data.scalar.length;
    plain = (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    key = (ctx->depth && ctx->map[ctx->depth]
           && ctx->count[ctx->depth] % 2 == 0);

    if (ngx_bulk_yaml_node(ctx, 1) != 0) {
        return -1;
    }

    tag = NULL;

    if (ev->data.scalar.tag
        && strcmp((const char *) ev->data.scalar.tag, "!") != 0)
    {
        tag = ngx_bulk_yaml_tag(ev->data.scalar.tag);

        if (tag == NULL || strcmp(tag, "map") == 0
            || strcmp(tag, "seq") == 0)
        {
            snprintf(ctx->err, ctx->errlen,
                     "YAML tag %s not allowed on a scalar (line %lu)",
                     (const char *) ev->data.scalar.tag,
                     (unsigned long) ev->start_mark.line + 1);
            return -1;
        }

        plain = 0;
    }

    if (memchr(s, '\0', len) != NULL) {
        snprintf(ctx->err, ctx->errlen,
                 "NUL characters are not allowed (line %lu)",
                 (unsigned long) ev->start_mark.line + 1);
        return -1;
    }

    text = NULL;

    /* JSON keys are strings: a key is its text, whatever it resolves to */

    if (key || (tag && strcmp(tag, "str") == 0)) {
        /* a string */

    } else if (tag) {
        if (strcmp(tag, "null") == 0 && ngx_bulk_yaml_null(s, len)) {
            text = "null";

        } else if (strcmp(tag, "bool") == 0 && ngx_bulk_yaml_bool(s, len)) {
            text = (s[0] == 't' || s[0] == 'T') ? "true" : "false";

        } else if ((strcmp(tag, "int") == 0 || strcmp(tag, "float") == 0)
                   && ngx_bulk_json_number(s, len, tag[0] == 'i'))
        {
            text = (const char *) s;

        } else {
            snprintf(ctx->err, ctx->errlen,
                     "YAML value \"%.*s\" is not a JSON !!%s (line %lu)",
                     (int) (len > 32 ? 32 : len), s, tag,
                     (unsigned long) ev->start_mark.line + 1);
            return -1;
        }

    } else if (plain) {
        if (ngx_bulk_yaml_null(s, len)) {
            text = "null";

        } else if (ngx_bulk_yaml_bool(s, len)) {
            text = (s[0] == 't' || s[0] == 'T') ? "true" : "false";

        } else if (ngx_bulk_json_number(s, len, 0)) {
            text = (const char *) s;
        }
    }

    if (text == NULL) {
        rc = ngx_bulk_yaml_string(ctx, s, len);

    } else if (text == (const char *) s) {
        rc = ngx_bulk_buf_put(ctx->out, text, len);

    } else {
        rc = ngx_bulk_buf_put(ctx->out, text, strlen(text));
    }

    if (rc == 0 && key) {
        rc = ngx_bulk_buf_put(ctx->out, ":", 1);
    }

    if (rc != 0) {
        snprintf(ctx->err, ctx->errlen, "YAML document too large as JSON");
        return -1;
    }

    return 0;
}


static int
ngx_bulk_yaml_string(ngx_bulk_yaml_ctx_t *ctx, const unsigned char *s,
    size_t len)
{
    char                 *p;
    size_t                i, run;
    const unsigned char  *start;
    char                  esc[8];

    static const char     hex[] = "0123456789abcdef";

    if (ngx_bulk_buf_put(ctx->out, "\"", 1) != 0) {
        return -1;
    }

    start = s;
    run = 0;

    for (i = 0; i < len; i++) {
        if (s[i] >= 0x20 && s[i] != '"' && s[i] != '\\') {
            run++;
            continue;
        }

        if (run && ngx_bulk_buf_put(ctx->out, (const char *) start, run) != 0)
        {
            return -1;
        }

        p = esc;
        *p++ = '\\';

        switch (s[i]) {
        case '"':  *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[s[i] >> 4];
            *p++ = hex[s[i] & 0xf];
        }

        if (ngx_bulk_buf_put(ctx->out, esc, p - esc) != 0) {
            return -1;
        }

        start = s + i + 1;
        run = 0;
    }

    if (run && ngx_bulk_buf_put(ctx->out, (const char *) start, run) != 0) {
        return -1;
    }

    return ngx_bulk_buf_put(ctx->out, "\"", 1);
}


/* the short name of a standard tag ("str", "map", ...), or NULL */

static const char *
ngx_bulk_yaml_tag(const yaml_char_t *tag)
{
    size_t        n;
    const char   *t;
    static const char  *known[] = {
        "str", "int", "float", "bool", "null", "map", "seq", NULL
    };

    n = sizeof(NGX_BULK_YAML_TAG) - 1;

    if (strncmp((const char *) tag, NGX_BULK_YAML_TAG, n) != 0) {
        return NULL;
    }

    t = (const char *) tag + n;

    for (n = 0; known[n]; n++) {
        if (strcmp(t, known[n]) == 0) {
            return known[n];
        }
    }

    return NULL;
}


#define ngx_bulk_is(s, len, lit)                                             \
    ((len) == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)


/* YAML 1.2 core schema */

static int
ngx_bulk_yaml_null(const unsigned char *s, size_t len)
{
    return len == 0 || ngx_bulk_is(s, len, "~") || ngx_bulk_is(s, len, "null")
           || ngx_bulk_is(s, len, "Null") || ngx_bulk_is(s, len, "NULL");
}


static int
ngx_bulk_yaml_bool(const unsigned char *s, size_t len)
{
    return ngx_bulk_is(s, len, "true") || ngx_bulk_is(s, len, "True")
           || ngx_bulk_is(s, len, "TRUE") || ngx_bulk_is(s, len, "false")
           || ngx_bulk_is(s, len, "False") || ngx_bulk_is(s, len, "FALSE");
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: within core int|float */

static int
ngx_bulk_json_number(const unsigned char *s, size_t len, int integer)
{
    size_t  i, d;

    i = 0;

    if (i < len && s[i] == '-') {
        i++;
    }

    if (i == len) {
        return 0;
    }

    if (s[i] == '0') {
        i++;

    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }

    } else {
        return 0;
    }

    if (integer) {
        return i == len;
    }

    if (i < len && s[i] == '.') {
        for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }

        if (i == d) {
            return 0;
        }
    }

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;

        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }

        for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }

        if (i == d) {
            return 0;
        }
    }

    return i == len;
}


int
ngx_bulk_json_check(const unsigned char *in, size_t len, char *err,
    size_t errlen)
{
    int     depth, instr;
    size_t  i;

    depth = 0;
    instr = 0;

    for (i = 0; i < len; i++) {
        if (in[i] == '\0') {
            snprintf(err, errlen, "NUL bytes are not allowed in JSON");
            return -1;
        }

        if (instr) {
            if (in[i] == '"') {
                instr = 0;

            } else if (in[i] == '\\' && i + 1 < len) {
                i++;

                if (in[i] == 'u' && len - i > 4
                    && memcmp(in + i + 1, "0000", 4) == 0)
                {
                    snprintf(err, errlen,
                             "NUL characters (\\u0000) are not allowed");
                    return -1;
                }
            }

            continue;
        }

        switch (in[i]) {

        case '"':
            instr = 1;
            break;

        case '{':
        case '[':
            if (++depth > NGX_BULK_BODY_DEPTH_MAX) {
                snprintf(err, errlen, "JSON nested deeper than %d levels",
                         NGX_BULK_BODY_DEPTH_MAX);
                return -1;
            }
            break;

        case '}':
        case ']':
            depth--;
            break;

        default:
            break;
        }
    }

    return 0;
}


/* objects up to this many keys are checked pairwise, larger ones sorted */
#define NGX_BULK_BODY_DUP_PAIRWISE  16


static int
ngx_bulk_json_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char * const *) a, *(const char * const *) b);
}


int
ngx_bulk_json_dup_key(yajl_val v, const char **key)
{
    int           rc;
    size_t        i, j, n;
    const char  **keys;

    if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            rc = ngx_bulk_json_dup_key(v->u.array.values[i], key);
            if (rc != 0) {
                return rc;
            }
        }

        return 0;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return 0;
    }

    n = v->u.object.len;

    if (n <= NGX_BULK_BODY_DUP_PAIRWISE) {
        for (i = 1; i < n; i++) {
            for (j = 0; j < i; j++) {
                if (strcmp(v->u.object.keys[i], v->u.object.keys[j]) == 0) {
                    *key = v->u.object.keys[i];
                    return 1;
                }
            }
        }

    } else {
        keys = malloc(n * sizeof(const char *));
        if (keys == NULL) {
            return -1;
        }

        memcpy(keys, v->u.object.keys, n * sizeof(const char *));
        qsort(keys, n, sizeof(const char *), ngx_bulk_json_key_cmp);

        for (i = 1; i < n; i++) {
            if (strcmp(keys[i], keys[i - 1]) == 0) {
                *key = keys[i];
                free(keys);
                return 1;
            }
        }

        free(keys);
    }

    for (i = 0; i < n; i++) {
        rc = ngx_bulk_json_dup_key(v->u.object.values[i], key);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}
