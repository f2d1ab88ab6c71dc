
/*
 * ngx_bulk: GET /{Type}/$dump.
 *
 * COPY (SELECT id, txid, cts, ts, resource FROM "<type>") TO STDOUT in
 * binary format: no text escaping to undo, timestamps as integers.  Each
 * row is spliced into one NDJSON line (id, resourceType and the meta
 * columns merged into the stored document) and streamed; the PostgreSQL
 * socket is read only while the client keeps up.
 */


#include "ngx_http_bulk_module.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_time.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_format.h"


typedef enum {
    ngx_http_bulk_dump_wait = 0,
    ngx_http_bulk_dump_result,
    ngx_http_bulk_dump_copy,
    ngx_http_bulk_dump_drain,
    ngx_http_bulk_dump_done
} ngx_http_bulk_dump_state_e;


typedef struct {
    ngx_http_bulk_stats_t        stats;     /* first: the log variables */
    ngx_http_request_t          *request;
    ngx_http_bulk_pg_waiter_t    waiter;
    ngx_http_bulk_pg_conn_t     *pc;
    ngx_http_bulk_out_t          out;
    ngx_http_bulk_dump_state_e   state;

    ngx_str_t                    type;
    char                         since[NGX_BULK_SINCE_MAX];
    size_t                       since_len;

    PGresult                    *error;
    ngx_bulk_fmt_t              *fmt;
    u_char                       err[256];
    u_char                      *scratch;
    size_t                       scratch_size;
    ngx_uint_t                   rows;

    ngx_event_t                  tick;      /* partial flush, watchdog */
    ngx_msec_t                   pg_timeout;
    ngx_msec_t                   pg_active; /* last data from PostgreSQL */

    unsigned                     gzip:1;
    unsigned                     fhir:1;
    unsigned                     head:1;
    unsigned                     copy_header:1;
    unsigned                     paused:1;
} ngx_http_bulk_dump_ctx_t;


