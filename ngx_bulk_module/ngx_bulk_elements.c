
/*
 * ngx_bulk: the _elements filter, see ngx_bulk_elements.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "ngx_bulk_elements.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_json.h"


/* what the key just read at the top level or in meta leads to */
#define NGX_BULK_EL_KEEP          0
#define NGX_BULK_EL_DROP          1
#define NGX_BULK_EL_META          2   /* the top-level meta */
#define NGX_BULK_EL_TAG           3   /* meta.tag */


typedef struct {
    char                         *type;     /* NULL: every type */
    size_t                        type_len;
    char                         *name;
    size_t                        name_len;
} ngx_bulk_el_name_t;


struct ngx_bulk_elements_s {
    ngx_bulk_el_name_t            names[NGX_BULK_ELEMENTS_MAX];
    size_t                        nnames;

    yajl_gen                      gen;
    yajl_handle                   yh;
    ngx_bulk_elements_job_t      *job;

    /* per document */
    const char                   *type;
    size_t                        type_len;
    int                           tindex;   /* schema type index, or -1 */

    int                           depth;    /* open containers */
    int                           skip;     /* open containers dropped */
    int                           next;     /* NGX_BULK_EL_* of the value */
    int                           item_key; /* tag item: 1 system, 2 code */

    unsigned                      drop:1;   /* the next value is dropped */
    unsigned                      in_meta:1;
    unsigned                      in_tag:1;
    unsigned                      meta_seen:1;
    unsigned                      tag_seen:1;
    unsigned                      found:1;  /* SUBSETTED already there */
    unsigned                      item_system:1;
    unsigned                      item_code:1;
    unsigned                      failed:1;
};


