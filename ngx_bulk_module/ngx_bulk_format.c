
/*
 * ngx_bulk: streaming FHIR <-> Aidbox JSON converter, see ngx_bulk_format.h.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "ngx_bulk_format.h"
#include "ngx_bulk_fhir_schema.h"


#define NGX_BULK_FMT_NOTYPE       0xffff

/* value contexts (what the next value is) and frame modes */
#define NGX_BULK_FMT_PASS         0   /* no schema: copy */
#define NGX_BULK_FMT_TYPE         1   /* complex type / backbone / resource */
#define NGX_BULK_FMT_REF          2   /* a Reference object */
#define NGX_BULK_FMT_RES          3   /* nested resource: type from bytes */
#define NGX_BULK_FMT_WRAP         4   /* Aidbox choice object (to FHIR) */
#define NGX_BULK_FMT_SKIP         5   /* drop the value */
#define NGX_BULK_FMT_REFSTR       6   /* FHIR "reference" value (to Aidbox) */
#define NGX_BULK_FMT_COLLECT      7   /* Aidbox id/resourceType/uri/localRef */
#define NGX_BULK_FMT_META         8   /* top-level meta (strip/inject) */
#define NGX_BULK_FMT_META_EXT     9   /* top-level meta.extension */
#define NGX_BULK_FMT_META_ITEM    10  /* an entry of it */
#define NGX_BULK_FMT_TOP          11  /* the document object */

#define NGX_BULK_FMT_SLOT_ID      0
#define NGX_BULK_FMT_SLOT_RT      1
#define NGX_BULK_FMT_SLOT_URI     2
#define NGX_BULK_FMT_SLOT_LOCAL   3

#define NGX_BULK_FMT_ARENA_MIN    16384
#define NGX_BULK_FMT_ARENA_MAX    (1024 * 1024)


typedef struct {
    uint8_t                       mode;
    uint8_t                       wrap;     /* extra '}' after the value */
    uint8_t                       slot;
    uint16_t                      type;
    const ngx_bulk_fhir_elem_t   *elem;
} ngx_bulk_fmt_ctx_t;


typedef struct {
    uint8_t                       mode;
    uint8_t                       array;
    uint8_t                       wrap;
    uint8_t                       lazy;
    uint8_t                       saved_comma;
    uint8_t                       seen;     /* meta / meta.extension seen */
    uint8_t                       have;     /* collected slots */
    uint16_t                      type;
    const ngx_bulk_fhir_elem_t   *elem;
    ngx_bulk_fmt_ctx_t            item;     /* arrays: context of items */
    size_t                        lazy_off;
    size_t                        stash_base;
    size_t                        off[4];
    size_t                        len[4];
} ngx_bulk_fmt_frame_t;


typedef struct {
    unsigned char                *data;
    size_t                        len;
    size_t                        cap;
} ngx_bulk_fmt_buf_t;


struct ngx_bulk_fmt_s {
    yajl_handle                   yh;
    ngx_bulk_fmt_job_t           *job;
    const unsigned char          *in;
    size_t                        in_len;

    ngx_bulk_fmt_buf_t            out;
    ngx_bulk_fmt_buf_t            lazy;
    ngx_bulk_fmt_buf_t            stash;
    ngx_bulk_fmt_buf_t            doc_id;
    ngx_bulk_fmt_buf_t            doc_type;
    ngx_bulk_fmt_buf_t            str;      /* the fast parser's unescaped
                                               strings */
    size_t                        pos;      /* the fast parser's offset */
    const unsigned char          *clean;    /* the input's string given to */
    const unsigned char          *clean_end;/* a callback: no escaping */

    ngx_bulk_fmt_ctx_t            next;
    ngx_bulk_fmt_frame_t         *fr;       /* current frame, NULL at top */
    int                           nframes;
    int                           depth;
    int                           wraps;    /* open choice wrappers */
    int                           skip;
    int                           dir;
    int                           capture;  /* 1: top id, 2: top type */
    unsigned                      need_comma:1;
    unsigned                      strip:1;
    unsigned                      inject:1;
    unsigned                      failed:1;
    unsigned                      have_id:1;
    unsigned                      have_type:1;

    unsigned char                *arena;
    size_t                        arena_size;
    size_t                        arena_used;
    size_t                        arena_last;
    size_t                        arena_want;

    ngx_bulk_fmt_frame_t          frames[NGX_BULK_FMT_MAX_DEPTH + 2];
};


typedef struct {
    size_t                        size;
    size_t                        sys;
} ngx_bulk_fmt_ahdr_t;


static void *ngx_bulk_fmt_malloc(void *ctx, size_t size);
static void *ngx_bulk_fmt_realloc(void *ctx, void *ptr, size_t size);
static void ngx_bulk_fmt_free(void *ctx, void *ptr);

static int ngx_bulk_fmt_null(void *ctx);
static int ngx_bulk_fmt_boolean(void *ctx, int v);
static int ngx_bulk_fmt_number(void *ctx, const char *s, size_t len);
static int ngx_bulk_fmt_string(void *ctx, const unsigned char *s, size_t len);
static int ngx_bulk_fmt_start_map(void *ctx);
static int ngx_bulk_fmt_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bulk_fmt_end_map(void *ctx);
static int ngx_bulk_fmt_start_array(void *ctx);
static int ngx_bulk_fmt_end_array(void *ctx);

static int ngx_bulk_fmt_parse(ngx_bulk_fmt_t *f, const unsigned char *p,
    size_t len);
static void ngx_bulk_fmt_reset(ngx_bulk_fmt_t *f, ngx_bulk_fmt_job_t *job,
    const unsigned char *in, size_t len);


/* a part of the input the fast parser found needs no escaping */
#define ngx_bulk_fmt_clean(f, s, len)                                        \
    ((uintptr_t) (s) >= (uintptr_t) (f)->clean                              \
     && (uintptr_t) ((s) + (len)) <= (uintptr_t) (f)->clean_end)


/* the input's offset past the token the parser is at */
#define ngx_bulk_fmt_consumed(f)                                             \
    ((f)->yh ? yajl_get_bytes_consumed((f)->yh) : (f)->pos)


static const yajl_callbacks  ngx_bulk_fmt_callbacks = {
    ngx_bulk_fmt_null,
    ngx_bulk_fmt_boolean,
    NULL,
    NULL,
    ngx_bulk_fmt_number,
    ngx_bulk_fmt_string,
    ngx_bulk_fmt_start_map,
    ngx_bulk_fmt_map_key,
    ngx_bulk_fmt_end_map,
    ngx_bulk_fmt_start_array,
    ngx_bulk_fmt_end_array
};


/* 1: needs escaping in a JSON string */
static const unsigned char  ngx_bulk_fmt_esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
};


/* 1: ends a run of plain bytes in the fast parser's strings */
static const unsigned char  ngx_bulk_fmt_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};


static const char  ngx_bulk_fmt_hex[] = "0123456789abcdef";


static const char  ngx_bulk_fmt_slot_names[4][16] = {
    "id", "resourceType", "uri", "localRef"
};

static const size_t  ngx_bulk_fmt_slot_lens[4] = { 2, 12, 3, 8 };


/* allocator for yajl: a bump arena reset per document */

static void *
ngx_bulk_fmt_malloc(void *ctx, size_t size)
{
    size_t                need;
    ngx_bulk_fmt_t       *f;
    ngx_bulk_fmt_ahdr_t  *h;

    f = ctx;
    need = sizeof(ngx_bulk_fmt_ahdr_t) + ((size + 15) & ~(size_t) 15);

    if (size < NGX_BULK_FMT_ARENA_MAX
        && f->arena_size - f->arena_used >= need)
    {
        h = (ngx_bulk_fmt_ahdr_t *) (f->arena + f->arena_used);
        h->size = size;
        h->sys = 0;
        f->arena_last = f->arena_used;
        f->arena_used += need;
        return h + 1;
    }

    if (size < NGX_BULK_FMT_ARENA_MAX) {
        f->arena_want = f->arena_used + need;
    }

    h = malloc(sizeof(ngx_bulk_fmt_ahdr_t) + size);
    if (h == NULL) {
        return NULL;
    }

    h->size = size;
    h->sys = 1;

    return h + 1;
}