static ngx_int_t ngx_http_bulk_dump_args(ngx_http_request_t *r,
    ngx_http_bulk_dump_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_bool(ngx_http_request_t *r,
    ngx_http_bulk_dump_ctx_t *ctx, const char *name, ngx_uint_t *value);
static void ngx_http_bulk_dump_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_dump_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_dump_process(ngx_http_bulk_dump_ctx_t *ctx);
static void ngx_http_bulk_dump_results(ngx_http_bulk_dump_ctx_t *ctx);
static void ngx_http_bulk_dump_start(ngx_http_bulk_dump_ctx_t *ctx);
static void ngx_http_bulk_dump_rows(ngx_http_bulk_dump_ctx_t *ctx);
static void ngx_http_bulk_dump_drain_results(ngx_http_bulk_dump_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_row(ngx_http_bulk_dump_ctx_t *ctx,
    u_char *data, size_t len);
static ngx_int_t ngx_http_bulk_dump_fhir_row(ngx_http_bulk_dump_ctx_t *ctx,
    u_char **f, int32_t *flen);
static ngx_int_t ngx_http_bulk_dump_members(ngx_http_bulk_out_t *o,
    const u_char **p, const u_char *end, ngx_str_t *skip, ngx_uint_t nskip,
    ngx_bulk_member_t *found, ngx_uint_t *any);
static void ngx_http_bulk_dump_write_handler(ngx_http_request_t *r);
static void ngx_http_bulk_dump_finish(ngx_http_bulk_dump_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_bulk_dump_abort(ngx_http_bulk_dump_ctx_t *ctx,
    const char *reason);
static void ngx_http_bulk_dump_cleanup(void *data);
static void ngx_http_bulk_dump_tick(ngx_event_t *ev);


static ngx_str_t  ngx_http_bulk_dump_top_skip[] = {
    ngx_string("id"),
    ngx_string("resourceType"),
    ngx_string("meta")
};

static ngx_str_t  ngx_http_bulk_dump_meta_skip[] = {
    ngx_string("versionId"),
    ngx_string("lastUpdated"),
    ngx_string("createdAt")
};


ngx_int_t
ngx_http_bulk_dump_handler(ngx_http_request_t *r)
{
    u_char                    *p, *end;
    ngx_int_t                  rc;
    ngx_str_t                  type;
    const char                *canonical;
    ngx_pool_cleanup_t        *cln;
    ngx_http_bulk_loc_conf_t  *blcf;
    ngx_http_bulk_dump_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_bulk_add_header(r, "Allow", "GET, HEAD") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "not-supported",
                                        "method %V is not allowed on $dump, "
                                        "use GET or HEAD", &r->method_name);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    if (ngx_http_complex_value(r, blcf->dump_type, &type) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* [A-Z][A-Za-z0-9]{0,63}: checked before any SQL names it */

    if (type.len == 0 || type.len > NGX_HTTP_BULK_TYPE_MAX
        || type.data[0] < 'A' || type.data[0] > 'Z')
    {
        goto unknown;
    }

    for (p = type.data, end = p + type.len; p < end; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9')))
        {
            goto unknown;
        }
    }

    /* an R4 type spelled in another case is not that type */

    canonical = ngx_bulk_fhir_type_canonical((char *) type.data, type.len);

    if (canonical && ngx_strncmp(canonical, type.data, type.len) != 0) {
        goto unknown;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_dump_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->type = type;
    ctx->head = (r->method == NGX_HTTP_HEAD);

    rc = ngx_http_bulk_dump_args(r, ctx);

    if (rc == NGX_DECLINED) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", ctx->err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->fhir) {
        ctx->fmt = ngx_http_bulk_fmt();
        if (ctx->fmt == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulk_dump_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    /*
     * a periodic timer flushes a partly filled buffer when PostgreSQL is
     * slow, and ends a query that sends nothing for bulk_pg_timeout;
     * being not cancelable, it also lets a graceful shutdown wait for the
     * dump to finish
     */

    ctx->pg_timeout = blcf->pg_timeout;
    ctx->tick.handler = ngx_http_bulk_dump_tick;
    ctx->tick.data = ctx;
    ctx->tick.log = r->connection->log;

    ctx->waiter.pool = blcf->pool;
    ctx->waiter.ready = ngx_http_bulk_dump_ready;
    ctx->waiter.data = ctx;
    ctx->waiter.stats = &ctx->stats;
    ctx->waiter.log = r->connection->log;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    rc = ngx_http_bulk_pg_acquire(&ctx->waiter);

    if (rc == NGX_OK) {
        ngx_http_bulk_dump_ready(&ctx->waiter, NGX_OK);

    } else if (rc == NGX_ERROR) {
        ngx_http_bulk_dump_ready(&ctx->waiter, NGX_ERROR);
    }

    return NGX_DONE;

unknown:

    return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                    "unknown resource type \"%V\"", &type);
}


static ngx_int_t
ngx_http_bulk_dump_args(ngx_http_request_t *r, ngx_http_bulk_dump_ctx_t *ctx)
{
    int         n;
    u_char     *dst, *src;
    ngx_int_t   rc;
    ngx_str_t   value;
    ngx_uint_t  flag;
    char        err[128];

    rc = ngx_http_bulk_dump_bool(r, ctx, "fhir", &flag);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->fhir = flag;

    rc = ngx_http_bulk_dump_bool(r, ctx, "gzip", &flag);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->gzip = flag;

    if (ngx_http_arg(r, (u_char *) "_since", 6, &value) != NGX_OK) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, value.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    src = value.data;
    value.data = dst;
    ngx_unescape_uri(&dst, &src, value.len, NGX_UNESCAPE_URI);
    value.len = dst - value.data;

    n = ngx_bulk_since_parse(value.data, value.len, ctx->since, err);

    if (n < 0) {
        ngx_snprintf(ctx->err, sizeof(ctx->err) - 1, "%s, got \"%V\"%Z",
                     err, &value);
        return NGX_DECLINED;
    }

    ctx->since_len = n;

    return NGX_OK;
}


/* NGX_OK, or NGX_DECLINED with the reason in ctx->err */

static ngx_int_t
ngx_http_bulk_dump_bool(ngx_http_request_t *r, ngx_http_bulk_dump_ctx_t *ctx,
    const char *name, ngx_uint_t *value)
{
    ngx_str_t  v;

    *value = 0;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK) {
        return NGX_OK;
    }

    if (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0) {
        *value = 1;
        return NGX_OK;
    }

    if (v.len == 5 && ngx_strncmp(v.data, "false", 5) == 0) {
        return NGX_OK;
    }

    ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                 "%s must be true or false, got \"%V\"%Z", name, &v);

    return NGX_DECLINED;
}


static void
ngx_http_bulk_dump_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    u_char                    *p, *sql;
    size_t                     len;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_bulk_dump_ctx_t  *ctx;

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

    ngx_http_bulk_pg_set_handler(ctx->pc, ngx_http_bulk_dump_pg_handler, ctx);

    len = sizeof("COPY (SELECT id, txid, cts, ts, resource FROM \"\""
                 " WHERE cts > ''::timestamptz) TO STDOUT (FORMAT binary)")
          + ctx->type.len + ctx->since_len;

    sql = ngx_pnalloc(r->pool, len);
    if (sql == NULL) {
        ngx_http_bulk_dump_abort(ctx, "out of memory");
        ngx_http_run_posted_requests(c);
        return;
    }

    /* the type name was checked to be [A-Za-z0-9]: safe to quote */

    if (ctx->head) {
        p = ngx_sprintf(sql, "SELECT 1 FROM \"");
        ngx_strlow(p, ctx->type.data, ctx->type.len);
        p = ngx_sprintf(p + ctx->type.len, "\" LIMIT 0");

    } else {
        p = ngx_sprintf(sql, "COPY (SELECT id, txid, cts, ts, resource "
                             "FROM \"");
        ngx_strlow(p, ctx->type.data, ctx->type.len);
        p += ctx->type.len;
        *p++ = '"';

        if (ctx->since_len) {
            p = ngx_sprintf(p, " WHERE cts > '%*s'::timestamptz",
                            ctx->since_len, ctx->since);
        }

        p = ngx_sprintf(p, ") TO STDOUT (FORMAT binary)");
    }

    *p = '\0';

    if (ngx_http_bulk_pg_send(ctx->pc, (char *) sql) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_http_bulk_send_pg_error(r, NULL, ctx->pc->pg,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR));
        ngx_http_run_posted_requests(c);
        return;
    }

    ctx->state = ngx_http_bulk_dump_result;
    ctx->pg_active = ngx_current_msec;
    ngx_add_timer(&ctx->tick, NGX_HTTP_BULK_TICK);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_dump_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t          *c;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = pc->data;
    c = ctx->request->connection;

    ctx->pg_active = ngx_current_msec;

    ngx_http_bulk_dump_process(ctx);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_dump_tick(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = ev->data;
    c = ctx->request->connection;

    if (ctx->state == ngx_http_bulk_dump_done) {
        return;
    }

    if (ctx->paused) {
        /* waiting for the client, not for the database */
        ctx->pg_active = ngx_current_msec;

    } else if (ngx_current_msec - ctx->pg_active >= ctx->pg_timeout) {

        if (ctx->state == ngx_http_bulk_dump_copy
            || ctx->state == ngx_http_bulk_dump_drain)
        {
            ngx_http_bulk_dump_abort(ctx, "PostgreSQL sent nothing for "
                                          "bulk_pg_timeout");

        } else {
            if (ctx->pc) {
                ngx_http_bulk_pg_release(ctx->pc, 0);
                ctx->pc = NULL;
            }

            ngx_http_bulk_dump_finish(ctx,
                ngx_http_bulk_send_error(ctx->request,
                                         NGX_HTTP_GATEWAY_TIME_OUT,
                                         "timeout", "PostgreSQL did not "
                                         "answer within bulk_pg_timeout"));
        }

        ngx_http_run_posted_requests(c);
        return;

    } else if (ctx->state == ngx_http_bulk_dump_copy && ctx->out.busy == NULL
               && ((ctx->out.cur && ctx->out.cur->last > ctx->out.cur->pos)
                   || ctx->out.unflushed))
    {
        /* the database is slow: the client gets what there is */

        if (ngx_http_bulk_out_send(&ctx->out, 1, 0) == NGX_ERROR) {
            ngx_http_bulk_dump_abort(ctx, NULL);
            ngx_http_run_posted_requests(c);
            return;
        }
    }

    ngx_add_timer(&ctx->tick, NGX_HTTP_BULK_TICK);
}


static void
ngx_http_bulk_dump_process(ngx_http_bulk_dump_ctx_t *ctx)
{
    switch (ctx->state) {

    case ngx_http_bulk_dump_result:
        ngx_http_bulk_dump_results(ctx);
        return;

    case ngx_http_bulk_dump_copy:
        ngx_http_bulk_dump_rows(ctx);
        return;

    case ngx_http_bulk_dump_drain:
        ngx_http_bulk_dump_drain_results(ctx);
        return;

    default:
        return;
    }
}


/* waiting for the first result: COPY OUT, or an error */

static void
ngx_http_bulk_dump_results(ngx_http_bulk_dump_ctx_t *ctx)
{
    PGconn              *pg;
    PGresult            *res;
    ngx_int_t            rc;
    const char          *state;
    ngx_http_request_t  *r;

    pg = ctx->pc->pg;
    r = ctx->request;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                break;
            }

            return;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            break;
        }

        switch (PQresultStatus(res)) {

        case PGRES_COPY_OUT:
            PQclear(res);
            ngx_http_bulk_dump_start(ctx);
            return;

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

    /* the query is over */

    if (ctx->error == NULL && PQstatus(pg) == CONNECTION_OK) {

        /* HEAD */

        r->headers_out.status = NGX_HTTP_OK;
        ngx_str_set(&r->headers_out.content_type, "application/ndjson");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_length_n = -1;

        if (ctx->gzip
            && ngx_http_bulk_add_header(r, "Content-Encoding", "gzip")
               != NGX_OK)
        {
            ngx_http_bulk_dump_finish(ctx, NGX_ERROR);
            return;
        }

        ngx_http_bulk_dump_finish(ctx, ngx_http_send_header(r));
        return;
    }

    state = ctx->error ? PQresultErrorField(ctx->error, PG_DIAG_SQLSTATE)
                       : NULL;

    if (state && ngx_strcmp(state, "42P01") == 0) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                      "unknown resource type \"%V\": "
                                      "no table for it", &ctx->type);

    } else {
        rc = ngx_http_bulk_send_pg_error(r, ctx->error, pg,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_http_bulk_dump_finish(ctx, rc);
}


static void
ngx_http_bulk_dump_start(ngx_http_bulk_dump_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "application/ndjson");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = -1;

    if (ctx->gzip) {
        if (ngx_http_bulk_add_header(r, "Content-Encoding", "gzip")
            != NGX_OK)
        {
            ngx_http_bulk_dump_abort(ctx, "out of memory");
            return;
        }
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        ngx_http_bulk_dump_abort(ctx, "sending the header failed");
        return;
    }

    if (ngx_http_bulk_out_init(&ctx->out, r, ctx->gzip) != NGX_OK) {
        ngx_http_bulk_dump_abort(ctx, "out of memory");
        return;
    }

    ctx->state = ngx_http_bulk_dump_copy;
    r->write_event_handler = ngx_http_bulk_dump_write_handler;

    ngx_http_bulk_dump_rows(ctx);
}


