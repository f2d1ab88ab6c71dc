
/*
 * ngx_bulk: POST /$dump-sql.
 *
 * The client's query runs in "BEGIN READ ONLY" (with "SET LOCAL
 * statement_timeout" when bulk_dump_sql_timeout is set), embedded in one
 * COPY statement sent with the extended query protocol, which PostgreSQL
 * refuses to run when it holds more than one statement:
 *
 *     tsv     COPY (\n<query>\n) TO STDOUT
 *     csv     COPY (\n<query>\n) TO STDOUT (FORMAT csv, HEADER)
 *     ndjson  COPY (SELECT row_to_json(q) FROM (\n<query>\n) q)
 *                 TO STDOUT (FORMAT binary)
 *
 * The newlines around the query end a trailing "--" comment of the query,
 * so the rest of the statement cannot be commented out; nothing of the
 * query is stripped or rewritten: PostgreSQL's parser decides.
 *
 * ndjson uses binary COPY: the binary form of json is its text, so no COPY
 * text escaping (doubled backslashes, "\t", "\n") has to be undone and the
 * JSON comes out byte for byte as row_to_json() made it.  The only bytes
 * changed are raw CR and LF, which in valid JSON text can only be
 * whitespace between tokens (a json column keeps its input's layout): they
 * become spaces, so each row stays one line.
 *
 * The response header is sent with the first row (or at the end of an
 * empty result), not when COPY starts: PostgreSQL starts COPY, and sends
 * the csv header row, before it runs the query, and an error or a
 * statement timeout before the first row must still be a 422 or 504
 * OperationOutcome.  Errors before the header
 * roll the transaction back and the connection is reused; an error after
 * it ends the response without its last chunk and closes the connection.
 * Success is the end of the read-only transaction, rolled back: nothing
 * of a query outlives its request (see ngx_http_bulk_pg_taint()).
 */


#include "ngx_http_bulk_module.h"


#define NGX_HTTP_BULK_SQL_TSV     0
#define NGX_HTTP_BULK_SQL_CSV     1
#define NGX_HTTP_BULK_SQL_NDJSON  2


typedef enum {
    ngx_http_bulk_sql_wait = 0,
    ngx_http_bulk_sql_begin,
    ngx_http_bulk_sql_result,
    ngx_http_bulk_sql_copy,
    ngx_http_bulk_sql_end,
    ngx_http_bulk_sql_close,
    ngx_http_bulk_sql_rollback,
    ngx_http_bulk_sql_done
} ngx_http_bulk_sql_state_e;


typedef struct {
    ngx_http_bulk_stats_t        stats;     /* first: the log variables */
    ngx_http_request_t          *request;
    ngx_http_bulk_pg_waiter_t    waiter;
    ngx_http_bulk_pg_conn_t     *pc;
    ngx_http_bulk_out_t          out;
    ngx_http_bulk_sql_state_e    state;

    ngx_str_t                    query;
    ngx_uint_t                   format;
    size_t                       prefix;   /* bytes of SQL before the query */

    PGresult                    *error;
    ngx_uint_t                   rows;
    ngx_str_t                    header;   /* csv: held until a row comes */

    ngx_event_t                  tick;      /* bulk_pg_timeout watchdog */
    ngx_msec_t                   pg_active; /* last event from PostgreSQL */
    ngx_msec_t                   pg_timeout;

    unsigned                     started:1;
    unsigned                     copy_header:1;
    unsigned                     paused:1;
} ngx_http_bulk_sql_ctx_t;


static ngx_int_t ngx_http_bulk_dump_sql_body(ngx_http_request_t *r,
    yajl_val root);
static void ngx_http_bulk_dump_sql_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_bulk_dump_sql_format(ngx_http_request_t *r,
    yajl_val root, ngx_uint_t *format, u_char *err, size_t errlen);