static void *
ngx_bulk_fmt_realloc(void *ctx, void *ptr, size_t size)
{
    size_t                need, off;
    void                 *p;
    ngx_bulk_fmt_t       *f;
    ngx_bulk_fmt_ahdr_t  *h;

    f = ctx;

    if (ptr == NULL) {
        return ngx_bulk_fmt_malloc(ctx, size);
    }

    h = (ngx_bulk_fmt_ahdr_t *) ptr - 1;

    if (h->sys) {
        h = realloc(h, sizeof(ngx_bulk_fmt_ahdr_t) + size);
        if (h == NULL) {
            return NULL;
        }

        h->size = size;
        return h + 1;
    }

    if (size <= h->size) {
        return ptr;
    }

    off = (unsigned char *) h - f->arena;
    need = sizeof(ngx_bulk_fmt_ahdr_t) + ((size + 15) & ~(size_t) 15);

    if (off == f->arena_last && size < NGX_BULK_FMT_ARENA_MAX
        && f->arena_size - off >= need)
    {
        h->size = size;
        f->arena_used = off + need;
        return ptr;
    }

    p = ngx_bulk_fmt_malloc(ctx, size);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, ptr, h->size);

    return p;
}


static void
ngx_bulk_fmt_free(void *ctx, void *ptr)
{
    ngx_bulk_fmt_ahdr_t  *h;

    (void) ctx;

    if (ptr == NULL) {
        return;
    }

    h = (ngx_bulk_fmt_ahdr_t *) ptr - 1;

    if (h->sys) {
        free(h);
    }
}


ngx_bulk_fmt_t *
ngx_bulk_fmt_create(void)
{
    ngx_bulk_fmt_t  *f;

    f = calloc(1, sizeof(ngx_bulk_fmt_t));
    if (f == NULL) {
        return NULL;
    }

    f->arena_size = NGX_BULK_FMT_ARENA_MIN;
    f->arena = malloc(f->arena_size);

    if (f->arena == NULL) {
        free(f);
        return NULL;
    }

    return f;
}


void
ngx_bulk_fmt_destroy(ngx_bulk_fmt_t *f)
{
    if (f == NULL) {
        return;
    }

    free(f->out.data);
    free(f->lazy.data);
    free(f->stash.data);
    free(f->doc_id.data);
    free(f->doc_type.data);
    free(f->str.data);
    free(f->arena);
    free(f);
}


int
ngx_bulk_fhir_id_valid(const char *id, size_t len)
{
    size_t  i;

    /* [A-Za-z0-9.-] */
    static const unsigned char  ok[128] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0
    };

    if (len == 0 || len > 64) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) id[i] >= 128 || !ok[(unsigned char) id[i]]) {
            return 0;
        }
    }

    return 1;
}


/* buffers */

static int
ngx_bulk_fmt_grow(ngx_bulk_fmt_buf_t *b, size_t n)
{
    size_t          cap;
    unsigned char  *p;

    cap = b->cap ? b->cap : 4096;

    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            return -1;
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->cap = cap;

    return 0;
}


#define ngx_bulk_fmt_reserve(f, b, n)                                        \
    (((b)->cap - (b)->len >= (n)) ? 0 : ngx_bulk_fmt_oom(f, b, n))


static int
ngx_bulk_fmt_oom(ngx_bulk_fmt_t *f, ngx_bulk_fmt_buf_t *b, size_t n)
{
    if (ngx_bulk_fmt_grow(b, n) == 0) {
        return 0;
    }

    if (!f->failed) {
        f->failed = 1;
        snprintf(f->job->err, sizeof(f->job->err), "out of memory");
    }

    return -1;
}


static int
ngx_bulk_fmt_fail(ngx_bulk_fmt_t *f, const char *msg)
{
    if (!f->failed) {
        f->failed = 1;
        snprintf(f->job->err, sizeof(f->job->err), "%s at byte %zu", msg,
                 f->yh ? yajl_get_bytes_consumed(f->yh) : (size_t) 0);
    }

    return 0;
}


static int
ngx_bulk_fmt_raw(ngx_bulk_fmt_t *f, const void *p, size_t n)
{
    if (ngx_bulk_fmt_reserve(f, &f->out, n) != 0) {
        return -1;
    }

    memcpy(f->out.data + f->out.len, p, n);
    f->out.len += n;

    return 0;
}


/*
 * Whether any of 8 bytes needs escaping: one below 0x20, '"' or '\\'
 * (the bit tricks of "Bit Twiddling Hacks": a byte below n, a zero byte),
 * or has a bit of high set.
 */

static int
ngx_bulk_fmt_special8(const unsigned char *s, uint64_t high)
{
    uint64_t  v, q, b;

    memcpy(&v, s, 8);

    if (v & high) {
        return 1;
    }

    q = v ^ 0x2222222222222222ULL;
    b = v ^ 0x5c5c5c5c5c5c5c5cULL;

    return ((((v - 0x2020202020202020ULL) & ~v)
             | ((q - 0x0101010101010101ULL) & ~q)
             | ((b - 0x0101010101010101ULL) & ~b))
            & 0x8080808080808080ULL) != 0;
}


/* append an escaped JSON string body (no quotes) to b */

static int
ngx_bulk_fmt_escape(ngx_bulk_fmt_t *f, ngx_bulk_fmt_buf_t *b,
    const unsigned char *s, size_t len)
{
    size_t          i, start;
    unsigned char   c, *p;

    if (ngx_bulk_fmt_reserve(f, b, len) != 0) {
        return -1;
    }

    if (ngx_bulk_fmt_clean(f, s, len)) {
        memcpy(b->data + b->len, s, len);
        b->len += len;
        return 0;
    }

    start = 0;

    for (i = 0; i < len; i++) {

        /* runs of 8 bytes that need no escaping are skipped at once */

        while (len - i >= 8 && !ngx_bulk_fmt_special8(s + i, 0)) {
            i += 8;
        }

        if (i == len) {
            break;
        }

        c = s[i];

        if (!ngx_bulk_fmt_esc[c]) {
            continue;
        }

        if (ngx_bulk_fmt_reserve(f, b, (i - start) + 6 + (len - i)) != 0) {
            return -1;
        }

        memcpy(b->data + b->len, s + start, i - start);
        b->len += i - start;
        start = i + 1;

        p = b->data + b->len;
        *p++ = '\\';

        switch (c) {
        case '"':
            *p++ = '"';
            break;
        case '\\':
            *p++ = '\\';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = ngx_bulk_fmt_hex[c >> 4];
            *p++ = ngx_bulk_fmt_hex[c & 0xf];
        }

        b->len = p - b->data;
    }

    memcpy(b->data + b->len, s + start, len - start);
    b->len += len - start;

    return 0;
}


/* flush lazily opened containers and write a separating comma */

static int
ngx_bulk_fmt_pre(ngx_bulk_fmt_t *f)
{
    if (f->lazy.len) {
        if (ngx_bulk_fmt_raw(f, f->lazy.data, f->lazy.len) != 0) {
            return -1;
        }

        f->lazy.len = 0;
    }

    if (f->need_comma) {
        if (ngx_bulk_fmt_reserve(f, &f->out, 1) != 0) {
            return -1;
        }

        f->out.data[f->out.len++] = ',';
    }

    return 0;
}


static int
ngx_bulk_fmt_key(ngx_bulk_fmt_t *f, const void *s, size_t len)
{
    size_t          i;
    unsigned char  *p;

    if (ngx_bulk_fmt_pre(f) != 0
        || ngx_bulk_fmt_reserve(f, &f->out, len + 3) != 0)
    {
        return -1;
    }

    p = f->out.data + f->out.len;
    *p = '"';

    if (len < 64) {
        /* fast path: keys rarely need escaping */
        memcpy(p + 1, s, len);

        for (i = ngx_bulk_fmt_clean(f, (const unsigned char *) s, len)
                 ? len : 0;
             i < len;
             i++)
        {
            if (ngx_bulk_fmt_esc[p[1 + i]]) {
                goto slow;
            }
        }

        p[len + 1] = '"';
        p[len + 2] = ':';
        f->out.len += len + 3;
        f->need_comma = 0;
        return 0;
    }

slow:

    f->out.len++;

    if (ngx_bulk_fmt_escape(f, &f->out, s, len) != 0
        || ngx_bulk_fmt_raw(f, "\":", 2) != 0)
    {
        return -1;
    }

    f->need_comma = 0;

    return 0;
}


/* key "base" + capitalised name: "value" + "Quantity" / "dateTime" */

static int
ngx_bulk_fmt_key2(ngx_bulk_fmt_t *f, const char *base, size_t blen,
    const unsigned char *name, size_t nlen)
{
    unsigned char  c;

    if (ngx_bulk_fmt_pre(f) != 0 || ngx_bulk_fmt_raw(f, "\"", 1) != 0
        || ngx_bulk_fmt_escape(f, &f->out, (const unsigned char *) base, blen)
           != 0)
    {
        return -1;
    }

    if (nlen) {
        c = name[0];
        if (c >= 'a' && c <= 'z') {
            c -= 0x20;
        }

        if (ngx_bulk_fmt_escape(f, &f->out, &c, 1) != 0
            || ngx_bulk_fmt_escape(f, &f->out, name + 1, nlen - 1) != 0)
        {
            return -1;
        }
    }

    if (ngx_bulk_fmt_raw(f, "\":", 2) != 0) {
        return -1;
    }

    f->need_comma = 0;

    return 0;
}


