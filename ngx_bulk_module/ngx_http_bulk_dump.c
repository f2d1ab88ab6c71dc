
/*
 * ngx_bulk: GET /{Type}/$dump, on the COPY OUT driver (ngx_http_bulk_copy.c).
 *
 * COPY (SELECT id, txid, cts, ts, resource FROM "<type>") TO STDOUT in
 * binary format: no text escaping to undo, timestamps as integers.  Each
 * row is spliced into one NDJSON line (id, resourceType and the meta
 * columns merged into the stored document), or converted to FHIR with
 * fhir=true.  HEAD runs "SELECT 1 FROM <type> LIMIT 0": the header says
 * whether the type's table exists.
 *
 * With bulk_dump_parallel N the copy driver reads the table over N
 * connections under one snapshot, each a range of its pages (a TID range
 * scan: WHERE ctid >= '(a,0)' AND ctid < '(b,0)'); the split statement
 * exports the snapshot and counts the pages.
 */


#include "ngx_http_bulk_dump.h"
#include "ngx_http_bulk_copy.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_time.h"
#include "ngx_bulk_format.h"


/* the most a dump's COPY statement takes, its NUL included */
#define NGX_HTTP_BULK_DUMP_COPY_LEN(ctx)                                      \
    (sizeof("COPY (SELECT id, txid, cts, ts, resource FROM \"\" WHERE "      \
            "ctid >= '(,0)' AND ctid < '(,0)' AND cts > ''::timestamptz) "    \
            "TO STDOUT (FORMAT binary)")                                      \
     + (ctx)->type.len + 2 * NGX_INT64_LEN + (ctx)->since_len)


/* the columns of a row: id, txid, cts, ts, resource */
#define NGX_HTTP_BULK_DUMP_FIELDS  5


typedef struct {
    ngx_http_bulk_copy_t         copy;      /* first: the log variables */

    ngx_str_t                    type;
    char                         since[NGX_BULK_SINCE_MAX];
    size_t                       since_len;

    ngx_bulk_fmt_t              *fmt;
    u_char                      *scratch;   /* the id, JSON escaped */
    size_t                       scratch_size;
    u_char                       err[256];

    unsigned                     gzip:1;
    unsigned                     fhir:1;
} ngx_http_bulk_dump_ctx_t;