static int ngx_bulk_el_null(void *ctx);
static int ngx_bulk_el_boolean(void *ctx, int v);
static int ngx_bulk_el_number(void *ctx, const char *s, size_t len);
static int ngx_bulk_el_string(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bulk_el_start_map(void *ctx);
static int ngx_bulk_el_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_bulk_el_end_map(void *ctx);
static int ngx_bulk_el_start_array(void *ctx);
static int ngx_bulk_el_end_array(void *ctx);


static const yajl_callbacks  ngx_bulk_el_callbacks = {
    ngx_bulk_el_null,
    ngx_bulk_el_boolean,
    NULL,
    NULL,
    ngx_bulk_el_number,
    ngx_bulk_el_string,
    ngx_bulk_el_start_map,
    ngx_bulk_el_map_key,
    ngx_bulk_el_end_map,
    ngx_bulk_el_start_array,
    ngx_bulk_el_end_array
};


ngx_bulk_elements_t *
ngx_bulk_elements_create(void)
{
    ngx_bulk_elements_t  *el;

    el = calloc(1, sizeof(ngx_bulk_elements_t));
    if (el == NULL) {
        return NULL;
    }

    el->gen = yajl_gen_alloc(NULL);

    if (el->gen == NULL) {
        free(el);
        return NULL;
    }

    return el;
}


void
ngx_bulk_elements_destroy(ngx_bulk_elements_t *el)
{
    size_t  i;

    if (el == NULL) {
        return;
    }

    for (i = 0; i < el->nnames; i++) {
        free(el->names[i].type);
        free(el->names[i].name);
    }

    yajl_gen_free(el->gen);
    free(el);
}


static int
ngx_bulk_el_ident(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A'
                                                     && s[0] <= 'Z')))
    {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


/* a name for a message: at most 60 bytes, printable ASCII only */

static const char *
ngx_bulk_el_show(char *buf, const char *s, size_t n)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < n && i < 60; i++) {
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


int
ngx_bulk_elements_add(ngx_bulk_elements_t *el, const char *name, size_t len,
    char *err)
{
    int                  t;
    char                 show[64];
    size_t               tlen, elen;
    const char          *dot, *elem;
    ngx_bulk_el_name_t  *n;

    if (len == 0) {
        snprintf(err, 256, "_elements: an empty name");
        return -1;
    }

    if (len > NGX_BULK_ELEMENTS_NAME_MAX) {
        snprintf(err, 256, "_elements: a name longer than %d bytes",
                 NGX_BULK_ELEMENTS_NAME_MAX);
        return -1;
    }

    if (el->nnames == NGX_BULK_ELEMENTS_MAX) {
        snprintf(err, 256, "_elements: more than %d names",
                 NGX_BULK_ELEMENTS_MAX);
        return -1;
    }

    dot = memchr(name, '.', len);
    elem = name;
    tlen = 0;
    t = -1;

    if (dot) {
        if (memchr(dot + 1, '.', len - (dot + 1 - name))) {
            snprintf(err, 256, "unsupported: _elements \"%s\": only "
                     "top-level elements", ngx_bulk_el_show(show, name, len));
            return -1;
        }

        tlen = dot - name;
        elem = dot + 1;

        t = ngx_bulk_fhir_resource_type(name, tlen);

        if (t < 0) {
            snprintf(err, 256, "_elements: unknown resource type in \"%s\"",
                     ngx_bulk_el_show(show, name, len));
            return -1;
        }
    }

    elen = len - (elem - name);

    if (!ngx_bulk_el_ident(elem, elen)) {
        snprintf(err, 256, "_elements: \"%s\" is not an element name",
                 ngx_bulk_el_show(show, name, len));
        return -1;
    }

    /* a typed name must be an element of the type, or a choice's base */

    if (t >= 0 && ngx_bulk_fhir_elem((unsigned) t, elem, elen) == NULL) {
        snprintf(err, 256, "_elements: %.*s has no element \"%s\"",
                 (int) tlen, name, ngx_bulk_el_show(show, elem, elen));
        return -1;
    }

    n = &el->names[el->nnames];

    n->type = NULL;
    n->type_len = tlen;
    n->name_len = elen;
    n->name = malloc(elen + 1);

    if (n->name == NULL) {
        goto oom;
    }

    memcpy(n->name, elem, elen);
    n->name[elen] = '\0';

    if (tlen) {
        n->type = malloc(tlen + 1);

        if (n->type == NULL) {
            free(n->name);
            goto oom;
        }

        memcpy(n->type, name, tlen);
        n->type[tlen] = '\0';
    }

    el->nnames++;

    return 0;

oom:

    snprintf(err, 256, "out of memory");
    return -1;
}


static int
ngx_bulk_el_type_match(const ngx_bulk_el_name_t *n, const char *type,
    size_t len)
{
    return n->type == NULL
           || (n->type_len == len && memcmp(n->type, type, len) == 0);
}


int
ngx_bulk_elements_applies(ngx_bulk_elements_t *el, const char *type,
    size_t len)
{
    size_t  i;

    for (i = 0; i < el->nnames; i++) {
        if (ngx_bulk_el_type_match(&el->names[i], type, len)) {
            return 1;
        }
    }

    return 0;
}


/* a top-level key is kept: named, a variant of a named choice, or the
 * "_name" primitive extension of one of those */

static int
ngx_bulk_el_kept(ngx_bulk_elements_t *el, const unsigned char *key,
    size_t len)
{
    size_t                       i, blen;
    const ngx_bulk_el_name_t    *n;
    const ngx_bulk_fhir_elem_t  *e;

    if ((len == 2 && memcmp(key, "id", 2) == 0)
        || (len == 12 && memcmp(key, "resourceType", 12) == 0))
    {
        return 1;
    }

    if (len > 1 && key[0] == '_') {
        key++;
        len--;
    }

    blen = 0;

    if (el->tindex >= 0) {
        e = ngx_bulk_fhir_elem((unsigned) el->tindex, (const char *) key,
                               len);

        if (e && e->kind == NGX_BULK_FHIR_VARIANT && e->len > e->tlen) {
            blen = e->len - e->tlen;
        }
    }

    for (i = 0; i < el->nnames; i++) {
        n = &el->names[i];

        if (!ngx_bulk_el_type_match(n, el->type, el->type_len)) {
            continue;
        }

        if ((n->name_len == len && memcmp(n->name, key, len) == 0)
            || (blen && n->name_len == blen
                && memcmp(n->name, key, blen) == 0))
        {
            return 1;
        }
    }

    return 0;
}


static int
ngx_bulk_el_fail(ngx_bulk_elements_t *el, const char *msg)
{
    if (!el->failed) {
        el->failed = 1;
        snprintf(el->job->err, sizeof(el->job->err), "%s at byte %zu", msg,
                 yajl_get_bytes_consumed(el->yh));
    }

    return 0;
}


static int
ngx_bulk_el_gen(ngx_bulk_elements_t *el, yajl_gen_status st)
{
    if (st == yajl_gen_status_ok) {
        return 1;
    }

    if (st == yajl_max_depth_exceeded) {
        return ngx_bulk_el_fail(el, "nesting too deep");
    }

    return ngx_bulk_el_fail(el, "cannot write JSON");
}


/* {"system":"...v3-ObservationValue","code":"SUBSETTED"} */

static int
ngx_bulk_el_subsetted(ngx_bulk_elements_t *el)
{
    yajl_gen  g;

    g = el->gen;

    return ngx_bulk_el_gen(el, yajl_gen_map_open(g))
           && ngx_bulk_el_gen(el, yajl_gen_string(g,
                                  (const unsigned char *) "system", 6))
           && ngx_bulk_el_gen(el, yajl_gen_string(g,
                                  (const unsigned char *)
                                  NGX_BULK_SUBSETTED_SYSTEM,
                                  sizeof(NGX_BULK_SUBSETTED_SYSTEM) - 1))
           && ngx_bulk_el_gen(el, yajl_gen_string(g,
                                  (const unsigned char *) "code", 4))
           && ngx_bulk_el_gen(el, yajl_gen_string(g,
                                  (const unsigned char *) "SUBSETTED", 9))
           && ngx_bulk_el_gen(el, yajl_gen_map_close(g));
}


/* "tag":[SUBSETTED] */

static int
ngx_bulk_el_tag(ngx_bulk_elements_t *el)
{
    return ngx_bulk_el_gen(el, yajl_gen_string(el->gen,
                                   (const unsigned char *) "tag", 3))
           && ngx_bulk_el_gen(el, yajl_gen_array_open(el->gen))
           && ngx_bulk_el_subsetted(el)
           && ngx_bulk_el_gen(el, yajl_gen_array_close(el->gen));
}


/*
 * A value starts: 1 to write it, 0 when it is dropped (a scalar, or the
 * start of a dropped container, which the caller counts), -1 on error.
 */

static int
ngx_bulk_el_value(ngx_bulk_elements_t *el, int container)
{
    int  next;

    if (el->depth == 0 && container != '{') {
        ngx_bulk_el_fail(el, "document is not a JSON object");
        return -1;
    }

    if (el->drop) {
        el->drop = 0;
        return 0;
    }

    next = el->next;
    el->next = NGX_BULK_EL_KEEP;

    if (next == NGX_BULK_EL_META && container != '{') {
        ngx_bulk_el_fail(el, "meta is not an object");
        return -1;
    }

    if (next == NGX_BULK_EL_TAG && container != '[') {
        ngx_bulk_el_fail(el, "meta.tag is not an array");
        return -1;
    }

    return 1;
}


static int
ngx_bulk_el_null(void *ctx)
{
    int                   rc;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        return 1;
    }

    rc = ngx_bulk_el_value(el, 0);

    if (rc <= 0) {
        return rc == 0;
    }

    return ngx_bulk_el_gen(el, yajl_gen_null(el->gen));
}