static int
ngx_bulk_fmt_str(ngx_bulk_fmt_t *f, const void *s, size_t len)
{
    if (ngx_bulk_fmt_pre(f) != 0
        || ngx_bulk_fmt_reserve(f, &f->out, len + 2) != 0)
    {
        return -1;
    }

    f->out.data[f->out.len++] = '"';

    if (ngx_bulk_fmt_escape(f, &f->out, s, len) != 0
        || ngx_bulk_fmt_reserve(f, &f->out, 1) != 0)
    {
        return -1;
    }

    f->out.data[f->out.len++] = '"';
    f->need_comma = 1;

    return 0;
}


static int
ngx_bulk_fmt_kv(ngx_bulk_fmt_t *f, const char *k, size_t klen,
    const void *v, size_t vlen)
{
    if (ngx_bulk_fmt_key(f, k, klen) != 0
        || ngx_bulk_fmt_str(f, v, vlen) != 0)
    {
        return -1;
    }

    return 0;
}


static int
ngx_bulk_fmt_open(ngx_bulk_fmt_t *f, int c)
{
    if (ngx_bulk_fmt_pre(f) != 0
        || ngx_bulk_fmt_reserve(f, &f->out, 1) != 0)
    {
        return -1;
    }

    f->out.data[f->out.len++] = (unsigned char) c;
    f->need_comma = 0;

    return 0;
}


static int
ngx_bulk_fmt_close(ngx_bulk_fmt_t *f, int c, int wrap)
{
    if (ngx_bulk_fmt_reserve(f, &f->out, 2) != 0) {
        return -1;
    }

    f->out.data[f->out.len++] = (unsigned char) c;

    if (wrap) {
        f->out.data[f->out.len++] = '}';
        f->wraps--;
    }

    f->need_comma = 1;

    return 0;
}


/* open "key":{ or "key":[ lazily: written only if something goes inside */

static int
ngx_bulk_fmt_lazy_open(ngx_bulk_fmt_t *f, ngx_bulk_fmt_frame_t *fr,
    const char *key, size_t len, int c)
{
    ngx_bulk_fmt_buf_t  *b;

    b = &f->lazy;

    if (ngx_bulk_fmt_reserve(f, b, len + 5) != 0) {
        return -1;
    }

    fr->lazy = 1;
    fr->lazy_off = b->len;
    fr->saved_comma = f->need_comma;

    if (f->need_comma) {
        b->data[b->len++] = ',';
    }

    b->data[b->len++] = '"';
    memcpy(b->data + b->len, key, len);
    b->len += len;
    b->data[b->len++] = '"';
    b->data[b->len++] = ':';
    b->data[b->len++] = (unsigned char) c;

    f->need_comma = 0;

    return 0;
}


static int
ngx_bulk_fmt_lazy_close(ngx_bulk_fmt_t *f, ngx_bulk_fmt_frame_t *fr, int c)
{
    if (f->lazy.len > fr->lazy_off) {
        /* nothing was written inside: drop the container */
        f->lazy.len = fr->lazy_off;
        f->need_comma = fr->saved_comma;
        return 0;
    }

    return ngx_bulk_fmt_close(f, c, fr->wrap);
}


/*
 * Find the string value of a top-level key of the object whose '{' ends
 * right before p, in raw bytes.  Returns 1 and the raw bytes between the
 * quotes when found and free of escapes, 0 otherwise (also on malformed
 * input, which yajl reports later).
 */

static int
ngx_bulk_fmt_prescan(const unsigned char *p, const unsigned char *end,
    const char *key, size_t klen, const unsigned char **val, size_t *vlen)
{
    int                   depth, match;
    const unsigned char  *s;

    for ( ;; ) {

        /* at a member: whitespace, key */

        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'
                           || *p == '\r'))
        {
            p++;
        }

        if (p >= end || *p != '"') {
            return 0;
        }

        s = ++p;

        while (p < end && *p != '"') {
            if (*p == '\\' && end - p > 1) {
                p++;
            }

            p++;
        }

        if (p >= end) {
            return 0;
        }

        match = ((size_t) (p - s) == klen && memcmp(s, key, klen) == 0);
        p++;

        while (p < end && *p != ':') {
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                return 0;
            }

            p++;
        }

        if (p >= end) {
            return 0;
        }

        p++;

        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'
                           || *p == '\r'))
        {
            p++;
        }

        if (p >= end) {
            return 0;
        }

        if (match) {
            if (*p != '"') {
                return 0;
            }

            s = ++p;

            while (p < end && *p != '"' && *p != '\\') {
                p++;
            }

            if (p >= end || *p != '"') {
                return 0;
            }

            *val = s;
            *vlen = p - s;

            return 1;
        }

        /* skip the value */

        depth = 0;

        for ( ;; ) {
            if (p >= end) {
                return 0;
            }

            switch (*p) {

            case '"':
                p++;

                while (p < end && *p != '"') {
                    if (*p == '\\' && end - p > 1) {
                        p++;
                    }

                    p++;
                }

                if (p >= end) {
                    return 0;
                }

                break;

            case '{':
            case '[':
                depth++;
                break;

            case '}':
            case ']':
                if (depth == 0) {
                    return 0;
                }

                depth--;
                break;

            case ',':
                if (depth == 0) {
                    goto next;
                }

                break;
            }

            p++;
        }

    next:

        p++;
    }
}


static uint16_t
ngx_bulk_fmt_res_type(ngx_bulk_fmt_t *f, const char **name, size_t *len)
{
    int                   t;
    size_t                vlen;
    const unsigned char  *val;

    if (!ngx_bulk_fmt_prescan(f->in + ngx_bulk_fmt_consumed(f),
                              f->in + f->in_len, "resourceType", 12,
                              &val, &vlen))
    {
        return NGX_BULK_FMT_NOTYPE;
    }

    if (name) {
        *name = (const char *) val;
        *len = vlen;
    }

    t = ngx_bulk_fhir_resource_type((const char *) val, vlen);

    return t < 0 ? NGX_BULK_FMT_NOTYPE : (uint16_t) t;
}


static ngx_bulk_fmt_frame_t *
ngx_bulk_fmt_push(ngx_bulk_fmt_t *f, int mode, int array, uint16_t type,
    int wrap)
{
    ngx_bulk_fmt_frame_t  *fr;

    fr = &f->frames[f->nframes++];
    f->fr = fr;

    fr->mode = (uint8_t) mode;
    fr->array = (uint8_t) array;
    fr->wrap = (uint8_t) wrap;
    fr->lazy = 0;
    fr->seen = 0;
    fr->have = 0;
    fr->type = type;
    fr->stash_base = f->stash.len;

    return fr;
}


static void
ngx_bulk_fmt_pop(ngx_bulk_fmt_t *f)
{
    f->stash.len = f->fr->stash_base;
    f->nframes--;
    f->fr = f->nframes ? &f->frames[f->nframes - 1] : NULL;
}


/* the context of the value about to start */

static ngx_bulk_fmt_ctx_t *
ngx_bulk_fmt_ctx(ngx_bulk_fmt_t *f)
{
    if (f->fr->array) {
        return &f->fr->item;
    }

    return &f->next;
}


/* write a pending key that was held back, for a value we do not convert */

static int
ngx_bulk_fmt_pending_key(ngx_bulk_fmt_t *f, ngx_bulk_fmt_ctx_t *c)
{
    const ngx_bulk_fhir_elem_t  *e;

    switch (c->mode) {

    case NGX_BULK_FMT_REFSTR:
        return ngx_bulk_fmt_key(f, "reference", 9);

    case NGX_BULK_FMT_COLLECT:
        return ngx_bulk_fmt_key(f, ngx_bulk_fmt_slot_names[c->slot],
                                ngx_bulk_fmt_slot_lens[c->slot]);

    case NGX_BULK_FMT_WRAP:
        e = c->elem;
        return ngx_bulk_fmt_key(f, ngx_bulk_fhir_str(e->name), e->len);

    case NGX_BULK_FMT_META:
        return ngx_bulk_fmt_key(f, "meta", 4);

    case NGX_BULK_FMT_META_EXT:
        return ngx_bulk_fmt_key(f, "extension", 9);
    }

    return 0;
}


/* non-container value: returns 1 to write it, 0 if done, -1 on error */

