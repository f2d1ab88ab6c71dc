
/*
 * ngx_bulk: the COPY OUT driver (see ngx_http_bulk_copy.h).
 *
 * One state machine, dispatched from ngx_http_bulk_copy_process():
 *
 *   wait -> [prepare] -> [parse -> describe -> [lookup]] -> query -> rows
 *        -> end -> [close] -> done
 *
 * Each statement's results are read to the end; the first error result is
 * kept; the results of describe and lookup go to the operation, which may
 * refuse the query.  An error before the response header rolls an open
 * transaction back (rollback) and is answered as an OperationOutcome; an
 * error after it ends the response without its last chunk and closes the
 * connection.
 * The PostgreSQL socket is read only while fewer than
 * NGX_HTTP_BULK_BUSY_MAX output buffers wait for the client; a tick every
 * NGX_HTTP_BULK_COPY_TICK ms sends a partly filled buffer when PostgreSQL
 * is slow and ends a query that sends nothing for bulk_pg_timeout (not
 * counting time spent waiting for the client).  Being not cancelable, the
 * tick also keeps a gracefully exiting worker until the stream is over.
 */


#include "ngx_http_bulk_copy.h"
#include "ngx_http_bulk_util.h"


#define NGX_HTTP_BULK_COPY_TICK   100

/* extra reads of the socket per event, before waiting for the next one */
#define NGX_HTTP_BULK_COPY_READS  8


