
/*
 * ngx_bulk: request bodies of POST operations ($dump-sql, $load, $import).
 *
 * The body is read whole (it is small: a few parameters), in JSON or in
 * YAML by its Content-Type; YAML is converted to JSON text; the JSON text is
 * parsed into a yajl tree that lives as long as the request.  Every error
 * is answered here as an OperationOutcome.
 *
 * client_max_body_size is enforced here rather than by nginx, so that a
 * body too large is a 413 OperationOutcome and not nginx's HTML page: the
 * configuration moves the limit of locations that read bodies into
 * blcf->body_max (see ngx_http_bulk_merge_loc_conf()), a Content-Length
 * over it is refused before reading, and the request body filter below
 * drops a chunked body's bytes past it.  $load's own body names a URL:
 * its limit is at most NGX_HTTP_BULK_BODY_LOAD_MAX whatever
 * client_max_body_size says, as that limit is for push uploads
 * (ngx_http_bulk_push.c), which this file does not read.
 */


#include "ngx_http_bulk_body.h"
#include "ngx_http_bulk_util.h"
#include "ngx_http_bulk_push.h"
#include "ngx_bulk_body.h"


#define NGX_HTTP_BULK_BODY_LOAD_MAX  (1024 * 1024)


typedef struct {
    ngx_http_bulk_stats_t   stats;      /* first: the log variables */
    ngx_http_bulk_body_pt   handler;
    off_t                   max;        /* 0: any size */
    off_t                   received;
    unsigned                yaml:1;
    unsigned                too_large:1;
} ngx_http_bulk_body_ctx_t;


static void ngx_http_bulk_body_done(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_body_parse(ngx_http_request_t *r,
    ngx_http_bulk_body_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_body_type(ngx_http_request_t *r,
    ngx_uint_t *yaml);
static void ngx_http_bulk_body_free(void *data);
static ngx_int_t ngx_http_bulk_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static yajl_val ngx_http_bulk_body_member(yajl_val obj, const char *name);
static off_t ngx_http_bulk_body_max(ngx_http_request_t *r);


static ngx_http_request_body_filter_pt  ngx_http_bulk_next_body_filter;


ngx_int_t
ngx_http_bulk_read_body(ngx_http_request_t *r, ngx_http_bulk_body_pt handler)
{
    off_t                      max;
    ngx_int_t                  rc;
    ngx_uint_t                 yaml;
    ngx_http_bulk_body_ctx_t  *ctx;

    max = ngx_http_bulk_body_max(r);

    if (max > 0 && r->headers_in.content_length_n > max) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "too-large",
                                        "the body is larger than %O bytes",
                                        max);
    }

    if (ngx_http_bulk_body_type(r, &yaml) != NGX_OK) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "not-supported",
                                        "the body must be application/json "
                                        "or YAML (text/yaml, "
                                        "application/yaml, "
                                        "application/x-yaml)");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_body_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->handler = handler;
    ctx->max = max;
    ctx->yaml = yaml;

    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    rc = ngx_http_read_client_request_body(r, ngx_http_bulk_body_done);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_bulk_body_type(ngx_http_request_t *r, ngx_uint_t *yaml)
{
    u_char     *p, *last;
    ngx_str_t   t;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    t = r->headers_in.content_type->value;
    last = t.data + t.len;

    p = ngx_strlchr(t.data, last, ';');
    if (p) {
        last = p;
    }

    while (last > t.data && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    t.len = last - t.data;

#define ngx_http_bulk_is(s, lit)                                             \
    ((s).len == sizeof(lit) - 1                                              \
     && ngx_strncasecmp((s).data, (u_char *) lit, sizeof(lit) - 1) == 0)

    if (ngx_http_bulk_is(t, "application/json")) {
        *yaml = 0;
        return NGX_OK;
    }

    if (ngx_http_bulk_is(t, "text/yaml")
        || ngx_http_bulk_is(t, "application/yaml")
        || ngx_http_bulk_is(t, "application/x-yaml"))
    {
        *yaml = 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static void
ngx_http_bulk_body_done(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_bulk_body_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (ctx->too_large) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "too-large",
                                      "the body is larger than %O bytes",
                                      ctx->max);

    } else {
        rc = ngx_http_bulk_body_parse(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_bulk_body_parse(ngx_http_request_t *r, ngx_http_bulk_body_ctx_t *ctx)
{
    u_char              *text, *p;
    off_t                len;
    ssize_t              n;
    yajl_val             root;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_bulk_buf_t       json;
    ngx_pool_cleanup_t  *cln;
    const char          *key;
    char                 err[256];

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (len == 0) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "the body is empty");
    }

    text = ngx_pnalloc(r->pool, len + 1);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = text;

    /* small bodies: a body nginx buffered to a file is read back at once */

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "bulk: cannot read the request body from "
                              "\"%V\"", &b->file->name);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;
            continue;
        }

        /* an empty special buffer may have no memory at all */

        if (b->last > b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';

    if (ctx->yaml) {
        ngx_memzero(&json, sizeof(ngx_bulk_buf_t));
        json.max = 8 * len + 4096;

        if (ngx_bulk_yaml_to_json(text, len, &json, err, sizeof(err)) != 0) {
            ngx_bulk_buf_free(&json);
            return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "invalid", "%s", err);
        }

        root = yajl_tree_parse(json.data, err, sizeof(err));
        ngx_bulk_buf_free(&json);

    } else {
        if (ngx_bulk_json_check(text, len, err, sizeof(err)) != 0) {
            return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "invalid", "%s", err);
        }

        err[0] = '\0';
        root = yajl_tree_parse((char *) text, err, sizeof(err));
    }

    if (root == NULL) {

        /* yajl's message, on one line */

        for (p = (u_char *) err; *p; p++) {
            if (*p == '\n' || *p == '\r') {
                *p = ' ';
            }
        }

        while (p > (u_char *) err && p[-1] == ' ') {
            p--;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "invalid JSON: %*s",
                                        p - (u_char *) err, err);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        yajl_tree_free(root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulk_body_free;
    cln->data = root;

    if (!YAJL_IS_OBJECT(root)) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "the body must be an object");
    }

    /* one meaning per key: a key given twice is refused, not guessed */

    switch (ngx_bulk_json_dup_key(root, &key)) {

    case 0:
        break;

    case 1:
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "the key \"%*s\" is given twice in "
                                        "one object",
                                        ngx_min(ngx_strlen(key), 128), key);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ctx->handler(r, root);
}