static int
ngx_bulk_fmt_scalar(ngx_bulk_fmt_t *f)
{
    ngx_bulk_fmt_ctx_t  *c;

    if (f->fr == NULL) {
        ngx_bulk_fmt_fail(f, "document is not a JSON object");
        return -1;
    }

    c = ngx_bulk_fmt_ctx(f);

    switch (c->mode) {

    case NGX_BULK_FMT_SKIP:
        return 0;

    case NGX_BULK_FMT_META:
        if (f->inject) {
            return 0;
        }

        /* fall through */

    case NGX_BULK_FMT_META_EXT:
        if (c->mode == NGX_BULK_FMT_META_EXT && f->inject
            && f->dir == NGX_BULK_FMT_TO_FHIR)
        {
            return 0;
        }

        /* fall through */

    case NGX_BULK_FMT_REFSTR:
    case NGX_BULK_FMT_COLLECT:
    case NGX_BULK_FMT_WRAP:
        if (ngx_bulk_fmt_pending_key(f, c) != 0) {
            return -1;
        }

        break;
    }

    return 1;
}


static int
ngx_bulk_fmt_after_scalar(ngx_bulk_fmt_t *f)
{
    ngx_bulk_fmt_ctx_t  *c;

    c = ngx_bulk_fmt_ctx(f);

    if (c->wrap) {
        f->wraps--;
        return ngx_bulk_fmt_close(f, '}', 0);
    }

    return 0;
}


static int
ngx_bulk_fmt_null(void *ctx)
{
    int              rc;
    ngx_bulk_fmt_t  *f;

    f = ctx;
    f->capture = 0;

    if (f->skip) {
        return 1;
    }

    rc = ngx_bulk_fmt_scalar(f);

    if (rc <= 0) {
        return rc == 0;
    }

    if (ngx_bulk_fmt_pre(f) != 0 || ngx_bulk_fmt_raw(f, "null", 4) != 0) {
        return 0;
    }

    f->need_comma = 1;

    return ngx_bulk_fmt_after_scalar(f) == 0;
}


static int
ngx_bulk_fmt_boolean(void *ctx, int v)
{
    int              rc;
    ngx_bulk_fmt_t  *f;

    f = ctx;
    f->capture = 0;

    if (f->skip) {
        return 1;
    }

    rc = ngx_bulk_fmt_scalar(f);

    if (rc <= 0) {
        return rc == 0;
    }

    if (ngx_bulk_fmt_pre(f) != 0
        || ngx_bulk_fmt_raw(f, v ? "true" : "false", v ? 4 : 5) != 0)
    {
        return 0;
    }

    f->need_comma = 1;

    return ngx_bulk_fmt_after_scalar(f) == 0;
}


static int
ngx_bulk_fmt_number(void *ctx, const char *s, size_t len)
{
    int              rc;
    ngx_bulk_fmt_t  *f;

    f = ctx;
    f->capture = 0;

    if (f->skip) {
        return 1;
    }

    rc = ngx_bulk_fmt_scalar(f);

    if (rc <= 0) {
        return rc == 0;
    }

    if (ngx_bulk_fmt_pre(f) != 0 || ngx_bulk_fmt_raw(f, s, len) != 0) {
        return 0;
    }

    f->need_comma = 1;

    return ngx_bulk_fmt_after_scalar(f) == 0;
}


static int
ngx_bulk_fmt_copy(ngx_bulk_fmt_t *f, ngx_bulk_fmt_buf_t *b,
    const unsigned char *s, size_t len)
{
    b->len = 0;

    if (ngx_bulk_fmt_reserve(f, b, len + 1) != 0) {
        return -1;
    }

    memcpy(b->data, s, len);
    b->data[len] = '\0';
    b->len = len;

    return 0;
}


/* FHIR "reference" string -> Aidbox keys */

static int
ngx_bulk_fmt_refstr(ngx_bulk_fmt_t *f, ngx_bulk_fmt_frame_t *fr,
    const unsigned char *s, size_t len)
{
    size_t  i;

    if (len && s[0] == '#') {
        return ngx_bulk_fmt_kv(f, "localRef", 8, s + 1, len - 1);
    }

    if (len && s[0] >= 'A' && s[0] <= 'Z') {

        for (i = 1; i < len; i++) {
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                  || (s[i] >= '0' && s[i] <= '9')))
            {
                break;
            }
        }

        if (i < len && s[i] == '/'
            && ngx_bulk_fhir_id_valid((const char *) s + i + 1, len - i - 1))
        {
            if (ngx_bulk_fmt_kv(f, "resourceType", 12, s, i) != 0
                || ngx_bulk_fmt_kv(f, "id", 2, s + i + 1, len - i - 1) != 0)
            {
                return -1;
            }

            fr->seen = 1;
            return 0;
        }
    }

    return ngx_bulk_fmt_kv(f, "uri", 3, s, len);
}


static int
ngx_bulk_fmt_string(void *ctx, const unsigned char *s, size_t len)
{
    int                    rc;
    ngx_bulk_fmt_t        *f;
    ngx_bulk_fmt_ctx_t    *c;
    ngx_bulk_fmt_frame_t  *fr;

    f = ctx;

    if (f->capture) {
        if (f->capture == 1) {
            if (ngx_bulk_fmt_copy(f, &f->doc_id, s, len) != 0) {
                return 0;
            }

            f->have_id = 1;

        } else {
            if (ngx_bulk_fmt_copy(f, &f->doc_type, s, len) != 0) {
                return 0;
            }

            f->have_type = 1;
        }

        f->capture = 0;
    }

    if (f->skip) {
        return 1;
    }

    if (f->fr == NULL) {
        return ngx_bulk_fmt_fail(f, "document is not a JSON object");
    }

    c = ngx_bulk_fmt_ctx(f);

    switch (c->mode) {

    case NGX_BULK_FMT_SKIP:
        return 1;

    case NGX_BULK_FMT_REFSTR:
        return ngx_bulk_fmt_refstr(f, f->fr, s, len) == 0;

    case NGX_BULK_FMT_COLLECT:
        fr = f->fr;

        if (ngx_bulk_fmt_reserve(f, &f->stash, len) != 0) {
            return 0;
        }

        fr->off[c->slot] = f->stash.len;
        fr->len[c->slot] = len;
        fr->have |= 1 << c->slot;
        memcpy(f->stash.data + f->stash.len, s, len);
        f->stash.len += len;

        return 1;
    }

    rc = ngx_bulk_fmt_scalar(f);

    if (rc <= 0) {
        return rc == 0;
    }

    if (ngx_bulk_fmt_str(f, s, len) != 0) {
        return 0;
    }

    return ngx_bulk_fmt_after_scalar(f) == 0;
}


static int
ngx_bulk_fmt_depth(ngx_bulk_fmt_t *f)
{
    /* the output is deeper by the choice wrappers open (to Aidbox) */

    if (++f->depth + f->wraps > NGX_BULK_FMT_MAX_DEPTH) {
        return ngx_bulk_fmt_fail(f, "JSON nesting too deep");
    }

    return 1;
}


static int
ngx_bulk_fmt_meta_entry(ngx_bulk_fmt_t *f)
{
    ngx_bulk_fmt_job_t  *job;

    job = f->job;

    if (ngx_bulk_fmt_open(f, '{') != 0
        || ngx_bulk_fmt_kv(f, "url", 3, "ex:createdAt", 12) != 0
        || ngx_bulk_fmt_kv(f, "valueInstant", 12, job->created_at,
                           job->created_at_len) != 0
        || ngx_bulk_fmt_close(f, '}', 0) != 0)
    {
        return -1;
    }

    return 0;
}


/* inject: the keys appended at the end of meta */

static int
ngx_bulk_fmt_meta_tail(ngx_bulk_fmt_t *f, int ext_seen)
{
    ngx_bulk_fmt_job_t  *job;

    job = f->job;

    if (job->version_id
        && ngx_bulk_fmt_kv(f, "versionId", 9, job->version_id,
                           job->version_id_len) != 0)
    {
        return -1;
    }

    if (job->last_updated
        && ngx_bulk_fmt_kv(f, "lastUpdated", 11, job->last_updated,
                           job->last_updated_len) != 0)
    {
        return -1;
    }

    if (job->created_at == NULL) {
        return 0;
    }

    if (f->dir != NGX_BULK_FMT_TO_FHIR) {
        return ngx_bulk_fmt_kv(f, "createdAt", 9, job->created_at,
                               job->created_at_len);
    }

    if (ext_seen) {
        return 0;
    }

    if (ngx_bulk_fmt_key(f, "extension", 9) != 0
        || ngx_bulk_fmt_open(f, '[') != 0
        || ngx_bulk_fmt_meta_entry(f) != 0
        || ngx_bulk_fmt_close(f, ']', 0) != 0)
    {
        return -1;
    }

    return 0;
}