static void
ngx_http_bulk_dump_rows(ngx_http_bulk_dump_ctx_t *ctx)
{
    int                   n;
    char                 *buf;
    ngx_int_t             rc;
    ngx_uint_t            reads;
    ngx_http_bulk_out_t  *o;

    o = &ctx->out;

    reads = 0;

    for ( ;; ) {
        n = PQgetCopyData(ctx->pc->pg, &buf, 1);

    got:

        if (n > 0) {
            rc = ngx_http_bulk_dump_row(ctx, (u_char *) buf, n);
            PQfreemem(buf);

            if (rc != NGX_OK) {
                ngx_http_bulk_dump_abort(ctx, (char *) ctx->err);
                return;
            }

            if (o->out == NULL) {
                continue;
            }

            if (ngx_http_bulk_out_send(o, 0, 0) == NGX_ERROR) {
                ngx_http_bulk_dump_abort(ctx, NULL);
                return;
            }

            if (ngx_http_bulk_out_busy(o) >= NGX_HTTP_BULK_BUSY_MAX) {

                /* backpressure: leave the rows in the socket */

                ctx->paused = 1;

                if (ngx_http_bulk_pg_read(ctx->pc, 0) != NGX_OK
                    || ngx_http_bulk_out_wait(ctx->request) != NGX_OK)
                {
                    ngx_http_bulk_dump_abort(ctx, "event failure");
                }

                return;
            }

            continue;
        }

        if (n == 0) {

            /*
             * the socket may hold more than one read took: a few more
             * reads here save event loop turns
             */

            if (reads++ < 8 && PQconsumeInput(ctx->pc->pg)
                && (n = PQgetCopyData(ctx->pc->pg, &buf, 1)) != 0)
            {
                goto got;
            }

            /*
             * a connection lost while reading: libpq has closed the
             * socket, so no event will come, and PQgetCopyData() says
             * "no data yet" as long as COPY is not complete
             */

            if (PQstatus(ctx->pc->pg) != CONNECTION_OK) {
                ngx_http_bulk_dump_abort(ctx, PQerrorMessage(ctx->pc->pg));
            }

            return;
        }

        if (n == -1) {
            ctx->state = ngx_http_bulk_dump_drain;
            ngx_http_bulk_dump_drain_results(ctx);
            return;
        }

        ngx_http_bulk_dump_abort(ctx, PQerrorMessage(ctx->pc->pg));
        return;
    }
}


