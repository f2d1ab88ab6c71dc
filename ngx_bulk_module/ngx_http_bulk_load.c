
/*
 * ngx_bulk: POST /$load, /{Type}/$load, /fhir/$load, /fhir/{Type}/$load,
 * and the inputs of $import jobs.
 *
 * One transaction: the source, a URL fetched through the bulk_fetch
 * location (ngx_http_bulk_fetch.c) or the request body itself
 * (ngx_http_bulk_push.c), both as ngx_http_bulk_source.h describes, is
 * split into lines (gzip sniffed), each line
 * checked and converted with the format converter, and streamed with
 * COPY FROM STDIN (FORMAT binary) into a temporary staging table as jsonb
 * (PostgreSQL parses the documents while the worker converts the next
 * ones).  At the end the staged rows go into the tables under one txid,
 * one INSERT ... SELECT per type, in up to three passes from a savepoint
 * (ngx_http_bulk_load_upserts()): a plain INSERT, which needs one index
 * probe per row, then, if an id was already there, the upsert (ON
 * CONFLICT), then, if an id came twice, the upsert with DISTINCT ON (id),
 * the later line winning.  Then the transaction commits.  Any failure of
 * the source or the database closes the connection, so PostgreSQL rolls
 * everything back.
 *
 * The states, moved on from ngx_http_bulk_load_process() as PostgreSQL
 * answers, and by the source's consumer while lines flow:
 *
 *   wait -> prepare -> copy <-> copy_full -> copy_end -> upsert [-> upsert]
 *        -> commit -> ending -> done
 *
 * copy_full: libpq holds more than the socket takes, the source waits.
 * An $import input commits every "batch" bytes staged: after the commit
 * it goes back to prepare while the source goes on.  ending: the load
 * succeeded or failed (ctx->status), and the answer waits for the source
 * to end (a fetch subrequest finishing); ngx_http_bulk_load_end() gives
 * it.
 */


#include "ngx_http_bulk_load.h"
#include "ngx_http_bulk_body.h"
#include "ngx_http_bulk_fetch.h"
#include "ngx_http_bulk_push.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_ndjson.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_format.h"
#include "ngx_bulk_pgcopy.h"


#define NGX_HTTP_BULK_LOAD_ISSUES_MAX  100
#define NGX_HTTP_BULK_LOAD_FLUSH       65536
#define NGX_HTTP_BULK_LOAD_WATCH       250

/* a staged row: ln int8, rt text, id text, doc jsonb (sent on its own) */
#define NGX_HTTP_BULK_LOAD_FIELDS      4

/* jsonb's binary input: a version byte, then the text */
#define NGX_HTTP_BULK_LOAD_JSONB       1

/* what goes before a document: maybe the file header, then its tuple */
#define NGX_HTTP_BULK_LOAD_TUPLE                                             \
    (NGX_BULK_PGCOPY_HEADER_LEN + NGX_BULK_PGCOPY_COUNT_LEN                  \
     + NGX_BULK_PGCOPY_INT8_LEN                                              \
     + NGX_BULK_PGCOPY_LEN_LEN + NGX_HTTP_BULK_TYPE_MAX                      \
     + NGX_BULK_PGCOPY_LEN_LEN + NGX_HTTP_BULK_ID_MAX                        \
     + NGX_BULK_PGCOPY_LEN_LEN + 1)


typedef enum {
    ngx_http_bulk_load_wait = 0,
    ngx_http_bulk_load_prepare,
    ngx_http_bulk_load_copy,
    ngx_http_bulk_load_copy_full,
    ngx_http_bulk_load_copy_end,
    ngx_http_bulk_load_upsert,
    ngx_http_bulk_load_record,      /* $import: the progress row */
    ngx_http_bulk_load_commit,
    ngx_http_bulk_load_ending,
    ngx_http_bulk_load_done
} ngx_http_bulk_load_state_e;


/* the passes of the staged rows into the tables, from a savepoint */

typedef enum {
    ngx_http_bulk_load_insert = 0,      /* INSERT */
    ngx_http_bulk_load_conflict,        /* INSERT ... ON CONFLICT */
    ngx_http_bulk_load_distinct         /* and DISTINCT ON (id) */
} ngx_http_bulk_load_pass_e;


typedef struct {
    ngx_str_t                    name;      /* as in the documents */
    ngx_uint_t                   lines;
    ngx_uint_t                   written;
    ngx_uint_t                   round;     /* of the upserts running */
} ngx_http_bulk_load_type_t;


struct ngx_http_bulk_load_s {
    ngx_http_bulk_stats_t        stats;     /* first: the log variables */
    ngx_http_request_t          *request;
    ngx_http_bulk_loc_conf_t    *conf;
    ngx_http_bulk_load_state_e   state;
    ngx_http_bulk_source_t       source;    /* a fetch or the body */
    ngx_http_bulk_pg_waiter_t    waiter;
    ngx_http_bulk_pg_conn_t     *pc;
    ngx_event_t                  watch;     /* bulk_pg_timeout */
    ngx_msec_t                   pg_active; /* last event from PostgreSQL */

    ngx_str_t                    type;      /* typed routes, inputs */
    ngx_http_bulk_load_opts_t    opts;
    unsigned                     fhir:1;
    unsigned                     nd_input:1;    /* the splitter reads the
                                                   first held buffer */
    unsigned                     copy_header:1; /* this COPY has its file
                                                   header */
    unsigned                     more:1;        /* the source goes on after
                                                   this batch */
    unsigned                     gzip:1;        /* Content-Encoding: gzip */
    unsigned                     again:1;       /* the pass failed: the
                                                   next one runs from the
                                                   savepoint */
    unsigned                     upsert:1;      /* an id was there: the
                                                   next batches upsert */
    unsigned                     pass:2;        /* ngx_http_bulk_load_pass_e */

    ngx_bulk_nd_t               *nd;
    ngx_bulk_fmt_t              *fmt;

    int64_t                      txid;
    ngx_pool_t                  *scratch;   /* a batch's SQL and its table
                                               names: reset at each batch,
                                               so that a long $import input
                                               does not grow its pool */
    ngx_array_t                  tables;    /* ngx_str_t, lower case */
    ngx_array_t                  types;     /* ngx_http_bulk_load_type_t */
    ngx_uint_t                   errors;
    ngx_array_t                  issues;    /* ngx_http_bulk_load_issue_t */
    ngx_uint_t                   result;    /* upsert results taken */

    u_char                       tuple[NGX_HTTP_BULK_LOAD_TUPLE];
    size_t                       unflushed;

    size_t                       batch;     /* $import: commit every batch
                                               bytes staged; 0: at the end */
    size_t                       staged;
    ngx_uint_t                   batches;   /* committed */
    ngx_http_bulk_load_done_pt   done;      /* $import: the input is over */
    ngx_http_bulk_load_commit_pt commit;    /* $import: the progress row */
    void                        *data;      /* of done and commit */
    uint64_t                     skip;      /* lines loaded before */
    uint64_t                     lines;     /* lines taken */
    uint64_t                     line_base; /* lines before a range */
    off_t                        byte_base; /* where a range starts */
    off_t                        offset;    /* the end of the last line */

    ngx_uint_t                   status;    /* of a failure, 0: success */
    const char                  *code;
    u_char                       err[512];
};