static int
ngx_bulk_fmt_start_top(ngx_bulk_fmt_t *f)
{
    int                    t;
    size_t                 tlen;
    uint16_t               type;
    const char            *tname, *canon;
    ngx_bulk_fmt_job_t    *job;

    job = f->job;
    type = NGX_BULK_FMT_NOTYPE;
    tname = job->type;
    tlen = job->type_len;

    if (tname) {
        if (f->dir != NGX_BULK_FMT_NONE) {
            t = ngx_bulk_fhir_resource_type(tname, tlen);

            if (t < 0) {
                canon = ngx_bulk_fhir_type_canonical(tname, tlen);
                if (canon) {
                    t = ngx_bulk_fhir_resource_type(canon, strlen(canon));
                }
            }

            type = t < 0 ? NGX_BULK_FMT_NOTYPE : (uint16_t) t;
        }

    } else if (f->dir != NGX_BULK_FMT_NONE || f->inject) {
        type = ngx_bulk_fmt_res_type(f, &tname, &tlen);

        if (f->dir == NGX_BULK_FMT_NONE) {
            type = NGX_BULK_FMT_NOTYPE;
        }
    }

    if (ngx_bulk_fmt_open(f, '{') != 0) {
        return 0;
    }

    if (f->inject) {
        if (tname && ngx_bulk_fmt_kv(f, "resourceType", 12, tname, tlen) != 0)
        {
            return 0;
        }

        if (job->id && ngx_bulk_fmt_kv(f, "id", 2, job->id, job->id_len) != 0)
        {
            return 0;
        }
    }

    ngx_bulk_fmt_push(f, NGX_BULK_FMT_TOP, 0, type, 0);

    return 1;
}


static int
ngx_bulk_fmt_start_map(void *ctx)
{
    uint16_t               type;
    size_t                 vlen;
    ngx_bulk_fmt_t        *f;
    ngx_bulk_fmt_ctx_t    *c;
    ngx_bulk_fmt_frame_t  *fr;
    const unsigned char   *val;

    f = ctx;
    f->capture = 0;

    if (f->skip) {
        f->skip++;
        f->depth++;
        return 1;
    }

    if (!ngx_bulk_fmt_depth(f)) {
        return 0;
    }

    if (f->fr == NULL) {
        return ngx_bulk_fmt_start_top(f);
    }

    c = ngx_bulk_fmt_ctx(f);

    switch (c->mode) {

    case NGX_BULK_FMT_SKIP:
        f->skip = 1;
        return 1;

    case NGX_BULK_FMT_REFSTR:
    case NGX_BULK_FMT_COLLECT:
        if (ngx_bulk_fmt_pending_key(f, c) != 0
            || ngx_bulk_fmt_open(f, '{') != 0)
        {
            return 0;
        }

        ngx_bulk_fmt_push(f, NGX_BULK_FMT_PASS, 0, 0, 0);
        return 1;

    case NGX_BULK_FMT_WRAP:
        fr = ngx_bulk_fmt_push(f, NGX_BULK_FMT_WRAP, 0, 0, 0);
        fr->elem = c->elem;
        return 1;

    case NGX_BULK_FMT_META:
        fr = f->fr;
        fr->seen = 1;
        type = f->dir == NGX_BULK_FMT_NONE ? NGX_BULK_FMT_NOTYPE
                                          : NGX_BULK_FHIR_TYPE_META;
        fr = ngx_bulk_fmt_push(f, NGX_BULK_FMT_META, 0, type, 0);

        return ngx_bulk_fmt_lazy_open(f, fr, "meta", 4, '{') == 0;

    case NGX_BULK_FMT_META_EXT:
        if (f->inject && f->dir == NGX_BULK_FMT_TO_FHIR) {
            f->skip = 1;
            return 1;
        }

        if (ngx_bulk_fmt_pending_key(f, c) != 0
            || ngx_bulk_fmt_open(f, '{') != 0)
        {
            return 0;
        }

        ngx_bulk_fmt_push(f, NGX_BULK_FMT_PASS, 0, 0, 0);
        return 1;

    case NGX_BULK_FMT_META_ITEM:
        if (ngx_bulk_fmt_prescan(f->in + ngx_bulk_fmt_consumed(f),
                                 f->in + f->in_len, "url", 3, &val, &vlen)
            && vlen == 12 && memcmp(val, "ex:createdAt", 12) == 0)
        {
            f->skip = 1;
            return 1;
        }

        if (ngx_bulk_fmt_open(f, '{') != 0) {
            return 0;
        }

        if (f->dir == NGX_BULK_FMT_NONE) {
            ngx_bulk_fmt_push(f, NGX_BULK_FMT_PASS, 0, 0, 0);

        } else {
            ngx_bulk_fmt_push(f, NGX_BULK_FMT_TYPE, 0,
                              NGX_BULK_FHIR_TYPE_EXTENSION, 0);
        }

        return 1;

    case NGX_BULK_FMT_RES:
        type = ngx_bulk_fmt_res_type(f, NULL, NULL);

        if (ngx_bulk_fmt_open(f, '{') != 0) {
            return 0;
        }

        ngx_bulk_fmt_push(f, type == NGX_BULK_FMT_NOTYPE ? NGX_BULK_FMT_PASS
                                                        : NGX_BULK_FMT_TYPE,
                          0, type, c->wrap);
        return 1;

    default: /* PASS, TYPE, REF */
        if (ngx_bulk_fmt_open(f, '{') != 0) {
            return 0;
        }

        ngx_bulk_fmt_push(f, c->mode, 0, c->type, c->wrap);
        return 1;
    }
}


static int
ngx_bulk_fmt_typed_key(ngx_bulk_fmt_t *f, uint16_t type,
    const unsigned char *s, size_t len)
{
    ngx_bulk_fmt_ctx_t           *n;
    const ngx_bulk_fhir_elem_t   *e;

    n = &f->next;
    n->wrap = 0;

    if (type == NGX_BULK_FMT_NOTYPE) {
        goto pass;
    }

    e = ngx_bulk_fhir_elem(type, (const char *) s, len);

    if (e == NULL) {
        goto pass;
    }

    switch (e->kind) {

    case NGX_BULK_FHIR_COMPLEX:
        n->mode = NGX_BULK_FMT_TYPE;
        n->type = e->type;
        break;

    case NGX_BULK_FHIR_REFERENCE:
        n->mode = NGX_BULK_FMT_REF;
        n->type = NGX_BULK_FHIR_TYPE_REFERENCE;
        break;

    case NGX_BULK_FHIR_RESOURCE:
        n->mode = NGX_BULK_FMT_RES;
        break;

    case NGX_BULK_FHIR_CHOICE:
        if (f->dir != NGX_BULK_FMT_TO_FHIR) {
            goto pass;
        }

        n->mode = NGX_BULK_FMT_WRAP;
        n->elem = e;
        return 1;

    case NGX_BULK_FHIR_VARIANT:
        if (f->dir != NGX_BULK_FMT_TO_AIDBOX) {
            goto pass;
        }

        if (f->depth + f->wraps + 1 > NGX_BULK_FMT_MAX_DEPTH) {
            return ngx_bulk_fmt_fail(f, "JSON nesting too deep");
        }

        f->wraps++;

        if (ngx_bulk_fmt_key(f, s, e->len - e->tlen) != 0
            || ngx_bulk_fmt_open(f, '{') != 0
            || ngx_bulk_fmt_key(f, ngx_bulk_fhir_str(e->tname), e->tlen) != 0)
        {
            return 0;
        }

        n->wrap = 1;
        n->type = e->type;
        n->mode = e->vkind == NGX_BULK_FHIR_COMPLEX ? NGX_BULK_FMT_TYPE
                  : e->vkind == NGX_BULK_FHIR_REFERENCE ? NGX_BULK_FMT_REF
                  : NGX_BULK_FMT_PASS;
        return 1;

    default:
        goto pass;
    }

    return ngx_bulk_fmt_key(f, s, len) == 0;

pass:

    n->mode = NGX_BULK_FMT_PASS;

    return ngx_bulk_fmt_key(f, s, len) == 0;
}


#define ngx_bulk_fmt_is(s, len, lit)                                         \
    ((len) == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)


