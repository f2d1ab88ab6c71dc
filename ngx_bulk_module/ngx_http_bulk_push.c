
/*
 * ngx_bulk: the request body as the source of a load.
 *
 * A $load whose Content-Type is NDJSON is loaded from its own body.  The
 * body is read only once COPY IN is open, with nginx's unbuffered reading
 * (r->request_body_no_buffering): each piece nginx reads is held, not
 * copied, and while the load has not used a piece up nginx reads nothing
 * more into its buffer (client_body_buffer_size), so a database slower
 * than the client slows the client through TCP (HTTP/2: its flow control
 * window), and the worker never holds more than that buffer.  A client
 * slower than the database leaves COPY waiting.  A client that closes
 * the connection, or sends nothing for client_body_timeout, fails the
 * load, and the failure closes the database connection: nothing is
 * loaded.  Whether the bytes are gzip is the splitter's (magic bytes).
 */


#include "ngx_http_bulk_push.h"
#include "ngx_http_bulk_load.h"


static ngx_int_t ngx_http_bulk_push_start(ngx_http_bulk_source_t *s);
static void ngx_http_bulk_push_started(ngx_http_request_t *r);
static void ngx_http_bulk_push_read(ngx_http_request_t *r);
static void ngx_http_bulk_push_pull(ngx_http_bulk_source_t *s);
static ngx_int_t ngx_http_bulk_push_take(ngx_http_bulk_source_t *s);
static void ngx_http_bulk_push_failed(ngx_http_bulk_source_t *s,
    ngx_int_t rc);
static void ngx_http_bulk_push_stop(ngx_http_bulk_source_t *s);


const ngx_http_bulk_source_ops_t  ngx_http_bulk_push_ops = {
    ngx_http_bulk_push_start,
    ngx_http_bulk_push_pull,
    ngx_http_bulk_push_stop
};


static ngx_str_t  ngx_http_bulk_push_types[] = {
    ngx_string("application/fhir+ndjson"),
    ngx_string("application/x-ndjson"),
    ngx_string("application/ndjson"),
    ngx_null_string
};


/* an NDJSON Content-Type (parameters such as charset allowed) */

