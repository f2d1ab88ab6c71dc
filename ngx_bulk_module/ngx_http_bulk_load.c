
/*
 * ngx_bulk: POST /$load, /{Type}/$load, /fhir/$load, /fhir/{Type}/$load.
 *
 * One transaction: the source is fetched through the bulk_fetch location,
 * split into lines (gzip sniffed), each line checked and converted with
 * the format converter, and streamed with COPY FROM STDIN into a
 * temporary staging table as text (jsonb is parsed once, later).  At the
 * end one INSERT ... SELECT DISTINCT ON (id) ... ON CONFLICT per type
 * upserts the staged rows under one txid, and the transaction commits.
 * Any failure of the source or the database closes the connection, so
 * PostgreSQL rolls everything back.
 */


#include "ngx_http_bulk_module.h"
#include "ngx_bulk_ndjson.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_format.h"


#define NGX_HTTP_BULK_LOAD_ISSUES_MAX  100
#define NGX_HTTP_BULK_LOAD_FLUSH       65536
#define NGX_HTTP_BULK_LOAD_WATCH       250




static ngx_int_t ngx_http_bulk_load_body(ngx_http_request_t *r,
    yajl_val root);
static ngx_int_t ngx_http_bulk_load_options(ngx_http_bulk_load_ctx_t *ctx,
    yajl_val root);
