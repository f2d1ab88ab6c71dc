
/*
 * ngx_bulk: the COPY OUT driver (see ngx_http_bulk_copy.h).
 *
 * One state machine per leg (database connection), dispatched from
 * ngx_http_bulk_copy_process():
 *
 *   wait -> [prepare] -> [split | parse -> describe -> [lookup]] -> query
 *        -> rows -> end -> ... -> [hold] -> [close] -> done
 *
 * the lead's split and a leg's query repeated while ranges are left.
 * Each statement's results are read to the end; the first error result is
 * kept; the results of describe and lookup go to the operation, which may
 * refuse the query (a describe runs on a copy of one leg only).  An error
 * before the response header closes the other legs, rolls
 * an open transaction back (rollback) and is answered as an
 * OperationOutcome; an error after it ends the response without its last
 * chunk and closes every connection.  The response ends when every leg is
 * done (ngx_http_bulk_copy_settle).  The PostgreSQL sockets are read only
 * while fewer than NGX_HTTP_BULK_BUSY_MAX output buffers wait for the
 * client; a tick every NGX_HTTP_BULK_COPY_TICK ms sends a partly filled
 * buffer when PostgreSQL is slow and ends a query that sends nothing for
 * bulk_pg_timeout (not counting time spent waiting for the client).  Being
 * not cancelable, the tick also keeps a gracefully exiting worker until
 * the stream is over.
 *
 * Whatever ends the request frees the copy with it: a function that may
 * end it (send, lost, failed, finish, abort, settle) is the last thing its
 * caller does.
 */


#include "ngx_http_bulk_copy.h"
#include "ngx_http_bulk_util.h"


#define NGX_HTTP_BULK_COPY_TICK   100

/* extra reads of the socket per event, before waiting for the next one */
#define NGX_HTTP_BULK_COPY_READS  8


/* the statements of a parallel copy */
#define NGX_HTTP_BULK_COPY_BEGIN                                              \
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
#define NGX_HTTP_BULK_COPY_IMPORT                                             \
    NGX_HTTP_BULK_COPY_BEGIN "; SET TRANSACTION SNAPSHOT '%s'"

/* the most legs of one copy */
#define NGX_HTTP_BULK_COPY_LEGS   64


typedef ngx_http_bulk_copy_leg_t  ngx_http_bulk_leg_t;


static void ngx_http_bulk_copy_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_copy_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_copy_process(ngx_http_bulk_leg_t *leg);
static ngx_int_t ngx_http_bulk_copy_results(ngx_http_bulk_leg_t *leg);
static ngx_int_t ngx_http_bulk_copy_snapshot(ngx_http_bulk_copy_t *copy,
    PGresult *res);
static ngx_int_t ngx_http_bulk_copy_send(ngx_http_bulk_leg_t *leg,
    const char *sql, ngx_http_bulk_copy_state_e state);
