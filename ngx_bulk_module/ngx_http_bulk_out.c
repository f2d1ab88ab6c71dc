
/*
 * ngx_bulk: the streaming response writer of the COPY OUT driver.
 *
 * Rows are copied (or deflated) into a small set of recycled buffers that
 * go down the output filter chain as they fill.  The caller stops reading
 * PostgreSQL while ngx_http_bulk_out_full() says NGX_HTTP_BULK_BUSY_MAX
 * buffers are not yet written to the client, so memory stays flat whatever
 * the size of the result.
 */


#include "ngx_http_bulk_out.h"


static ngx_int_t ngx_http_bulk_out_next(ngx_http_bulk_out_t *o);
static ngx_int_t ngx_http_bulk_out_deflate(ngx_http_bulk_out_t *o,
    const u_char *data, size_t len, int flush);
static void *ngx_http_bulk_zalloc(void *opaque, u_int items, u_int size);
static void ngx_http_bulk_zfree(void *opaque, void *address);


ngx_int_t
ngx_http_bulk_out_init(ngx_http_bulk_out_t *o, ngx_http_request_t *r,
    ngx_uint_t gzip)
{
    int  rc;

    ngx_memzero(o, sizeof(ngx_http_bulk_out_t));

    o->request = r;
    o->last_out = &o->out;

    if (!gzip) {
        return NGX_OK;
    }

    o->gzip = 1;

    o->zstream = ngx_pcalloc(r->pool, sizeof(z_stream));
    if (o->zstream == NULL) {
        return NGX_ERROR;
    }

    o->zstream->zalloc = ngx_http_bulk_zalloc;
    o->zstream->zfree = ngx_http_bulk_zfree;
    o->zstream->opaque = r->pool;

    /* level 1 keeps up with PostgreSQL; windowBits 15 + 16: gzip header */

    rc = deflateInit2(o->zstream, 1, Z_DEFLATED, 15 + 16, 8,
                      Z_DEFAULT_STRATEGY);

    if (rc != Z_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "deflateInit2() failed: %d", rc);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_bulk_zalloc(void *opaque, u_int items, u_int size)
{
    return ngx_palloc(opaque, items * size);
}


static void
ngx_http_bulk_zfree(void *opaque, void *address)
{
    /* the request pool frees it */
}


/* moves a full current buffer to the output and readies an empty one */

static ngx_int_t
ngx_http_bulk_out_next(ngx_http_bulk_out_t *o)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (o->cur) {
        cl = ngx_alloc_chain_link(o->request->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = o->cur;
        cl->next = NULL;
        *o->last_out = cl;
        o->last_out = &cl->next;
        o->cur = NULL;
    }

    if (o->free) {
        cl = o->free;
        o->free = cl->next;
        b = cl->buf;
        ngx_free_chain(o->request->pool, cl);

        b->pos = b->start;
        b->last = b->start;
        b->flush = 0;
        b->last_buf = 0;
        b->last_in_chain = 0;

    } else {
        b = ngx_create_temp_buf(o->request->pool, NGX_HTTP_BULK_BUF_SIZE);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->tag = (ngx_buf_tag_t) &ngx_http_bulk_module;
        b->recycled = 1;
    }

    o->cur = b;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_out_deflate(ngx_http_bulk_out_t *o, const u_char *data,
    size_t len, int flush)
{
    int        rc;
    z_stream  *z;

    z = o->zstream;
    z->next_in = (u_char *) data;
    z->avail_in = len;

    for ( ;; ) {
        if (o->cur == NULL || o->cur->last == o->cur->end) {
            if (ngx_http_bulk_out_next(o) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        z->next_out = o->cur->last;
        z->avail_out = o->cur->end - o->cur->last;

        rc = deflate(z, flush);

        o->cur->last = z->next_out;

        if (rc == Z_STREAM_END) {
            return NGX_OK;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, o->request->connection->log, 0,
                          "deflate() failed: %d", rc);
            return NGX_ERROR;
        }

        if (z->avail_out == 0) {
            continue;
        }

        if (z->avail_in == 0 && flush != Z_FINISH) {
            return NGX_OK;
        }
    }
}


ngx_int_t
ngx_http_bulk_out_put(ngx_http_bulk_out_t *o, const u_char *data, size_t len)
{
    size_t  n;

    o->bytes += len;

    if (o->gzip) {
        o->unflushed += len;
        return ngx_http_bulk_out_deflate(o, data, len, Z_NO_FLUSH);
    }

    while (len) {
        if (o->cur == NULL || o->cur->last == o->cur->end) {
            if (ngx_http_bulk_out_next(o) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        n = ngx_min(len, (size_t) (o->cur->end - o->cur->last));
        o->cur->last = ngx_cpymem(o->cur->last, data, n);
        data += n;
        len -= n;
    }

    return NGX_OK;
}


/*
 * Passes full buffers on; with flush also the partly filled one, with last
 * the end of the stream.  Without anything new it pushes what the write
 * filter holds.
 */

ngx_int_t
ngx_http_bulk_out_send(ngx_http_bulk_out_t *o, ngx_uint_t flush,
    ngx_uint_t last)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = o->request;

    if (last) {
        if (o->gzip
            && ngx_http_bulk_out_deflate(o, NULL, 0, Z_FINISH) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (o->cur && o->cur->last > o->cur->pos
            && ngx_http_bulk_out_next(o) != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* an empty special buffer ends the stream */

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        b->last_buf = (r == r->main) ? 1 : 0;
        b->last_in_chain = 1;
        b->flush = 1;

        cl->buf = b;
        cl->next = NULL;
        *o->last_out = cl;
        o->last_out = &cl->next;

    } else if (flush) {
        if (o->gzip && o->unflushed) {
            if (ngx_http_bulk_out_deflate(o, NULL, 0, Z_SYNC_FLUSH)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            o->unflushed = 0;
        }

        if (o->cur && o->cur->last > o->cur->pos) {
            o->cur->flush = 1;

            if (ngx_http_bulk_out_next(o) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    rc = ngx_http_output_filter(r, o->out);

    ngx_chain_update_chains(r->pool, &o->free, &o->busy, &o->out,
                            (ngx_buf_tag_t) &ngx_http_bulk_module);
    o->last_out = &o->out;

    return rc;
}


/* bytes written but not passed on yet: a partly filled buffer */

ngx_uint_t
ngx_http_bulk_out_pending(ngx_http_bulk_out_t *o)
{
    return (o->cur && o->cur->last > o->cur->pos) || o->unflushed;
}


/* NGX_HTTP_BULK_BUSY_MAX buffers wait for the client: stop reading */

ngx_uint_t
ngx_http_bulk_out_full(ngx_http_bulk_out_t *o)
{
    ngx_uint_t    n;
    ngx_chain_t  *cl;

    n = 0;

    for (cl = o->busy; cl; cl = cl->next) {
        n++;
    }

    for (cl = o->out; cl; cl = cl->next) {
        n++;
    }

    return n >= NGX_HTTP_BULK_BUSY_MAX;
}


/* waits for the client to take more: the request's write handler runs */

ngx_int_t
ngx_http_bulk_out_wait(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!wev->delayed) {
        if (wev->active && !wev->ready) {
            ngx_add_timer(wev, clcf->send_timeout);

        } else if (wev->timer_set) {
            ngx_del_timer(wev);
        }
    }

    return NGX_OK;
}


/*
 * The client's socket became writable (or timed out): pushes what waits.
 * NGX_OK: the caller had paused reading PostgreSQL and may resume now
 * (rows already in libpq's buffer raise no event, so it takes them at
 * once); NGX_AGAIN: still waiting; NGX_ERROR: the response is over (the
 * reason, if any, in *reason).
 */

ngx_int_t
ngx_http_bulk_out_writable(ngx_http_bulk_out_t *o, ngx_uint_t paused,
    const char **reason)
{
    ngx_event_t       *wev;
    ngx_connection_t  *c;

    c = o->request->connection;
    wev = c->write;
    *reason = NULL;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_send(o, 0, 0) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (paused && !ngx_http_bulk_out_full(o)) {
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        return NGX_OK;
    }

    if (ngx_http_bulk_out_wait(o->request) != NGX_OK) {
        *reason = "event failure";
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}