static int
ngx_bulk_fmt_map_key(void *ctx, const unsigned char *s, size_t len)
{
    int                            slot;
    ngx_bulk_fmt_t                *f;
    ngx_bulk_fmt_ctx_t            *n;
    ngx_bulk_fmt_frame_t          *fr;
    const ngx_bulk_fhir_choice_t  *ch;
    const ngx_bulk_fhir_elem_t    *e;

    f = ctx;

    if (f->skip) {
        return 1;
    }

    fr = f->fr;
    n = &f->next;
    n->wrap = 0;

    switch (fr->mode) {

    case NGX_BULK_FMT_PASS:
        n->mode = NGX_BULK_FMT_PASS;
        n->wrap = 0;
        return ngx_bulk_fmt_key(f, s, len) == 0;

    case NGX_BULK_FMT_TOP:
        if (ngx_bulk_fmt_is(s, len, "id")) {
            f->capture = 1;

            if (f->strip || f->inject) {
                n->mode = NGX_BULK_FMT_SKIP;
                return 1;
            }

        } else if (ngx_bulk_fmt_is(s, len, "resourceType")) {
            f->capture = 2;

            if (f->strip || f->inject) {
                n->mode = NGX_BULK_FMT_SKIP;
                return 1;
            }

        } else if ((f->strip || f->inject)
                   && ngx_bulk_fmt_is(s, len, "meta"))
        {
            n->mode = NGX_BULK_FMT_META;
            n->wrap = 0;
            return 1;
        }

        break;

    case NGX_BULK_FMT_META:
        if (ngx_bulk_fmt_is(s, len, "versionId")
            || ngx_bulk_fmt_is(s, len, "lastUpdated")
            || ngx_bulk_fmt_is(s, len, "createdAt"))
        {
            n->mode = NGX_BULK_FMT_SKIP;
            return 1;
        }

        if (ngx_bulk_fmt_is(s, len, "extension")) {
            n->mode = NGX_BULK_FMT_META_EXT;
            n->wrap = 0;
            return 1;
        }

        break;

    case NGX_BULK_FMT_REF:
        if (f->dir == NGX_BULK_FMT_TO_AIDBOX) {
            if (ngx_bulk_fmt_is(s, len, "reference")) {
                n->mode = NGX_BULK_FMT_REFSTR;
                return 1;
            }

            if (ngx_bulk_fmt_is(s, len, "id")) {
                /* element id: emitted at the end unless it would clash */
                n->mode = NGX_BULK_FMT_COLLECT;
                n->slot = NGX_BULK_FMT_SLOT_ID;
                return 1;
            }

            break;
        }

        slot = -1;

        switch (len) {
        case 2:
            if (memcmp(s, "id", 2) == 0) {
                slot = NGX_BULK_FMT_SLOT_ID;
            }
            break;
        case 3:
            if (memcmp(s, "uri", 3) == 0) {
                slot = NGX_BULK_FMT_SLOT_URI;
            }
            break;
        case 8:
            if (memcmp(s, "localRef", 8) == 0) {
                slot = NGX_BULK_FMT_SLOT_LOCAL;
            }
            break;
        case 12:
            if (memcmp(s, "resourceType", 12) == 0) {
                slot = NGX_BULK_FMT_SLOT_RT;
            }
            break;
        }

        if (slot >= 0) {
            n->mode = NGX_BULK_FMT_COLLECT;
            n->slot = (uint8_t) slot;
            n->wrap = 0;
            return 1;
        }

        break;

    case NGX_BULK_FMT_WRAP:
        e = fr->elem;
        ch = ngx_bulk_fhir_choice(e, (const char *) s, len);

        if (ngx_bulk_fmt_key2(f, ngx_bulk_fhir_str(e->name), e->len, s, len)
            != 0)
        {
            return 0;
        }

        n->wrap = 0;
        n->mode = NGX_BULK_FMT_PASS;

        if (ch) {
            n->type = ch->type;

            if (ch->kind == NGX_BULK_FHIR_COMPLEX) {
                n->mode = NGX_BULK_FMT_TYPE;

            } else if (ch->kind == NGX_BULK_FHIR_REFERENCE) {
                n->mode = NGX_BULK_FMT_REF;
            }
        }

        return 1;
    }

    return ngx_bulk_fmt_typed_key(f, fr->type, s, len);
}


static int
ngx_bulk_fmt_emit_slot(ngx_bulk_fmt_t *f, ngx_bulk_fmt_frame_t *fr, int i)
{
    return ngx_bulk_fmt_kv(f, ngx_bulk_fmt_slot_names[i],
                           ngx_bulk_fmt_slot_lens[i],
                           f->stash.data + fr->off[i], fr->len[i]);
}


/* Aidbox -> FHIR: the collected keys of a Reference become "reference" */

