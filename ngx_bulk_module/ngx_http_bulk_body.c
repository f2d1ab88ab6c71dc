
/*
 * ngx_bulk: request bodies (interim: JSON only; replaced by the JSON and
 * YAML reader of the $dump-sql work).
 */


#include "ngx_http_bulk_module.h"


typedef struct {
    ngx_http_bulk_body_pt  done;
} ngx_http_bulk_body_ctx_t;


static void ngx_http_bulk_body_read(ngx_http_request_t *r);
static void ngx_http_bulk_body_free(void *data);


ngx_int_t
ngx_http_bulk_read_body(ngx_http_request_t *r, ngx_http_bulk_body_pt done)
{
    ngx_int_t                  rc;
    ngx_http_bulk_body_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_body_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->done = done;
    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_bulk_body_read);

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return ngx_http_bulk_send_error(r, rc, "too-large",
                                        "the request body is larger than "
                                        "client_max_body_size");
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_bulk_body_read(ngx_http_request_t *r)
{
    u_char                    *p;
    size_t                     len;
    yajl_val                   root;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_pool_cleanup_t        *cln;
    ngx_http_bulk_body_ctx_t  *ctx;
    char                       err[256];

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                ssize_t  n;

                n = ngx_read_file(b->file, p + len,
                                  b->file_last - b->file_pos, b->file_pos);
                if (n == NGX_ERROR) {
                    ngx_http_finalize_request(r,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR);
                    return;
                }

                len += n;
                continue;
            }

            len = ngx_cpymem(p + len, b->pos, b->last - b->pos) - p;
        }
    }

    p[len] = '\0';

    root = yajl_tree_parse((char *) p, err, sizeof(err));

    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        if (root) {
            yajl_tree_free(root);
        }

        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                     "the body is not a JSON object"));
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        yajl_tree_free(root);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_bulk_body_free;
    cln->data = root;

    ctx->done(r, root);
}


static void
ngx_http_bulk_body_free(void *data)
{
    yajl_tree_free(data);
}