static int
ngx_bulk_el_boolean(void *ctx, int v)
{
    int                   rc;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        return 1;
    }

    rc = ngx_bulk_el_value(el, 0);

    if (rc <= 0) {
        return rc == 0;
    }

    return ngx_bulk_el_gen(el, yajl_gen_bool(el->gen, v));
}


static int
ngx_bulk_el_number(void *ctx, const char *s, size_t len)
{
    int                   rc;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        return 1;
    }

    rc = ngx_bulk_el_value(el, 0);

    if (rc <= 0) {
        return rc == 0;
    }

    /* the digits as they came: 1.50 stays 1.50 */

    return ngx_bulk_el_gen(el, yajl_gen_number(el->gen, s, len));
}


static int
ngx_bulk_el_string(void *ctx, const unsigned char *s, size_t len)
{
    int                   rc;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        return 1;
    }

    rc = ngx_bulk_el_value(el, 0);

    if (rc <= 0) {
        return rc == 0;
    }

    /* a string of a meta.tag item: is it the SUBSETTED coding? */

    if (el->in_tag && el->depth == 4) {
        if (el->item_key == 1) {
            el->item_system = (len == sizeof(NGX_BULK_SUBSETTED_SYSTEM) - 1
                               && memcmp(s, NGX_BULK_SUBSETTED_SYSTEM, len)
                                  == 0);

        } else if (el->item_key == 2) {
            el->item_code = (len == 9 && memcmp(s, "SUBSETTED", 9) == 0);
        }
    }

    return ngx_bulk_el_gen(el, yajl_gen_string(el->gen, s, len));
}