static void ngx_http_bulk_load_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_load_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_load_begin(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_watch(ngx_event_t *ev);
static void ngx_http_bulk_load_process(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_end_batch(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_end(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_prepared(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_tables(ngx_http_bulk_load_ctx_t *ctx,
    PGresult *res);
static void ngx_http_bulk_load_consume(ngx_http_bulk_fetch_t *f);
static void ngx_http_bulk_load_held(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_line(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l);
static ngx_int_t ngx_http_bulk_load_issue(ngx_http_bulk_load_ctx_t *ctx,
    uint64_t line, const char *fmt, ...);
static ngx_int_t ngx_http_bulk_load_known(ngx_http_bulk_load_ctx_t *ctx,
    const u_char *name, size_t len);
static ngx_int_t ngx_http_bulk_load_flush(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_fetched(ngx_http_bulk_fetch_t *f);
static void ngx_http_bulk_load_wake(ngx_http_request_t *r);
static void ngx_http_bulk_load_end_copy(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_copy_done(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_upserts(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_results(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_dups(ngx_http_bulk_load_ctx_t *ctx,
    PGresult *res);
static void ngx_http_bulk_load_answer(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_fail(ngx_http_bulk_load_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...);
static void ngx_http_bulk_load_finish(ngx_http_bulk_load_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_bulk_load_cleanup(void *data);


ngx_int_t
ngx_http_bulk_load_handler(ngx_http_request_t *r)
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
                                        "method %V is not allowed on $load, "
                                        "use POST", &r->method_name);
    }

    return ngx_http_bulk_read_body(r, ngx_http_bulk_load_body);
}


static ngx_int_t
ngx_http_bulk_load_body(ngx_http_request_t *r, yajl_val root)
{
    u_char                     *p, *end;
    ngx_http_variable_value_t  *vv;
    ngx_http_bulk_loc_conf_t   *blcf;
    ngx_http_bulk_load_ctx_t   *ctx;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_load_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = blcf;
    ctx->fhir = blcf->load_fhir;

    if (blcf->load_typed) {
        if (blcf->load_type_var) {
            vv = ngx_http_get_indexed_variable(r, blcf->load_type_index);
            if (vv == NULL || vv->not_found) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->type.data = vv->data;
            ctx->type.len = vv->len;

        } else {
            ctx->type = blcf->load_type;
        }

        if (ctx->type.len == 0 || ctx->type.len > NGX_HTTP_BULK_TYPE_MAX
            || ctx->type.data[0] < 'A' || ctx->type.data[0] > 'Z')
        {
            goto unknown;
        }

        for (p = ctx->type.data, end = p + ctx->type.len; p < end; p++) {
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
                  || (*p >= '0' && *p <= '9')))
            {
                goto unknown;
            }
        }
    }

    switch (ngx_http_bulk_load_options(ctx, root)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", ctx->err);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a refused source costs no database connection */

    if (ngx_http_bulk_source_allowed(r, &ctx->fetch.url, ctx->err,
                                     sizeof(ctx->err))
        != NGX_OK)
    {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_GATEWAY, "exception",
                                        "%s", ctx->err);
    }

    if (ngx_http_bulk_load_init(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk load from \"%V\" started", &ctx->fetch.url);

    ngx_http_bulk_load_run(ctx);

    return NGX_DONE;

unknown:

    return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                    "unknown resource type \"%V\"",
                                    &ctx->type);
}


/*
 * Everything a load needs besides its options: $load's request, or the
 * fake request of an $import input (ctx->done set, ctx->batch maybe).
 */

ngx_int_t
ngx_http_bulk_load_init(ngx_http_bulk_load_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ngx_array_init(&ctx->types, r->pool, 8,
                       sizeof(ngx_http_bulk_load_type_t)) != NGX_OK
        || ngx_array_init(&ctx->issues, r->pool, 8,
                          sizeof(ngx_http_bulk_load_issue_t)) != NGX_OK
        || ngx_array_init(&ctx->tables, r->pool, 256, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->fmt = ngx_http_bulk_fmt();
    ctx->nd = ngx_bulk_nd_create(ctx->conf->line_max);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL || ctx->fmt == NULL || ctx->nd == NULL) {
        ngx_bulk_nd_destroy(ctx->nd);
        ctx->nd = NULL;
        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulk_load_cleanup;
    cln->data = ctx;

    ctx->fetch.consume = ngx_http_bulk_load_consume;
    ctx->fetch.done = ngx_http_bulk_load_fetched;
    ctx->fetch.data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    ctx->waiter.pool = ctx->conf->pool;
    ctx->waiter.ready = ngx_http_bulk_load_ready;
    ctx->waiter.data = ctx;
    ctx->waiter.stats = &ctx->stats;
    ctx->waiter.log = r->connection->log;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_bulk_load_wake;

    return NGX_OK;
}


void
ngx_http_bulk_load_run(ngx_http_bulk_load_ctx_t *ctx)
{
    switch (ngx_http_bulk_pg_acquire(&ctx->waiter)) {

    case NGX_OK:
        ngx_http_bulk_load_ready(&ctx->waiter, NGX_OK);
        break;

    case NGX_ERROR:
        ngx_http_bulk_load_ready(&ctx->waiter, NGX_ERROR);
        break;

    default:
        break;
    }
}


/* $import: the job was cancelled or nginx shuts down */

void
ngx_http_bulk_load_abort(ngx_http_bulk_load_ctx_t *ctx, const char *reason)
{
    ngx_connection_t  *c;

    if (ctx->failed || ctx->answered) {
        return;
    }

    c = ctx->request->connection;

    ngx_http_bulk_pg_cancel(&ctx->waiter);

    ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, "exception",
                            "%s", reason);

    ngx_http_run_posted_requests(c);
}


/* source, update, strip-nulls, merge; NGX_DECLINED: ctx->err says why */

static ngx_int_t
ngx_http_bulk_load_options(ngx_http_bulk_load_ctx_t *ctx, yajl_val root)
{
    size_t       i;
    u_char      *p;
    yajl_val     v;
    ngx_str_t    s;
    const char  *key;

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];
        v = root->u.object.values[i];

        if (ngx_strcmp(key, "source") == 0) {
            if (!YAJL_IS_STRING(v)) {
                goto bad_source;
            }

            s.data = (u_char *) YAJL_GET_STRING(v);
            s.len = ngx_strlen(s.data);

            if (!((s.len > 7 && ngx_strncasecmp(s.data, (u_char *) "http://",
                                                7) == 0)
                  || (s.len > 8
                      && ngx_strncasecmp(s.data, (u_char *) "https://", 8)
                         == 0)))
            {
                goto bad_source;
            }

            /* bytes that would break the proxied request line */

            for (p = s.data; p < s.data + s.len; p++) {
                if (*p <= ' ' || *p == 0x7f) {
                    goto bad_source;
                }
            }

            ctx->fetch.url.data = ngx_pstrdup(ctx->request->pool, &s);
            if (ctx->fetch.url.data == NULL) {
                return NGX_ERROR;
            }

            ctx->fetch.url.len = s.len;

        } else if (ngx_strcmp(key, "update") == 0
                   || ngx_strcmp(key, "strip-nulls") == 0)
        {
            if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
                ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                             "\"%s\" must be true or false%Z", key);
                return NGX_DECLINED;
            }

            if (key[0] == 'u') {
                ctx->update = YAJL_IS_TRUE(v);

            } else {
                ctx->strip_nulls = YAJL_IS_TRUE(v);
            }

        } else if (ngx_strcmp(key, "merge") == 0) {
            if (YAJL_IS_NULL(v)) {
                continue;
            }

            if (!YAJL_IS_OBJECT(v)) {
                ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                             "\"merge\" must be an object%Z");
                return NGX_DECLINED;
            }

            if (ngx_http_bulk_json_text(ctx->request->pool, v, &ctx->merge)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        /* other keys are ignored, as Aidbox does */
    }

    if (ctx->fetch.url.len == 0) {
        goto bad_source;
    }

    return NGX_OK;

bad_source:

    ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                 "\"source\" must be an http or https URL%Z");

    return NGX_DECLINED;
}


static void
ngx_http_bulk_load_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    ngx_connection_t          *c;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = w->data;
    c = ctx->request->connection;

    if (rc != NGX_OK) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "database unavailable: %s",
                                w->err);
        ngx_http_run_posted_requests(c);
        return;
    }

    ctx->pc = w->conn;
    w->conn = NULL;

    ngx_http_bulk_pg_set_handler(ctx->pc, ngx_http_bulk_load_pg_handler, ctx);

    ngx_http_bulk_load_begin(ctx);

    ngx_http_run_posted_requests(c);
}


/*
 * One round trip: the transaction, its txid, the tables that exist,
 * the staging table, and COPY into it.  $import sends it again after
 * each committed batch.
 */

static void
ngx_http_bulk_load_begin(ngx_http_bulk_load_ctx_t *ctx)
{
    if (ngx_http_bulk_pg_send(ctx->pc,
            "BEGIN;"
            "SET LOCAL work_mem = '64MB';"
            "SELECT nextval('transaction_id_seq'),"
            " (SELECT string_agg(c.relname, ' ') FROM pg_class c"
            " WHERE c.relkind IN ('r', 'p')"
            " AND c.relnamespace = current_schema()::regnamespace);"
            "CREATE TEMP TABLE bulk_load_stage"
            " (ln bigint, rt text, id text, doc text) ON COMMIT DROP;"
            "COPY bulk_load_stage FROM STDIN (FORMAT binary)")
        != NGX_OK)
    {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "database unavailable: %*s",
                                ngx_http_bulk_msg_len(
                                    PQerrorMessage(ctx->pc->pg)),
                                PQerrorMessage(ctx->pc->pg));
        return;
    }

    ctx->state = ngx_http_bulk_load_prepare;

    /*
     * a database that stops answering (a host gone without a reset, a
     * stalled network) raises no event: the watchdog ends the load
     */

    ctx->pg_active = ngx_current_msec;

    if (!ctx->watch.timer_set) {
        ctx->watch.handler = ngx_http_bulk_load_watch;
        ctx->watch.data = ctx;
        ctx->watch.log = ctx->request->connection->log;
        ngx_add_timer(&ctx->watch, NGX_HTTP_BULK_LOAD_WATCH);
    }
}


static void
ngx_http_bulk_load_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t          *c;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = pc->data;
    c = ctx->request->connection;

    ctx->pg_active = ngx_current_msec;

    ngx_http_bulk_load_process(ctx);

    ngx_http_run_posted_requests(c);
}