static void ngx_http_bulk_dump_sql_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_dump_sql_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_dump_sql_process(ngx_http_bulk_sql_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_sql_results(ngx_http_bulk_sql_ctx_t *ctx,
    ngx_uint_t copy);
static void ngx_http_bulk_dump_sql_copy(ngx_http_bulk_sql_ctx_t *ctx);
static void ngx_http_bulk_dump_sql_rows(ngx_http_bulk_sql_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_sql_row(ngx_http_bulk_sql_ctx_t *ctx,
    u_char *data, size_t len);
static ngx_int_t ngx_http_bulk_dump_sql_start(ngx_http_bulk_sql_ctx_t *ctx);
static void ngx_http_bulk_dump_sql_send(ngx_http_bulk_sql_ctx_t *ctx,
    const char *sql, ngx_http_bulk_sql_state_e state);
static void ngx_http_bulk_dump_sql_failed(ngx_http_bulk_sql_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_sql_error(ngx_http_bulk_sql_ctx_t *ctx);
static void ngx_http_bulk_dump_sql_write_handler(ngx_http_request_t *r);
static void ngx_http_bulk_dump_sql_finish(ngx_http_bulk_sql_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_bulk_dump_sql_abort(ngx_http_bulk_sql_ctx_t *ctx,
    const char *reason);
static void ngx_http_bulk_dump_sql_cleanup(void *data);


static ngx_str_t  ngx_http_bulk_sql_formats[] = {
    ngx_string("tsv"),
    ngx_string("csv"),
    ngx_string("ndjson")
};

static char  *ngx_http_bulk_sql_types[] = {
    "text/tab-separated-values",
    "text/csv",
    "application/ndjson"
};


ngx_int_t
ngx_http_bulk_dump_sql_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_bulk_add_header(r, "Allow", "POST") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "not-supported",
                                        "method %V is not allowed on "
                                        "$dump-sql, use POST",
                                        &r->method_name);
    }

    return ngx_http_bulk_read_body(r, ngx_http_bulk_dump_sql_body);
}


static ngx_int_t
ngx_http_bulk_dump_sql_body(ngx_http_request_t *r, yajl_val root)
{
    ngx_int_t                  rc;
    ngx_str_t                  query;
    ngx_uint_t                 format;
    ngx_pool_cleanup_t        *cln;
    ngx_http_bulk_sql_ctx_t   *ctx;
    ngx_http_bulk_loc_conf_t  *blcf;
    u_char                     err[128];

    rc = ngx_http_bulk_body_string(root, "query", &query);

    if (rc == NGX_ERROR) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "\"query\" must be a string");
    }

    if (rc == NGX_DECLINED || query.len == 0) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "\"query\" is required");
    }

    rc = ngx_http_bulk_dump_sql_format(r, root, &format, err, sizeof(err));

    if (rc == NGX_DECLINED) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_sql_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->query = query;
    ctx->format = format;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulk_dump_sql_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    ctx->waiter.pool = blcf->pool;
    ctx->waiter.ready = ngx_http_bulk_dump_sql_ready;
    ctx->waiter.data = ctx;
    ctx->waiter.stats = &ctx->stats;
    ctx->waiter.log = r->connection->log;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    rc = ngx_http_bulk_pg_acquire(&ctx->waiter);

    if (rc == NGX_OK) {
        ngx_http_bulk_dump_sql_ready(&ctx->waiter, NGX_OK);

    } else if (rc == NGX_ERROR) {
        ngx_http_bulk_dump_sql_ready(&ctx->waiter, NGX_ERROR);
    }

    return NGX_DONE;
}