static int
ngx_bulk_fmt_end_ref(ngx_bulk_fmt_t *f, ngx_bulk_fmt_frame_t *fr)
{
    int             i;
    unsigned        used;
    unsigned char  *d;

    used = 0;
    d = f->stash.data;

    if ((fr->have & 3) == 3) {
        used = 3;

        if (ngx_bulk_fmt_key(f, "reference", 9) != 0
            || ngx_bulk_fmt_pre(f) != 0
            || ngx_bulk_fmt_raw(f, "\"", 1) != 0
            || ngx_bulk_fmt_escape(f, &f->out,
                                   d + fr->off[NGX_BULK_FMT_SLOT_RT],
                                   fr->len[NGX_BULK_FMT_SLOT_RT]) != 0
            || ngx_bulk_fmt_raw(f, "/", 1) != 0
            || ngx_bulk_fmt_escape(f, &f->out,
                                   d + fr->off[NGX_BULK_FMT_SLOT_ID],
                                   fr->len[NGX_BULK_FMT_SLOT_ID]) != 0
            || ngx_bulk_fmt_raw(f, "\"", 1) != 0)
        {
            return -1;
        }

        f->need_comma = 1;

    } else if (fr->have & (1 << NGX_BULK_FMT_SLOT_LOCAL)) {
        used = 1 << NGX_BULK_FMT_SLOT_LOCAL;

        if (ngx_bulk_fmt_key(f, "reference", 9) != 0
            || ngx_bulk_fmt_pre(f) != 0
            || ngx_bulk_fmt_raw(f, "\"#", 2) != 0
            || ngx_bulk_fmt_escape(f, &f->out,
                                   d + fr->off[NGX_BULK_FMT_SLOT_LOCAL],
                                   fr->len[NGX_BULK_FMT_SLOT_LOCAL]) != 0
            || ngx_bulk_fmt_raw(f, "\"", 1) != 0)
        {
            return -1;
        }

        f->need_comma = 1;

    } else if (fr->have & (1 << NGX_BULK_FMT_SLOT_URI)) {
        used = 1 << NGX_BULK_FMT_SLOT_URI;

        if (ngx_bulk_fmt_kv(f, "reference", 9,
                            d + fr->off[NGX_BULK_FMT_SLOT_URI],
                            fr->len[NGX_BULK_FMT_SLOT_URI]) != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < 4; i++) {
        if ((fr->have & ~used) & (1u << i)) {
            if (ngx_bulk_fmt_emit_slot(f, fr, i) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


static int
ngx_bulk_fmt_end_map(void *ctx)
{
    ngx_bulk_fmt_t        *f;
    ngx_bulk_fmt_frame_t  *fr;

    f = ctx;
    f->depth--;

    if (f->skip) {
        f->skip--;
        return 1;
    }

    fr = f->fr;

    switch (fr->mode) {

    case NGX_BULK_FMT_WRAP:
        ngx_bulk_fmt_pop(f);
        return 1;

    case NGX_BULK_FMT_REF:
        if (fr->have == 0) {
            break;
        }

        if (f->dir == NGX_BULK_FMT_TO_FHIR) {
            if (ngx_bulk_fmt_end_ref(f, fr) != 0) {
                return 0;
            }

        } else if (!fr->seen
                   && ngx_bulk_fmt_emit_slot(f, fr, NGX_BULK_FMT_SLOT_ID) != 0)
        {
            return 0;
        }

        break;

    case NGX_BULK_FMT_META:
        if (f->inject && ngx_bulk_fmt_meta_tail(f, fr->seen) != 0) {
            return 0;
        }

        if (ngx_bulk_fmt_lazy_close(f, fr, '}') != 0) {
            return 0;
        }

        ngx_bulk_fmt_pop(f);
        return 1;

    case NGX_BULK_FMT_TOP:
        if (f->inject && !fr->seen) {
            if (ngx_bulk_fmt_key(f, "meta", 4) != 0
                || ngx_bulk_fmt_open(f, '{') != 0
                || ngx_bulk_fmt_meta_tail(f, 0) != 0
                || ngx_bulk_fmt_close(f, '}', 0) != 0)
            {
                return 0;
            }
        }

        break;
    }

    if (ngx_bulk_fmt_close(f, '}', fr->wrap) != 0) {
        return 0;
    }

    ngx_bulk_fmt_pop(f);

    return 1;
}


static int
ngx_bulk_fmt_start_array(void *ctx)
{
    ngx_bulk_fmt_t        *f;
    ngx_bulk_fmt_ctx_t    *c;
    ngx_bulk_fmt_frame_t  *fr;

    f = ctx;
    f->capture = 0;

    if (f->skip) {
        f->skip++;
        f->depth++;
        return 1;
    }

    if (!ngx_bulk_fmt_depth(f)) {
        return 0;
    }

    if (f->fr == NULL) {
        return ngx_bulk_fmt_fail(f, "document is not a JSON object");
    }

    c = ngx_bulk_fmt_ctx(f);

    switch (c->mode) {

    case NGX_BULK_FMT_SKIP:
        f->skip = 1;
        return 1;

    case NGX_BULK_FMT_META:
        if (f->inject) {
            f->skip = 1;
            return 1;
        }

        /* fall through */

    case NGX_BULK_FMT_REFSTR:
    case NGX_BULK_FMT_COLLECT:
    case NGX_BULK_FMT_WRAP:
        if (ngx_bulk_fmt_pending_key(f, c) != 0
            || ngx_bulk_fmt_open(f, '[') != 0)
        {
            return 0;
        }

        fr = ngx_bulk_fmt_push(f, NGX_BULK_FMT_PASS, 1, 0, 0);
        fr->item.mode = NGX_BULK_FMT_PASS;
        fr->item.wrap = 0;
        return 1;

    case NGX_BULK_FMT_META_EXT:
        f->fr->seen = 1;
        fr = ngx_bulk_fmt_push(f, NGX_BULK_FMT_META_EXT, 1, 0, 0);
        fr->item.mode = NGX_BULK_FMT_META_ITEM;
        fr->item.wrap = 0;

        return ngx_bulk_fmt_lazy_open(f, fr, "extension", 9, '[') == 0;

    case NGX_BULK_FMT_META_ITEM:
        if (ngx_bulk_fmt_open(f, '[') != 0) {
            return 0;
        }

        fr = ngx_bulk_fmt_push(f, NGX_BULK_FMT_PASS, 1, 0, 0);
        fr->item.mode = NGX_BULK_FMT_PASS;
        fr->item.wrap = 0;
        return 1;

    default:
        if (ngx_bulk_fmt_open(f, '[') != 0) {
            return 0;
        }

        fr = ngx_bulk_fmt_push(f, c->mode, 1, c->type, c->wrap);
        fr->item = *c;
        fr->item.wrap = 0;
        return 1;
    }
}


static int
ngx_bulk_fmt_end_array(void *ctx)
{
    ngx_bulk_fmt_t        *f;
    ngx_bulk_fmt_frame_t  *fr;

    f = ctx;
    f->depth--;

    if (f->skip) {
        f->skip--;
        return 1;
    }

    fr = f->fr;

    if (fr->mode == NGX_BULK_FMT_META_EXT) {
        if (f->inject && f->dir == NGX_BULK_FMT_TO_FHIR
            && f->job->created_at && ngx_bulk_fmt_meta_entry(f) != 0)
        {
            return 0;
        }

        if (ngx_bulk_fmt_lazy_close(f, fr, ']') != 0) {
            return 0;
        }

    } else if (ngx_bulk_fmt_close(f, ']', fr->wrap) != 0) {
        return 0;
    }

    ngx_bulk_fmt_pop(f);

    return 1;
}


/*
 * The fast parser: strict JSON of the common forms, calling the same
 * callbacks as yajl does.  0: parsed; -1: not taken (anything invalid, a
 * byte yajl might judge otherwise, a \u escape of a surrogate or of NUL,
 * whitespace other than space, tab, CR and LF, a callback that failed),
 * and the conversion starts again with yajl.  Strings without escapes go
 * to the callbacks in place, as yajl gives them.
 */

#define ngx_bulk_fmt_ws(p, end)                                              \
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t'                 \
                       || *p == '\r'))                                       \
    {                                                                        \
        p++;                                                                 \
    }


/* a string after its '"': its end past the closing '"', or NULL */

static const unsigned char *
ngx_bulk_fmt_parse_str(ngx_bulk_fmt_t *f, const unsigned char *p,
    const unsigned char *end, const unsigned char **s, size_t *len)
{
    unsigned int          c, u, n;
    unsigned char        *d;
    const unsigned char  *start;

    start = p;

    for ( ;; ) {
        /* and those of non-ASCII */

        while (end - p >= 8
               && !ngx_bulk_fmt_special8(p, 0x8080808080808080ULL))
        {
            p += 8;
        }

        while (p < end && !ngx_bulk_fmt_stop[*p]) {
            p++;
        }

        if (p >= end) {
            return NULL;
        }

        c = *p;

        if (c == '"') {
            *s = start;
            *len = p - start;
            f->clean = start;
            f->clean_end = p;
            return p + 1;
        }

        if (c == '\\') {
            break;
        }

        if (c < 0x80) {
            return NULL;    /* a control character */
        }

        /* UTF-8: no overlong form, no surrogate, up to U+10FFFF */

        if (c >= 0xc2 && c <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80) {
                return NULL;
            }

            p += 2;

        } else if (c >= 0xe0 && c <= 0xef) {
            if (end - p < 3 || (p[1] & 0xc0) != 0x80
                || (p[2] & 0xc0) != 0x80
                || (c == 0xe0 && p[1] < 0xa0)
                || (c == 0xed && p[1] >= 0xa0))
            {
                return NULL;
            }

            p += 3;

        } else if (c >= 0xf0 && c <= 0xf4) {
            if (end - p < 4 || (p[1] & 0xc0) != 0x80
                || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80
                || (c == 0xf0 && p[1] < 0x90)
                || (c == 0xf4 && p[1] >= 0x90))
            {
                return NULL;
            }

            p += 4;

        } else {
            return NULL;
        }
    }

    /* escapes: the string is copied, unescaped, into f->str */

    f->str.len = 0;

    if (ngx_bulk_fmt_reserve(f, &f->str, (size_t) (end - start)) != 0) {
        return NULL;
    }

    d = f->str.data;
    memcpy(d, start, p - start);
    d += p - start;

    while (p < end) {
        c = *p;

        if (c == '"') {
            *s = f->str.data;
            *len = d - f->str.data;
            f->clean = NULL;
            f->clean_end = NULL;
            return p + 1;
        }

        if (c < 0x20) {
            return NULL;
        }

        if (c >= 0x80) {
            /* UTF-8, as above */

            n = (c >= 0xf0) ? 4 : (c >= 0xe0) ? 3 : 2;

            if (c < 0xc2 || c > 0xf4 || end - p < n
                || (p[1] & 0xc0) != 0x80
                || (n > 2 && (p[2] & 0xc0) != 0x80)
                || (n > 3 && (p[3] & 0xc0) != 0x80)
                || (c == 0xe0 && p[1] < 0xa0)
                || (c == 0xed && p[1] >= 0xa0)
                || (c == 0xf0 && p[1] < 0x90)
                || (c == 0xf4 && p[1] >= 0x90))
            {
                return NULL;
            }

            memcpy(d, p, n);
            d += n;
            p += n;
            continue;
        }

        if (c != '\\') {
            *d++ = (unsigned char) c;
            p++;
            continue;
        }

        if (end - p < 2) {
            return NULL;
        }

        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *d++ = p[1];
            break;
        case 'b':
            *d++ = '\b';
            break;
        case 'f':
            *d++ = '\f';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        case 't':
            *d++ = '\t';
            break;

        case 'u':
            if (end - p < 6) {
                return NULL;
            }

            u = 0;

            for (n = 2; n < 6; n++) {
                c = p[n];

                if (c >= '0' && c <= '9') {
                    c -= '0';

                } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                    c = (c | 0x20) - 'a' + 10;

                } else {
                    return NULL;
                }

                u = (u << 4) | c;
            }

            if (u == 0 || (u >= 0xd800 && u <= 0xdfff)) {
                return NULL;
            }

            if (u < 0x80) {
                *d++ = (unsigned char) u;

            } else if (u < 0x800) {
                *d++ = (unsigned char) (0xc0 | (u >> 6));
                *d++ = (unsigned char) (0x80 | (u & 0x3f));

            } else {
                *d++ = (unsigned char) (0xe0 | (u >> 12));
                *d++ = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
                *d++ = (unsigned char) (0x80 | (u & 0x3f));
            }

            p += 6;
            continue;

        default:
            return NULL;
        }

        p += 2;
    }

    return NULL;
}


/* a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, or NULL */

static const unsigned char *
ngx_bulk_fmt_parse_num(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-') {
        p++;
    }

    if (p >= end || *p < '0' || *p > '9') {
        return NULL;
    }

    if (*p++ == '0') {
        if (p < end && *p >= '0' && *p <= '9') {
            return NULL;
        }

    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && *p == '.') {
        p++;

        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    return p;
}


static int
ngx_bulk_fmt_parse(ngx_bulk_fmt_t *f, const unsigned char *p, size_t len)
{
    int                   depth;
    size_t                slen;
    const unsigned char  *end, *in, *s, *q;
    unsigned char         stack[NGX_BULK_FMT_MAX_DEPTH + 2];

    in = p;
    end = p + len;
    depth = 0;

value:

    ngx_bulk_fmt_ws(p, end);

    if (p >= end) {
        return -1;
    }

    switch (*p) {

    case '{':
        if (depth == (int) sizeof(stack)) {
            return -1;
        }

        f->pos = ++p - in;

        if (!ngx_bulk_fmt_start_map(f)) {
            return -1;
        }

        stack[depth++] = '{';

        ngx_bulk_fmt_ws(p, end);

        if (p < end && *p == '}') {
            p++;
            goto close;
        }

        goto key;

    case '[':
        if (depth == (int) sizeof(stack)) {
            return -1;
        }

        p++;

        if (!ngx_bulk_fmt_start_array(f)) {
            return -1;
        }

        stack[depth++] = '[';

        ngx_bulk_fmt_ws(p, end);

        if (p < end && *p == ']') {
            p++;
            goto close;
        }

        goto value;

    case '"':
        p = ngx_bulk_fmt_parse_str(f, p + 1, end, &s, &slen);

        if (p == NULL || !ngx_bulk_fmt_string(f, s, slen)) {
            return -1;
        }

        goto next;

    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0
            || !ngx_bulk_fmt_boolean(f, 1))
        {
            return -1;
        }

        p += 4;
        goto next;

    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0
            || !ngx_bulk_fmt_boolean(f, 0))
        {
            return -1;
        }

        p += 5;
        goto next;

    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0
            || !ngx_bulk_fmt_null(f))
        {
            return -1;
        }

        p += 4;
        goto next;

    default:
        q = ngx_bulk_fmt_parse_num(p, end);

        if (q == NULL || !ngx_bulk_fmt_number(f, (const char *) p, q - p)) {
            return -1;
        }

        p = q;
        goto next;
    }