/*
 * While the load waits for PostgreSQL to answer its first round trip, to
 * make room in the socket for COPY data, or to confirm the end of COPY,
 * bulk_pg_timeout without any event from it fails the load.  Waiting for
 * the source is not the database's time, and neither are the duplicate
 * check and the upserts: on a large load they legitimately run longer
 * than any such timeout without a byte sent.
 */

static void
ngx_http_bulk_load_watch(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ev->data;
    c = ctx->request->connection;

    if (ctx->failed || ctx->answered || ctx->pc == NULL
        || ctx->state == ngx_http_bulk_load_done)
    {
        return;
    }

    if (ctx->state != ngx_http_bulk_load_prepare
        && ctx->state != ngx_http_bulk_load_copy_end
        && ctx->state != ngx_http_bulk_load_commit
        && !ctx->pg_blocked)
    {
        ctx->pg_active = ngx_current_msec;

    } else if (ngx_current_msec - ctx->pg_active >= ctx->conf->pg_timeout) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_GATEWAY_TIME_OUT, "timeout",
                                "PostgreSQL did not answer within "
                                "bulk_pg_timeout, nothing was loaded");
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_add_timer(&ctx->watch, NGX_HTTP_BULK_LOAD_WATCH);
}


static void
ngx_http_bulk_load_process(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn  *pg;

    pg = ctx->pc->pg;

    switch (ctx->state) {

    case ngx_http_bulk_load_prepare:
        ngx_http_bulk_load_prepared(ctx);
        return;

    case ngx_http_bulk_load_copy:

        if (PQstatus(pg) != CONNECTION_OK) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "transient",
                                    "the database connection was lost: %*s",
                                    ngx_http_bulk_msg_len(PQerrorMessage(pg)),
                                    PQerrorMessage(pg));
            return;
        }

        if (ctx->pg_blocked) {
            if (ngx_http_bulk_load_flush(ctx) != NGX_OK) {
                return;
            }

            if (!ctx->pg_blocked) {
                ctx->fetch.consuming = 1;
                ngx_http_bulk_load_consume(&ctx->fetch);
                ctx->fetch.consuming = 0;

                if (ctx->failed || ctx->state != ngx_http_bulk_load_copy) {
                    return;
                }

                if (ctx->fetch.held == NULL) {
                    ngx_http_bulk_fetch_resume(&ctx->fetch);
                }
            }
        }

        return;

    case ngx_http_bulk_load_copy_end:
    case ngx_http_bulk_load_check:
    case ngx_http_bulk_load_upsert:
    case ngx_http_bulk_load_commit:
        ngx_http_bulk_load_results(ctx);
        return;

    default:
        return;
    }
}


/* the results of the first round trip, up to COPY IN */

static void
ngx_http_bulk_load_prepared(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn    *pg;
    PGresult  *res;

    pg = ctx->pc->pg;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "transient",
                                        "database unavailable: %*s",
                                        ngx_http_bulk_msg_len(
                                            PQerrorMessage(pg)),
                                        PQerrorMessage(pg));
            }

            return;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "transient", "database unavailable: %*s",
                                    ngx_http_bulk_msg_len(PQerrorMessage(pg)),
                                    PQerrorMessage(pg));
            return;
        }

        switch (PQresultStatus(res)) {

        case PGRES_COMMAND_OK:
            PQclear(res);
            continue;

        case PGRES_TUPLES_OK:
            if (ngx_http_bulk_load_tables(ctx, res) != NGX_OK) {
                PQclear(res);
                ngx_http_bulk_load_fail(ctx,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "exception", "out of memory");
                return;
            }

            PQclear(res);
            continue;

        case PGRES_COPY_IN:
            PQclear(res);

            if (ctx->type.len
                && ngx_http_bulk_load_known(ctx, ctx->type.data,
                                            ctx->type.len)
                   != NGX_OK)
            {
                ngx_http_bulk_load_fail(ctx, NGX_HTTP_NOT_FOUND, "not-found",
                                        "unknown resource type \"%V\"",
                                        &ctx->type);
                return;
            }

            ctx->state = ngx_http_bulk_load_copy;

            if (ctx->fetching) {

                /*
                 * the next batch: the lines held back go on; the server
                 * answered, so what the last batch left unflushed is gone
                 */

                ctx->pg_blocked = 0;

                ctx->fetch.consuming = 1;
                ngx_http_bulk_load_consume(&ctx->fetch);
                ctx->fetch.consuming = 0;

                if (!ctx->failed && ctx->state == ngx_http_bulk_load_copy
                    && ctx->fetch.held == NULL)
                {
                    ngx_http_bulk_fetch_resume(&ctx->fetch);
                }

                return;
            }

            ctx->fetching = 1;

            switch (ngx_http_bulk_fetch_start(ctx->request, &ctx->fetch,
                                              &ctx->conf->fetch_uri))
            {
            case NGX_OK:
                break;

            case NGX_DECLINED:
                ngx_http_bulk_load_fail(ctx, NGX_HTTP_BAD_GATEWAY,
                                        "exception", "%s", ctx->fetch.err);
                break;

            default:
                ngx_http_bulk_load_fail(ctx,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "exception",
                                        "cannot start the fetch");
            }

            return;

        default:
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "exception",
                                    "cannot prepare the load: %*s",
                                    ngx_http_bulk_msg_len(
                                        PQresultErrorMessage(res)),
                                    PQresultErrorMessage(res));
            PQclear(res);
            return;
        }
    }
}


/* the txid and the sorted names of the tables of the current schema */

static ngx_int_t
ngx_http_bulk_load_tables(ngx_http_bulk_load_ctx_t *ctx, PGresult *res)
{
    u_char     *p, *end, *start;
    ngx_str_t  *t;

    if (PQntuples(res) != 1 || PQnfields(res) != 2) {
        return NGX_ERROR;
    }

    ctx->txid = ngx_atoof((u_char *) PQgetvalue(res, 0, 0),
                          PQgetlength(res, 0, 0));

    ctx->tables.nelts = 0;

    p = ngx_pstrdup(ctx->request->pool, &(ngx_str_t) {
                        PQgetlength(res, 0, 1),
                        (u_char *) PQgetvalue(res, 0, 1) });
    if (p == NULL) {
        return NGX_ERROR;
    }

    end = p + PQgetlength(res, 0, 1);

    while (p < end) {
        start = p;

        while (p < end && *p != ' ') {
            p++;
        }

        t = ngx_array_push(&ctx->tables);
        if (t == NULL) {
            return NGX_ERROR;
        }

        t->data = start;
        t->len = p - start;

        p++;
    }

    ngx_sort(ctx->tables.elts, ctx->tables.nelts, sizeof(ngx_str_t),
             ngx_http_bulk_str_cmp);

    return NGX_OK;
}