static int
ngx_bulk_el_start_map(void *ctx)
{
    int                   rc, next;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        el->skip++;
        return 1;
    }

    next = el->next;
    rc = ngx_bulk_el_value(el, '{');

    if (rc < 0) {
        return 0;
    }

    if (rc == 0) {
        el->skip = 1;
        return 1;
    }

    el->depth++;

    if (next == NGX_BULK_EL_META) {
        el->in_meta = 1;
    }

    if (el->in_tag && el->depth == 4) {
        el->item_key = 0;
        el->item_system = 0;
        el->item_code = 0;
    }

    return ngx_bulk_el_gen(el, yajl_gen_map_open(el->gen));
}


static int
ngx_bulk_el_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        return 1;
    }

    el->next = NGX_BULK_EL_KEEP;

    if (el->depth == 1) {

        if (len == 4 && memcmp(s, "meta", 4) == 0) {
            if (el->meta_seen) {
                return ngx_bulk_el_fail(el, "meta given twice");
            }

            el->meta_seen = 1;
            el->next = NGX_BULK_EL_META;

        } else if (!ngx_bulk_el_kept(el, s, len)) {
            el->drop = 1;
            return 1;
        }

    } else if (el->in_meta && el->depth == 2 && len == 3
               && memcmp(s, "tag", 3) == 0)
    {
        if (el->tag_seen) {
            return ngx_bulk_el_fail(el, "meta.tag given twice");
        }

        el->tag_seen = 1;
        el->next = NGX_BULK_EL_TAG;

    } else if (el->in_tag && el->depth == 4) {
        el->item_key = (len == 6 && memcmp(s, "system", 6) == 0) ? 1
                       : (len == 4 && memcmp(s, "code", 4) == 0) ? 2 : 0;
    }

    return ngx_bulk_el_gen(el, yajl_gen_string(el->gen, s, len));
}


static int
ngx_bulk_el_end_map(void *ctx)
{
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        el->skip--;
        return 1;
    }

    if (el->in_tag && el->depth == 4 && el->item_system && el->item_code) {
        el->found = 1;
    }

    if (el->in_meta && el->depth == 2) {
        el->in_meta = 0;

        if (!el->tag_seen && !ngx_bulk_el_tag(el)) {
            return 0;
        }

        el->tag_seen = 1;
    }

    if (el->depth == 1 && !el->meta_seen) {
        if (!ngx_bulk_el_gen(el, yajl_gen_string(el->gen,
                                     (const unsigned char *) "meta", 4))
            || !ngx_bulk_el_gen(el, yajl_gen_map_open(el->gen))
            || !ngx_bulk_el_tag(el)
            || !ngx_bulk_el_gen(el, yajl_gen_map_close(el->gen)))
        {
            return 0;
        }
    }

    el->depth--;

    return ngx_bulk_el_gen(el, yajl_gen_map_close(el->gen));
}


static int
ngx_bulk_el_start_array(void *ctx)
{
    int                   rc, next;
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        el->skip++;
        return 1;
    }

    next = el->next;
    rc = ngx_bulk_el_value(el, '[');

    if (rc < 0) {
        return 0;
    }

    if (rc == 0) {
        el->skip = 1;
        return 1;
    }

    el->depth++;

    if (next == NGX_BULK_EL_TAG) {
        el->in_tag = 1;
        el->found = 0;
    }

    return ngx_bulk_el_gen(el, yajl_gen_array_open(el->gen));
}