static ngx_int_t ngx_http_bulk_dump_args(ngx_http_request_t *r,
    ngx_http_bulk_dump_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_bool(ngx_http_request_t *r,
    ngx_http_bulk_dump_ctx_t *ctx, ngx_str_t *name, ngx_uint_t *value);
static ngx_int_t ngx_http_bulk_dump_query(ngx_http_request_t *r,
    ngx_http_bulk_dump_ctx_t *ctx);
static u_char *ngx_http_bulk_dump_copy(u_char *p,
    ngx_http_bulk_dump_ctx_t *ctx, uint64_t from, uint64_t to);
static const char *ngx_http_bulk_dump_range(ngx_http_bulk_copy_t *copy,
    uint64_t from, uint64_t to);
static ngx_int_t ngx_http_bulk_dump_error(ngx_http_bulk_copy_t *copy,
    PGresult *res, PGconn *pg);
static ngx_int_t ngx_http_bulk_dump_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_meta(ngx_http_bulk_out_t *o,
    ngx_bulk_member_t *meta, ngx_bulk_pgcopy_field_t *f);
static ngx_int_t ngx_http_bulk_dump_fhir_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_fields(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_members(ngx_http_bulk_out_t *o,
    const u_char **p, const u_char *end, ngx_str_t *skip, ngx_uint_t nskip,
    ngx_bulk_member_t *found, ngx_uint_t *any);


static ngx_str_t  ngx_http_bulk_dump_fhir_arg = ngx_string("fhir");
static ngx_str_t  ngx_http_bulk_dump_gzip_arg = ngx_string("gzip");
static ngx_str_t  ngx_http_bulk_dump_since_arg = ngx_string("_since");


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


/* the pieces of an Aidbox row around the stored members */

static ngx_str_t  ngx_http_bulk_dump_type_key = ngx_string(
    "{\"resourceType\":\"");
static ngx_str_t  ngx_http_bulk_dump_id_key = ngx_string("\",\"id\":\"");
static ngx_str_t  ngx_http_bulk_dump_meta_key = ngx_string(",\"meta\":{");
static ngx_str_t  ngx_http_bulk_dump_version_key = ngx_string(
    "\"versionId\":\"");
static ngx_str_t  ngx_http_bulk_dump_updated_key = ngx_string(
    "\",\"lastUpdated\":\"");
static ngx_str_t  ngx_http_bulk_dump_created_key = ngx_string(
    "\",\"createdAt\":\"");
static ngx_str_t  ngx_http_bulk_dump_row_end = ngx_string("\"}}\n");


ngx_int_t
ngx_http_bulk_dump_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  type;
    ngx_http_bulk_copy_t      *copy;
    ngx_http_bulk_loc_conf_t  *blcf;
    ngx_http_bulk_dump_ctx_t  *ctx;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    if (ngx_http_complex_value(r, blcf->dump_type, &type) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* checked before any SQL names it */

    if (ngx_http_bulk_type_valid(type.data, type.len) != NGX_OK) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                        "unknown resource type \"%V\"",
                                        &type);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_dump_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->type = type;

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

    copy = &ctx->copy;

    if (ngx_http_bulk_copy_init(copy, r) != NGX_OK
        || ngx_http_bulk_dump_query(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&copy->content_type, "application/ndjson");
    copy->gzip = ctx->gzip;
    copy->binary = 1;
    copy->row = ctx->fhir ? ngx_http_bulk_dump_fhir_row
                          : ngx_http_bulk_dump_row;
    copy->error = ngx_http_bulk_dump_error;
    copy->data = ctx;

    return ngx_http_bulk_copy_run(copy);
}


static ngx_int_t
ngx_http_bulk_dump_args(ngx_http_request_t *r, ngx_http_bulk_dump_ctx_t *ctx)
{
    int         n;
    ngx_int_t   rc;
    ngx_str_t   value;
    ngx_uint_t  flag;
    char        err[128];

    rc = ngx_http_bulk_dump_bool(r, ctx, &ngx_http_bulk_dump_fhir_arg, &flag);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->fhir = flag;

    rc = ngx_http_bulk_dump_bool(r, ctx, &ngx_http_bulk_dump_gzip_arg, &flag);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->gzip = flag;

    rc = ngx_http_bulk_arg(r, &ngx_http_bulk_dump_since_arg, &value);
    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
    }

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
    ngx_str_t *name, ngx_uint_t *value)
{
    ngx_str_t  v;

    *value = 0;

    if (ngx_http_arg(r, name->data, name->len, &v) != NGX_OK) {
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
                 "%V must be true or false, got \"%V\"%Z", name, &v);

    return NGX_DECLINED;
}


/* the statements, and the name the log gives the dump */

static ngx_int_t
ngx_http_bulk_dump_query(ngx_http_request_t *r, ngx_http_bulk_dump_ctx_t *ctx)
{
    u_char                    *p, *sql;
    size_t                     len;
    ngx_http_bulk_copy_t      *copy;
    ngx_http_bulk_loc_conf_t  *blcf;

    copy = &ctx->copy;

    copy->name.data = ngx_pnalloc(r->pool, sizeof("dump of \"\"") - 1
                                           + ctx->type.len);
    if (copy->name.data == NULL) {
        return NGX_ERROR;
    }

    copy->name.len = ngx_sprintf(copy->name.data, "dump of \"%V\"",
                                 &ctx->type)
                     - copy->name.data;

    len = sizeof("SELECT pg_export_snapshot(), pg_relation_size('\"\"') / "
                 "current_setting('block_size')::int8")
          + ctx->type.len + NGX_HTTP_BULK_DUMP_COPY_LEN(ctx);

    sql = ngx_pnalloc(r->pool, len);
    if (sql == NULL) {
        return NGX_ERROR;
    }

    /* the type name was checked to be [A-Za-z0-9]: safe to quote */

    if (r->method == NGX_HTTP_HEAD) {
        p = ngx_sprintf(sql, "SELECT 1 FROM \"");
        ngx_strlow(p, ctx->type.data, ctx->type.len);
        p = ngx_sprintf(p + ctx->type.len, "\" LIMIT 0");
        *p = '\0';

        copy->query = (char *) sql;

        return NGX_OK;
    }

    p = ngx_http_bulk_dump_copy(sql, ctx, 0, 0);
    *p = '\0';

    copy->query = (char *) sql;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    if (blcf->dump_parallel <= 1) {
        return NGX_OK;
    }

    sql = ngx_pnalloc(r->pool, len);
    if (sql == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(sql, "SELECT pg_export_snapshot(), pg_relation_size('\"");
    ngx_strlow(p, ctx->type.data, ctx->type.len);
    p = ngx_sprintf(p + ctx->type.len,
                    "\"') / current_setting('block_size')::int8");
    *p = '\0';

    copy->parallel = blcf->dump_parallel;
    copy->split = (char *) sql;
    copy->range = ngx_http_bulk_dump_range;

    return NGX_OK;
}


/*
 * The COPY of pages [from, to) (0: open at that end), written at p,
 * which has room for NGX_HTTP_BULK_DUMP_COPY_LEN(ctx); returns its end.
 */

static u_char *
ngx_http_bulk_dump_copy(u_char *p, ngx_http_bulk_dump_ctx_t *ctx,
    uint64_t from, uint64_t to)
{
    char  *where;

    p = ngx_sprintf(p, "COPY (SELECT id, txid, cts, ts, resource FROM \"");
    ngx_strlow(p, ctx->type.data, ctx->type.len);
    p += ctx->type.len;
    *p++ = '"';

    where = " WHERE";

    if (from) {
        p = ngx_sprintf(p, "%s ctid >= '(%uL,0)'", where, from);
        where = " AND";
    }

    if (to) {
        p = ngx_sprintf(p, "%s ctid < '(%uL,0)'", where, to);
        where = " AND";
    }

    if (ctx->since_len) {
        p = ngx_sprintf(p, "%s cts > '%*s'::timestamptz", where,
                        ctx->since_len, ctx->since);
    }

    return ngx_sprintf(p, ") TO STDOUT (FORMAT binary)");
}


/* a range of a parallel dump */

static const char *
ngx_http_bulk_dump_range(ngx_http_bulk_copy_t *copy, uint64_t from,
    uint64_t to)
{
    u_char                    *p, *sql;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = copy->data;

    sql = ngx_pnalloc(copy->request->pool, NGX_HTTP_BULK_DUMP_COPY_LEN(ctx));
    if (sql == NULL) {
        return NULL;
    }

    p = ngx_http_bulk_dump_copy(sql, ctx, from, to);
    *p = '\0';

    return (char *) sql;
}


/* no table for the type is a 404; anything else as the driver maps it */

static ngx_int_t
ngx_http_bulk_dump_error(ngx_http_bulk_copy_t *copy, PGresult *res,
    PGconn *pg)
{
    const char                *state;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = copy->data;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && ngx_strcmp(state, "42P01") == 0) {
        return ngx_http_bulk_send_error(copy->request, NGX_HTTP_NOT_FOUND,
                                        "not-found", "unknown resource type "
                                        "\"%V\": no table for it",
                                        &ctx->type);
    }

    return ngx_http_bulk_send_pg_error(copy->request, res, pg, 0);
}


/*
 * A row: id text, txid int8, cts and ts timestamptz (int8 microseconds
 * since 2000-01-01), resource jsonb (version byte 1 and the text).
 */

static ngx_inline ngx_int_t
ngx_http_bulk_dump_fields(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    if (n != NGX_HTTP_BULK_DUMP_FIELDS || f[0].len < 0
        || f[1].len != 8 || f[2].len != 8 || f[3].len != 8
        || f[4].len < 1 || f[4].data[0] != 1)
    {
        ngx_cpystrn(copy->err, (u_char *) "malformed row from PostgreSQL",
                    sizeof(copy->err));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* an Aidbox row: resourceType and id, the stored members, then meta */

static ngx_int_t
ngx_http_bulk_dump_row(ngx_http_bulk_copy_t *copy, ngx_bulk_pgcopy_field_t *f,
    size_t n)
{
    u_char                    *q;
    size_t                     len;
    ngx_uint_t                 any;
    const u_char              *rp, *rend;
    ngx_bulk_member_t          meta;
    ngx_http_bulk_out_t       *o;
    ngx_http_bulk_dump_ctx_t  *ctx;

    if (ngx_http_bulk_dump_fields(copy, f, n) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx = copy->data;
    o = &copy->out;

    if ((size_t) f[0].len * 6 > ctx->scratch_size) {
        ctx->scratch_size = ngx_max((size_t) f[0].len * 6, 1024);
        ctx->scratch = ngx_pnalloc(copy->request->pool, ctx->scratch_size);
        if (ctx->scratch == NULL) {
            return NGX_ERROR;
        }
    }

    rp = f[4].data + 1;
    rend = f[4].data + f[4].len;

    if (ngx_bulk_json_open(&rp, rend) != 0) {
        ngx_cpystrn(copy->err, (u_char *) "malformed row from PostgreSQL",
                    sizeof(copy->err));
        return NGX_ERROR;
    }

    q = ctx->scratch;
    len = ngx_bulk_json_escape(q, f[0].data, f[0].len);

    if (ngx_http_bulk_out_put(o, ngx_http_bulk_dump_type_key.data,
                              ngx_http_bulk_dump_type_key.len)
           != NGX_OK
        || ngx_http_bulk_out_put(o, ctx->type.data, ctx->type.len) != NGX_OK
        || ngx_http_bulk_out_put(o, ngx_http_bulk_dump_id_key.data,
                                 ngx_http_bulk_dump_id_key.len)
           != NGX_OK
        || ngx_http_bulk_out_put(o, q, len) != NGX_OK
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

    return ngx_http_bulk_dump_meta(o, &meta, f);
}


/* meta: the stored one but versionId, lastUpdated and createdAt, then them */

static ngx_int_t
ngx_http_bulk_dump_meta(ngx_http_bulk_out_t *o, ngx_bulk_member_t *meta,
    ngx_bulk_pgcopy_field_t *f)
{
    u_char        *q;
    ngx_uint_t     any;
    const u_char  *mp;
    u_char         num[NGX_INT64_LEN + 2];
    char           ts[NGX_BULK_TS_LEN];

    if (ngx_http_bulk_out_put(o, ngx_http_bulk_dump_meta_key.data,
                              ngx_http_bulk_dump_meta_key.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    any = 0;

    if (meta->value && meta->value < meta->end && *meta->value == '{') {
        mp = meta->value + 1;

        if (ngx_http_bulk_dump_members(o, &mp, meta->end,
                                       ngx_http_bulk_dump_meta_skip, 3,
                                       NULL, &any)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    q = ngx_sprintf(num, "%L", ngx_bulk_pgcopy_int8(f[1].data));

    if ((any && ngx_http_bulk_out_put(o, (u_char *) ",", 1) != NGX_OK)
        || ngx_http_bulk_out_put(o, ngx_http_bulk_dump_version_key.data,
                                 ngx_http_bulk_dump_version_key.len)
           != NGX_OK
        || ngx_http_bulk_out_put(o, num, q - num) != NGX_OK
        || ngx_http_bulk_out_put(o, ngx_http_bulk_dump_updated_key.data,
                                 ngx_http_bulk_dump_updated_key.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_bulk_ts_format(ngx_bulk_pgcopy_int8(f[3].data), ts);

    if (ngx_http_bulk_out_put(o, (u_char *) ts, NGX_BULK_TS_LEN) != NGX_OK
        || ngx_http_bulk_out_put(o, ngx_http_bulk_dump_created_key.data,
                                 ngx_http_bulk_dump_created_key.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_bulk_ts_format(ngx_bulk_pgcopy_int8(f[2].data), ts);

    if (ngx_http_bulk_out_put(o, (u_char *) ts, NGX_BULK_TS_LEN) != NGX_OK
        || ngx_http_bulk_out_put(o, ngx_http_bulk_dump_row_end.data,
                                 ngx_http_bulk_dump_row_end.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* fhir=true: the converter writes the whole line, meta included */

static ngx_int_t
ngx_http_bulk_dump_fhir_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    ngx_bulk_fmt_job_t         job;
    ngx_http_bulk_dump_ctx_t  *ctx;

    ctx = copy->data;

    if (ngx_http_bulk_dump_fhir(copy, ctx->fmt, &ctx->type, f, n, &job)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_put(&copy->out, job.out, job.out_len) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One row of "SELECT id, txid, cts, ts, resource" converted to a FHIR
 * resource of that type (meta from the columns), in job->out, valid until
 * the next conversion; $export's files are these rows too.
 */

ngx_int_t
ngx_http_bulk_dump_fhir(ngx_http_bulk_copy_t *copy, ngx_bulk_fmt_t *fmt,
    ngx_str_t *type, ngx_bulk_pgcopy_field_t *f, size_t n,
    ngx_bulk_fmt_job_t *job)
{
    u_char  *q;
    u_char   num[NGX_INT64_LEN + 2];
    char     ts[NGX_BULK_TS_LEN], cts[NGX_BULK_TS_LEN];

    if (ngx_http_bulk_dump_fields(copy, f, n) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(job, sizeof(ngx_bulk_fmt_job_t));

    q = ngx_sprintf(num, "%L", ngx_bulk_pgcopy_int8(f[1].data));
    ngx_bulk_ts_format(ngx_bulk_pgcopy_int8(f[3].data), ts);
    ngx_bulk_ts_format(ngx_bulk_pgcopy_int8(f[2].data), cts);

    job->dir = NGX_BULK_FMT_TO_FHIR;
    job->type = (char *) type->data;
    job->type_len = type->len;
    job->inject = 1;
    job->id = (char *) f[0].data;
    job->id_len = f[0].len;
    job->version_id = (char *) num;
    job->version_id_len = q - num;
    job->last_updated = ts;
    job->last_updated_len = NGX_BULK_TS_LEN;
    job->created_at = cts;
    job->created_at_len = NGX_BULK_TS_LEN;

    if (ngx_bulk_fmt_convert(fmt, job, f[4].data + 1, f[4].len - 1) != 0) {
        ngx_snprintf(copy->err, sizeof(copy->err) - 1,
                     "row \"%*s\" cannot be converted to FHIR: %s%Z",
                     (size_t) ngx_min(f[0].len, 64), f[0].data, job->err);
        return NGX_ERROR;
    }

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