/* a type is loaded when its table exists; R4 types in their own case */

static ngx_int_t
ngx_http_bulk_load_known(ngx_http_bulk_load_ctx_t *ctx, const u_char *name,
    size_t len)
{
    size_t       i;
    ngx_str_t    key, *t;
    const char  *canonical;
    u_char       low[NGX_HTTP_BULK_TYPE_MAX];

    if (len == 0 || len > NGX_HTTP_BULK_TYPE_MAX
        || name[0] < 'A' || name[0] > 'Z')
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (!((name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= '0' && name[i] <= '9')))
        {
            return NGX_DECLINED;
        }
    }

    canonical = ngx_bulk_fhir_type_canonical((const char *) name, len);

    if (canonical && ngx_strncmp(canonical, name, len) != 0) {
        return NGX_DECLINED;
    }

    ngx_strlow(low, (u_char *) name, len);
    key.data = low;
    key.len = len;

    t = ngx_http_bulk_bsearch(&key, ctx->tables.elts, ctx->tables.nelts);

    return t ? NGX_OK : NGX_DECLINED;
}


/*
 * The fetch's body filter (or the database becoming writable again) calls
 * this: lines are taken from the held buffers until PostgreSQL's socket
 * is full; what is left stays in the buffers, so the source waits.
 */

static void
ngx_http_bulk_load_consume(ngx_http_bulk_fetch_t *f)
{
    int                        rc;
    ngx_bulk_nd_line_t         l;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = f->data;

    for ( ;; ) {
        if (ctx->failed || ctx->pg_blocked
            || ctx->state != ngx_http_bulk_load_copy)
        {
            return;
        }

        if (!ctx->nd_input && f->held) {
            ngx_bulk_nd_input(ctx->nd, f->held->buf->pos,
                              f->held->buf->last - f->held->buf->pos);
            ctx->nd_input = 1;
        }

        /* lines left in the inflate window come first, without input */

        rc = ngx_bulk_nd_next(ctx->nd, &l);

        if (rc < 0) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_BAD_GATEWAY, "exception",
                                    "source \"%V\": %s", &f->url,
                                    ngx_bulk_nd_error(ctx->nd));
            return;
        }

        if (rc == 1) {
            if (ngx_http_bulk_load_line(ctx, &l) != NGX_OK) {
                return;
            }

            if (ctx->batch && ctx->staged >= ctx->batch) {
                /* the rest waits in the source's buffers */
                ngx_http_bulk_load_held(ctx);
                ngx_http_bulk_load_end_batch(ctx);
                return;
            }

            if (ctx->unflushed >= NGX_HTTP_BULK_LOAD_FLUSH) {
                if (ngx_http_bulk_load_flush(ctx) != NGX_OK) {
                    return;
                }

                if (ctx->pg_blocked) {
                    /* the rest waits in the source's buffers */
                    ngx_http_bulk_load_held(ctx);
                    return;
                }
            }

            continue;
        }

        /* the buffer is used up */

        if (!ctx->nd_input) {
            break;
        }

        ngx_http_bulk_load_held(ctx);
    }

    if (f->held == NULL && f->eof && f->finished && !ctx->failed
        && !ctx->pg_blocked && ctx->state == ngx_http_bulk_load_copy)
    {
        ngx_http_bulk_load_end_copy(ctx);
    }
}


/*
 * Tells the source's first held buffer how much of it was taken; a buffer
 * used up leaves the list at once, as the proxy reuses it.
 */

static void
ngx_http_bulk_load_held(ngx_http_bulk_load_ctx_t *ctx)
{
    size_t                  pending;
    ngx_buf_t              *b;
    ngx_chain_t            *cl;
    ngx_http_bulk_fetch_t  *f;

    f = &ctx->fetch;

    if (!ctx->nd_input || f->held == NULL) {
        return;
    }

    b = f->held->buf;
    pending = ngx_bulk_nd_pending(ctx->nd);

    if (pending) {
        b->pos = b->last - pending;
        return;
    }

    b->pos = b->last;
    ctx->nd_input = 0;

    cl = f->held;
    f->held = cl->next;
    ngx_free_chain(ctx->request->pool, cl);

    if (f->held == NULL) {
        f->held_last = &f->held;
    }
}


static ngx_inline u_char *
ngx_http_bulk_put16(u_char *p, uint16_t v)
{
    *p++ = (u_char) (v >> 8);
    *p++ = (u_char) v;

    return p;
}


static ngx_inline u_char *
ngx_http_bulk_put32(u_char *p, uint32_t v)
{
    *p++ = (u_char) (v >> 24);
    *p++ = (u_char) (v >> 16);
    *p++ = (u_char) (v >> 8);
    *p++ = (u_char) v;

    return p;
}


/* one line: checked, converted, staged; a bad line is an issue */