static void
ngx_http_bulk_dump_drain_results(ngx_http_bulk_dump_ctx_t *ctx)
{
    PGconn     *pg;
    PGresult   *res;
    ngx_int_t   rc;

    pg = ctx->pc->pg;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                ngx_http_bulk_dump_abort(ctx, PQerrorMessage(pg));
            }

            return;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            break;
        }

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            ngx_http_bulk_dump_abort(ctx, PQresultErrorMessage(res));
            PQclear(res);
            return;
        }

        PQclear(res);
    }

    ctx->state = ngx_http_bulk_dump_done;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "bulk dump: %ui rows", ctx->rows);

    rc = ngx_http_bulk_out_send(&ctx->out, 0, 1);

    ngx_http_bulk_dump_finish(ctx, rc);
}


static ngx_inline int64_t
ngx_http_bulk_int64(const u_char *p)
{
    uint64_t  v;

    v = ((uint64_t) p[0] << 56) | ((uint64_t) p[1] << 48)
        | ((uint64_t) p[2] << 40) | ((uint64_t) p[3] << 32)
        | ((uint64_t) p[4] << 24) | ((uint64_t) p[5] << 16)
        | ((uint64_t) p[6] << 8) | (uint64_t) p[7];

    return (int64_t) v;
}


static ngx_inline int32_t
ngx_http_bulk_int32(const u_char *p)
{
    return (int32_t) (((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
                      | ((uint32_t) p[2] << 8) | (uint32_t) p[3]);
}


/*
 * One binary COPY tuple: int16 field count, then per field an int32
 * length and the bytes (id text, txid int8, cts and ts timestamptz as
 * int8 microseconds since 2000-01-01, resource jsonb: version byte 1 and
 * the text).  The file header comes before the first tuple.
 */

static ngx_int_t
ngx_http_bulk_dump_row(ngx_http_bulk_dump_ctx_t *ctx, u_char *data,
    size_t len)
{
    u_char               *p, *end, *f[5], *q;
    int32_t               flen[5], ext;
    ngx_uint_t            i, any;
    ngx_bulk_member_t     meta;
    const u_char         *rp, *rend, *mp;
    ngx_http_bulk_out_t  *o;
    u_char                num[NGX_INT64_LEN + 2];
    char                  ts[NGX_BULK_TS_LEN];

    static u_char         sig[] = "PGCOPY\n\377\r\n";

    p = data;
    end = data + len;
    o = &ctx->out;

    ngx_cpystrn(ctx->err, (u_char *) "malformed row from PostgreSQL",
                sizeof(ctx->err));

    if (!ctx->copy_header) {
        if (len < 19 || ngx_memcmp(p, sig, 11) != 0) {
            return NGX_ERROR;
        }

        ext = ngx_http_bulk_int32(p + 15);
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

    if (p[0] != 0 || p[1] != 5) {
        return NGX_ERROR;
    }

    p += 2;

    for (i = 0; i < 5; i++) {
        if (end - p < 4) {
            return NGX_ERROR;
        }

        flen[i] = ngx_http_bulk_int32(p);
        p += 4;

        if (flen[i] < 0 || flen[i] > end - p) {
            return NGX_ERROR;
        }

        f[i] = p;
        p += flen[i];
    }

    if (flen[1] != 8 || flen[2] != 8 || flen[3] != 8 || flen[4] < 1
        || f[4][0] != 1)
    {
        return NGX_ERROR;
    }

    if (ctx->fmt) {
        return ngx_http_bulk_dump_fhir_row(ctx, f, flen);
    }

    if ((size_t) flen[0] * 6 > ctx->scratch_size) {
        ctx->scratch_size = ngx_max((size_t) flen[0] * 6, 1024);
        ctx->scratch = ngx_pnalloc(ctx->request->pool, ctx->scratch_size);
        if (ctx->scratch == NULL) {
            return NGX_ERROR;
        }
    }

    rp = f[4] + 1;
    rend = f[4] + flen[4];

    if (ngx_bulk_json_open(&rp, rend) != 0) {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_put(o, (u_char *) "{\"resourceType\":\"", 17)
        != NGX_OK
        || ngx_http_bulk_out_put(o, ctx->type.data, ctx->type.len) != NGX_OK
        || ngx_http_bulk_out_put(o, (u_char *) "\",\"id\":\"", 8) != NGX_OK)
    {
        return NGX_ERROR;
    }

    q = ctx->scratch;
    len = ngx_bulk_json_escape(q, f[0], flen[0]);

    if (ngx_http_bulk_out_put(o, q, len) != NGX_OK
        || ngx_http_bulk_out_put(o, (u_char *) "\"", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the stored members but id, resourceType and meta */

    meta.value = NULL;
    any = 1;

    if (ngx_http_bulk_dump_members(o, &rp, rend, ngx_http_bulk_dump_top_skip,
                                   3, &meta, &any)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_put(o, (u_char *) ",\"meta\":{", 9) != NGX_OK) {
        return NGX_ERROR;
    }

    any = 0;

    if (meta.value && meta.value < meta.end && *meta.value == '{') {
        mp = meta.value + 1;

        if (ngx_http_bulk_dump_members(o, &mp, meta.end,
                                       ngx_http_bulk_dump_meta_skip, 3,
                                       NULL, &any)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    q = ngx_sprintf(num, "%L", ngx_http_bulk_int64(f[1]));

    if ((any && ngx_http_bulk_out_put(o, (u_char *) ",", 1) != NGX_OK)
        || ngx_http_bulk_out_put(o, (u_char *) "\"versionId\":\"", 13)
           != NGX_OK
        || ngx_http_bulk_out_put(o, num, q - num) != NGX_OK
        || ngx_http_bulk_out_put(o, (u_char *) "\",\"lastUpdated\":\"", 17)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_bulk_ts_format(ngx_http_bulk_int64(f[3]), ts);

    if (ngx_http_bulk_out_put(o, (u_char *) ts, NGX_BULK_TS_LEN) != NGX_OK
        || ngx_http_bulk_out_put(o, (u_char *) "\",\"createdAt\":\"", 15)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_bulk_ts_format(ngx_http_bulk_int64(f[2]), ts);

    if (ngx_http_bulk_out_put(o, (u_char *) ts, NGX_BULK_TS_LEN) != NGX_OK
        || ngx_http_bulk_out_put(o, (u_char *) "\"}}\n", 4) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->rows++;
    ctx->stats.rows = ctx->rows;
    ctx->stats.bytes = ctx->out.bytes;

    return NGX_OK;
}


/* fhir=true: the converter writes the whole line, meta included */

static ngx_int_t
ngx_http_bulk_dump_fhir_row(ngx_http_bulk_dump_ctx_t *ctx, u_char **f,
    int32_t *flen)
{
    u_char              *q;
    ngx_bulk_fmt_job_t   job;
    u_char               num[NGX_INT64_LEN + 2];
    char                 ts[NGX_BULK_TS_LEN], cts[NGX_BULK_TS_LEN];

    ngx_memzero(&job, sizeof(ngx_bulk_fmt_job_t));

    q = ngx_sprintf(num, "%L", ngx_http_bulk_int64(f[1]));
    ngx_bulk_ts_format(ngx_http_bulk_int64(f[3]), ts);
    ngx_bulk_ts_format(ngx_http_bulk_int64(f[2]), cts);

    job.dir = NGX_BULK_FMT_TO_FHIR;
    job.type = (char *) ctx->type.data;
    job.type_len = ctx->type.len;
    job.inject = 1;
    job.id = (char *) f[0];
    job.id_len = flen[0];
    job.version_id = (char *) num;
    job.version_id_len = q - num;
    job.last_updated = ts;
    job.last_updated_len = NGX_BULK_TS_LEN;
    job.created_at = cts;
    job.created_at_len = NGX_BULK_TS_LEN;

    if (ngx_bulk_fmt_convert(ctx->fmt, &job, f[4] + 1, flen[4] - 1) != 0) {
        ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                     "row \"%*s\" cannot be converted to FHIR: %s%Z",
                     (size_t) ngx_min(flen[0], 64), f[0], job.err);
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_put(&ctx->out, job.out, job.out_len) != NGX_OK
        || ngx_http_bulk_out_put(&ctx->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->rows++;
    ctx->stats.rows = ctx->rows;
    ctx->stats.bytes = ctx->out.bytes;

    return NGX_OK;
}


/*
 * Copies the members of an object's text but those named in skip; runs of
 * kept members go out in one piece, preceded by "," when *any is set on
 * entry or a run went out before (*any is set then).  The member named by
 * skip[nskip - 1] is returned in found when found is not NULL.
 */

static ngx_int_t
ngx_http_bulk_dump_members(ngx_http_bulk_out_t *o, const u_char **p,
    const u_char *end, ngx_str_t *skip, ngx_uint_t nskip,
    ngx_bulk_member_t *found, ngx_uint_t *any)
{
    int                 rc;
    ngx_uint_t          i;
    const u_char       *run, *run_end;
    ngx_bulk_member_t   m;

    run = NULL;
    run_end = NULL;

    for ( ;; ) {
        rc = ngx_bulk_json_next(p, end, &m);

        if (rc < 0) {
            return NGX_ERROR;
        }

        if (rc == 1) {
            for (i = 0; i < nskip; i++) {
                if (m.key_len == skip[i].len
                    && ngx_memcmp(m.key, skip[i].data, m.key_len) == 0)
                {
                    break;
                }
            }

            if (i == nskip) {
                if (run == NULL) {
                    run = m.start;
                }

                run_end = m.end;
                continue;
            }

            if (found && i == nskip - 1) {
                *found = m;
            }
        }

        if (run) {
            if ((*any && ngx_http_bulk_out_put(o, (u_char *) ",", 1) != NGX_OK)
                || ngx_http_bulk_out_put(o, run, run_end - run) != NGX_OK)
            {
                return NGX_ERROR;
            }

            *any = 1;
            run = NULL;
        }

        if (rc == 0) {
            return NGX_OK;
        }
    }
}


static void
ngx_http_bulk_dump_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 paused;
    const char                *reason;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    paused = ctx->paused;
    rc = ngx_http_bulk_out_writable(&ctx->out, ctx->pc, &paused, &reason);
    ctx->paused = paused;

    if (rc == NGX_ERROR) {
        ngx_http_bulk_dump_abort(ctx, reason);
        return;
    }

    if (rc == NGX_OK) {
        ngx_http_bulk_dump_rows(ctx);
    }
}


static void
ngx_http_bulk_dump_finish(ngx_http_bulk_dump_ctx_t *ctx, ngx_int_t rc)
{
    if (ctx->error) {
        PQclear(ctx->error);
        ctx->error = NULL;
    }

    if (ctx->pc) {
        ngx_http_bulk_pg_release(ctx->pc, 1);
        ctx->pc = NULL;
    }

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    ctx->state = ngx_http_bulk_dump_done;

    ngx_http_finalize_request(ctx->request, rc);
}


/* an error after the header: the response ends without its last chunk */

static void
ngx_http_bulk_dump_abort(ngx_http_bulk_dump_ctx_t *ctx, const char *reason)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    if (reason) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bulk dump of \"%V\" failed after %ui rows: %s",
                      &ctx->type, ctx->rows, reason);

        /* the client gets the rows before the failure, then a cut */

        if (ctx->state == ngx_http_bulk_dump_copy && !r->connection->error) {
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

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    ctx->state = ngx_http_bulk_dump_done;

    r->connection->error = 1;
    ngx_http_finalize_request(r, NGX_ERROR);
}


static void
ngx_http_bulk_dump_cleanup(void *data)
{
    ngx_http_bulk_dump_ctx_t  *ctx = data;

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