/*
 * ?_format= wins over the body's "format"; tsv by default.  NGX_OK, or
 * NGX_DECLINED with the reason in err, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_format(ngx_http_request_t *r, yajl_val root,
    ngx_uint_t *format, u_char *err, size_t errlen)
{
    u_char      *dst, *src;
    ngx_int_t    rc;
    ngx_str_t    v;
    ngx_uint_t   i;

    *format = NGX_HTTP_BULK_SQL_TSV;

    if (ngx_http_arg(r, (u_char *) "_format", 7, &v) == NGX_OK) {
        dst = ngx_pnalloc(r->pool, v.len + 1);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        src = v.data;
        v.data = dst;
        ngx_unescape_uri(&dst, &src, v.len, NGX_UNESCAPE_URI);
        v.len = dst - v.data;

    } else {
        rc = ngx_http_bulk_body_string(root, "format", &v);

        if (rc == NGX_ERROR) {
            ngx_snprintf(err, errlen, "\"format\" must be a string%Z");
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            return NGX_OK;
        }
    }

    for (i = 0; i < 3; i++) {
        if (v.len == ngx_http_bulk_sql_formats[i].len
            && ngx_strncmp(v.data, ngx_http_bulk_sql_formats[i].data, v.len)
               == 0)
        {
            *format = i;
            return NGX_OK;
        }
    }

    if (v.len > 32) {
        v.len = 32;
    }

    ngx_snprintf(err, errlen - 1, "unknown format \"%V\": use tsv, csv or "
                 "ndjson%Z", &v);

    return NGX_DECLINED;
}


static void
ngx_http_bulk_dump_sql_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_bulk_sql_ctx_t   *ctx;
    ngx_http_bulk_loc_conf_t  *blcf;
    u_char                     sql[128];

    ctx = w->data;
    r = ctx->request;
    c = r->connection;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "transient", "database unavailable: %s",
                                     w->err));
        ngx_http_run_posted_requests(c);
        return;
    }

    ctx->pc = w->conn;
    w->conn = NULL;

    /* the client's SQL may change the session: reset before reuse */
    ngx_http_bulk_pg_taint(ctx->pc);

    ngx_http_bulk_pg_set_handler(ctx->pc, ngx_http_bulk_dump_sql_pg_handler,
                                 ctx);

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    /*
     * a database that stops answering raises no event: the watchdog ends
     * the request after bulk_pg_timeout; not being cancelable, it also
     * keeps a gracefully exiting worker until the dump is over
     */

    ctx->pg_timeout = blcf->pg_timeout;
    ctx->pg_active = ngx_current_msec;
    ctx->tick.handler = ngx_http_bulk_dump_sql_tick;
    ctx->tick.data = ctx;
    ctx->tick.log = c->log;
    ngx_add_timer(&ctx->tick, NGX_HTTP_BULK_TICK);

    if (blcf->dump_sql_timeout) {
        ngx_snprintf(sql, sizeof(sql), "BEGIN READ ONLY; "
                     "SET LOCAL statement_timeout = %M%Z",
                     blcf->dump_sql_timeout);

    } else {
        ngx_cpystrn(sql, (u_char *) "BEGIN READ ONLY", sizeof(sql));
    }

    ngx_http_bulk_dump_sql_send(ctx, (char *) sql, ngx_http_bulk_sql_begin);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_dump_sql_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t         *c;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = pc->data;
    c = ctx->request->connection;

    ctx->pg_active = ngx_current_msec;

    ngx_http_bulk_dump_sql_process(ctx);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_dump_sql_tick(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = ev->data;
    c = ctx->request->connection;

    if (ctx->state == ngx_http_bulk_sql_done) {
        return;
    }

    if (ctx->paused) {
        /* waiting for the client, not for the database */
        ctx->pg_active = ngx_current_msec;

    } else if (ngx_current_msec - ctx->pg_active >= ctx->pg_timeout) {

        if (ctx->started) {
            ngx_http_bulk_dump_sql_abort(ctx, "PostgreSQL sent nothing for "
                                              "bulk_pg_timeout");

        } else {
            if (ctx->pc) {
                ngx_http_bulk_pg_release(ctx->pc, 0);
                ctx->pc = NULL;
            }

            ngx_http_bulk_dump_sql_finish(ctx,
                ngx_http_bulk_send_error(ctx->request,
                                         NGX_HTTP_GATEWAY_TIME_OUT,
                                         "timeout", "PostgreSQL did not "
                                         "answer within bulk_pg_timeout"));
        }

        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_add_timer(&ctx->tick, NGX_HTTP_BULK_TICK);
}


static void
ngx_http_bulk_dump_sql_process(ngx_http_bulk_sql_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  copy;

    switch (ctx->state) {

    case ngx_http_bulk_sql_copy:
        ngx_http_bulk_dump_sql_rows(ctx);
        return;

    case ngx_http_bulk_sql_wait:
    case ngx_http_bulk_sql_done:
        return;

    default:
        break;
    }

    copy = (ctx->state == ngx_http_bulk_sql_result);

    rc = ngx_http_bulk_dump_sql_results(ctx, copy);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR) {
        /* the connection is lost */

        if (ctx->started) {
            ngx_http_bulk_dump_sql_abort(ctx, PQerrorMessage(ctx->pc->pg));
            return;
        }

        ngx_http_bulk_dump_sql_finish(ctx,
            ngx_http_bulk_send_pg_error(ctx->request, ctx->error,
                                        ctx->pc->pg, 422));
        return;
    }

    if (rc == NGX_DONE) {
        /* COPY OUT */
        ngx_http_bulk_dump_sql_copy(ctx);
        return;
    }

    /* all the results of the statement are in */

    switch (ctx->state) {

    case ngx_http_bulk_sql_begin:
        if (ctx->error) {
            ngx_http_bulk_dump_sql_failed(ctx);
            return;
        }

        ngx_http_bulk_dump_sql_copy(ctx);
        return;

    case ngx_http_bulk_sql_result:
    case ngx_http_bulk_sql_end:
        if (ctx->error) {
            ngx_http_bulk_dump_sql_failed(ctx);
            return;
        }

        /*
         * a read-only transaction has nothing to commit; rolling it back
         * also undoes what a query may have changed in the session
         * (set_config(), LISTEN) and drops its pg_notify() messages
         */

        ngx_http_bulk_dump_sql_send(ctx, "ROLLBACK", ngx_http_bulk_sql_close);
        return;

    case ngx_http_bulk_sql_close:
        if (ctx->error) {
            ngx_http_bulk_dump_sql_failed(ctx);
            return;
        }

        if (!ctx->started && ngx_http_bulk_dump_sql_start(ctx) != NGX_OK) {
            ngx_http_bulk_dump_sql_abort(ctx, "sending the header failed");
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "bulk dump-sql: %ui rows", ctx->rows);

        ctx->state = ngx_http_bulk_sql_done;

        ngx_http_bulk_dump_sql_finish(ctx,
                                      ngx_http_bulk_out_send(&ctx->out, 0, 1));
        return;

    case ngx_http_bulk_sql_rollback:
        ngx_http_bulk_dump_sql_finish(ctx, ngx_http_bulk_dump_sql_error(ctx));
        return;

    default:
        return;
    }
}