static ngx_int_t
ngx_http_bulk_load_line(ngx_http_bulk_load_ctx_t *ctx, ngx_bulk_nd_line_t *l)
{
    u_char                     *p, *s, *q, *end;
    const u_char               *rt;
    size_t                      rt_len;
    ngx_uint_t                  i;
    ngx_bulk_fmt_job_t          job;
    ngx_http_bulk_load_type_t  *t;

    if (l->too_long) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "the line is longer than "
                                        "bulk_line_max (%uz bytes)",
                                        ctx->conf->line_max);
    }

    ngx_memzero(&job, sizeof(ngx_bulk_fmt_job_t));

    job.dir = ctx->fhir ? NGX_BULK_FMT_TO_AIDBOX : NGX_BULK_FMT_NONE;
    job.strip = 1;

    if (ctx->type.len) {
        job.type = (char *) ctx->type.data;
        job.type_len = ctx->type.len;
    }

    if (ngx_bulk_fmt_convert(ctx->fmt, &job, l->data, l->len) != 0) {
        return ngx_http_bulk_load_issue(ctx, l->lineno, "%s", job.err);
    }

    if (job.doc_id == NULL) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "the resource has no \"id\"");
    }

    if (!ngx_bulk_fhir_id_valid(job.doc_id, job.doc_id_len)) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "\"id\" is not a FHIR id "
                                        "([A-Za-z0-9.-]{1,64})");
    }

    rt = (const u_char *) job.doc_type;
    rt_len = job.doc_type_len;

    if (ctx->type.len) {
        if (rt && (rt_len != ctx->type.len
                   || ngx_strncmp(rt, ctx->type.data, rt_len) != 0))
        {
            return ngx_http_bulk_load_issue(ctx, l->lineno,
                                            "\"resourceType\" %*s is not "
                                            "%V", ngx_min(rt_len, 64), rt,
                                            &ctx->type);
        }

        rt = ctx->type.data;
        rt_len = ctx->type.len;

    } else if (rt == NULL) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "the resource has no "
                                        "\"resourceType\"");
    }

    if (ngx_http_bulk_load_known(ctx, rt, rt_len) != NGX_OK) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "unknown resource type \"%*s\"",
                                        ngx_min(rt_len, 64), rt);
    }

    if (!ngx_bulk_utf8_valid(job.out, job.out_len)) {
        return ngx_http_bulk_load_issue(ctx, l->lineno,
                                        "invalid UTF-8 (an overlong form, "
                                        "a surrogate or past U+10FFFF)");
    }

    /* a NUL character, written "\u0000" by the converter: jsonb refuses it */

    for (s = (u_char *) job.out, end = s + job.out_len;
         (q = memmem(s, end - s, "\\u0000", 6)) != NULL;
         s = q + 1)
    {
        for (p = q; p > (u_char *) job.out && p[-1] == '\\'; p--) {
            /* void */
        }

        if (((q - p) & 1) == 0) {
            return ngx_http_bulk_load_issue(ctx, l->lineno,
                                            "\\u0000 in a string: "
                                            "PostgreSQL's jsonb cannot "
                                            "store it");
        }
    }

    /*
     * a binary COPY tuple (ln int8, rt text, id text, doc text): no
     * escaping on either side; the document goes in its own piece
     */

    p = ctx->tuple;

    if (!ctx->copy_header) {
        p = ngx_cpymem(p, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
        ctx->copy_header = 1;
    }

    p = ngx_http_bulk_put16(p, 4);
    p = ngx_http_bulk_put32(p, 8);
    p = ngx_http_bulk_put32(p, (uint32_t) (l->lineno >> 32));
    p = ngx_http_bulk_put32(p, (uint32_t) l->lineno);
    p = ngx_http_bulk_put32(p, rt_len);
    p = ngx_cpymem(p, rt, rt_len);
    p = ngx_http_bulk_put32(p, job.doc_id_len);
    p = ngx_cpymem(p, job.doc_id, job.doc_id_len);
    p = ngx_http_bulk_put32(p, job.out_len);

    if (PQputCopyData(ctx->pc->pg, (char *) ctx->tuple, p - ctx->tuple) != 1
        || PQputCopyData(ctx->pc->pg, (char *) job.out, job.out_len) != 1)
    {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "COPY to the database failed: "
                                "%*s",
                                ngx_http_bulk_msg_len(
                                    PQerrorMessage(ctx->pc->pg)),
                                PQerrorMessage(ctx->pc->pg));
        return NGX_ERROR;
    }

    ctx->unflushed += (p - ctx->tuple) + job.out_len;
    ctx->staged += (p - ctx->tuple) + job.out_len;

    t = ctx->types.elts;

    for (i = 0; i < ctx->types.nelts; i++) {
        if (t[i].name.len == rt_len
            && ngx_strncmp(t[i].name.data, rt, rt_len) == 0)
        {
            break;
        }
    }

    if (i == ctx->types.nelts) {
        t = ngx_array_push(&ctx->types);
        if (t == NULL) {
            return NGX_ERROR;
        }

        t->name.data = ngx_pnalloc(ctx->request->pool, rt_len);
        if (t->name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(t->name.data, rt, rt_len);
        t->name.len = rt_len;
        t->lines = 0;
        t->written = 0;
        t->dups = 0;

    } else {
        t = &t[i];
    }

    t->lines++;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_load_issue(ngx_http_bulk_load_ctx_t *ctx, uint64_t line,
    const char *fmt, ...)
{
    u_char                      *p;
    va_list                      args;
    ngx_http_bulk_load_issue_t  *is;
    u_char                       text[512];

    ctx->errors++;

    if (ctx->issues.nelts >= NGX_HTTP_BULK_LOAD_ISSUES_MAX) {
        return NGX_OK;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    is = ngx_array_push(&ctx->issues);
    if (is == NULL) {
        return NGX_ERROR;
    }

    is->line = line;
    is->text.len = p - text;
    is->text.data = ngx_pnalloc(ctx->request->pool, is->text.len);
    if (is->text.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(is->text.data, text, is->text.len);

    return NGX_OK;
}


/* NGX_OK: flushed or blocked (ctx->pg_blocked); NGX_ERROR: failed */

static ngx_int_t
ngx_http_bulk_load_flush(ngx_http_bulk_load_ctx_t *ctx)
{
    int  rc;

    rc = PQflush(ctx->pc->pg);

    if (rc == -1) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "the database connection was "
                                "lost: %*s",
                                ngx_http_bulk_msg_len(
                                    PQerrorMessage(ctx->pc->pg)),
                                PQerrorMessage(ctx->pc->pg));
        return NGX_ERROR;
    }

    ctx->unflushed = 0;
    ctx->pg_blocked = (rc == 1);

    if (ngx_http_bulk_pg_write(ctx->pc, rc == 1) != NGX_OK) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "event failure");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the fetch subrequest is over */

static void
ngx_http_bulk_load_fetched(ngx_http_bulk_fetch_t *f)
{
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = f->data;

    if (ctx->failed) {
        return;
    }

    if (f->failed) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_BAD_GATEWAY, "exception",
                                "source \"%V\": %s", &f->url, f->err);
        return;
    }

    /* the end of the copy waits for the parent to run again */
}