key:

    ngx_bulk_fmt_ws(p, end);

    if (p >= end || *p != '"') {
        return -1;
    }

    p = ngx_bulk_fmt_parse_str(f, p + 1, end, &s, &slen);

    if (p == NULL || !ngx_bulk_fmt_map_key(f, s, slen)) {
        return -1;
    }

    ngx_bulk_fmt_ws(p, end);

    if (p >= end || *p != ':') {
        return -1;
    }

    p++;
    goto value;

close:

    /* p is past the '}' or ']' of stack[depth - 1] */

    if (stack[--depth] == '{') {
        if (!ngx_bulk_fmt_end_map(f)) {
            return -1;
        }

    } else if (!ngx_bulk_fmt_end_array(f)) {
        return -1;
    }

next:

    /* a value is over: a separator, the end of its container, or of all */

    ngx_bulk_fmt_ws(p, end);

    if (depth == 0) {
        return (p == end) ? 0 : -1;
    }

    if (p >= end) {
        return -1;
    }

    if (*p == ',') {
        p++;

        if (stack[depth - 1] == '{') {
            goto key;
        }

        goto value;
    }

    if ((*p == '}' && stack[depth - 1] == '{')
        || (*p == ']' && stack[depth - 1] == '['))
    {
        p++;
        goto close;
    }

    return -1;
}


static void
ngx_bulk_fmt_yajl_error(ngx_bulk_fmt_t *f, const unsigned char *in,
    size_t len)
{
    size_t          n;
    unsigned char  *msg;

    msg = yajl_get_error(f->yh, 0, in, len);

    if (msg == NULL) {
        snprintf(f->job->err, sizeof(f->job->err),
                 "invalid JSON at byte %zu", yajl_get_bytes_consumed(f->yh));
        return;
    }

    n = strlen((char *) msg);

    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }

    snprintf(f->job->err, sizeof(f->job->err),
             "invalid JSON at byte %zu: %s", yajl_get_bytes_consumed(f->yh),
             (char *) msg);

    yajl_free_error(f->yh, msg);
}


/* the state of one conversion, before a parser runs */

static void
ngx_bulk_fmt_reset(ngx_bulk_fmt_t *f, ngx_bulk_fmt_job_t *job,
    const unsigned char *in, size_t len)
{
    unsigned char  *p;

    /* grow the arena if the previous document needed more */

    if (f->arena_want > f->arena_size) {
        p = malloc(f->arena_want + f->arena_want / 2);

        if (p) {
            free(f->arena);
            f->arena = p;
            f->arena_size = f->arena_want + f->arena_want / 2;
        }
    }

    f->arena_used = 0;
    f->arena_last = (size_t) -1;
    f->arena_want = 0;

    f->yh = NULL;
    f->pos = 0;
    f->clean = NULL;
    f->clean_end = NULL;
    f->job = job;
    f->in = in;
    f->in_len = len;
    f->out.len = 0;
    f->lazy.len = 0;
    f->stash.len = 0;
    f->fr = NULL;
    f->nframes = 0;
    f->depth = 0;
    f->wraps = 0;
    f->skip = 0;
    f->capture = 0;
    f->need_comma = 0;
    f->failed = 0;
    f->have_id = 0;
    f->have_type = 0;
    f->dir = job->dir;
    f->strip = job->strip;
    f->inject = job->inject;
    f->next.mode = NGX_BULK_FMT_PASS;
    f->next.wrap = 0;

    if (f->dir != NGX_BULK_FMT_TO_AIDBOX && f->dir != NGX_BULK_FMT_TO_FHIR) {
        f->dir = NGX_BULK_FMT_NONE;
    }
}


int
ngx_bulk_fmt_convert(ngx_bulk_fmt_t *f, ngx_bulk_fmt_job_t *job,
    const unsigned char *in, size_t len)
{
    int                  rc;
    size_t               i;
    yajl_status          st;
    yajl_alloc_funcs     af;

    job->err[0] = '\0';
    job->out = NULL;
    job->out_len = 0;
    job->doc_id = NULL;
    job->doc_id_len = 0;
    job->doc_type = NULL;
    job->doc_type_len = 0;

    for (i = 0; i < len; i++) {
        if (in[i] != ' ' && in[i] != '\t' && in[i] != '\n' && in[i] != '\r')
        {
            break;
        }
    }

    if (i == len) {
        snprintf(job->err, sizeof(job->err), "empty document");
        return -1;
    }

    /*
     * The fast parser first; whatever it does not take (invalid JSON,
     * rare forms, a failure of the conversion) goes through yajl from the
     * start, which gives the same output or yajl's own error.
     */

    ngx_bulk_fmt_reset(f, job, in, len);

    if (!job->slow && ngx_bulk_fmt_parse(f, in, len) == 0 && !f->failed
        && f->fr == NULL && f->out.len)
    {
        goto done;
    }

    job->err[0] = '\0';
    ngx_bulk_fmt_reset(f, job, in, len);

    af.malloc = ngx_bulk_fmt_malloc;
    af.realloc = ngx_bulk_fmt_realloc;
    af.free = ngx_bulk_fmt_free;
    af.ctx = f;

    f->yh = yajl_alloc(&ngx_bulk_fmt_callbacks, &af, f);
    if (f->yh == NULL) {
        snprintf(job->err, sizeof(job->err), "out of memory");
        return -1;
    }

    rc = -1;

    st = yajl_parse(f->yh, in, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(f->yh);
    }

    if (st == yajl_status_ok && !f->failed) {
        if (f->fr != NULL || f->out.len == 0) {
            snprintf(job->err, sizeof(job->err), "incomplete document");

        } else {
            rc = 0;
        }

    } else if (st == yajl_status_client_canceled || f->failed) {
        if (job->err[0] == '\0') {
            snprintf(job->err, sizeof(job->err), "conversion failed");
        }

    } else {
        ngx_bulk_fmt_yajl_error(f, in, len);
    }

    yajl_free(f->yh);
    f->yh = NULL;

    if (rc != 0) {
        return -1;
    }

done:

    job->out = f->out.data;
    job->out_len = f->out.len;

    if (f->have_id) {
        job->doc_id = (const char *) f->doc_id.data;
        job->doc_id_len = f->doc_id.len;
    }

    if (f->have_type) {
        job->doc_type = (const char *) f->doc_type.data;
        job->doc_type_len = f->doc_type.len;
    }

    return 0;
}