static int
ngx_bulk_el_end_array(void *ctx)
{
    ngx_bulk_elements_t  *el;

    el = ctx;

    if (el->skip) {
        el->skip--;
        return 1;
    }

    if (el->in_tag && el->depth == 3) {
        el->in_tag = 0;

        if (!el->found && !ngx_bulk_el_subsetted(el)) {
            return 0;
        }
    }

    el->depth--;

    return ngx_bulk_el_gen(el, yajl_gen_array_close(el->gen));
}


/* the top-level "resourceType" of the document's raw bytes */

static int
ngx_bulk_el_doc_type(const unsigned char *in, size_t len, const char **type,
    size_t *tlen)
{
    const unsigned char  *p, *end;
    ngx_bulk_member_t     m;

    p = in;
    end = in + len;

    if (ngx_bulk_json_open(&p, end) != 0) {
        return 0;
    }

    while (ngx_bulk_json_next(&p, end, &m) == 1) {
        if (m.key_len == 12 && memcmp(m.key, "resourceType", 12) == 0
            && m.end - m.value >= 2 && m.value[0] == '"')
        {
            *type = (const char *) m.value + 1;
            *tlen = m.end - m.value - 2;
            return memchr(*type, '\\', *tlen) == NULL;
        }
    }

    return 0;
}


int
ngx_bulk_elements_filter(ngx_bulk_elements_t *el,
    ngx_bulk_elements_job_t *job, const unsigned char *in, size_t len)
{
    int                    rc;
    size_t                 n;
    yajl_status            st;
    unsigned char         *msg;
    const unsigned char   *buf;

    job->err[0] = '\0';
    job->out = NULL;
    job->out_len = 0;
    job->subsetted = 0;

    el->job = job;
    el->type = job->type;
    el->type_len = job->type_len;

    if (el->type == NULL
        && !ngx_bulk_el_doc_type(in, len, &el->type, &el->type_len))
    {
        el->type = "";
        el->type_len = 0;
    }

    if (!ngx_bulk_elements_applies(el, el->type, el->type_len)) {
        job->out = in;
        job->out_len = len;
        return 0;
    }

    el->tindex = ngx_bulk_fhir_resource_type(el->type, el->type_len);
    el->depth = 0;
    el->skip = 0;
    el->next = NGX_BULK_EL_KEEP;
    el->item_key = 0;
    el->drop = 0;
    el->in_meta = 0;
    el->in_tag = 0;
    el->meta_seen = 0;
    el->tag_seen = 0;
    el->found = 0;
    el->failed = 0;

    yajl_gen_reset(el->gen, NULL);
    yajl_gen_clear(el->gen);

    el->yh = yajl_alloc(&ngx_bulk_el_callbacks, NULL, el);
    if (el->yh == NULL) {
        snprintf(job->err, sizeof(job->err), "out of memory");
        return -1;
    }

    rc = -1;

    st = yajl_parse(el->yh, in, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(el->yh);
    }

    if (st == yajl_status_ok && !el->failed) {
        if (yajl_gen_get_buf(el->gen, &buf, &n) != yajl_gen_status_ok
            || n == 0 || el->depth != 0)
        {
            snprintf(job->err, sizeof(job->err), "incomplete document");

        } else {
            job->out = buf;
            job->out_len = n;
            job->subsetted = 1;
            rc = 0;
        }

    } else if (st == yajl_status_client_canceled || el->failed) {
        if (job->err[0] == '\0') {
            snprintf(job->err, sizeof(job->err), "filter failed");
        }

    } else {
        msg = yajl_get_error(el->yh, 0, in, len);

        if (msg) {
            n = strlen((char *) msg);

            while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
                msg[--n] = '\0';
            }
        }

        snprintf(job->err, sizeof(job->err), "invalid JSON at byte %zu%s%s",
                 yajl_get_bytes_consumed(el->yh), msg ? ": " : "",
                 msg ? (char *) msg : "");

        if (msg) {
            yajl_free_error(el->yh, msg);
        }
    }

    yajl_free(el->yh);
    el->yh = NULL;

    return rc;
}