/* the parent request runs again (after the subrequest, or posted) */

static void
ngx_http_bulk_load_wake(ngx_http_request_t *r)
{
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (ctx == NULL || ctx->fetch.sr || ctx->answered) {
        return;
    }

    if (ctx->failed) {
        if (ctx->done) {
            ngx_http_bulk_load_end(ctx);
            return;
        }

        ngx_http_bulk_load_finish(ctx,
            ngx_http_bulk_send_error(r, ctx->status, ctx->code, "%s",
                                     ctx->err));
        return;
    }

    if (ctx->state == ngx_http_bulk_load_copy && ctx->fetch.finished
        && !ctx->fetch.consuming)
    {
        ctx->fetch.consuming = 1;
        ngx_http_bulk_load_consume(&ctx->fetch);
        ctx->fetch.consuming = 0;
    }
}


static void
ngx_http_bulk_load_end_copy(ngx_http_bulk_load_ctx_t *ctx)
{
    int                 rc;
    ngx_bulk_nd_line_t  l;

    rc = ngx_bulk_nd_end(ctx->nd, &l);

    if (rc < 0) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_BAD_GATEWAY, "exception",
                                "source \"%V\": %s", &ctx->fetch.url,
                                ngx_bulk_nd_error(ctx->nd));
        return;
    }

    if (rc == 1 && ngx_http_bulk_load_line(ctx, &l) != NGX_OK) {
        return;
    }

    if (ngx_http_bulk_load_copy_done(ctx) != NGX_OK) {
        return;
    }

    ctx->state = ngx_http_bulk_load_copy_end;

    if (ngx_http_bulk_load_flush(ctx) != NGX_OK) {
        return;
    }

    ngx_http_bulk_load_results(ctx);
}


/* the end of a binary COPY: the header if no line was good, the trailer */

static ngx_int_t
ngx_http_bulk_load_copy_done(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char  *p;

    p = ctx->tuple;

    if (!ctx->copy_header) {
        p = ngx_cpymem(p, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    }

    p = ngx_http_bulk_put16(p, 0xffff);

    if (PQputCopyData(ctx->pc->pg, (char *) ctx->tuple, p - ctx->tuple) != 1
        || PQputCopyEnd(ctx->pc->pg, NULL) == -1)
    {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "the database connection was "
                                "lost: %*s",
                                ngx_http_bulk_msg_len(
                                    PQerrorMessage(ctx->pc->pg)),
                                PQerrorMessage(ctx->pc->pg));
        return NGX_ERROR;
    }

    /* a next batch starts a new COPY */
    ctx->copy_header = 0;

    return NGX_OK;
}


/* $import: this batch is staged, upsert and commit it, then go on */

static void
ngx_http_bulk_load_end_batch(ngx_http_bulk_load_ctx_t *ctx)
{
    if (ngx_http_bulk_load_copy_done(ctx) != NGX_OK) {
        return;
    }

    ctx->state = ngx_http_bulk_load_copy_end;
    ctx->batching = 1;
    ctx->staged = 0;

    if (ngx_http_bulk_load_flush(ctx) != NGX_OK) {
        return;
    }

    ngx_http_bulk_load_results(ctx);
}


/*
 * One upsert per type, in one round trip with the COMMIT:
 * the later line of an id wins (DISTINCT ON ... ORDER BY ln DESC), new
 * rows are 'created', existing ones 'updated' ('recreated' after a
 * delete) with their cts kept.
 */

static void
ngx_http_bulk_load_upserts(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char                     *sql, *p, *lit, *expr;
    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_bulk_load_type_t  *t;
    u_char                      low[NGX_HTTP_BULK_TYPE_MAX];

    t = ctx->types.elts;

    lit = NULL;

    if (ctx->merge.len) {
        lit = (u_char *) PQescapeLiteral(ctx->pc->pg,
                                         (char *) ctx->merge.data,
                                         ctx->merge.len);
        if (lit == NULL) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "exception", "out of memory");
            return;
        }
    }

    len = sizeof("COMMIT")
          + (lit ? (ngx_strlen(lit) + 64) * ctx->types.nelts : 0);

    for (i = 0; i < ctx->types.nelts; i++) {
        len += 1024 + 4 * t[i].name.len;
    }

    sql = ngx_pnalloc(ctx->request->pool, len);
    if (sql == NULL) {
        if (lit) {
            PQfreemem(lit);
        }

        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return;
    }

    /* the stored document: strip-nulls first, then the merge */

    expr = ngx_pnalloc(ctx->request->pool,
                       sizeof("(jsonb_strip_nulls(doc::jsonb) || ::jsonb)")
                       + (lit ? ngx_strlen(lit) : 0));
    if (expr == NULL) {
        if (lit) {
            PQfreemem(lit);
        }

        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return;
    }

    p = ngx_sprintf(expr, "%s%sdoc::jsonb%s",
                    lit ? "(" : "",
                    ctx->strip_nulls ? "jsonb_strip_nulls(" : "",
                    ctx->strip_nulls ? ")" : "");

    if (lit) {
        p = ngx_sprintf(p, " || %s::jsonb)", lit);
    }

    *p = '\0';

    p = sql;

    for (i = 0; i < ctx->types.nelts; i++) {
        ngx_strlow(low, t[i].name.data, t[i].name.len);

        if (ctx->update) {
            p = ngx_sprintf(p,
                    "INSERT INTO \"%*s_history\" (id, txid, cts, ts,"
                    " resource_type, status, resource)"
                    " SELECT t.id, t.txid, t.cts, t.ts, t.resource_type,"
                    " t.status, t.resource FROM \"%*s\" t"
                    " WHERE t.id IN (SELECT id FROM bulk_load_stage"
                    " WHERE rt = '%V')"
                    " ON CONFLICT DO NOTHING;",
                    t[i].name.len, low, t[i].name.len, low, &t[i].name);
        }

        p = ngx_sprintf(p,
                "INSERT INTO \"%*s\" AS t (id, txid, cts, ts, resource_type,"
                " status, resource)"
                " SELECT %s id, %L, now(), now(), '%V',"
                " 'created', %s"
                " FROM bulk_load_stage WHERE rt = '%V'%s"
                " ON CONFLICT (id) DO UPDATE SET txid = excluded.txid,"
                " ts = excluded.ts, resource_type = excluded.resource_type,"
                " status = CASE WHEN t.status = 'deleted'"
                " THEN 'recreated'::resource_status"
                " ELSE 'updated'::resource_status END,"
                " resource = excluded.resource;",
                t[i].name.len, low,
                t[i].dups ? "DISTINCT ON (id)" : "",
                ctx->txid, &t[i].name, expr, &t[i].name,
                t[i].dups ? " ORDER BY id, ln DESC" : "");
    }

    *p = '\0';

    if (lit) {
        PQfreemem(lit);
    }

    if (ngx_http_bulk_pg_send(ctx->pc, (char *) sql) != NGX_OK) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "the database connection was "
                                "lost: %*s",
                                ngx_http_bulk_msg_len(
                                    PQerrorMessage(ctx->pc->pg)),
                                PQerrorMessage(ctx->pc->pg));
        return;
    }

    ctx->state = ngx_http_bulk_load_upsert;
    ctx->result = 0;
}