static void ngx_http_bulk_copy_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_copy_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_copy_process(ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_copy_results(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_send(ngx_http_bulk_copy_t *copy,
    const char *sql, ngx_http_bulk_copy_state_e state);
static void ngx_http_bulk_copy_read(ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_copy_row(ngx_http_bulk_copy_t *copy,
    u_char *data, size_t len);
static void ngx_http_bulk_copy_complete(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_failed(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_lost(ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_copy_answer(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_write_handler(ngx_http_request_t *r);
static void ngx_http_bulk_copy_tick(ngx_event_t *ev);
static void ngx_http_bulk_copy_finish(ngx_http_bulk_copy_t *copy,
    ngx_int_t rc);
static void ngx_http_bulk_copy_abort(ngx_http_bulk_copy_t *copy,
    const char *reason);
static void ngx_http_bulk_copy_release(ngx_http_bulk_copy_t *copy,
    ngx_uint_t reusable);
static void ngx_http_bulk_copy_cleanup(void *data);


/*
 * The driver of request r: its cleanup, its waiter for a connection and
 * its tick.  The copy becomes the request's context of the module, the
 * first member of the operation's own.
 */

ngx_int_t
ngx_http_bulk_copy_init(ngx_http_bulk_copy_t *copy, ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_bulk_loc_conf_t  *blcf;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulk_copy_cleanup;
    cln->data = copy;

    copy->request = r;

    ngx_http_set_ctx(r, copy, ngx_http_bulk_module);

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    copy->pg_timeout = blcf->pg_timeout;
    copy->tick.handler = ngx_http_bulk_copy_tick;
    copy->tick.data = copy;
    copy->tick.log = r->connection->log;

    ngx_http_bulk_pg_waiter_init(&copy->waiter, blcf->pool,
                                 ngx_http_bulk_copy_ready, copy,
                                 r->connection->log);
    copy->waiter.stats = &copy->stats;

    return NGX_OK;
}


/* the operation's part is set: asks for a connection; NGX_DONE */

ngx_int_t
ngx_http_bulk_copy_run(ngx_http_bulk_copy_t *copy)
{
    ngx_http_request_t  *r;

    r = copy->request;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    ngx_http_bulk_pg_get(&copy->waiter);

    return NGX_DONE;
}


static void
ngx_http_bulk_copy_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_bulk_copy_t  *copy;

    copy = w->data;
    r = copy->request;
    c = r->connection;

    if (rc != NGX_OK) {
        ngx_http_bulk_copy_finish(copy,
            ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "transient", "database unavailable: %s",
                                     w->err));
        ngx_http_run_posted_requests(c);
        return;
    }

    copy->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_copy_pg_handler, copy);

    if (copy->taint) {
        ngx_http_bulk_pg_taint(copy->pc);
    }

    /*
     * a database that stops answering raises no event: the watchdog ends
     * the request after bulk_pg_timeout
     */

    copy->pg_active = ngx_current_msec;
    ngx_add_timer(&copy->tick, NGX_HTTP_BULK_COPY_TICK);

    if (copy->prepare) {
        ngx_http_bulk_copy_send(copy, copy->prepare,
                                ngx_http_bulk_copy_prepare);

    } else if (copy->describe) {
        ngx_http_bulk_copy_send(copy, copy->describe,
                                ngx_http_bulk_copy_parse);

    } else {
        ngx_http_bulk_copy_send(copy, copy->query, ngx_http_bulk_copy_query);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_copy_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t      *c;
    ngx_http_bulk_copy_t  *copy;

    copy = pc->data;
    c = copy->request->connection;

    copy->pg_active = ngx_current_msec;

    ngx_http_bulk_copy_process(copy);

    ngx_http_run_posted_requests(c);
}


/* the one place that moves the driver on */

static void
ngx_http_bulk_copy_process(ngx_http_bulk_copy_t *copy)
{
    ngx_int_t  rc;

    switch (copy->state) {

    case ngx_http_bulk_copy_rows:
        ngx_http_bulk_copy_read(copy);
        return;

    case ngx_http_bulk_copy_wait:
    case ngx_http_bulk_copy_done:
        return;

    default:
        break;
    }

    rc = ngx_http_bulk_copy_results(copy);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_bulk_copy_lost(copy);
        return;
    }

    if (rc == NGX_DONE) {
        copy->state = ngx_http_bulk_copy_rows;

        if (!copy->lazy && ngx_http_bulk_copy_start(copy) == NGX_ERROR) {
            ngx_http_bulk_copy_abort(copy, "sending the header failed");
            return;
        }

        ngx_http_bulk_copy_read(copy);
        return;
    }

    /* every result of the statement is in */

    if (copy->state == ngx_http_bulk_copy_rollback) {
        ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(copy));
        return;
    }

    if (copy->result || copy->refused) {
        ngx_http_bulk_copy_failed(copy);
        return;
    }

    switch (copy->state) {

    case ngx_http_bulk_copy_prepare:

        if (copy->describe) {
            ngx_http_bulk_copy_send(copy, copy->describe,
                                    ngx_http_bulk_copy_parse);
            return;
        }

        ngx_http_bulk_copy_send(copy, copy->query, ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_parse:
        ngx_http_bulk_copy_send(copy, NULL, ngx_http_bulk_copy_describe);
        return;

    case ngx_http_bulk_copy_describe:

        if (copy->lookup) {
            ngx_http_bulk_copy_send(copy, copy->lookup,
                                    ngx_http_bulk_copy_lookup);
            return;
        }

        ngx_http_bulk_copy_send(copy, copy->query, ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_lookup:
        ngx_http_bulk_copy_send(copy, copy->query, ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_query:    /* a query without COPY: HEAD */
    case ngx_http_bulk_copy_end:

        if (copy->close) {
            ngx_http_bulk_copy_send(copy, copy->close,
                                    ngx_http_bulk_copy_close);
            return;
        }

        ngx_http_bulk_copy_complete(copy);
        return;

    default: /* ngx_http_bulk_copy_close */
        ngx_http_bulk_copy_complete(copy);
        return;
    }
}


/*
 * Reads the results of the statement sent: NGX_OK when all are in (the
 * first error kept in copy->result), NGX_DONE at the query's COPY OUT,
 * NGX_AGAIN to wait, NGX_ERROR when the connection is lost.
 */

static ngx_int_t
ngx_http_bulk_copy_results(ngx_http_bulk_copy_t *copy)
{
    PGconn     *pg;
    PGresult   *res;
    ngx_int_t   rc;

    pg = copy->pc->pg;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            break;
        }

        switch (PQresultStatus(res)) {

        case PGRES_COPY_OUT:
            PQclear(res);

            if (copy->state == ngx_http_bulk_copy_query) {
                return NGX_DONE;
            }

            /* not ours: no other statement copies anything */
            return NGX_ERROR;

        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:

            if ((copy->state == ngx_http_bulk_copy_describe
                 || copy->state == ngx_http_bulk_copy_lookup)
                && copy->result == NULL && !copy->refused)
            {
                rc = copy->described(copy, res);

                if (rc == NGX_DECLINED) {
                    copy->refused = NGX_HTTP_BULK_UNPROCESSABLE;

                } else if (rc != NGX_OK) {
                    copy->refused = NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            PQclear(res);
            continue;

        default:
            if (copy->result == NULL) {
                copy->result = res;
                copy->failed = copy->state;

            } else {
                PQclear(res);
            }
        }
    }

    if (PQstatus(pg) != CONNECTION_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_bulk_copy_send(ngx_http_bulk_copy_t *copy, const char *sql,
    ngx_http_bulk_copy_state_e state)
{
    ngx_int_t  rc;

    copy->state = state;

    switch (state) {

    case ngx_http_bulk_copy_parse:
        rc = ngx_http_bulk_pg_parse(copy->pc, sql);
        break;

    case ngx_http_bulk_copy_describe:
        rc = ngx_http_bulk_pg_describe(copy->pc);
        break;

    case ngx_http_bulk_copy_query:

        if (copy->single) {
            rc = ngx_http_bulk_pg_send_one(copy->pc, sql);
            break;
        }

        /* fall through */

    default:
        rc = ngx_http_bulk_pg_send(copy->pc, sql);
    }

    if (rc != NGX_OK) {
        ngx_http_bulk_copy_lost(copy);
    }
}


/*
 * Sends the response header: at COPY OUT, or from the operation's row
 * callback when the header waits for the first row (copy->lazy), or at
 * the end of a result without rows.  NGX_ERROR when it failed.
 */

ngx_int_t
ngx_http_bulk_copy_start(ngx_http_bulk_copy_t *copy)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = copy->request;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = copy->content_type;
    r->headers_out.content_type_len = copy->content_type.len;
    r->headers_out.content_length_n = -1;

    if (copy->gzip
        && ngx_http_bulk_add_header(r, "Content-Encoding", "gzip") != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    copy->started = 1;

    if (r->header_only) {
        return rc;
    }

    if (ngx_http_bulk_out_init(&copy->out, r, copy->gzip) != NGX_OK) {
        return NGX_ERROR;
    }

    r->write_event_handler = ngx_http_bulk_copy_write_handler;

    if (copy->header) {
        return copy->header(copy);
    }

    return NGX_OK;
}


static void
ngx_http_bulk_copy_read(ngx_http_bulk_copy_t *copy)
{
    int                   n;
    char                 *buf;
    PGconn               *pg;
    ngx_int_t             rc;
    ngx_uint_t            reads;
    ngx_http_bulk_out_t  *o;

    pg = copy->pc->pg;
    o = &copy->out;
    reads = 0;

    for ( ;; ) {
        n = PQgetCopyData(pg, &buf, 1);

        if (n == 0) {

            /*
             * the socket may hold more than one read took: a few more
             * reads here save event loop turns
             */

            if (reads++ < NGX_HTTP_BULK_COPY_READS && PQconsumeInput(pg)) {
                n = PQgetCopyData(pg, &buf, 1);
            }

            if (n == 0) {

                /*
                 * a connection lost while reading: libpq has closed the
                 * socket, so no event will come, and PQgetCopyData() says
                 * "no data yet" as long as COPY is not complete
                 */

                if (PQstatus(pg) != CONNECTION_OK) {
                    ngx_http_bulk_copy_lost(copy);
                }

                return;
            }
        }

        if (n == -1) {
            /* COPY is over: its own result comes next */
            copy->state = ngx_http_bulk_copy_end;
            ngx_http_bulk_copy_process(copy);
            return;
        }

        if (n < 0) {
            ngx_http_bulk_copy_lost(copy);
            return;
        }

        rc = ngx_http_bulk_copy_row(copy, (u_char *) buf, n);
        PQfreemem(buf);

        if (rc == NGX_ERROR) {
            ngx_http_bulk_copy_abort(copy, copy->err[0]
                                           ? (char *) copy->err
                                           : "malformed row from PostgreSQL "
                                             "or no memory");
            return;
        }

        if (o->out == NULL) {
            continue;
        }

        if (ngx_http_bulk_out_send(o, 0, 0) == NGX_ERROR) {
            ngx_http_bulk_copy_abort(copy, NULL);
            return;
        }

        if (ngx_http_bulk_out_full(o)) {

            /* backpressure: leave the rows in the socket */

            copy->paused = 1;

            if (ngx_http_bulk_pg_read(copy->pc, 0) != NGX_OK
                || ngx_http_bulk_out_wait(copy->request) != NGX_OK)
            {
                ngx_http_bulk_copy_abort(copy, "event failure");
            }

            return;
        }
    }
}


/* one COPY message to the operation: a binary tuple's fields, or a line */

static ngx_inline ngx_int_t
ngx_http_bulk_copy_row(ngx_http_bulk_copy_t *copy, u_char *data, size_t len)
{
    int        rc;
    size_t     n;
    ngx_int_t  row;

    if (copy->binary) {
        rc = ngx_bulk_pgcopy_read(&copy->reader, data, len, copy->fields,
                                  NGX_HTTP_BULK_COPY_FIELDS, &n);

        if (rc == 0) {
            /* the file header alone, or the trailer */
            return NGX_OK;
        }

        if (rc < 0) {
            ngx_cpystrn(copy->err, (u_char *) "malformed row from PostgreSQL",
                        sizeof(copy->err));
            return NGX_ERROR;
        }

    } else {
        copy->fields[0].data = data;
        copy->fields[0].len = (int32_t) len;
        n = 1;
    }

    row = copy->row(copy, copy->fields, n);

    if (row == NGX_OK) {
        copy->stats.rows++;
        copy->stats.bytes = copy->out.bytes;
        return NGX_OK;
    }

    return (row == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
}


/* the result is complete: the header if no row sent it, the last chunk */

static void
ngx_http_bulk_copy_complete(ngx_http_bulk_copy_t *copy)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = copy->request;

    if (!copy->started) {
        rc = ngx_http_bulk_copy_start(copy);

        if (rc == NGX_ERROR) {
            ngx_http_bulk_copy_abort(copy, "sending the header failed");
            return;
        }

        if (r->header_only) {
            ngx_http_bulk_copy_finish(copy, rc);
            return;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bulk %V: %ui rows", &copy->name, copy->stats.rows);

    if (copy->footer && !r->header_only && copy->footer(copy) != NGX_OK) {
        ngx_http_bulk_copy_abort(copy, "writing the end failed");
        return;
    }

    ngx_http_bulk_copy_finish(copy, ngx_http_bulk_out_send(&copy->out, 0, 1));
}


/* PostgreSQL refused: roll back and answer, or cut a started stream */

static void
ngx_http_bulk_copy_failed(ngx_http_bulk_copy_t *copy)
{
    if (copy->started) {
        ngx_http_bulk_copy_abort(copy, PQresultErrorMessage(copy->result));
        return;
    }

    if (PQtransactionStatus(copy->pc->pg) != PQTRANS_IDLE) {
        ngx_http_bulk_copy_send(copy, "ROLLBACK", ngx_http_bulk_copy_rollback);
        return;
    }

    ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(copy));
}


/* the connection is lost, or a statement could not be sent */

static void
ngx_http_bulk_copy_lost(ngx_http_bulk_copy_t *copy)
{
    if (copy->started) {
        ngx_http_bulk_copy_abort(copy, PQerrorMessage(copy->pc->pg));
        return;
    }

    ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(copy));
}


/* an error before the response header as the operation answers it */

static ngx_int_t
ngx_http_bulk_copy_answer(ngx_http_bulk_copy_t *copy)
{
    if (copy->refused && copy->result == NULL) {

        if (copy->refused == NGX_HTTP_INTERNAL_SERVER_ERROR) {
            ngx_log_error(NGX_LOG_ERR, copy->request->connection->log, 0,
                          "bulk %V failed: %s", &copy->name,
                          copy->err[0] ? (char *) copy->err : "no memory");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(copy->request, copy->refused,
                                        "processing", "%s", copy->err);
    }

    if (copy->error) {
        return copy->error(copy, copy->result);
    }

    return ngx_http_bulk_send_pg_error(copy->request, copy->result,
                                       copy->pc->pg, copy->client);
}


static void
ngx_http_bulk_copy_write_handler(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    const char            *reason;
    ngx_http_bulk_copy_t  *copy;

    copy = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (copy->state == ngx_http_bulk_copy_done) {
        return;
    }

    rc = ngx_http_bulk_out_writable(&copy->out, copy->paused, &reason);

    if (rc == NGX_ERROR) {
        ngx_http_bulk_copy_abort(copy, reason);
        return;
    }

    if (rc == NGX_OK) {
        copy->paused = 0;

        if (ngx_http_bulk_pg_read(copy->pc, 1) != NGX_OK) {
            ngx_http_bulk_copy_abort(copy, "event failure");
            return;
        }

        ngx_http_bulk_copy_read(copy);
    }
}


static void
ngx_http_bulk_copy_tick(ngx_event_t *ev)
{
    ngx_connection_t      *c;
    ngx_http_bulk_copy_t  *copy;

    copy = ev->data;
    c = copy->request->connection;

    if (copy->state == ngx_http_bulk_copy_done) {
        return;
    }

    if (copy->paused) {
        /* waiting for the client, not for the database */
        copy->pg_active = ngx_current_msec;

    } else if (ngx_current_msec - copy->pg_active >= copy->pg_timeout) {

        if (copy->started) {
            ngx_http_bulk_copy_abort(copy, "PostgreSQL sent nothing for "
                                           "bulk_pg_timeout");

        } else {
            ngx_http_bulk_copy_release(copy, 0);

            ngx_http_bulk_copy_finish(copy,
                ngx_http_bulk_send_error(copy->request,
                                         NGX_HTTP_GATEWAY_TIME_OUT,
                                         "timeout", "PostgreSQL did not "
                                         "answer within bulk_pg_timeout"));
        }

        ngx_http_run_posted_requests(c);
        return;

    } else if (copy->state == ngx_http_bulk_copy_rows && copy->started
               && copy->out.busy == NULL
               && ngx_http_bulk_out_pending(&copy->out))
    {
        /* the database is slow: the client gets what there is */

        if (ngx_http_bulk_out_send(&copy->out, 1, 0) == NGX_ERROR) {
            ngx_http_bulk_copy_abort(copy, NULL);
            ngx_http_run_posted_requests(c);
            return;
        }
    }

    ngx_add_timer(&copy->tick, NGX_HTTP_BULK_COPY_TICK);
}


/* the end: the connection goes back when its transaction is over */

static void
ngx_http_bulk_copy_finish(ngx_http_bulk_copy_t *copy, ngx_int_t rc)
{
    ngx_http_bulk_copy_release(copy, 1);

    ngx_http_finalize_request(copy->request, rc);
}


/*
 * A failure after the header: the client gets the rows before it, then
 * the response ends without its last chunk; the connection is closed.
 */

static void
ngx_http_bulk_copy_abort(ngx_http_bulk_copy_t *copy, const char *reason)
{
    ngx_http_request_t  *r;

    r = copy->request;

    if (reason) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulk %V failed after %ui rows: %*s", &copy->name,
                      copy->stats.rows, ngx_http_bulk_pg_msg_len(reason),
                      reason);

        if (copy->started && !r->header_only && !r->connection->error) {
            (void) ngx_http_bulk_out_send(&copy->out, 1, 0);
        }
    }

    ngx_http_bulk_copy_release(copy, 0);

    r->connection->error = 1;
    ngx_http_finalize_request(r, NGX_ERROR);
}


/*
 * The driver lets go: of its error result, of its connection (reusable:
 * back to the pool if the transaction is over; else closed, which stops
 * a query still running) and of its tick.
 */

static void
ngx_http_bulk_copy_release(ngx_http_bulk_copy_t *copy, ngx_uint_t reusable)
{
    if (copy->result) {
        PQclear(copy->result);
        copy->result = NULL;
    }

    if (copy->pc) {
        ngx_http_bulk_pg_release(copy->pc, reusable);
        copy->pc = NULL;
    }

    if (copy->tick.timer_set) {
        ngx_del_timer(&copy->tick);
    }

    copy->state = ngx_http_bulk_copy_done;
}


/* the request is freed: a client gone mid-query closes the connection */

static void
ngx_http_bulk_copy_cleanup(void *data)
{
    ngx_http_bulk_copy_t  *copy = data;

    ngx_http_bulk_pg_cancel(&copy->waiter);

    ngx_http_bulk_copy_release(copy, 0);
}
