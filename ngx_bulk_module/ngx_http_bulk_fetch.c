
/*
 * ngx_bulk: fetching a source URL through the bulk_fetch location.
 *
 * A subrequest to that location (proxy_pass $bulk_source_url with
 * proxy_buffering off) is tagged with the fetch; the module's header and
 * body filters catch its response before anything else sees it.  Body
 * buffers are held, not copied: the consumer moves b->pos as it takes
 * bytes, and while a buffer is not used up the proxy module reads nothing
 * more from the source, so TCP slows the source down.  After the consumer
 * catches up, ngx_http_bulk_fetch_resume() wakes the proxy again.
 */


#include "ngx_http_bulk_module.h"


static ngx_int_t ngx_http_bulk_fetch_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_fetch_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_bulk_fetch_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static void ngx_http_bulk_fetch_check_client(ngx_http_request_t *r);
static ngx_http_bulk_fetch_t *ngx_http_bulk_fetch_of(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_bulk_fetch_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_bulk_fetch_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_bulk_fetch_body_filter;

    return NGX_OK;
}


/* the fetch a subrequest belongs to, or NULL for any other request */

static ngx_http_bulk_fetch_t *
ngx_http_bulk_fetch_of(ngx_http_request_t *r)
{
    ngx_http_bulk_fetch_t  *f;

    if (r == r->main) {
        return NULL;
    }

    f = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (f == NULL || f->sr != r) {
        return NULL;
    }

    return f;
}


ngx_int_t
ngx_http_bulk_fetch_start(ngx_http_request_t *r, ngx_http_bulk_fetch_t *f,
    ngx_str_t *location)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_bulk_fetch_done;
    ps->data = f;

    f->held = NULL;
    f->held_last = &f->held;
    f->status = 0;
    f->length = -1;
    f->received = 0;
    f->eof = 0;
    f->finished = 0;
    f->failed = 0;
    f->stalled = 0;
    f->err[0] = '\0';

    /* not in memory: the body streams through the filters */

    if (ngx_http_subrequest(r, location, NULL, &sr, ps, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    f->sr = sr;
    ngx_http_set_ctx(sr, f, ngx_http_bulk_module);

    /*
     * the fetch location ignores client aborts (import jobs have no
     * client): watch the client of a synchronous operation here
     */

    sr->read_event_handler = ngx_http_bulk_fetch_check_client;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulk fetch: \"%V\"", &f->url);

    return NGX_OK;
}


static void
ngx_http_bulk_fetch_check_client(ngx_http_request_t *r)
{
    if (r->main->connection->fd == (ngx_socket_t) -1) {
        return;
    }

    ngx_http_test_reading(r->main);
}


/* the consumer used up what it held back: let the proxy read on */

void
ngx_http_bulk_fetch_resume(ngx_http_bulk_fetch_t *f)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *sr;

    if (!f->stalled || f->held || f->finished || f->sr == NULL) {
        return;
    }

    f->stalled = 0;
    sr = f->sr;
    c = sr->connection;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "bulk fetch: resume");

    sr->write_event_handler(sr);
    ngx_http_run_posted_requests(c);
}


/*
 * The consumer failed: the proxy stops reading the source (no more body
 * expected), which ends the subrequest; its end wakes the parent.
 */

void
ngx_http_bulk_fetch_stop(ngx_http_bulk_fetch_t *f)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *sr;

    f->failed = 1;

    if (f->sr == NULL || f->finished) {
        return;
    }

    sr = f->sr;
    c = sr->connection;
    sr->header_only = 1;

    if (sr->upstream) {
        sr->upstream->length = 0;
    }

    if (f->consuming) {
        /* in the filter: the proxy goes on when it returns */
        return;
    }

    f->stalled = 0;

    sr->write_event_handler(sr);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_bulk_fetch_header_filter(ngx_http_request_t *r)
{
    ngx_http_bulk_fetch_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        return ngx_http_next_header_filter(r);
    }

    f->status = r->headers_out.status;
    f->length = r->headers_out.content_length_n;

    if (f->status < NGX_HTTP_OK || f->status >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_snprintf(f->err, sizeof(f->err) - 1,
                     "the source answered HTTP %ui%Z", f->status);
        f->failed = 1;

        /* the body of an error page is not read */
        r->header_only = 1;
    }

    /* nothing of the source's answer goes to the client */

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_fetch_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t            *cl, *ln;
    ngx_http_bulk_fetch_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {

        if (f->failed) {
            cl->buf->pos = cl->buf->last;
            continue;
        }

        f->received += ngx_buf_size(cl->buf);

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            f->eof = 1;
        }

        if (ngx_buf_size(cl->buf) == 0) {
            continue;
        }

        ln = ngx_alloc_chain_link(r->pool);
        if (ln == NULL) {
            return NGX_ERROR;
        }

        ln->buf = cl->buf;
        ln->next = NULL;
        *f->held_last = ln;
        f->held_last = &ln->next;
    }

    if (f->consuming) {
        return NGX_OK;
    }

    f->consuming = 1;
    f->consume(f);
    f->consuming = 0;

    if (f->held) {
        f->stalled = 1;
    }

    return NGX_OK;
}


/* the subrequest is over: success needs the whole body */

static ngx_int_t
ngx_http_bulk_fetch_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_bulk_fetch_t  *f = data;

    f->finished = 1;

    if (!f->failed) {
        if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST || rc == NGX_ERROR
            || r->connection->error)
        {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the fetch was aborted%Z");
            f->failed = 1;

        } else if (f->status == 0 || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source could not be fetched (HTTP %i: "
                         "unreachable, refused or timed out, see the "
                         "error log)%Z", rc);
            f->failed = 1;

        } else if (!f->eof) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source closed the connection or timed out "
                         "after %O bytes%Z", f->received);
            f->failed = 1;

        } else if (f->length >= 0 && f->received != f->length) {
            ngx_snprintf(f->err, sizeof(f->err) - 1,
                         "the source sent %O of %O bytes%Z",
                         f->received, f->length);
            f->failed = 1;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulk fetch done: rc:%i status:%ui failed:%ui",
                   rc, f->status, (ngx_uint_t) f->failed);

    f->sr = NULL;

    if (f->done) {
        f->done(f);
    }

    /* the client of a synchronous operation went away: end it all */

    if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || (r->connection->error
            && r->connection->fd != (ngx_socket_t) -1))
    {
        return rc ? rc : NGX_ERROR;
    }

    /*
     * anything else is the fetch's own failure, reported by the consumer;
     * an error passed on would render an error page through the filters
     */

    r->connection->error = 0;

    return NGX_OK;
}


/* $bulk_source_url: the URL the fetch subrequest proxies to */

ngx_int_t
ngx_http_bulk_source_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_bulk_fetch_t  *f;

    f = ngx_http_bulk_fetch_of(r);

    if (f == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = f->url.data;
    v->len = f->url.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