static void
ngx_http_bulk_load_dups(ngx_http_bulk_load_ctx_t *ctx, PGresult *res)
{
    int                         i;
    size_t                      len;
    ngx_uint_t                  j;
    const char                 *rt;
    ngx_http_bulk_load_type_t  *t;

    t = ctx->types.elts;

    for (i = 0; i < PQntuples(res); i++) {
        rt = PQgetvalue(res, i, 0);
        len = PQgetlength(res, i, 0);

        for (j = 0; j < ctx->types.nelts; j++) {
            if (t[j].name.len == len
                && ngx_strncmp(t[j].name.data, rt, len) == 0)
            {
                t[j].dups = 1;
            }
        }
    }
}


/* results of the end of COPY, of the duplicate check and of the upserts */

static void
ngx_http_bulk_load_results(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn                     *pg;
    PGresult                   *res;
    const char                 *cmd, *n;
    ngx_http_bulk_load_type_t  *t;

    pg = ctx->pc->pg;
    t = ctx->types.elts;

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

        if (ctx->state == ngx_http_bulk_load_check
            && PQresultStatus(res) == PGRES_TUPLES_OK)
        {
            ngx_http_bulk_load_dups(ctx, res);
            PQclear(res);
            continue;
        }

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            ngx_http_bulk_load_fail(ctx,
                                    PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                    ? NGX_HTTP_BULK_UNPROCESSABLE
                                    : NGX_HTTP_SERVICE_UNAVAILABLE,
                                    PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                    ? "processing" : "transient",
                                    "the database refused the load, "
                                    "nothing was loaded: %*s",
                                    ngx_http_bulk_msg_len(
                                        PQresultErrorMessage(res)),
                                    PQresultErrorMessage(res));
            PQclear(res);
            return;
        }

        cmd = PQcmdStatus(res);

        if (ctx->state == ngx_http_bulk_load_upsert
            && ngx_strncmp(cmd, "INSERT", 6) == 0)
        {
            n = PQcmdTuples(res);

            /* with update the _history INSERT comes first for each type */

            if (!ctx->update || ctx->result % 2 == 1) {
                t[ctx->result / (ctx->update ? 2 : 1)].written +=
                                       ngx_atoi((u_char *) n, ngx_strlen(n));
            }

            ctx->result++;
        }

        PQclear(res);
    }

    if (PQstatus(pg) != CONNECTION_OK) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "transient", "the database connection was "
                                "lost, nothing was loaded: %*s",
                                ngx_http_bulk_msg_len(PQerrorMessage(pg)),
                                PQerrorMessage(pg));
        return;
    }

    if (ctx->state == ngx_http_bulk_load_copy_end) {

        /*
         * which types have an id twice: only those pay for sorting the
         * staged documents to keep the later line
         */

        if (ngx_http_bulk_pg_send(ctx->pc,
                "SELECT DISTINCT rt FROM (SELECT rt, id FROM bulk_load_stage"
                " GROUP BY rt, id HAVING count(*) > 1) d")
            != NGX_OK)
        {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "transient", "the database connection "
                                    "was lost: %*s",
                                    ngx_http_bulk_msg_len(PQerrorMessage(pg)),
                                    PQerrorMessage(pg));
            return;
        }

        ctx->state = ngx_http_bulk_load_check;
        return;
    }

    if (ctx->state == ngx_http_bulk_load_check) {
        ngx_http_bulk_load_upserts(ctx);
        return;
    }

    if (ctx->state == ngx_http_bulk_load_upsert) {

        /*
         * COMMIT goes alone, after the upserts answered: a client that
         * went away meanwhile closed the connection, and the backend,
         * finding it closed, rolls back instead of committing
         */

        if (ngx_http_bulk_pg_send(ctx->pc, "COMMIT") != NGX_OK) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "transient", "the database connection "
                                    "was lost: %*s",
                                    ngx_http_bulk_msg_len(PQerrorMessage(pg)),
                                    PQerrorMessage(pg));
            return;
        }

        ctx->state = ngx_http_bulk_load_commit;
        return;
    }

    /* committed */

    if (ctx->batching) {
        ctx->batching = 0;
        ctx->batches++;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "bulk load: batch %ui of \"%V\" committed",
                       ctx->batches, &ctx->fetch.url);

        ngx_http_bulk_load_begin(ctx);
        return;
    }

    ctx->batches++;

    ngx_http_bulk_pg_release(ctx->pc, 1);
    ctx->pc = NULL;
    ctx->state = ngx_http_bulk_load_done;

    ngx_http_bulk_load_answer(ctx);
}


