
/*
 * ngx_bulk: what every source of a load does alike (held buffers, the
 * consumer called once at a time, stopping); the kinds differ in how
 * bytes come (ngx_http_bulk_fetch.c, ngx_http_bulk_push.c).
 */


#include "ngx_http_bulk_source.h"


ngx_int_t
ngx_http_bulk_source_start(ngx_http_bulk_source_t *s)
{
    s->held = NULL;
    s->held_last = &s->held;
    s->status = 0;
    s->length = -1;
    s->received = 0;
    s->failed = 0;
    s->stalled = 0;
    s->ranged = 0;
    s->err[0] = '\0';

    return s->ops->start(s);
}


/* the consumer takes what the source sent, never from inside itself */

void
ngx_http_bulk_source_consume(ngx_http_bulk_source_t *s)
{
    if (s->consuming) {
        return;
    }

    s->consuming = 1;
    s->consume(s);
    s->consuming = 0;
}


void
ngx_http_bulk_source_resume(ngx_http_bulk_source_t *s)
{
    if (s->held || s->state == ngx_http_bulk_source_idle
        || s->state == ngx_http_bulk_source_over)
    {
        return;
    }

    s->ops->resume(s);
}


/*
 * The consumer failed: the source reads no more.  NGX_OK when it is over
 * at once; NGX_AGAIN when its end is still to come (a fetch subrequest
 * finishing, or the source is inside the consumer): then the load's
 * request is run again (woken) once it is.
 */

ngx_int_t
ngx_http_bulk_source_stop(ngx_http_bulk_source_t *s)
{
    ngx_http_request_t  *sr;

    s->failed = 1;
    sr = s->sr;

    s->ops->stop(s);

    if (sr) {
        /* the subrequest's end wakes (or already woke) the parent */
        return NGX_AGAIN;
    }

    if (s->consuming || s->reading) {
        if (ngx_http_post_request(s->request, NULL) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_AGAIN;
    }

    return NGX_OK;
}


/* the source still runs code of its own, or has an end to come */

ngx_uint_t
ngx_http_bulk_source_busy(ngx_http_bulk_source_t *s)
{
    return s->sr || s->consuming || s->reading;
}


/* the consumer failed: what the source still holds back is dropped */

void
ngx_http_bulk_source_drop(ngx_http_bulk_source_t *s)
{
    ngx_chain_t  *cl;

    while (s->held) {
        cl = s->held;
        cl->buf->pos = cl->buf->last;
        s->held = cl->next;
        ngx_free_chain(s->request->pool, cl);
    }

    s->held_last = &s->held;
}


/*
 * Buffers that came: counted, the end of the source noted, the bytes
 * held (not copied) for the consumer.
 */

ngx_int_t
ngx_http_bulk_source_hold(ngx_http_bulk_source_t *s, ngx_chain_t *in)
{
    ngx_chain_t  *cl, *ln;

    for (cl = in; cl; cl = cl->next) {

        if (s->failed) {
            cl->buf->pos = cl->buf->last;
            continue;
        }

        s->received += ngx_buf_size(cl->buf);

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            s->state = ngx_http_bulk_source_eof;
        }

        if (ngx_buf_size(cl->buf) == 0) {
            continue;
        }

        ln = ngx_alloc_chain_link(s->request->pool);
        if (ln == NULL) {
            return NGX_ERROR;
        }

        ln->buf = cl->buf;
        ln->next = NULL;
        *s->held_last = ln;
        s->held_last = &ln->next;
    }

    return NGX_OK;
}