static void ngx_http_bulk_copy_divide(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_next(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_leave(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_leg_done(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_settle(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_read(ngx_http_bulk_leg_t *leg);
static ngx_int_t ngx_http_bulk_copy_row(ngx_http_bulk_leg_t *leg,
    u_char *data, size_t len);
static void ngx_http_bulk_copy_pause(ngx_http_bulk_copy_t *copy,
    ngx_uint_t pause);
static void ngx_http_bulk_copy_complete(ngx_http_bulk_copy_t *copy);
static void ngx_http_bulk_copy_failed(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_lost(ngx_http_bulk_leg_t *leg);
static ngx_int_t ngx_http_bulk_copy_answer(ngx_http_bulk_leg_t *leg);
static void ngx_http_bulk_copy_write_handler(ngx_http_request_t *r);
static void ngx_http_bulk_copy_tick(ngx_event_t *ev);
static void ngx_http_bulk_copy_finish(ngx_http_bulk_copy_t *copy,
    ngx_int_t rc);
static void ngx_http_bulk_copy_abort(ngx_http_bulk_copy_t *copy,
    const char *reason);
static void ngx_http_bulk_copy_release(ngx_http_bulk_copy_t *copy,
    ngx_http_bulk_leg_t *keep, ngx_uint_t reusable);
static void ngx_http_bulk_copy_cleanup(void *data);


/*
 * The driver of request r: its cleanup and its tick.  The copy becomes
 * the request's context of the module, the first member of the
 * operation's own.
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

    /* the reads go to bulk_pg_read's database when there is one */
    copy->pool = blcf->read_pool;
    copy->pg_timeout = blcf->pg_timeout;
    copy->tick.handler = ngx_http_bulk_copy_tick;
    copy->tick.data = copy;
    copy->tick.log = r->connection->log;

    return NGX_OK;
}


/* the operation's part is set: the legs, a connection asked; NGX_DONE */

ngx_int_t
ngx_http_bulk_copy_run(ngx_http_bulk_copy_t *copy)
{
    ngx_uint_t            i, n;
    ngx_http_request_t   *r;
    ngx_http_bulk_leg_t  *leg;

    r = copy->request;

    n = 1;

    if (copy->parallel > 1 && copy->split && copy->range) {
        n = ngx_min(copy->parallel, NGX_HTTP_BULK_COPY_LEGS);

        /* one snapshot: a transaction on each leg */
        copy->prepare = NGX_HTTP_BULK_COPY_BEGIN;
        copy->close = "COMMIT";
    }

    copy->legs = ngx_pcalloc(r->pool, n * sizeof(ngx_http_bulk_leg_t));
    if (copy->legs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy->nlegs = n;

    for (i = 0; i < n; i++) {
        leg = &copy->legs[i];
        leg->copy = copy;
        leg->index = i;
        ngx_http_bulk_pg_waiter_init(&leg->waiter, copy->pool,
                                     ngx_http_bulk_copy_ready, leg,
                                     r->connection->log);
    }

    /* $bulk_db_time: the lead's, which holds the whole transaction */
    copy->legs[0].waiter.stats = &copy->stats;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    ngx_http_bulk_pg_get(&copy->legs[0].waiter);

    return NGX_DONE;
}


static void
ngx_http_bulk_copy_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_bulk_leg_t   *leg;
    ngx_http_bulk_copy_t  *copy;

    leg = w->data;
    copy = leg->copy;
    r = copy->request;
    c = r->connection;

    if (rc != NGX_OK && leg->index == 0) {
        ngx_http_bulk_copy_finish(copy,
            ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "transient", "database unavailable: %s",
                                     w->err));
        ngx_http_run_posted_requests(c);
        return;
    }

    if (rc != NGX_OK) {

        /* another leg: its range is left to the legs that run */

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bulk %V: leg %ui got no connection: %s", &copy->name,
                      leg->index, w->err);

        leg->state = ngx_http_bulk_copy_done;
        ngx_http_bulk_copy_settle(copy);
        ngx_http_run_posted_requests(c);
        return;
    }

    leg->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_copy_pg_handler, leg);

    if (copy->taint) {
        ngx_http_bulk_pg_taint(leg->pc);
    }

    if (leg->index == 0) {

        /*
         * a database that stops answering raises no event: the watchdog
         * ends the request after bulk_pg_timeout
         */

        copy->pg_active = ngx_current_msec;
        ngx_add_timer(&copy->tick, NGX_HTTP_BULK_COPY_TICK);

        if (copy->prepare) {
            (void) ngx_http_bulk_copy_send(leg, copy->prepare,
                                           ngx_http_bulk_copy_prepare);

        } else if (copy->describe) {
            (void) ngx_http_bulk_copy_send(leg, copy->describe,
                                           ngx_http_bulk_copy_parse);

        } else {
            (void) ngx_http_bulk_copy_send(leg, copy->query,
                                           ngx_http_bulk_copy_query);
        }

    } else if (copy->next < copy->nranges) {
        (void) ngx_http_bulk_copy_send(leg, copy->import,
                                       ngx_http_bulk_copy_prepare);

    } else {
        /* the other legs took every range meanwhile */
        ngx_http_bulk_copy_leg_done(leg);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_copy_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t      *c;
    ngx_http_bulk_leg_t   *leg;
    ngx_http_bulk_copy_t  *copy;

    leg = pc->data;
    copy = leg->copy;
    c = copy->request->connection;

    copy->pg_active = ngx_current_msec;

    ngx_http_bulk_copy_process(leg);

    ngx_http_run_posted_requests(c);
}


/* the one place that moves a leg on */

static void
ngx_http_bulk_copy_process(ngx_http_bulk_leg_t *leg)
{
    ngx_int_t              rc;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    switch (leg->state) {

    case ngx_http_bulk_copy_rows:
        ngx_http_bulk_copy_read(leg);
        return;

    case ngx_http_bulk_copy_hold:

        /* idle in its transaction: only a lost connection matters */

        if (PQstatus(leg->pc->pg) != CONNECTION_OK) {
            ngx_http_bulk_copy_lost(leg);
        }

        return;

    case ngx_http_bulk_copy_wait:
    case ngx_http_bulk_copy_done:
        return;

    default:
        break;
    }

    rc = ngx_http_bulk_copy_results(leg);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_bulk_copy_lost(leg);
        return;
    }

    if (rc == NGX_DONE) {
        leg->state = ngx_http_bulk_copy_rows;

        if (!copy->lazy && !copy->started
            && ngx_http_bulk_copy_start(copy) == NGX_ERROR)
        {
            ngx_http_bulk_copy_abort(copy, "sending the header failed");
            return;
        }

        ngx_http_bulk_copy_read(leg);
        return;
    }

    /* every result of the statement is in */

    if (leg->state == ngx_http_bulk_copy_rollback) {
        ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(leg));
        return;
    }

    if (copy->result || copy->refused) {
        ngx_http_bulk_copy_failed(leg);
        return;
    }

    switch (leg->state) {

    case ngx_http_bulk_copy_prepare:

        if (leg->index != 0) {
            /* the snapshot is imported: a range, if one is left */
            ngx_http_bulk_copy_next(leg);
            return;
        }

        if (copy->nlegs > 1) {
            (void) ngx_http_bulk_copy_send(leg, copy->split,
                                           ngx_http_bulk_copy_split);
            return;
        }

        if (copy->describe) {
            (void) ngx_http_bulk_copy_send(leg, copy->describe,
                                           ngx_http_bulk_copy_parse);
            return;
        }

        (void) ngx_http_bulk_copy_send(leg, copy->query,
                                       ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_split:
        ngx_http_bulk_copy_divide(leg);
        return;

    case ngx_http_bulk_copy_parse:
        (void) ngx_http_bulk_copy_send(leg, NULL,
                                       ngx_http_bulk_copy_describe);
        return;

    case ngx_http_bulk_copy_describe:

        if (copy->lookup) {
            (void) ngx_http_bulk_copy_send(leg, copy->lookup,
                                           ngx_http_bulk_copy_lookup);
            return;
        }

        (void) ngx_http_bulk_copy_send(leg, copy->query,
                                       ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_lookup:
        (void) ngx_http_bulk_copy_send(leg, copy->query,
                                       ngx_http_bulk_copy_query);
        return;

    case ngx_http_bulk_copy_query:    /* a query without COPY: HEAD */
    case ngx_http_bulk_copy_end:
        ngx_http_bulk_copy_next(leg);
        return;

    default: /* ngx_http_bulk_copy_close */
        ngx_http_bulk_copy_leg_done(leg);
        return;
    }
}


/*
 * Reads the results of the statement a leg sent: NGX_OK when all are in
 * (the first error kept in copy->result), NGX_DONE at the query's COPY
 * OUT, NGX_AGAIN to wait, NGX_ERROR when the connection is lost.
 */

static ngx_int_t
ngx_http_bulk_copy_results(ngx_http_bulk_leg_t *leg)
{
    PGconn                *pg;
    ngx_int_t              rc;
    PGresult              *res;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;
    pg = leg->pc->pg;

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

            if (leg->state == ngx_http_bulk_copy_query) {
                return NGX_DONE;
            }

            /* not ours: no other statement copies anything */
            return NGX_ERROR;

        case PGRES_TUPLES_OK:

            if (leg->state == ngx_http_bulk_copy_split) {

                if (ngx_http_bulk_copy_snapshot(copy, res) != NGX_OK) {
                    PQclear(res);
                    return NGX_ERROR;
                }

                PQclear(res);
                continue;
            }

            /* fall through */

        case PGRES_COMMAND_OK:

            if ((leg->state == ngx_http_bulk_copy_describe
                 || leg->state == ngx_http_bulk_copy_lookup)
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
                copy->failed = leg->state;

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


/* the split's row: the exported snapshot and the table's pages */

static ngx_int_t
ngx_http_bulk_copy_snapshot(ngx_http_bulk_copy_t *copy, PGresult *res)
{
    u_char      *p;
    size_t       len;
    const char  *snap, *pages;

    if (PQntuples(res) != 1 || PQnfields(res) != 2
        || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1))
    {
        return NGX_ERROR;
    }

    snap = PQgetvalue(res, 0, 0);
    pages = PQgetvalue(res, 0, 1);
    len = ngx_strlen(snap);

    /* a snapshot id is hex digits and dashes: safe inside quotes */

    if (len == 0 || len > 64
        || strspn(snap, "0123456789ABCDEFabcdef-") != len)
    {
        return NGX_ERROR;
    }

    copy->pages = 0;

    for (p = (u_char *) pages; *p; p++) {
        if (*p < '0' || *p > '9' || copy->pages > (uint64_t) 1 << 40) {
            return NGX_ERROR;
        }

        copy->pages = copy->pages * 10 + (*p - '0');
    }

    p = ngx_pnalloc(copy->request->pool,
                    sizeof(NGX_HTTP_BULK_COPY_IMPORT) + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_sprintf(p, NGX_HTTP_BULK_COPY_IMPORT, snap) = '\0';

    copy->import = (char *) p;

    return NGX_OK;
}


/* NGX_OK, or NGX_ERROR when the connection failed (the copy has ended) */

static ngx_int_t
ngx_http_bulk_copy_send(ngx_http_bulk_leg_t *leg, const char *sql,
    ngx_http_bulk_copy_state_e state)
{
    ngx_int_t  rc;

    leg->state = state;

    switch (state) {

    case ngx_http_bulk_copy_parse:
        rc = ngx_http_bulk_pg_parse(leg->pc, sql);
        break;

    case ngx_http_bulk_copy_describe:
        rc = ngx_http_bulk_pg_describe(leg->pc);
        break;

    case ngx_http_bulk_copy_query:

        if (leg->copy->single) {
            rc = ngx_http_bulk_pg_send_one(leg->pc, sql);
            break;
        }

        /* fall through */

    default:
        rc = ngx_http_bulk_pg_send(leg->pc, sql);
    }

    if (rc != NGX_OK) {
        ngx_http_bulk_copy_lost(leg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The lead has the snapshot and the table's pages: the ranges, one per
 * leg (fewer when the table has fewer pages), then the other legs ask
 * for connections and the lead runs the first range.
 */

static void
ngx_http_bulk_copy_divide(ngx_http_bulk_leg_t *leg)
{
    uint64_t               b;
    ngx_uint_t             i, k, n;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;
    n = copy->nlegs;

    if (copy->import == NULL) {
        ngx_http_bulk_copy_abort(copy, "no snapshot from PostgreSQL");
        return;
    }

    copy->bounds = ngx_palloc(copy->request->pool, (n + 1) * sizeof(uint64_t));
    if (copy->bounds == NULL) {
        ngx_http_bulk_copy_abort(copy, "no memory");
        return;
    }

    /* [0, b1), [b1, b2), ... [bk, end): 0 at either end means open */

    copy->bounds[0] = 0;
    k = 0;

    for (i = 1; i < n; i++) {
        b = copy->pages * i / n;

        if (b > copy->bounds[k]) {
            copy->bounds[++k] = b;
        }
    }

    copy->bounds[++k] = 0;
    copy->nranges = k;
    copy->next = 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, copy->request->connection->log, 0,
                   "bulk %V: %uL pages in %ui ranges", &copy->name,
                   copy->pages, copy->nranges);

    for (i = 1; i < n; i++) {
        if (i < copy->nranges) {
            ngx_http_bulk_pg_ask(&copy->legs[i].waiter);

        } else {
            copy->legs[i].state = ngx_http_bulk_copy_done;
        }
    }

    ngx_http_bulk_copy_next(leg);
}


/* a leg is free: the next range, or the end of its part */

static void
ngx_http_bulk_copy_next(ngx_http_bulk_leg_t *leg)
{
    uint64_t               to;
    ngx_uint_t             i;
    const char            *sql;
    ngx_http_bulk_leg_t   *l;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->next < copy->nranges) {
        i = copy->next++;
        to = copy->bounds[i + 1];

        sql = copy->range(copy, copy->bounds[i], to);
        if (sql == NULL) {
            ngx_http_bulk_copy_abort(copy, "no memory");
            return;
        }

        ngx_memzero(&leg->reader, sizeof(ngx_bulk_pgcopy_reader_t));

        if (ngx_http_bulk_copy_send(leg, sql, ngx_http_bulk_copy_query)
            == NGX_OK)
        {
            /* a leg that imported the snapshot may free the lead */
            ngx_http_bulk_copy_settle(copy);
        }

        return;
    }

    /* nothing is left: legs still waiting for a connection need none */

    for (i = 1; i < copy->nlegs; i++) {
        l = &copy->legs[i];

        if (l->state == ngx_http_bulk_copy_wait) {
            ngx_http_bulk_pg_cancel(&l->waiter);
            l->state = ngx_http_bulk_copy_done;
        }
    }

    if (leg->index == 0) {
        for (i = 1; i < copy->nlegs; i++) {
            if (copy->legs[i].state == ngx_http_bulk_copy_prepare) {

                /* its snapshot import needs the lead's transaction */

                leg->state = ngx_http_bulk_copy_hold;
                return;
            }
        }
    }

    ngx_http_bulk_copy_leave(leg);
}


static void
ngx_http_bulk_copy_leave(ngx_http_bulk_leg_t *leg)
{
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->close == NULL) {
        ngx_http_bulk_copy_leg_done(leg);
        return;
    }

    if (ngx_http_bulk_copy_send(leg, copy->close, ngx_http_bulk_copy_close)
        == NGX_OK)
    {
        ngx_http_bulk_copy_settle(copy);
    }
}


/* a leg's part is over: its connection goes back to the pool */

static void
ngx_http_bulk_copy_leg_done(ngx_http_bulk_leg_t *leg)
{
    if (leg->pc) {
        ngx_http_bulk_pg_release(leg->pc, 1);
        leg->pc = NULL;
    }

    leg->state = ngx_http_bulk_copy_done;

    ngx_http_bulk_copy_settle(leg->copy);
}


/*
 * After a leg moved: a lead held for a snapshot import no longer needed
 * closes; when every leg is done the response is complete.
 */

static void
ngx_http_bulk_copy_settle(ngx_http_bulk_copy_t *copy)
{
    ngx_uint_t  i, importing, done;

    importing = 0;
    done = 1;

    for (i = 0; i < copy->nlegs; i++) {
        if (copy->legs[i].state == ngx_http_bulk_copy_prepare && i != 0) {
            importing = 1;
        }

        if (copy->legs[i].state != ngx_http_bulk_copy_done) {
            done = 0;
        }
    }

    if (copy->legs[0].state == ngx_http_bulk_copy_hold && !importing) {
        ngx_http_bulk_copy_leave(&copy->legs[0]);
        return;
    }

    if (done) {
        ngx_http_bulk_copy_complete(copy);
    }
}


/*
 * Sends the response header: at the first COPY OUT, or from the
 * operation's row callback when the header waits for the first row
 * (copy->lazy), or at the end of a result without rows.  NGX_ERROR when
 * it failed.
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
ngx_http_bulk_copy_read(ngx_http_bulk_leg_t *leg)
{
    int                    n;
    char                  *buf;
    PGconn                *pg;
    ngx_int_t              rc;
    ngx_uint_t             reads;
    ngx_http_bulk_out_t   *o;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->paused) {
        /* another leg filled the buffers: this one waits as well */

        if (ngx_http_bulk_pg_read(leg->pc, 0) != NGX_OK) {
            ngx_http_bulk_copy_abort(copy, "event failure");
        }

        return;
    }

    pg = leg->pc->pg;
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
                    ngx_http_bulk_copy_lost(leg);
                }

                return;
            }
        }

        if (n == -1) {
            /* COPY is over: its own result comes next */
            leg->state = ngx_http_bulk_copy_end;
            ngx_http_bulk_copy_process(leg);
            return;
        }

        if (n < 0) {
            ngx_http_bulk_copy_lost(leg);
            return;
        }

        rc = ngx_http_bulk_copy_row(leg, (u_char *) buf, n);
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

            /* backpressure: every leg leaves its rows in its socket */

            ngx_http_bulk_copy_pause(copy, 1);

            if (copy->paused == 0
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
ngx_http_bulk_copy_row(ngx_http_bulk_leg_t *leg, u_char *data, size_t len)
{
    int                    rc;
    size_t                 n;
    ngx_int_t              row;
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->binary) {
        rc = ngx_bulk_pgcopy_read(&leg->reader, data, len, copy->fields,
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


/*
 * The client is behind (pause), or caught up: the reading legs stop, or
 * start again from the posted events (libpq may hold rows already read
 * from the socket, which no socket event would announce).  On a failure
 * copy->paused is left 0 after a pause.
 */

static void
ngx_http_bulk_copy_pause(ngx_http_bulk_copy_t *copy, ngx_uint_t pause)
{
    ngx_uint_t            i;
    ngx_http_bulk_leg_t  *leg;

    copy->paused = pause;

    for (i = 0; i < copy->nlegs; i++) {
        leg = &copy->legs[i];

        if (leg->state != ngx_http_bulk_copy_rows || leg->pc == NULL) {
            continue;
        }

        if (ngx_http_bulk_pg_read(leg->pc, !pause) != NGX_OK) {
            copy->paused = 0;
            return;
        }

        if (!pause) {
            ngx_http_bulk_pg_post(leg->pc);
        }
    }
}


/* every leg is done: the header if no row sent it, the last chunk */

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


/*
 * PostgreSQL refused: the other legs close, this one rolls back and the
 * error is answered; or a started stream is cut
 */

static void
ngx_http_bulk_copy_failed(ngx_http_bulk_leg_t *leg)
{
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->started) {
        ngx_http_bulk_copy_abort(copy, PQresultErrorMessage(copy->result));
        return;
    }

    if (PQtransactionStatus(leg->pc->pg) != PQTRANS_IDLE) {
        ngx_http_bulk_copy_release(copy, leg, 0);
        (void) ngx_http_bulk_copy_send(leg, "ROLLBACK",
                                       ngx_http_bulk_copy_rollback);
        return;
    }

    ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(leg));
}


/* a leg's connection is lost, or a statement could not be sent */

static void
ngx_http_bulk_copy_lost(ngx_http_bulk_leg_t *leg)
{
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

    if (copy->started) {
        ngx_http_bulk_copy_abort(copy, PQerrorMessage(leg->pc->pg));
        return;
    }

    ngx_http_bulk_copy_finish(copy, ngx_http_bulk_copy_answer(leg));
}


/* an error before the response header as the operation answers it */

static ngx_int_t
ngx_http_bulk_copy_answer(ngx_http_bulk_leg_t *leg)
{
    ngx_http_bulk_copy_t  *copy;

    copy = leg->copy;

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
        return copy->error(copy, copy->result, leg->pc->pg);
    }

    return ngx_http_bulk_send_pg_error(copy->request, copy->result,
                                       leg->pc->pg, copy->client);
}


static void
ngx_http_bulk_copy_write_handler(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    const char            *reason;
    ngx_http_bulk_copy_t  *copy;

    copy = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (copy->over) {
        return;
    }

    rc = ngx_http_bulk_out_writable(&copy->out, copy->paused, &reason);

    if (rc == NGX_ERROR) {
        ngx_http_bulk_copy_abort(copy, reason);
        return;
    }

    if (rc == NGX_OK) {
        ngx_http_bulk_copy_pause(copy, 0);
    }
}


static void
ngx_http_bulk_copy_tick(ngx_event_t *ev)
{
    ngx_connection_t      *c;
    ngx_http_bulk_copy_t  *copy;

    copy = ev->data;
    c = copy->request->connection;

    if (copy->over) {
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
            ngx_http_bulk_copy_release(copy, NULL, 0);

            ngx_http_bulk_copy_finish(copy,
                ngx_http_bulk_send_error(copy->request,
                                         NGX_HTTP_GATEWAY_TIME_OUT,
                                         "timeout", "PostgreSQL did not "
                                         "answer within bulk_pg_timeout"));
        }

        ngx_http_run_posted_requests(c);
        return;

    } else if (copy->started && copy->out.busy == NULL
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


/* the end: the connections go back when their transactions are over */

static void
ngx_http_bulk_copy_finish(ngx_http_bulk_copy_t *copy, ngx_int_t rc)
{
    ngx_http_bulk_copy_release(copy, NULL, 1);

    ngx_http_finalize_request(copy->request, rc);
}


/*
 * A failure after the header: the client gets the rows before it, then
 * the response ends without its last chunk; the connections are closed.
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

    ngx_http_bulk_copy_release(copy, NULL, 0);

    r->connection->error = 1;
    ngx_http_finalize_request(r, NGX_ERROR);
}


/*
 * The driver lets go of every leg but keep: of its waiter, of its
 * connection (reusable: back to the pool if the transaction is over;
 * else closed, which stops a query still running); without keep, of the
 * error result and the tick too.
 */

static void
ngx_http_bulk_copy_release(ngx_http_bulk_copy_t *copy,
    ngx_http_bulk_leg_t *keep, ngx_uint_t reusable)
{
    ngx_uint_t            i;
    ngx_http_bulk_leg_t  *leg;

    for (i = 0; i < copy->nlegs; i++) {
        leg = &copy->legs[i];

        if (leg == keep) {
            continue;
        }

        if (leg->state == ngx_http_bulk_copy_wait) {
            ngx_http_bulk_pg_cancel(&leg->waiter);
        }

        if (leg->pc) {
            ngx_http_bulk_pg_release(leg->pc, reusable);
            leg->pc = NULL;
        }

        leg->state = ngx_http_bulk_copy_done;
    }

    if (keep) {
        return;
    }

    if (copy->result) {
        PQclear(copy->result);
        copy->result = NULL;
    }

    if (copy->tick.timer_set) {
        ngx_del_timer(&copy->tick);
    }

    copy->over = 1;
}


/* the request is freed: a client gone mid-query closes the connections */

static void
ngx_http_bulk_copy_cleanup(void *data)
{
    ngx_http_bulk_copy_t  *copy = data;

    ngx_uint_t  i;

    for (i = 0; i < copy->nlegs; i++) {
        ngx_http_bulk_pg_cancel(&copy->legs[i].waiter);
    }

    ngx_http_bulk_copy_release(copy, NULL, 0);
}