static void
ngx_http_bulk_load_answer(ngx_http_bulk_load_ctx_t *ctx)
{
    size_t                       len;
    u_char                      *p;
    ngx_buf_t                   *b;
    ngx_int_t                    rc;
    ngx_uint_t                   i, total;
    ngx_chain_t                  out;
    ngx_http_request_t          *r;
    ngx_http_bulk_load_type_t   *t;
    ngx_http_bulk_load_issue_t  *is;

    r = ctx->request;

    if (ctx->fetch.sr) {
        /* the subrequest is still finishing: answer when it is over */
        return;
    }

    if (ctx->done) {
        ngx_http_bulk_load_end(ctx);
        return;
    }

    t = ctx->types.elts;
    is = ctx->issues.elts;

    len = sizeof("{\"total\":,\"errors\":,\"issues\":[]}\n") + NGX_INT_T_LEN * 2;

    for (i = 0; i < ctx->types.nelts; i++) {
        len += t[i].name.len + NGX_INT_T_LEN + 6;
    }

    for (i = 0; i < ctx->issues.nelts; i++) {
        len += sizeof("{\"line\":,\"diagnostics\":\"\"},") + NGX_INT64_LEN
               + 6 * is[i].text.len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        ngx_http_bulk_load_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = b->last;
    *p++ = '{';

    total = 0;

    for (i = 0; i < ctx->types.nelts; i++) {
        total += t[i].written;
    }

    if (ctx->type.len) {
        p = ngx_sprintf(p, "\"total\":%ui", total);

    } else {
        for (i = 0; i < ctx->types.nelts; i++) {
            p = ngx_sprintf(p, "%s\"%V\":%ui", i ? "," : "", &t[i].name,
                            t[i].written);
        }
    }

    if (ctx->errors) {
        p = ngx_sprintf(p, "%s\"errors\":%ui,\"issues\":[",
                        (ctx->type.len || ctx->types.nelts) ? "," : "",
                        ctx->errors);

        for (i = 0; i < ctx->issues.nelts; i++) {
            p = ngx_sprintf(p, "%s{\"line\":%uL,\"diagnostics\":\"",
                            i ? "," : "", is[i].line);
            p += ngx_bulk_json_escape(p, is[i].text.data, is[i].text.len);
            p = ngx_sprintf(p, "\"}");
        }

        *p++ = ']';
    }

    *p++ = '}';
    *p++ = '\n';
    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk load from \"%V\" done: %ui resources, %ui bad lines, "
                  "txid %L", &ctx->fetch.url, total, ctx->errors, ctx->txid);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = p - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_bulk_load_finish(ctx, rc);
        return;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_bulk_load_finish(ctx, ngx_http_output_filter(r, &out));
}


/*
 * A failure: the database connection is closed, which rolls back
 * everything of this load; the answer waits for the subrequest to end.
 */

static void
ngx_http_bulk_load_fail(ngx_http_bulk_load_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char              *p;
    va_list              args;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->failed) {
        return;
    }

    ctx->failed = 1;
    ctx->state = ngx_http_bulk_load_done;
    ctx->status = status;

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }
    ctx->code = code;

    va_start(args, fmt);
    p = ngx_vslprintf(ctx->err, ctx->err + sizeof(ctx->err) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "bulk load from \"%V\" failed, %s: %s", &ctx->fetch.url,
                  ctx->batch ? "committed batches stay" : "nothing loaded",
                  ctx->err);

    if (ctx->pc) {
        ngx_http_bulk_pg_release(ctx->pc, 0);
        ctx->pc = NULL;
    }

    /* drop what the source still holds back, and stop it */

    while (ctx->fetch.held) {
        cl = ctx->fetch.held;
        cl->buf->pos = cl->buf->last;
        ctx->fetch.held = cl->next;
        ngx_free_chain(r->pool, cl);
    }

    ctx->fetch.held_last = &ctx->fetch.held;

    if (ctx->fetch.sr) {
        /* the subrequest ends first; its end wakes the parent */
        ngx_http_bulk_fetch_stop(&ctx->fetch);
        return;
    }

    if (ctx->done) {
        ngx_http_bulk_load_end(ctx);
        return;
    }

    ngx_http_bulk_load_finish(ctx,
        ngx_http_bulk_send_error(r, status, code, "%s", ctx->err));
}


/* $import: the input is over (ctx->failed tells how); no HTTP answer */

static void
ngx_http_bulk_load_end(ngx_http_bulk_load_ctx_t *ctx)
{
    ctx->answered = 1;
    ctx->state = ngx_http_bulk_load_done;
    ctx->request->write_event_handler = ngx_http_request_empty_handler;

    ctx->done(ctx);
}


static void
ngx_http_bulk_load_finish(ngx_http_bulk_load_ctx_t *ctx, ngx_int_t rc)
{
    ngx_uint_t                  i;
    ngx_http_bulk_load_type_t  *t;

    ctx->stats.errors = ctx->errors;
    ctx->stats.bytes = ctx->nd ? (off_t) ngx_bulk_nd_bytes(ctx->nd) : 0;
    ctx->stats.rows = 0;

    if (!ctx->failed) {
        t = ctx->types.elts;

        for (i = 0; i < ctx->types.nelts; i++) {
            ctx->stats.rows += t[i].written;
        }
    }

    ctx->answered = 1;
    ctx->state = ngx_http_bulk_load_done;

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }
    ctx->request->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(ctx->request, rc);
}


static void
ngx_http_bulk_load_cleanup(void *data)
{
    ngx_http_bulk_load_ctx_t  *ctx = data;

    ngx_http_bulk_pg_cancel(&ctx->waiter);

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }

    if (ctx->pc) {
        /* the client went away: closing rolls the load back */
        ngx_http_bulk_pg_release(ctx->pc, 0);
        ctx->pc = NULL;
    }

    ngx_bulk_nd_destroy(ctx->nd);
    ctx->nd = NULL;
}