typedef ngx_http_bulk_load_t  ngx_http_bulk_load_ctx_t;


static ngx_int_t ngx_http_bulk_load_push(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_load_push_args(ngx_http_request_t *r,
    ngx_http_bulk_load_opts_t *opts, u_char *err, size_t len);
static ngx_int_t ngx_http_bulk_load_body(ngx_http_request_t *r,
    yajl_val root);
static ngx_http_bulk_load_ctx_t *ngx_http_bulk_load_new(
    ngx_http_request_t *r, ngx_int_t *rc);
static ngx_int_t ngx_http_bulk_load_options(ngx_http_bulk_load_ctx_t *ctx,
    yajl_val root);
static ngx_int_t ngx_http_bulk_load_init(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_load_begin(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_load_watch(ngx_event_t *ev);
static void ngx_http_bulk_load_process(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_prepared(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_tables(ngx_http_bulk_load_ctx_t *ctx,
    PGresult *res);
static void ngx_http_bulk_load_take(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_copying(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_consume(ngx_http_bulk_source_t *f);
static void ngx_http_bulk_load_held(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_not_gzip(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_line(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l);
static ngx_int_t ngx_http_bulk_load_convert(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l, ngx_bulk_fmt_job_t *job, ngx_str_t *rt);
static ngx_int_t ngx_http_bulk_load_stage(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l, ngx_bulk_fmt_job_t *job, ngx_str_t *rt);
static ngx_int_t ngx_http_bulk_load_issue(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l, const char *fmt, ...);
static ngx_int_t ngx_http_bulk_load_known(ngx_http_bulk_load_ctx_t *ctx,
    const u_char *name, size_t len);
static ngx_int_t ngx_http_bulk_load_flush(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_fetched(ngx_http_bulk_source_t *f);
static void ngx_http_bulk_load_wake(ngx_http_request_t *r);
static void ngx_http_bulk_load_end_copy(ngx_http_bulk_load_ctx_t *ctx,
    ngx_uint_t more);
static ngx_int_t ngx_http_bulk_load_copy_done(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_results(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_send(ngx_http_bulk_load_ctx_t *ctx,
    const char *sql, ngx_http_bulk_load_state_e state);
static void ngx_http_bulk_load_upserts(ngx_http_bulk_load_ctx_t *ctx);
static u_char *ngx_http_bulk_load_document(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_again(ngx_http_bulk_load_ctx_t *ctx,
    PGresult *res);
static void ngx_http_bulk_load_record_progress(
    ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_committed(ngx_http_bulk_load_ctx_t *ctx);
static ngx_uint_t ngx_http_bulk_load_total(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_fail(ngx_http_bulk_load_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...);
static void ngx_http_bulk_load_lost(ngx_http_bulk_load_ctx_t *ctx,
    const char *what);
static void ngx_http_bulk_load_end(ngx_http_bulk_load_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_load_answer(ngx_http_bulk_load_ctx_t *ctx);
static void ngx_http_bulk_load_cleanup(void *data);


ngx_int_t
ngx_http_bulk_load_handler(ngx_http_request_t *r)
{
    if (ngx_http_bulk_push_request(r)) {
        return ngx_http_bulk_load_push(r);
    }

    return ngx_http_bulk_read_body(r, ngx_http_bulk_load_body);
}


/* an NDJSON body: the body is the source (push upload) */

static ngx_int_t
ngx_http_bulk_load_push(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 gzip;
    ngx_http_bulk_load_ctx_t  *ctx;

    if (ngx_http_bulk_push_encoding(r, &gzip) != NGX_OK) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "not-supported",
                                        "the body's Content-Encoding must "
                                        "be gzip or identity");
    }

    ctx = ngx_http_bulk_load_new(r, &rc);

    if (ctx == NULL) {
        /* answered (an unknown type): the body is not needed */
        (void) ngx_http_discard_request_body(r);
        return rc;
    }

    if (ngx_http_bulk_load_push_args(r, &ctx->opts, ctx->err,
                                     sizeof(ctx->err))
        != NGX_OK)
    {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", ctx->err);
    }

    if (ctx->conf->body_max > 0
        && r->headers_in.content_length_n > ctx->conf->body_max)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "too-large",
                                        "the body is larger than %O bytes",
                                        ctx->conf->body_max);
    }

    ctx->gzip = gzip;
    ctx->source.ops = &ngx_http_bulk_push_ops;
    ngx_str_set(&ctx->source.url, "(request body)");

    if (ngx_http_bulk_load_init(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk load from the request body started");

    ngx_http_bulk_load_run(ctx);

    return NGX_DONE;
}


/*
 * A push has no JSON body for its options: ?update=true|false and
 * ?strip-nulls=true|false (merge, an object, has no place in a query).
 * NGX_OK, or NGX_DECLINED with err saying why.
 */

static ngx_int_t
ngx_http_bulk_load_push_args(ngx_http_request_t *r,
    ngx_http_bulk_load_opts_t *opts, u_char *err, size_t len)
{
    ngx_str_t    v;
    ngx_uint_t   i, on;
    const char  *name[] = { "update", "strip-nulls" };

    for (i = 0; i < 2; i++) {
        if (ngx_http_arg(r, (u_char *) name[i], ngx_strlen(name[i]), &v)
            != NGX_OK)
        {
            continue;
        }

        if (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0) {
            on = 1;

        } else if (v.len == 5 && ngx_strncmp(v.data, "false", 5) == 0) {
            on = 0;

        } else {
            ngx_snprintf(err, len - 1, "\"%s\" must be true or false%Z",
                         name[i]);
            return NGX_DECLINED;
        }

        if (i == 0) {
            opts->update = on;

        } else {
            opts->strip_nulls = on;
        }
    }

    return NGX_OK;
}


/*
 * A $load request's context, with the route's type; NULL when answered
 * (an unknown type is a 404) or failed, with what the content handler
 * returns in rc.
 */

static ngx_http_bulk_load_ctx_t *
ngx_http_bulk_load_new(ngx_http_request_t *r, ngx_int_t *rc)
{
    ngx_http_variable_value_t  *vv;
    ngx_http_bulk_loc_conf_t   *blcf;
    ngx_http_bulk_load_ctx_t   *ctx;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_load_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->conf = blcf;
    ctx->fhir = blcf->load_fhir;

    if (blcf->load_typed) {
        if (blcf->load_type_var) {
            vv = ngx_http_get_indexed_variable(r, blcf->load_type_index);
            if (vv == NULL || vv->not_found) {
                return NULL;
            }

            ctx->type.data = vv->data;
            ctx->type.len = vv->len;

        } else {
            ctx->type = blcf->load_type;
        }

        if (ngx_http_bulk_type_valid(ctx->type.data, ctx->type.len)
            != NGX_OK)
        {
            *rc = ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not-found",
                                           "unknown resource type \"%V\"",
                                           &ctx->type);
            return NULL;
        }
    }

    return ctx;
}


static ngx_int_t
ngx_http_bulk_load_body(ngx_http_request_t *r, yajl_val root)
{
    ngx_int_t                  rc;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ngx_http_bulk_load_new(r, &rc);

    if (ctx == NULL) {
        return rc;
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

    if (ngx_http_bulk_source_allowed(r, &ctx->source.url, ctx->err,
                                     sizeof(ctx->err))
        != NGX_OK)
    {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_GATEWAY, "exception",
                                        "%s", ctx->err);
    }

    ctx->source.ops = &ngx_http_bulk_fetch_ops;

    if (ngx_http_bulk_load_init(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk load from \"%V\" started", &ctx->source.url);

    ngx_http_bulk_load_run(ctx);

    return NGX_DONE;
}


/* source, update, strip-nulls, merge; NGX_DECLINED: ctx->err says why */

static ngx_int_t
ngx_http_bulk_load_options(ngx_http_bulk_load_ctx_t *ctx, yajl_val root)
{
    size_t       i;
    yajl_val     v;
    ngx_str_t    s;
    ngx_int_t    rc;
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

            if (ngx_http_bulk_fetch_url_valid(s.data, s.len) != NGX_OK) {
                goto bad_source;
            }

            ctx->source.url.data = ngx_pstrdup(ctx->request->pool, &s);
            if (ctx->source.url.data == NULL) {
                return NGX_ERROR;
            }

            ctx->source.url.len = s.len;
            continue;
        }

        rc = ngx_http_bulk_load_option(ctx->request->pool, key, v,
                                       &ctx->opts, ctx->err,
                                       sizeof(ctx->err));

        if (rc == NGX_ABORT) {
            return NGX_DECLINED;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /* other keys are ignored, as Aidbox does */
    }

    if (ctx->source.url.len == 0) {
        goto bad_source;
    }

    return NGX_OK;

bad_source:

    ngx_snprintf(ctx->err, sizeof(ctx->err) - 1,
                 "\"source\" must be an http or https URL%Z");

    return NGX_DECLINED;
}


/*
 * A body key $load and $import share: NGX_OK when taken, NGX_DECLINED
 * when the key is none of them, NGX_ABORT for a bad value (err says
 * why), NGX_ERROR.
 */

ngx_int_t
ngx_http_bulk_load_option(ngx_pool_t *pool, const char *key, yajl_val v,
    ngx_http_bulk_load_opts_t *opts, u_char *err, size_t len)
{
    if (ngx_strcmp(key, "update") == 0
        || ngx_strcmp(key, "strip-nulls") == 0)
    {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            ngx_snprintf(err, len - 1, "\"%s\" must be true or false%Z",
                         key);
            return NGX_ABORT;
        }

        if (key[0] == 'u') {
            opts->update = YAJL_IS_TRUE(v);

        } else {
            opts->strip_nulls = YAJL_IS_TRUE(v);
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "merge") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_OBJECT(v)) {
            ngx_snprintf(err, len - 1, "\"merge\" must be an object%Z");
            return NGX_ABORT;
        }

        return ngx_http_bulk_json_text(pool, v, &opts->merge);
    }

    return NGX_DECLINED;
}


/* an $import input on the job's fake request r; run it to start it */

ngx_http_bulk_load_t *
ngx_http_bulk_load_create(ngx_http_request_t *r,
    ngx_http_bulk_load_input_t *in)
{
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_load_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->conf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    ctx->fhir = in->fhir;
    ctx->opts = in->opts;
    ctx->type = in->type;
    ctx->source.url = in->url;
    ctx->source.ops = &ngx_http_bulk_fetch_ops;
    ctx->batch = in->batch;
    ctx->done = in->done;
    ctx->commit = in->commit;
    ctx->data = in->data;
    ctx->skip = in->skip;
    ctx->source.range = in->offset;
    ctx->source.if_range = in->validator;

    if (ngx_http_bulk_load_init(ctx) != NGX_OK) {
        return NULL;
    }

    return ctx;
}


/*
 * Everything a load needs besides its options: $load's request, or the
 * fake request of an $import input.
 */

static ngx_int_t
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
    ctx->scratch = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, r->connection->log);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL || ctx->fmt == NULL || ctx->nd == NULL
        || ctx->scratch == NULL)
    {
        ngx_bulk_nd_destroy(ctx->nd);
        ctx->nd = NULL;

        if (ctx->scratch) {
            ngx_destroy_pool(ctx->scratch);
            ctx->scratch = NULL;
        }

        return NGX_ERROR;
    }

    cln->handler = ngx_http_bulk_load_cleanup;
    cln->data = ctx;

    ctx->source.request = r;
    ctx->source.location = &ctx->conf->fetch_uri;
    ctx->source.consume = ngx_http_bulk_load_consume;
    ctx->source.done = ngx_http_bulk_load_fetched;
    ctx->source.data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_bulk_module);

    ngx_http_bulk_pg_waiter_init(&ctx->waiter, ctx->conf->pool,
                                 ngx_http_bulk_load_ready, ctx,
                                 r->connection->log);
    ctx->waiter.stats = &ctx->stats;

    ctx->watch.handler = ngx_http_bulk_load_watch;
    ctx->watch.data = ctx;
    ctx->watch.log = r->connection->log;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_bulk_load_wake;

    return NGX_OK;
}


void
ngx_http_bulk_load_run(ngx_http_bulk_load_t *ctx)
{
    ngx_http_bulk_pg_get(&ctx->waiter);
}


/* until the load has ended: its done handler is still to come */

ngx_uint_t
ngx_http_bulk_load_running(ngx_http_bulk_load_t *ctx)
{
    return ctx->state != ngx_http_bulk_load_done;
}


/* $import: the job was cancelled or nginx shuts down */

void
ngx_http_bulk_load_abort(ngx_http_bulk_load_t *ctx, const char *reason)
{
    ngx_connection_t  *c;

    if (ctx->state == ngx_http_bulk_load_ending
        || ctx->state == ngx_http_bulk_load_done)
    {
        return;
    }

    c = ctx->request->connection;

    ngx_http_bulk_pg_cancel(&ctx->waiter);

    ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, "exception",
                            "%s", reason);

    ngx_http_run_posted_requests(c);
}


void
ngx_http_bulk_load_progress(ngx_http_bulk_load_t *ctx,
    ngx_http_bulk_load_progress_t *p)
{
    p->total = ngx_http_bulk_load_total(ctx);
    p->errors = ctx->errors;
    p->issues = ctx->issues.elts;
    p->nissues = ctx->issues.nelts;
    p->received = ctx->source.received;
    p->length = ctx->source.length;
    p->batches = ctx->batches;
    p->lines = ctx->lines;
    p->offset = ctx->offset;
    p->gzip = ctx->nd ? (ngx_uint_t) ngx_bulk_nd_gzip(ctx->nd) : 0;
    p->validator = ctx->source.validator;

    if (ctx->byte_base) {
        /* the source's own counts, not those of its rest */
        p->received += ctx->byte_base;

        if (p->length >= 0) {
            p->length += ctx->byte_base;
        }
    }

    p->err = ctx->status ? ctx->err : NULL;
}


/* a pool for what a commit callback sends: reset at the next batch */

ngx_pool_t *
ngx_http_bulk_load_scratch(ngx_http_bulk_load_t *ctx)
{
    return ctx->scratch;
}


/* the source of the load of r (a push reading its body), or NULL */

ngx_http_bulk_source_t *
ngx_http_bulk_load_source(ngx_http_request_t *r)
{
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_bulk_module);

    if (ctx == NULL || ctx->state == ngx_http_bulk_load_done) {
        return NULL;
    }

    return &ctx->source;
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

    ctx->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_load_pg_handler, ctx);

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
            " (ln bigint, rt text, id text, doc jsonb) ON COMMIT DROP;"
            "COPY bulk_load_stage FROM STDIN (FORMAT binary)")
        != NGX_OK)
    {
        ngx_http_bulk_load_lost(ctx, "database unavailable");
        return;
    }

    /* what the last batch allocated was sent with it */
    ngx_reset_pool(ctx->scratch);

    ctx->state = ngx_http_bulk_load_prepare;
    ctx->again = 0;
    ctx->pass = ctx->upsert ? ngx_http_bulk_load_conflict
                            : ngx_http_bulk_load_insert;

    /*
     * a database that stops answering (a host gone without a reset, a
     * stalled network) raises no event: the watchdog ends the load
     */

    ctx->pg_active = ngx_current_msec;

    if (!ctx->watch.timer_set) {
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
 * make room in the socket for COPY data, or to confirm the end of COPY or
 * the commit, bulk_pg_timeout without any event from it fails the load.
 * Waiting for the source is not the database's time, and neither are the
 * duplicate check and the upserts: on a large load they legitimately run
 * longer than any such timeout without a byte sent.
 */

static void
ngx_http_bulk_load_watch(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = ev->data;
    c = ctx->request->connection;

    if (ctx->pc == NULL || ctx->state >= ngx_http_bulk_load_ending) {
        return;
    }

    switch (ctx->state) {

    case ngx_http_bulk_load_prepare:
    case ngx_http_bulk_load_copy_full:
    case ngx_http_bulk_load_copy_end:
    case ngx_http_bulk_load_record:
    case ngx_http_bulk_load_commit:

        if (ngx_current_msec - ctx->pg_active >= ctx->conf->pg_timeout) {
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_GATEWAY_TIME_OUT, "timeout",
                                    "PostgreSQL did not answer within "
                                    "bulk_pg_timeout, nothing was loaded");
            ngx_http_run_posted_requests(c);
            return;
        }

        break;

    default:
        ctx->pg_active = ngx_current_msec;
    }

    ngx_add_timer(&ctx->watch, NGX_HTTP_BULK_LOAD_WATCH);
}


/* the one place that moves the load on as PostgreSQL answers */

static void
ngx_http_bulk_load_process(ngx_http_bulk_load_ctx_t *ctx)
{
    switch (ctx->state) {

    case ngx_http_bulk_load_prepare:
        ngx_http_bulk_load_prepared(ctx);
        return;

    case ngx_http_bulk_load_copy:
    case ngx_http_bulk_load_copy_full:
        ngx_http_bulk_load_copying(ctx);
        return;

    case ngx_http_bulk_load_copy_end:
    case ngx_http_bulk_load_upsert:
    case ngx_http_bulk_load_record:
    case ngx_http_bulk_load_commit:
        break;

    default:
        return;
    }

    if (ngx_http_bulk_load_results(ctx) != NGX_OK) {
        return;
    }

    switch (ctx->state) {

    case ngx_http_bulk_load_copy_end:
        ngx_http_bulk_load_upserts(ctx);
        return;

    case ngx_http_bulk_load_upsert:

        if (ctx->again) {
            /* the next pass, from the savepoint */
            ngx_http_bulk_load_upserts(ctx);
            return;
        }

        if (ctx->commit) {
            /* $import: the input's progress row, in this transaction */
            ngx_http_bulk_load_record_progress(ctx);
            return;
        }

        /* fall through */

    case ngx_http_bulk_load_record:

        /*
         * COMMIT goes alone, after the upserts answered: a client that
         * went away meanwhile closed the connection, and the backend,
         * finding it closed, rolls back instead of committing
         */

        ngx_http_bulk_load_send(ctx, "COMMIT", ngx_http_bulk_load_commit);
        return;

    default: /* ngx_http_bulk_load_commit */
        ngx_http_bulk_load_committed(ctx);
        return;
    }
}


/* the results of the first round trip, up to COPY IN */

static void
ngx_http_bulk_load_prepared(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn      *pg;
    PGresult    *res;
    ngx_uint_t   status;
    const char  *code;

    pg = ctx->pc->pg;

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

            ngx_http_bulk_load_take(ctx);
            return;

        default:
            status = ngx_http_bulk_pg_status(res, 0, &code);

            ngx_http_bulk_load_fail(ctx, status, code,
                                    "cannot prepare the load: %*s",
                                    ngx_http_bulk_pg_msg_len(
                                        PQresultErrorMessage(res)),
                                    PQresultErrorMessage(res));
            PQclear(res);
            return;
        }
    }

    /* the connection is lost, or the statements stopped before COPY */

    ngx_http_bulk_load_lost(ctx, "database unavailable");
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

    p = ngx_pstrdup(ctx->scratch, &(ngx_str_t) {
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


/*
 * COPY IN is open: the first batch starts the source, a next one takes
 * the lines held back
 */

static void
ngx_http_bulk_load_take(ngx_http_bulk_load_ctx_t *ctx)
{
    ngx_http_bulk_source_t  *s;

    s = &ctx->source;

    if (s->state == ngx_http_bulk_source_idle) {

        switch (ngx_http_bulk_source_start(s)) {

        case NGX_OK:
            break;

        case NGX_DECLINED:
            ngx_http_bulk_load_fail(ctx, s->answer, s->code, "%V%s%s",
                                    &s->what, s->what.len ? ": " : "",
                                    s->err);
            return;

        default:
            ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "exception", "cannot start the source");
            return;
        }
    }

    ngx_http_bulk_source_consume(s);

    if (ctx->state == ngx_http_bulk_load_copy && s->held == NULL) {
        ngx_http_bulk_source_resume(s);
    }
}


/* an event of the connection while COPY data flows */

static void
ngx_http_bulk_load_copying(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn  *pg;

    pg = ctx->pc->pg;

    if (PQstatus(pg) != CONNECTION_OK) {
        ngx_http_bulk_load_lost(ctx, "the database connection was lost");
        return;
    }

    if (ctx->state != ngx_http_bulk_load_copy_full
        || ngx_http_bulk_load_flush(ctx) != NGX_OK)
    {
        return;
    }

    /* the socket took what libpq held: the lines go on */

    ctx->state = ngx_http_bulk_load_copy;

    ngx_http_bulk_load_take(ctx);
}


/*
 * The fetch's body filter (or the database becoming writable again) calls
 * this: lines are taken from the held buffers until PostgreSQL's socket
 * is full; what is left stays in the buffers, so the source waits.
 */

static void
ngx_http_bulk_load_consume(ngx_http_bulk_source_t *f)
{
    int                        rc;
    ngx_bulk_nd_line_t         l;
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = f->data;

    if (f->ranged && ctx->byte_base == 0) {
        /* the source sent the rest only: nothing to skip */
        ctx->byte_base = f->range;
        ctx->line_base = ctx->skip;
        ctx->skip = 0;
    }

    for ( ;; ) {
        if (ctx->state != ngx_http_bulk_load_copy) {
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
            ngx_http_bulk_load_fail(ctx, f->answer, f->code, "%V: %s",
                                    &f->what, ngx_bulk_nd_error(ctx->nd));
            return;
        }

        if (rc == 1) {
            if (ctx->gzip && ngx_http_bulk_load_not_gzip(ctx) != NGX_OK) {
                return;
            }

            if (ngx_http_bulk_load_line(ctx, &l) != NGX_OK) {
                return;
            }

            if (ctx->batch && ctx->staged >= ctx->batch) {
                /* the rest waits in the source's buffers */
                ngx_http_bulk_load_held(ctx);
                ngx_http_bulk_load_end_copy(ctx, 1);
                return;
            }

            if (ctx->unflushed >= NGX_HTTP_BULK_LOAD_FLUSH) {
                rc = ngx_http_bulk_load_flush(ctx);

                if (rc == NGX_ERROR) {
                    return;
                }

                if (rc == NGX_AGAIN) {
                    /* the rest waits in the source's buffers */
                    ctx->state = ngx_http_bulk_load_copy_full;
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

    if (f->held == NULL && f->state == ngx_http_bulk_source_over && !f->failed)
    {
        ngx_http_bulk_load_end_copy(ctx, 0);
    }
}


/* Content-Encoding: gzip says so: the bytes must be gzip */

static ngx_int_t
ngx_http_bulk_load_not_gzip(ngx_http_bulk_load_ctx_t *ctx)
{
    if (ngx_bulk_nd_gzip(ctx->nd)) {
        return NGX_OK;
    }

    ngx_http_bulk_load_fail(ctx, ctx->source.answer, ctx->source.code,
                            "%V: Content-Encoding is gzip, but the bytes "
                            "are not", &ctx->source.what);

    return NGX_ERROR;
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
    ngx_http_bulk_source_t *f;

    f = &ctx->source;

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


/* one line: checked, converted, staged; a bad line is an issue */

static ngx_int_t
ngx_http_bulk_load_line(ngx_http_bulk_load_ctx_t *ctx, ngx_bulk_nd_line_t *l)
{
    ngx_int_t           rc;
    ngx_str_t           rt;
    ngx_bulk_fmt_job_t  job;

    /* after a range the lines are numbered on from the skipped ones */

    l->lineno += ctx->line_base;

    ctx->lines = l->lineno;
    ctx->offset = ctx->byte_base + (off_t) ngx_bulk_nd_bytes(ctx->nd);

    if (l->lineno <= ctx->skip) {
        /* loaded by an earlier run of this $import input */
        return NGX_OK;
    }

    ngx_str_null(&rt);

    rc = ngx_http_bulk_load_convert(ctx, l, &job, &rt);

    if (rc == NGX_OK) {
        rc = ngx_http_bulk_load_stage(ctx, l, &job, &rt);
    }

    if (rc == NGX_ERROR) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return NGX_ERROR;
    }

    /* NGX_DECLINED: the line went to the issues */

    return (rc == NGX_ABORT) ? NGX_ERROR : NGX_OK;
}


/*
 * The line converted and checked: NGX_OK with its document in job and its
 * type in rt, NGX_DECLINED when it is bad (an issue), NGX_ERROR.
 */

static ngx_int_t
ngx_http_bulk_load_convert(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l, ngx_bulk_fmt_job_t *job, ngx_str_t *rt)
{
    u_char  *p, *s, *q, *end;

    if (l->too_long) {
        return ngx_http_bulk_load_issue(ctx, l, "the line is longer than "
                                        "bulk_line_max (%uz bytes)",
                                        ctx->conf->line_max);
    }

    ngx_memzero(job, sizeof(ngx_bulk_fmt_job_t));

    job->dir = ctx->fhir ? NGX_BULK_FMT_TO_AIDBOX : NGX_BULK_FMT_NONE;
    job->strip = 1;

    if (ctx->type.len) {
        job->type = (char *) ctx->type.data;
        job->type_len = ctx->type.len;
    }

    if (ngx_bulk_fmt_convert(ctx->fmt, job, l->data, l->len) != 0) {
        return ngx_http_bulk_load_issue(ctx, l, "%s", job->err);
    }

    if (job->doc_id == NULL) {
        return ngx_http_bulk_load_issue(ctx, l, "the resource has no "
                                        "\"id\"");
    }

    if (!ngx_bulk_fhir_id_valid(job->doc_id, job->doc_id_len)) {
        return ngx_http_bulk_load_issue(ctx, l, "\"id\" is not a FHIR id "
                                        "([A-Za-z0-9.-]{1,64})");
    }

    rt->data = (u_char *) job->doc_type;
    rt->len = job->doc_type_len;

    if (ctx->type.len) {
        if (rt->data && (rt->len != ctx->type.len
                         || ngx_strncmp(rt->data, ctx->type.data, rt->len)
                            != 0))
        {
            return ngx_http_bulk_load_issue(ctx, l, "\"resourceType\" %*s "
                                            "is not %V",
                                            ngx_min(rt->len, 64), rt->data,
                                            &ctx->type);
        }

        *rt = ctx->type;

    } else if (rt->data == NULL) {
        return ngx_http_bulk_load_issue(ctx, l, "the resource has no "
                                        "\"resourceType\"");
    }

    if (ngx_http_bulk_load_known(ctx, rt->data, rt->len) != NGX_OK) {
        return ngx_http_bulk_load_issue(ctx, l, "unknown resource type "
                                        "\"%*s\"",
                                        ngx_min(rt->len, 64), rt->data);
    }

    if (!ngx_bulk_utf8_valid(job->out, job->out_len)) {
        return ngx_http_bulk_load_issue(ctx, l, "invalid UTF-8 (an overlong "
                                        "form, a surrogate or past "
                                        "U+10FFFF)");
    }

    /* a NUL character, written "\u0000" by the converter: jsonb refuses it */

    for (s = (u_char *) job->out, end = s + job->out_len;
         (q = memmem(s, end - s, "\\u0000", 6)) != NULL;
         s = q + 1)
    {
        for (p = q; p > (u_char *) job->out && p[-1] == '\\'; p--) {
            /* void */
        }

        if (((q - p) & 1) == 0) {
            return ngx_http_bulk_load_issue(ctx, l, "\\u0000 in a string: "
                                            "PostgreSQL's jsonb cannot "
                                            "store it");
        }
    }

    return NGX_OK;
}


/*
 * A good line into COPY as a binary tuple (ln int8, rt text, id text, doc
 * jsonb): no escaping on either side; the document goes in its own piece,
 * after jsonb's version byte, and PostgreSQL parses it as it arrives,
 * while the worker converts the next lines.  NGX_OK, NGX_ABORT when COPY
 * failed (the load failed), NGX_ERROR.
 */

static ngx_int_t
ngx_http_bulk_load_stage(ngx_http_bulk_load_ctx_t *ctx,
    ngx_bulk_nd_line_t *l, ngx_bulk_fmt_job_t *job, ngx_str_t *rt)
{
    u_char                     *p;
    ngx_uint_t                  i;
    ngx_http_bulk_load_type_t  *t;

    p = ctx->tuple;

    if (!ctx->copy_header) {
        p = ngx_bulk_pgcopy_write_header(p);
        ctx->copy_header = 1;
    }

    p = ngx_bulk_pgcopy_write_count(p, NGX_HTTP_BULK_LOAD_FIELDS);
    p = ngx_bulk_pgcopy_write_int8(p, (int64_t) l->lineno);
    p = ngx_bulk_pgcopy_write_field(p, rt->data, rt->len);
    p = ngx_bulk_pgcopy_write_field(p, (u_char *) job->doc_id,
                                    job->doc_id_len);
    p = ngx_bulk_pgcopy_write_len(p, (int32_t) job->out_len + 1);
    *p++ = NGX_HTTP_BULK_LOAD_JSONB;

    if (PQputCopyData(ctx->pc->pg, (char *) ctx->tuple, p - ctx->tuple) != 1
        || PQputCopyData(ctx->pc->pg, (char *) job->out, job->out_len) != 1)
    {
        ngx_http_bulk_load_lost(ctx, "COPY to the database failed");
        return NGX_ABORT;
    }

    ctx->unflushed += (p - ctx->tuple) + job->out_len;
    ctx->staged += (p - ctx->tuple) + job->out_len;

    t = ctx->types.elts;

    for (i = 0; i < ctx->types.nelts; i++) {
        if (t[i].name.len == rt->len
            && ngx_strncmp(t[i].name.data, rt->data, rt->len) == 0)
        {
            t[i].lines++;
            return NGX_OK;
        }
    }

    t = ngx_array_push(&ctx->types);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->name.data = ngx_pnalloc(ctx->request->pool, rt->len);
    if (t->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(t->name.data, rt->data, rt->len);
    t->name.len = rt->len;
    t->lines = 1;
    t->written = 0;
    t->round = 0;

    return NGX_OK;
}


/* a bad line: counted, the first ones kept; NGX_DECLINED or NGX_ERROR */

static ngx_int_t
ngx_http_bulk_load_issue(ngx_http_bulk_load_ctx_t *ctx, ngx_bulk_nd_line_t *l,
    const char *fmt, ...)
{
    u_char                      *p;
    va_list                      args;
    ngx_http_bulk_load_issue_t  *is;
    u_char                       text[512];

    ctx->errors++;

    if (ctx->issues.nelts >= NGX_HTTP_BULK_LOAD_ISSUES_MAX) {
        return NGX_DECLINED;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    /* a text may quote the document (its type, cut to 64 bytes): the
       answer, the status resource and jsonb take UTF-8 only */

    ngx_bulk_utf8_fix(text, p - text);

    is = ngx_array_push(&ctx->issues);
    if (is == NULL) {
        return NGX_ERROR;
    }

    is->line = l->lineno;
    is->text.len = p - text;
    is->text.data = ngx_pnalloc(ctx->request->pool, is->text.len);
    if (is->text.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(is->text.data, text, is->text.len);

    return NGX_DECLINED;
}


/* a type is loaded when its table exists; R4 types in their own case */

static ngx_int_t
ngx_http_bulk_load_known(ngx_http_bulk_load_ctx_t *ctx, const u_char *name,
    size_t len)
{
    ngx_str_t  key;
    u_char     low[NGX_HTTP_BULK_TYPE_MAX];

    if (ngx_http_bulk_type_valid(name, len) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_strlow(low, (u_char *) name, len);
    key.data = low;
    key.len = len;

    if (ngx_http_bulk_bsearch(&key, ctx->tables.elts, ctx->tables.nelts)
        == NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * NGX_OK: flushed; NGX_AGAIN: the socket is full, libpq sends the rest as
 * it becomes writable; NGX_ERROR: the load failed
 */

static ngx_int_t
ngx_http_bulk_load_flush(ngx_http_bulk_load_ctx_t *ctx)
{
    int  rc;

    rc = PQflush(ctx->pc->pg);

    if (rc == -1) {
        ngx_http_bulk_load_lost(ctx, "the database connection was lost");
        return NGX_ERROR;
    }

    ctx->unflushed = 0;

    if (ngx_http_bulk_pg_write(ctx->pc, rc == 1) != NGX_OK) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "event failure");
        return NGX_ERROR;
    }

    return (rc == 1) ? NGX_AGAIN : NGX_OK;
}


/* the source failed, or a fetch subrequest is over */

static void
ngx_http_bulk_load_fetched(ngx_http_bulk_source_t *f)
{
    ngx_http_bulk_load_ctx_t  *ctx;

    ctx = f->data;

    if (ctx->state >= ngx_http_bulk_load_ending) {
        return;
    }

    if (f->failed) {
        ngx_http_bulk_load_fail(ctx, f->answer, f->code, "%V: %s",
                                &f->what, f->err);
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

    if (ctx == NULL || ngx_http_bulk_source_busy(&ctx->source)) {
        return;
    }

    if (ctx->state == ngx_http_bulk_load_ending) {
        ngx_http_bulk_load_end(ctx);
        return;
    }

    if (ctx->state == ngx_http_bulk_load_copy
        && ctx->source.state == ngx_http_bulk_source_over)
    {
        ngx_http_bulk_source_consume(&ctx->source);
    }
}


/*
 * COPY ends: at the end of the source (the last line may have no
 * newline), or, more set, at a batch boundary of an $import input
 */

static void
ngx_http_bulk_load_end_copy(ngx_http_bulk_load_ctx_t *ctx, ngx_uint_t more)
{
    int                 rc;
    ngx_bulk_nd_line_t  l;

    if (!more) {
        rc = ngx_bulk_nd_end(ctx->nd, &l);

        if (rc < 0) {
            ngx_http_bulk_load_fail(ctx, ctx->source.answer,
                                    ctx->source.code, "%V: %s",
                                    &ctx->source.what,
                                    ngx_bulk_nd_error(ctx->nd));
            return;
        }

        if (ctx->gzip && ngx_bulk_nd_bytes(ctx->nd)
            && ngx_http_bulk_load_not_gzip(ctx) != NGX_OK)
        {
            return;
        }

        if (rc == 1 && ngx_http_bulk_load_line(ctx, &l) != NGX_OK) {
            return;
        }
    }

    if (ngx_http_bulk_load_copy_done(ctx) != NGX_OK) {
        return;
    }

    ctx->more = more;
    ctx->staged = 0;
    ctx->state = ngx_http_bulk_load_copy_end;

    if (ngx_http_bulk_load_flush(ctx) == NGX_ERROR) {
        return;
    }

    ngx_http_bulk_load_process(ctx);
}


/* the end of a binary COPY: the header if no line was good, the trailer */

static ngx_int_t
ngx_http_bulk_load_copy_done(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char  *p;

    p = ctx->tuple;

    if (!ctx->copy_header) {
        p = ngx_bulk_pgcopy_write_header(p);
    }

    p = ngx_bulk_pgcopy_write_trailer(p);

    if (PQputCopyData(ctx->pc->pg, (char *) ctx->tuple, p - ctx->tuple) != 1
        || PQputCopyEnd(ctx->pc->pg, NULL) == -1)
    {
        ngx_http_bulk_load_lost(ctx, "the database connection was lost");
        return NGX_ERROR;
    }

    /* a next batch starts a new COPY */
    ctx->copy_header = 0;

    return NGX_OK;
}


/*
 * The results of the end of COPY, of the duplicate check, of the upserts
 * or of the commit: NGX_OK when all are in, NGX_AGAIN, NGX_ERROR when the
 * load failed.  PostgreSQL's refusal is mapped as every error is
 * (ngx_http_bulk_pg_status()): the documents are the client's.
 */

static ngx_int_t
ngx_http_bulk_load_results(ngx_http_bulk_load_ctx_t *ctx)
{
    PGconn                     *pg;
    PGresult                   *res;
    ngx_int_t                   rows;
    ngx_uint_t                  i, per, status;
    const char                 *cmd, *n, *code;
    ngx_http_bulk_load_type_t  *t;

    pg = ctx->pc->pg;
    t = ctx->types.elts;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                break;
            }

            return NGX_AGAIN;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            break;
        }

        if (ctx->state == ngx_http_bulk_load_record
            && PQresultStatus(res) == PGRES_TUPLES_OK)
        {
            if (PQntuples(res) != 1) {
                PQclear(res);
                ngx_http_bulk_load_fail(ctx, NGX_HTTP_CONFLICT, "conflict",
                                        "the input is no longer this "
                                        "worker's (its lease was taken "
                                        "over, or the job was cancelled): "
                                        "its open batch rolled back");
                return NGX_ERROR;
            }

            PQclear(res);
            continue;
        }

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {

            if (ctx->state == ngx_http_bulk_load_upsert
                && ngx_http_bulk_load_again(ctx, res) == NGX_OK)
            {
                /* the rest of the statements were skipped */
                PQclear(res);
                continue;
            }

            status = ngx_http_bulk_pg_status(res, 1, &code);

            ngx_http_bulk_load_fail(ctx, status, code,
                                    "the database refused the load, "
                                    "nothing was loaded: %*s",
                                    ngx_http_bulk_pg_msg_len(
                                        PQresultErrorMessage(res)),
                                    PQresultErrorMessage(res));
            PQclear(res);
            return NGX_ERROR;
        }

        cmd = PQcmdStatus(res);

        if (ctx->state == ngx_http_bulk_load_upsert
            && ngx_strncmp(cmd, "INSERT", 6) == 0)
        {
            n = PQcmdTuples(res);

            /* with update the _history INSERT comes first for each type */

            per = (ctx->opts.update && ctx->pass != ngx_http_bulk_load_insert)
                  ? 2 : 1;

            if (ctx->result % per == per - 1) {
                i = ctx->result / per;
                rows = ngx_atoi((u_char *) n, ngx_strlen(n));
                t[i].written += rows;
                t[i].round += rows;
            }

            ctx->result++;
        }

        PQclear(res);
    }

    if (PQstatus(pg) != CONNECTION_OK) {
        ngx_http_bulk_load_lost(ctx, "the database connection was lost, "
                                     "nothing was loaded");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_bulk_load_send(ngx_http_bulk_load_ctx_t *ctx, const char *sql,
    ngx_http_bulk_load_state_e state)
{
    if (ngx_http_bulk_pg_send(ctx->pc, sql) != NGX_OK) {
        ngx_http_bulk_load_lost(ctx, "the database connection was lost");
        return;
    }

    ctx->state = state;
}


/*
 * One statement per type, in one round trip, after a savepoint: new rows
 * are 'created', existing ones 'updated' ('recreated' after a delete)
 * with their cts kept.  The passes (ngx_http_bulk_load_again() moves from
 * one to the next, rolling back to the savepoint):
 *
 *   insert    a plain INSERT: one index probe per row where ON CONFLICT
 *             makes two.  An id already there (or staged twice) fails it
 *             (23505); a load whose ids are new, a first load above all,
 *             pays no more.  Not after a batch of the same load failed so.
 *   conflict  INSERT ... ON CONFLICT (id) DO UPDATE, with update: true
 *             the replaced rows into _history first.  An id staged twice
 *             fails it (21000, a row affected twice).
 *   distinct  the same with DISTINCT ON (id) ... ORDER BY id, ln DESC:
 *             the later line of an id wins.  Only loads with such an id
 *             sort the staged rows.
 */

static void
ngx_http_bulk_load_upserts(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char                     *sql, *p, *doc;
    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_bulk_load_type_t  *t;
    u_char                      low[NGX_HTTP_BULK_TYPE_MAX];

    t = ctx->types.elts;

    if (ctx->types.nelts == 0) {

        /*
         * no good line (bad lines only, or empty, or an $import input
         * resumed past its end): nothing to write
         */

        ctx->state = ngx_http_bulk_load_upsert;

        if (ctx->commit) {
            ngx_http_bulk_load_record_progress(ctx);
            return;
        }

        ngx_http_bulk_load_send(ctx, "COMMIT", ngx_http_bulk_load_commit);
        return;
    }

    doc = ngx_http_bulk_load_document(ctx);
    if (doc == NULL) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return;
    }

    len = sizeof("ROLLBACK TO SAVEPOINT bulk_load;")
          + (ngx_strlen(doc) + 64) * ctx->types.nelts;

    for (i = 0; i < ctx->types.nelts; i++) {
        len += 1024 + 4 * t[i].name.len;
    }

    sql = ngx_pnalloc(ctx->scratch, len);
    if (sql == NULL) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return;
    }

    if (ctx->again) {
        p = ngx_cpymem(sql, "ROLLBACK TO SAVEPOINT bulk_load;",
                       sizeof("ROLLBACK TO SAVEPOINT bulk_load;") - 1);

    } else {
        p = ngx_cpymem(sql, "SAVEPOINT bulk_load;",
                       sizeof("SAVEPOINT bulk_load;") - 1);
    }

    for (i = 0; i < ctx->types.nelts; i++) {
        if (ctx->again) {
            /* the rows rolled back to the savepoint do not count */
            t[i].written -= t[i].round;
        }

        t[i].round = 0;

        ngx_strlow(low, t[i].name.data, t[i].name.len);

        if (ctx->pass == ngx_http_bulk_load_insert) {
            p = ngx_sprintf(p,
                    "INSERT INTO \"%*s\" (id, txid, cts, ts, resource_type,"
                    " status, resource)"
                    " SELECT id, %L, now(), now(), '%V', 'created', %s"
                    " FROM bulk_load_stage WHERE rt = '%V';",
                    t[i].name.len, low, ctx->txid, &t[i].name, doc,
                    &t[i].name);
            continue;
        }

        if (ctx->opts.update) {
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
                (ctx->pass == ngx_http_bulk_load_distinct)
                ? "DISTINCT ON (id)" : "",
                ctx->txid, &t[i].name, doc, &t[i].name,
                (ctx->pass == ngx_http_bulk_load_distinct)
                ? " ORDER BY id, ln DESC" : "");
    }

    *p = '\0';

    ctx->again = 0;
    ctx->result = 0;

    ngx_http_bulk_load_send(ctx, (char *) sql, ngx_http_bulk_load_upsert);
}


/* the stored document's expression: strip-nulls first, then the merge */

static u_char *
ngx_http_bulk_load_document(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char  *expr, *p, *lit;

    lit = NULL;

    if (ctx->opts.merge.len) {
        lit = (u_char *) PQescapeLiteral(ctx->pc->pg,
                                         (char *) ctx->opts.merge.data,
                                         ctx->opts.merge.len);
        if (lit == NULL) {
            return NULL;
        }
    }

    expr = ngx_pnalloc(ctx->scratch,
                       sizeof("(jsonb_strip_nulls(doc) || ::jsonb)")
                       + (lit ? ngx_strlen(lit) : 0));
    if (expr == NULL) {
        if (lit) {
            PQfreemem(lit);
        }

        return NULL;
    }

    p = ngx_sprintf(expr, "%s%sdoc%s",
                    lit ? "(" : "",
                    ctx->opts.strip_nulls ? "jsonb_strip_nulls(" : "",
                    ctx->opts.strip_nulls ? ")" : "");

    if (lit) {
        p = ngx_sprintf(p, " || %s::jsonb)", lit);
        PQfreemem(lit);
    }

    *p = '\0';

    return expr;
}


/*
 * A pass failed: NGX_OK when the next one is to run, as an id was there
 * (23505 of the plain INSERT) or came twice (21000 of ON CONFLICT);
 * NGX_DECLINED when the error is the load's.
 */

static ngx_int_t
ngx_http_bulk_load_again(ngx_http_bulk_load_ctx_t *ctx, PGresult *res)
{
    const char  *state;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state == NULL) {
        return NGX_DECLINED;
    }

    if (ctx->pass == ngx_http_bulk_load_insert
        && ngx_strcmp(state, "23505") == 0)
    {
        ctx->pass = ngx_http_bulk_load_conflict;
        ctx->upsert = 1;
        ctx->again = 1;
        return NGX_OK;
    }

    if (ctx->pass == ngx_http_bulk_load_conflict
        && ngx_strcmp(state, "21000") == 0)
    {
        ctx->pass = ngx_http_bulk_load_distinct;
        ctx->again = 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * $import with leases: the input's progress row (lines taken, totals),
 * written in the batch's own transaction, so a batch and the count of what
 * it loaded commit together or not at all
 */

static void
ngx_http_bulk_load_record_progress(ngx_http_bulk_load_ctx_t *ctx)
{
    u_char  *sql;

    sql = ctx->commit(ctx, ctx->data, ctx->pc->pg);

    if (sql == NULL) {
        ngx_http_bulk_load_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "exception", "out of memory");
        return;
    }

    ngx_http_bulk_load_send(ctx, (char *) sql, ngx_http_bulk_load_record);
}


/* committed: the next batch of an $import input, or the answer */

static void
ngx_http_bulk_load_committed(ngx_http_bulk_load_ctx_t *ctx)
{
    ctx->batches++;

    if (ctx->more) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "bulk load: batch %ui of \"%V\" committed",
                       ctx->batches, &ctx->source.url);

        ngx_http_bulk_load_begin(ctx);
        return;
    }

    ngx_http_bulk_pg_release(ctx->pc, 1);
    ctx->pc = NULL;

    ctx->state = ngx_http_bulk_load_ending;

    ngx_http_bulk_load_end(ctx);
}


static ngx_uint_t
ngx_http_bulk_load_total(ngx_http_bulk_load_ctx_t *ctx)
{
    ngx_uint_t                  i, total;
    ngx_http_bulk_load_type_t  *t;

    t = ctx->types.elts;
    total = 0;

    for (i = 0; i < ctx->types.nelts; i++) {
        total += t[i].written;
    }

    return total;
}


/*
 * A failure: the database connection is closed, which rolls back
 * everything of this load (the committed batches of an $import input
 * stay); the answer waits for the subrequest to end.
 */

static void
ngx_http_bulk_load_fail(ngx_http_bulk_load_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char              *p;
    va_list              args;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->state >= ngx_http_bulk_load_ending) {
        return;
    }

    ctx->state = ngx_http_bulk_load_ending;
    ctx->status = status;
    ctx->code = code;

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }

    va_start(args, fmt);
    p = ngx_vslprintf(ctx->err, ctx->err + sizeof(ctx->err) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "bulk load from \"%V\" failed, %s: %s", &ctx->source.url,
                  ctx->batch ? "committed batches stay" : "nothing loaded",
                  ctx->err);

    if (ctx->pc) {
        ngx_http_bulk_pg_release(ctx->pc, 0);
        ctx->pc = NULL;
    }

    /* drop what the source still holds back, and stop it */

    ngx_http_bulk_source_drop(&ctx->source);

    if (ngx_http_bulk_source_stop(&ctx->source) != NGX_OK) {
        /* the source ends first; its end wakes the parent */
        return;
    }

    ngx_http_bulk_load_end(ctx);
}


/* the connection failed: what libpq says of it */

static void
ngx_http_bulk_load_lost(ngx_http_bulk_load_ctx_t *ctx, const char *what)
{
    const char  *msg;

    msg = PQerrorMessage(ctx->pc->pg);

    ngx_http_bulk_load_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, "transient",
                            "%s: %*s", what, ngx_http_bulk_pg_msg_len(msg),
                            msg);
}


/*
 * The load is over, and so is its source: $load answers, an $import input
 * tells its job.
 */

static void
ngx_http_bulk_load_end(ngx_http_bulk_load_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    if (ctx->state == ngx_http_bulk_load_done) {
        return;
    }

    if (ngx_http_bulk_source_busy(&ctx->source)) {
        /* the source is still finishing: its end wakes the parent */
        return;
    }

    r = ctx->request;

    ctx->state = ngx_http_bulk_load_done;

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ctx->stats.errors = ctx->errors;
    ctx->stats.bytes = ctx->nd ? (off_t) ngx_bulk_nd_bytes(ctx->nd) : 0;
    ctx->stats.rows = ctx->status ? 0 : ngx_http_bulk_load_total(ctx);

    if (ctx->done) {
        ctx->done(ctx, ctx->data);
        return;
    }

    if (ctx->status) {
        rc = ngx_http_bulk_send_error(r, ctx->status, ctx->code, "%s",
                                      ctx->err);

    } else {
        rc = ngx_http_bulk_load_answer(ctx);
    }

    ngx_http_finalize_request(r, rc);
}


/* success: {"total": N} or {"<Type>": N, ...}, with the bad lines */

static ngx_int_t
ngx_http_bulk_load_answer(ngx_http_bulk_load_ctx_t *ctx)
{
    size_t                       len;
    u_char                      *p;
    ngx_buf_t                   *b;
    ngx_uint_t                   i, total;
    ngx_http_request_t          *r;
    ngx_http_bulk_load_type_t   *t;
    ngx_http_bulk_load_issue_t  *is;

    r = ctx->request;

    t = ctx->types.elts;
    is = ctx->issues.elts;

    len = sizeof("{\"total\":,\"errors\":,\"issues\":[]}\n")
          + NGX_INT_T_LEN * 2;

    for (i = 0; i < ctx->types.nelts; i++) {
        len += t[i].name.len + NGX_INT_T_LEN + 6;
    }

    for (i = 0; i < ctx->issues.nelts; i++) {
        len += sizeof("{\"line\":,\"diagnostics\":\"\"},") + NGX_INT64_LEN
               + 6 * is[i].text.len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    *p++ = '{';

    total = ngx_http_bulk_load_total(ctx);

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

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk load from \"%V\" done: %ui resources, %ui bad lines, "
                  "txid %L", &ctx->source.url, total, ctx->errors, ctx->txid);

    return ngx_http_bulk_send_json(r, NGX_HTTP_OK, b);
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

    if (ctx->scratch) {
        ngx_destroy_pool(ctx->scratch);
        ctx->scratch = NULL;
    }
}