ngx_uint_t
ngx_http_bulk_push_request(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t  *t;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    p = r->headers_in.content_type->value.data;
    last = p + r->headers_in.content_type->value.len;

    p = ngx_strlchr(p, last, ';');
    if (p) {
        last = p;
    }

    p = r->headers_in.content_type->value.data;

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    for (t = ngx_http_bulk_push_types; t->len; t++) {
        if ((size_t) (last - p) == t->len
            && ngx_strncasecmp(p, t->data, t->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* Content-Encoding: none, identity or gzip (NGX_OK), else NGX_DECLINED */

ngx_int_t
ngx_http_bulk_push_encoding(ngx_http_request_t *r, ngx_uint_t *gzip)
{
    ngx_str_t         *v;
    ngx_uint_t         i;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h;

    *gzip = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Content-Encoding") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Encoding",
                               sizeof("Content-Encoding") - 1)
               != 0)
        {
            continue;
        }

        v = &h[i].value;

        if (v->len == 4 && ngx_strncasecmp(v->data, (u_char *) "gzip", 4)
                           == 0)
        {
            *gzip = 1;
            continue;
        }

        if (v->len == 8
            && ngx_strncasecmp(v->data, (u_char *) "identity", 8) == 0)
        {
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_push_start(ngx_http_bulk_source_t *s)
{
    ngx_int_t                    rc;
    ngx_http_request_t          *r;
    ngx_http_event_handler_pt    wake;

    r = s->request;

    /* bad bytes are the client's */

    s->answer = NGX_HTTP_BAD_REQUEST;
    s->code = "invalid";
    ngx_str_set(&s->what, "the request body");
    s->length = r->headers_in.content_length_n;
    s->state = ngx_http_bulk_source_body;
    s->handed = 0;

    r->request_body_no_buffering = 1;

    /*
     * the body handler is called from inside (it only notes it: the first
     * pull comes from the load); nginx sets its own write handler, and
     * the load's is the one that wakes it
     */

    wake = r->write_event_handler;

    s->reading = 1;
    rc = ngx_http_read_client_request_body(r, ngx_http_bulk_push_started);
    s->reading = 0;

    r->write_event_handler = wake;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* nginx dropped the reference it took */
        ngx_http_bulk_push_failed(s, rc);
        return NGX_DECLINED;
    }

    /* the load holds the request: the reading needs no reference */

    r->main->count--;

    if (rc != NGX_OK && rc != NGX_AGAIN) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the body handler: bytes may be in r->request_body->bufs */

static void
ngx_http_bulk_push_started(ngx_http_request_t *r)
{
    ngx_http_bulk_source_t  *s;

    s = ngx_http_bulk_load_source(r);

    if (s == NULL || s->state != ngx_http_bulk_source_body) {
        return;
    }

    s->handed = 1;
    r->read_event_handler = ngx_http_bulk_push_read;

    if (!s->reading) {
        /* a late call (HTTP/2 buffering a body that came whole) */
        ngx_http_bulk_push_pull(s);
    }
}


static void
ngx_http_bulk_push_read(ngx_http_request_t *r)
{
    ngx_http_bulk_source_t  *s;

    s = ngx_http_bulk_load_source(r);

    if (s == NULL) {
        r->read_event_handler = ngx_http_block_reading;
        return;
    }

    ngx_http_bulk_push_pull(s);
}


/*
 * Reads what the client sent and hands it to the consumer, as long as
 * the consumer takes everything and the client sends; it goes on at the
 * next read event, or when the consumer resumes.
 */

static void
ngx_http_bulk_push_pull(ngx_http_bulk_source_t *s)
{
    off_t                      before;
    ngx_int_t                  rc;
    ngx_http_request_t        *r;
    ngx_http_bulk_loc_conf_t  *blcf;

    if (s->reading || !s->handed) {
        return;
    }

    r = s->request;
    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    s->reading = 1;

    while (s->state == ngx_http_bulk_source_body) {

        before = s->received;
        rc = NGX_OK;

        if (r->reading_body) {
            rc = ngx_http_read_unbuffered_request_body(r);

            if (rc != NGX_OK && rc != NGX_AGAIN) {
                goto failed;
            }
        }

        if (ngx_http_bulk_push_take(s) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto failed;
        }

        if (blcf->body_max > 0 && s->received > blcf->body_max) {
            rc = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
            goto failed;
        }

        if (rc == NGX_OK && !r->reading_body) {

            /* the whole body is in: a client that leaves now rolls back */

            s->state = ngx_http_bulk_source_over;
            r->read_event_handler = ngx_http_test_reading;
        }

        ngx_http_bulk_source_consume(s);

        if (s->held || s->received == before) {
            /* the consumer waits, or the client does */
            break;
        }
    }

    s->reading = 0;

    return;

failed:

    ngx_http_bulk_push_failed(s, rc);

    if (s->done) {
        s->done(s);
    }

    s->reading = 0;
}


/* the pieces nginx read, held; their links go back to the pool */

static ngx_int_t
ngx_http_bulk_push_take(ngx_http_bulk_source_t *s)
{
    ngx_int_t                 rc;
    ngx_chain_t              *cl, *next;
    ngx_http_request_body_t  *rb;

    rb = s->request->request_body;

    if (rb == NULL || rb->bufs == NULL) {
        return NGX_OK;
    }

    /*
     * never in a file: unbuffered reading keeps the body in memory, and
     * when HTTP/2 has it whole before the load reads it, its buffer is at
     * least the stream's first window, which the body fits in
     */

    for (cl = rb->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            ngx_log_error(NGX_LOG_ALERT, s->request->connection->log, 0,
                          "bulk: a push upload's body in a file");
            return NGX_ERROR;
        }
    }

    rc = ngx_http_bulk_source_hold(s, rb->bufs);

    for (cl = rb->bufs; cl; cl = next) {
        next = cl->next;
        ngx_free_chain(s->request->pool, cl);
    }

    rb->bufs = NULL;

    return rc;
}


/*
 * The body cannot be read: the client closed the connection, sent
 * nothing for client_body_timeout, sent a body over
 * client_max_body_size or a malformed chunked body.
 */

static void
ngx_http_bulk_push_failed(ngx_http_bulk_source_t *s, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = s->request;

    s->failed = 1;
    s->state = ngx_http_bulk_source_over;
    r->read_event_handler = ngx_http_block_reading;

    if (rc == NGX_HTTP_REQUEST_TIME_OUT) {
        s->answer = NGX_HTTP_REQUEST_TIME_OUT;
        s->code = "timeout";
        ngx_snprintf(s->err, sizeof(s->err) - 1,
                     "the client sent nothing for client_body_timeout "
                     "after %O bytes%Z", s->received);

    } else if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        s->answer = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        s->code = "too-large";
        ngx_snprintf(s->err, sizeof(s->err) - 1,
                     "the body is larger than %O bytes%Z",
                     ((ngx_http_bulk_loc_conf_t *)
                      ngx_http_get_module_loc_conf(r, ngx_http_bulk_module))
                     ->body_max);

    } else if (r->connection->error) {
        s->answer = NGX_HTTP_CLIENT_CLOSED_REQUEST;
        s->code = "incomplete";
        ngx_snprintf(s->err, sizeof(s->err) - 1,
                     "the client closed the connection after %O bytes%Z",
                     s->received);

    } else if (rc == NGX_HTTP_BAD_REQUEST) {
        s->answer = NGX_HTTP_BAD_REQUEST;
        s->code = "invalid";
        ngx_snprintf(s->err, sizeof(s->err) - 1,
                     "the body is malformed (chunked encoding)%Z");

    } else {
        s->answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        s->code = "exception";
        ngx_snprintf(s->err, sizeof(s->err) - 1,
                     "cannot read the body (%i)%Z", rc);
    }
}


/*
 * The load failed: nothing more is read.  A body never started is
 * discarded, so that the connection serves its next request; one read in
 * part ends with the connection (nginx's lingering close).
 */

static void
ngx_http_bulk_push_stop(ngx_http_bulk_source_t *s)
{
    ngx_http_request_t  *r;

    r = s->request;

    if (s->state == ngx_http_bulk_source_idle) {
        (void) ngx_http_discard_request_body(r);
        return;
    }

    s->state = ngx_http_bulk_source_over;
    r->read_event_handler = ngx_http_block_reading;
}