static void
ngx_http_bulk_body_free(void *data)
{
    yajl_tree_free(data);
}


/* drops the bytes of a body past the limit: answered 413 once read */

static ngx_int_t
ngx_http_bulk_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t               *cl, *out, **ll;
    ngx_http_bulk_loc_conf_t  *blcf;
    ngx_http_bulk_body_ctx_t  *ctx;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    /* a push upload's body is its load's: it counts its bytes itself */

    if (blcf->body_max < 0 || r != r->main
        || (blcf->op == NGX_HTTP_BULK_OP_LOAD && ngx_http_bulk_push_request(r)))
    {
        return ngx_http_bulk_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (ctx == NULL || ctx->max == 0) {
        return ngx_http_bulk_next_body_filter(r, in);
    }

    if (!ctx->too_large) {
        for (cl = in; cl; cl = cl->next) {
            ctx->received += ngx_buf_size(cl->buf);
        }

        if (ctx->received <= ctx->max) {
            return ngx_http_bulk_next_body_filter(r, in);
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "bulk: client sent a body larger than %O bytes",
                      ctx->max);

        ctx->too_large = 1;
    }

    /* only the end of the body goes on */

    out = NULL;
    ll = &out;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            cl->buf->pos = cl->buf->last;
            *ll = cl;
            ll = &cl->next;
            break;
        }

        cl->buf->pos = cl->buf->last;
    }

    return ngx_http_bulk_next_body_filter(r, out);
}


ngx_int_t
ngx_http_bulk_body_init(ngx_conf_t *cf)
{
    ngx_http_bulk_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_bulk_body_filter;

    return NGX_OK;
}


/* the limit of a body read here, 0: any size */

static off_t
ngx_http_bulk_body_max(ngx_http_request_t *r)
{
    ngx_http_bulk_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    if (blcf->op == NGX_HTTP_BULK_OP_LOAD
        && (blcf->body_max <= 0
            || blcf->body_max > NGX_HTTP_BULK_BODY_LOAD_MAX))
    {
        return NGX_HTTP_BULK_BODY_LOAD_MAX;
    }

    return (blcf->body_max > 0) ? blcf->body_max : 0;
}


/* a member of an object, NULL when absent */

static yajl_val
ngx_http_bulk_body_member(yajl_val obj, const char *name)
{
    size_t  i;

    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < obj->u.object.len; i++) {
        if (ngx_strcmp(obj->u.object.keys[i], name) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


/* NGX_OK, NGX_DECLINED when absent or null, NGX_ERROR for another type */

ngx_int_t
ngx_http_bulk_body_string(yajl_val obj, const char *name, ngx_str_t *value)
{
    yajl_val  v;

    v = ngx_http_bulk_body_member(obj, name);

    if (v == NULL || YAJL_IS_NULL(v)) {
        return NGX_DECLINED;
    }

    if (!YAJL_IS_STRING(v)) {
        return NGX_ERROR;
    }

    value->data = (u_char *) v->u.string;
    value->len = ngx_strlen(v->u.string);

    return NGX_OK;
}