/*
 * Reads the results of the statement sent: NGX_OK when all are in (the
 * first error kept in ctx->error), NGX_DONE at COPY OUT when copy is set,
 * NGX_AGAIN to wait, NGX_ERROR when the connection is lost.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_results(ngx_http_bulk_sql_ctx_t *ctx, ngx_uint_t copy)
{
    PGconn    *pg;
    PGresult  *res;

    pg = ctx->pc->pg;

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

            if (copy) {
                return NGX_DONE;
            }

            /* not ours: the statements sent here copy nothing */
            return NGX_ERROR;

        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            PQclear(res);
            continue;

        default:
            if (ctx->error == NULL) {
                ctx->error = res;

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


/* after BEGIN: sends the COPY; at COPY OUT: reads rows */

static void
ngx_http_bulk_dump_sql_copy(ngx_http_bulk_sql_ctx_t *ctx)
{
    u_char              *sql, *p;
    size_t               len;
    ngx_http_request_t  *r;

    if (ctx->state == ngx_http_bulk_sql_result) {
        ctx->state = ngx_http_bulk_sql_copy;
        ngx_http_bulk_dump_sql_rows(ctx);
        return;
    }

    r = ctx->request;

    len = sizeof("COPY (SELECT row_to_json(q) FROM (\n\n) q) "
                 "TO STDOUT (FORMAT binary)")
          + ctx->query.len;

    sql = ngx_pnalloc(r->pool, len);
    if (sql == NULL) {
        ngx_http_bulk_dump_sql_abort(ctx, "out of memory");
        return;
    }

    switch (ctx->format) {

    case NGX_HTTP_BULK_SQL_CSV:
        p = ngx_sprintf(sql, "COPY (\n");
        ctx->prefix = p - sql;
        p = ngx_sprintf(p, "%V\n) TO STDOUT (FORMAT csv, HEADER)",
                        &ctx->query);
        break;

    case NGX_HTTP_BULK_SQL_NDJSON:
        p = ngx_sprintf(sql, "COPY (SELECT row_to_json(q) FROM (\n");
        ctx->prefix = p - sql;
        p = ngx_sprintf(p, "%V\n) q) TO STDOUT (FORMAT binary)",
                        &ctx->query);
        break;

    default: /* NGX_HTTP_BULK_SQL_TSV */
        p = ngx_sprintf(sql, "COPY (\n");
        ctx->prefix = p - sql;
        p = ngx_sprintf(p, "%V\n) TO STDOUT", &ctx->query);
        break;
    }

    *p = '\0';

    ctx->state = ngx_http_bulk_sql_result;

    if (ngx_http_bulk_pg_send_one(ctx->pc, (char *) sql) != NGX_OK) {
        ngx_http_bulk_dump_sql_finish(ctx,
            ngx_http_bulk_send_pg_error(r, NULL, ctx->pc->pg, 422));
    }
}


static void
ngx_http_bulk_dump_sql_rows(ngx_http_bulk_sql_ctx_t *ctx)
{
    int                   n;
    char                 *buf;
    ngx_int_t             rc;
    ngx_http_bulk_out_t  *o;

    o = &ctx->out;

    for ( ;; ) {
        n = PQgetCopyData(ctx->pc->pg, &buf, 1);

        if (n > 0) {
            rc = ngx_http_bulk_dump_sql_row(ctx, (u_char *) buf, n);
            PQfreemem(buf);

            if (rc != NGX_OK) {
                ngx_http_bulk_dump_sql_abort(ctx, "malformed row from "
                                                  "PostgreSQL or no memory");
                return;
            }

            if (o->out == NULL) {
                continue;
            }

            if (ngx_http_bulk_out_send(o, 0, 0) == NGX_ERROR) {
                ngx_http_bulk_dump_sql_abort(ctx, NULL);
                return;
            }

            if (ngx_http_bulk_out_busy(o) >= NGX_HTTP_BULK_BUSY_MAX) {

                /* backpressure: leave the rows in the socket */

                ctx->paused = 1;

                if (ngx_http_bulk_pg_read(ctx->pc, 0) != NGX_OK
                    || ngx_http_bulk_out_wait(ctx->request) != NGX_OK)
                {
                    ngx_http_bulk_dump_sql_abort(ctx, "event failure");
                }

                return;
            }

            continue;
        }

        if (n == 0) {

            /*
             * a connection lost while reading: libpq has closed the
             * socket, so no event will come, and PQgetCopyData() says
             * "no data yet" as long as COPY is not complete
             */

            if (PQstatus(ctx->pc->pg) != CONNECTION_OK) {
                if (ctx->started) {
                    ngx_http_bulk_dump_sql_abort(ctx,
                                                 PQerrorMessage(ctx->pc->pg));
                    return;
                }

                ngx_http_bulk_dump_sql_finish(ctx,
                    ngx_http_bulk_send_pg_error(ctx->request, NULL,
                                                ctx->pc->pg, 422));
                return;
            }

            /* the database is slower than the client: send what we have */

            if (ctx->started && o->busy == NULL
                && o->cur && o->cur->last > o->cur->pos)
            {
                if (ngx_http_bulk_out_send(o, 1, 0) == NGX_ERROR) {
                    ngx_http_bulk_dump_sql_abort(ctx, NULL);
                }
            }

            return;
        }

        if (n == -1) {
            ctx->state = ngx_http_bulk_sql_end;
            ngx_http_bulk_dump_sql_process(ctx);
            return;
        }

        ngx_http_bulk_dump_sql_abort(ctx, PQerrorMessage(ctx->pc->pg));
        return;
    }
}


/* one COPY message: a row of text or csv, or binary COPY for ndjson */

static ngx_int_t
ngx_http_bulk_dump_sql_row(ngx_http_bulk_sql_ctx_t *ctx, u_char *data,
    size_t len)
{
    u_char   *p, *end, *q;
    int32_t   ext, flen;

    static u_char  sig[] = "PGCOPY\n\377\r\n";

    p = data;
    end = data + len;

    if (ctx->format == NGX_HTTP_BULK_SQL_NDJSON) {

        if (!ctx->copy_header) {
            if (len < 19 || ngx_memcmp(p, sig, 11) != 0) {
                return NGX_ERROR;
            }

            ext = (int32_t) (((uint32_t) p[15] << 24) | (p[16] << 16)
                             | (p[17] << 8) | p[18]);
            if (ext < 0 || (size_t) ext > len - 19) {
                return NGX_ERROR;
            }

            p += 19 + ext;
            ctx->copy_header = 1;

            if (p == end) {
                return NGX_OK;
            }
        }

        if (end - p < 2) {
            return NGX_ERROR;
        }

        if (p[0] == 0xff && p[1] == 0xff) {
            /* the trailer */
            return NGX_OK;
        }

        if (p[0] != 0 || p[1] != 1 || end - p < 6) {
            return NGX_ERROR;
        }

        flen = (int32_t) (((uint32_t) p[2] << 24) | (p[3] << 16)
                          | (p[4] << 8) | p[5]);
        p += 6;

        if (flen < 0 || flen != end - p) {
            return NGX_ERROR;
        }

        /* raw CR and LF are whitespace in JSON text: one row, one line */

        for (q = p; q < end; q++) {
            if (*q == '\n' || *q == '\r') {
                *q = ' ';
            }
        }

        if (!ctx->started && ngx_http_bulk_dump_sql_start(ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->rows++;
    ctx->stats.rows = ctx->rows;
    ctx->stats.bytes = ctx->out.bytes;
        ctx->stats.rows = ctx->rows;
        ctx->stats.bytes = ctx->out.bytes;

        if (ngx_http_bulk_out_put(&ctx->out, p, end - p) != NGX_OK
            || ngx_http_bulk_out_put(&ctx->out, (u_char *) "\n", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ctx->format == NGX_HTTP_BULK_SQL_CSV && !ctx->copy_header) {
        ctx->header.data = ngx_pnalloc(ctx->request->pool, len);
        if (ctx->header.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->header.data, data, len);
        ctx->header.len = len;
        ctx->copy_header = 1;

        return NGX_OK;
    }

    if (!ctx->started && ngx_http_bulk_dump_sql_start(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->rows++;
    ctx->stats.rows = ctx->rows;
    ctx->stats.bytes = ctx->out.bytes;

    return ngx_http_bulk_out_put(&ctx->out, data, len);
}


static ngx_int_t
ngx_http_bulk_dump_sql_start(ngx_http_bulk_sql_ctx_t *ctx)
{
    char                *type;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    r->headers_out.status = NGX_HTTP_OK;
    type = ngx_http_bulk_sql_types[ctx->format];

    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = -1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_init(&ctx->out, r, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->started = 1;
    r->write_event_handler = ngx_http_bulk_dump_sql_write_handler;

    if (ctx->header.len) {
        return ngx_http_bulk_out_put(&ctx->out, ctx->header.data,
                                     ctx->header.len);
    }

    return NGX_OK;
}


static void
ngx_http_bulk_dump_sql_send(ngx_http_bulk_sql_ctx_t *ctx, const char *sql,
    ngx_http_bulk_sql_state_e state)
{
    ctx->state = state;

    if (ngx_http_bulk_pg_send(ctx->pc, sql) == NGX_OK) {
        return;
    }

    if (ctx->started) {
        ngx_http_bulk_dump_sql_abort(ctx, PQerrorMessage(ctx->pc->pg));
        return;
    }

    ngx_http_bulk_dump_sql_finish(ctx,
        ngx_http_bulk_send_pg_error(ctx->request, ctx->error, ctx->pc->pg,
                                    422));
}


/* PostgreSQL refused: roll back, then answer (or cut a started stream) */

static void
ngx_http_bulk_dump_sql_failed(ngx_http_bulk_sql_ctx_t *ctx)
{
    const char  *msg;

    if (ctx->started) {
        msg = PQresultErrorMessage(ctx->error);
        ngx_http_bulk_dump_sql_abort(ctx, msg);
        return;
    }

    if (PQtransactionStatus(ctx->pc->pg) == PQTRANS_IDLE) {
        ngx_http_bulk_dump_sql_finish(ctx, ngx_http_bulk_dump_sql_error(ctx));
        return;
    }

    ngx_http_bulk_dump_sql_send(ctx, "ROLLBACK", ngx_http_bulk_sql_rollback);
}


/*
 * The error of the client's query as an OperationOutcome: the position
 * counts from the start of the query, not of the COPY around it.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_error(ngx_http_bulk_sql_ctx_t *ctx)
{
    u_char      *p, *end;
    size_t       len;
    ngx_int_t    pos, chars;
    const char  *state, *msg, *s;

    s = ctx->error ? PQresultErrorField(ctx->error,
                                        PG_DIAG_STATEMENT_POSITION)
                   : NULL;
    state = ctx->error ? PQresultErrorField(ctx->error, PG_DIAG_SQLSTATE)
                       : NULL;
    msg = ctx->error ? PQresultErrorField(ctx->error,
                                          PG_DIAG_MESSAGE_PRIMARY)
                     : NULL;

    if (s == NULL || state == NULL || msg == NULL
        || ngx_strncmp(state, "08", 2) == 0
        || ngx_strncmp(state, "57", 2) == 0
        || ngx_strncmp(state, "53", 2) == 0)
    {
        return ngx_http_bulk_send_pg_error(ctx->request, ctx->error,
                                           ctx->pc->pg, 422);
    }

    /* positions are in characters; the query is UTF-8 */

    chars = 0;
    end = ctx->query.data + ctx->query.len;

    for (p = ctx->query.data; p < end; p++) {
        if ((*p & 0xc0) != 0x80) {
            chars++;
        }
    }

    pos = ngx_atoi((u_char *) s, ngx_strlen(s));

    if (pos != NGX_ERROR) {
        pos -= ctx->prefix;
    }

    len = ngx_http_bulk_msg_len(msg);

    if (pos == NGX_ERROR || pos < 1) {
        return ngx_http_bulk_send_error(ctx->request, 422, "processing",
                                        "%*s (SQLSTATE %s)", len, msg,
                                        state);
    }

    if (pos > chars + 1) {
        pos = chars + 1;
    }

    return ngx_http_bulk_send_error(ctx->request, 422, "processing",
                                    "%*s (SQLSTATE %s, position %i)",
                                    len, msg, state, pos);
}


static void
ngx_http_bulk_dump_sql_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_uint_t                paused;
    const char               *reason;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    paused = ctx->paused;
    rc = ngx_http_bulk_out_writable(&ctx->out, ctx->pc, &paused, &reason);
    ctx->paused = paused;

    if (rc == NGX_ERROR) {
        ngx_http_bulk_dump_sql_abort(ctx, reason);
        return;
    }

    if (rc == NGX_OK) {
        ngx_http_bulk_dump_sql_rows(ctx);
    }
}


/* the connection goes back when its transaction is over, else closes */

static void
ngx_http_bulk_dump_sql_finish(ngx_http_bulk_sql_ctx_t *ctx, ngx_int_t rc)
{
    if (ctx->error) {
        PQclear(ctx->error);
        ctx->error = NULL;
    }

    if (ctx->pc) {
        ngx_http_bulk_pg_release(ctx->pc, 1);
        ctx->pc = NULL;
    }

    ctx->state = ngx_http_bulk_sql_done;

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    ngx_http_finalize_request(ctx->request, rc);
}


/* an error after the header: the response ends without its last chunk */

static void
ngx_http_bulk_dump_sql_abort(ngx_http_bulk_sql_ctx_t *ctx, const char *reason)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    if (reason) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulk dump-sql failed after %ui rows: %*s",
                      ctx->rows, ngx_http_bulk_msg_len(reason), reason);

        /* the client gets the rows before the failure, then a cut */

        if (ctx->started && !r->connection->error) {
            (void) ngx_http_bulk_out_send(&ctx->out, 1, 0);
        }
    }

    if (ctx->error) {
        PQclear(ctx->error);
        ctx->error = NULL;
    }

    if (ctx->pc) {
        ngx_http_bulk_pg_release(ctx->pc, 0);
        ctx->pc = NULL;
    }

    ctx->state = ngx_http_bulk_sql_done;

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    r->connection->error = 1;
    ngx_http_finalize_request(r, NGX_ERROR);
}


static void
ngx_http_bulk_dump_sql_cleanup(void *data)
{
    ngx_http_bulk_sql_ctx_t  *ctx = data;

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    ngx_http_bulk_pg_cancel(&ctx->waiter);

    if (ctx->error) {
        PQclear(ctx->error);
        ctx->error = NULL;
    }

    if (ctx->pc) {
        /* the client went away mid-query: closing stops the backend */
        ngx_http_bulk_pg_release(ctx->pc, 0);
        ctx->pc = NULL;
    }
}
