
/*
 * ngx_bulk: POST /$dump-sql, on the COPY OUT driver (ngx_http_bulk_copy.c).
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
 * json is ndjson; elastic-bulk is ndjson with an action line before each
 * row (ngx_bulk_dumpfmt.c), its "_id" the row's member "id".  sql is tsv
 * between a head (SET, CREATE TABLE, COPY ... FROM stdin) and "\.": the
 * head needs the result's column names and types before the first row,
 * so the query is first parsed and described alone (Parse and Describe of
 * the unnamed statement in the same transaction: not run, and refused too
 * when it holds more than one statement), then one lookup turns the type
 * oids and modifiers into format_type() names and finds pseudo-types.
 * The sql format runs with DateStyle ISO, IntervalStyle postgres and
 * extra_float_digits 3 (SET LOCAL), so that its rows read back the same.
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
 * OperationOutcome.  Errors before the header roll the transaction back
 * and the connection is reused; an error after it ends the response
 * without its last chunk and closes the connection.  Success is the end of
 * the read-only transaction, rolled back: nothing of a query outlives its
 * request (see ngx_http_bulk_pg_taint()).
 */


#include "ngx_http_bulk_dump_sql.h"
#include "ngx_http_bulk_copy.h"
#include "ngx_http_bulk_body.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_dumpfmt.h"


/* a format: the COPY around the query, and how its rows go out */

typedef enum {
    ngx_http_bulk_sql_plain = 0,
    ngx_http_bulk_sql_elastic,   /* needs "index" */
    ngx_http_bulk_sql_script     /* needs the description, "table" */
} ngx_http_bulk_sql_kind_e;


typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     content_type;
    ngx_str_t                     before;   /* the SQL before the query */
    ngx_str_t                     after;    /* and after it */
    ngx_http_bulk_copy_row_pt     row;
    ngx_http_bulk_copy_header_pt  header;
    ngx_http_bulk_copy_header_pt  footer;
    ngx_uint_t                    binary;
    ngx_http_bulk_sql_kind_e      kind;
} ngx_http_bulk_sql_format_t;


typedef struct {
    ngx_http_bulk_copy_t          copy;     /* first: the log variables */

    ngx_str_t                     query;
    ngx_http_bulk_sql_format_t   *format;
    ngx_str_t                     header;   /* csv: held until a row comes;
                                               sql: the script's head */
    ngx_str_t                     index;    /* elastic-bulk */
    u_char                       *action;   /* its action line */
    size_t                        action_size;
    ngx_str_t                     table;    /* sql */
    ngx_bulk_sql_column_t        *cols;
    size_t                        ncols;
} ngx_http_bulk_sql_ctx_t;


static ngx_int_t ngx_http_bulk_dump_sql_body(ngx_http_request_t *r,
    yajl_val root);
static ngx_int_t ngx_http_bulk_dump_sql_format(ngx_http_request_t *r,
    yajl_val root, ngx_http_bulk_sql_format_t **format, u_char *err,
    size_t errlen);
static ngx_int_t ngx_http_bulk_dump_sql_keys(ngx_http_request_t *r,
    yajl_val root, ngx_http_bulk_sql_ctx_t *ctx, u_char *err, size_t errlen);
static ngx_int_t ngx_http_bulk_dump_sql_statements(ngx_http_request_t *r,
    ngx_http_bulk_sql_ctx_t *ctx);
static ngx_int_t ngx_http_bulk_dump_sql_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_sql_csv_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_sql_csv_header(
    ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_dump_sql_json_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_sql_json_line(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n, ngx_str_t *line);
static ngx_int_t ngx_http_bulk_dump_sql_elastic_row(
    ngx_http_bulk_copy_t *copy, ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_dump_sql_described(ngx_http_bulk_copy_t *copy,
    PGresult *res);
static ngx_int_t ngx_http_bulk_dump_sql_columns(ngx_http_bulk_copy_t *copy,
    PGresult *res);
static ngx_int_t ngx_http_bulk_dump_sql_types(ngx_http_bulk_copy_t *copy,
    PGresult *res);
static ngx_int_t ngx_http_bulk_dump_sql_head(ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_dump_sql_end(ngx_http_bulk_copy_t *copy);
static ngx_int_t ngx_http_bulk_dump_sql_error(ngx_http_bulk_copy_t *copy,
    PGresult *res, PGconn *pg);


static ngx_str_t  ngx_http_bulk_sql_format_arg = ngx_string("_format");

/* sql: rows that read back the same whatever the server's defaults */
#define NGX_HTTP_BULK_SQL_SETTINGS                                           \
    "; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = postgres" \
    "; SET LOCAL extra_float_digits = 3"

static ngx_http_bulk_sql_format_t  ngx_http_bulk_sql_formats[] = {

    { ngx_string("tsv"), ngx_string("text/tab-separated-values"),
      ngx_string("COPY (\n"), ngx_string("\n) TO STDOUT"),
      ngx_http_bulk_dump_sql_row, NULL, NULL, 0, ngx_http_bulk_sql_plain },

    { ngx_string("csv"), ngx_string("text/csv"),
      ngx_string("COPY (\n"),
      ngx_string("\n) TO STDOUT (FORMAT csv, HEADER)"),
      ngx_http_bulk_dump_sql_csv_row, ngx_http_bulk_dump_sql_csv_header,
      NULL, 0, ngx_http_bulk_sql_plain },

    { ngx_string("ndjson"), ngx_string("application/ndjson"),
      ngx_string("COPY (SELECT row_to_json(q) FROM (\n"),
      ngx_string("\n) q) TO STDOUT (FORMAT binary)"),
      ngx_http_bulk_dump_sql_json_row, NULL, NULL, 1,
      ngx_http_bulk_sql_plain },

    /* Aidbox's name of ndjson */

    { ngx_string("json"), ngx_string("application/ndjson"),
      ngx_string("COPY (SELECT row_to_json(q) FROM (\n"),
      ngx_string("\n) q) TO STDOUT (FORMAT binary)"),
      ngx_http_bulk_dump_sql_json_row, NULL, NULL, 1,
      ngx_http_bulk_sql_plain },

    { ngx_string("elastic-bulk"), ngx_string("application/x-ndjson"),
      ngx_string("COPY (SELECT row_to_json(q) FROM (\n"),
      ngx_string("\n) q) TO STDOUT (FORMAT binary)"),
      ngx_http_bulk_dump_sql_elastic_row, NULL, NULL, 1,
      ngx_http_bulk_sql_elastic },

    { ngx_string("sql"), ngx_string("application/sql"),
      ngx_string("COPY (\n"), ngx_string("\n) TO STDOUT"),
      ngx_http_bulk_dump_sql_row, ngx_http_bulk_dump_sql_head,
      ngx_http_bulk_dump_sql_end, 0, ngx_http_bulk_sql_script },

    { ngx_null_string, ngx_null_string, ngx_null_string, ngx_null_string,
      NULL, NULL, NULL, 0, 0 }
};

static ngx_str_t  ngx_http_bulk_sql_table = ngx_string("dump_sql");


ngx_int_t
ngx_http_bulk_dump_sql_handler(ngx_http_request_t *r)
{
    return ngx_http_bulk_read_body(r, ngx_http_bulk_dump_sql_body);
}


static ngx_int_t
ngx_http_bulk_dump_sql_body(ngx_http_request_t *r, yajl_val root)
{
    ngx_int_t                    rc;
    ngx_str_t                    query;
    ngx_http_bulk_copy_t        *copy;
    ngx_http_bulk_sql_ctx_t     *ctx;
    ngx_http_bulk_sql_format_t  *format;
    u_char                       err[128];

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

    ctx->query = query;
    ctx->format = format;

    rc = ngx_http_bulk_dump_sql_keys(r, root, ctx, err, sizeof(err));

    if (rc == NGX_DECLINED) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy = &ctx->copy;

    if (ngx_http_bulk_copy_init(copy, r) != NGX_OK
        || ngx_http_bulk_dump_sql_statements(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&copy->name, "dump-sql");
    copy->content_type = format->content_type;
    copy->row = format->row;
    copy->header = format->header;
    copy->footer = format->footer;
    copy->error = ngx_http_bulk_dump_sql_error;
    copy->data = ctx;
    copy->binary = format->binary;
    copy->single = 1;
    copy->lazy = 1;
    copy->client = 1;

    /* the client's SQL may change the session: reset before reuse */
    copy->taint = 1;

    return ngx_http_bulk_copy_run(copy);
}


/*
 * ?_format= wins over the body's "format"; tsv by default.  NGX_OK, or
 * NGX_DECLINED with the reason in err, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_format(ngx_http_request_t *r, yajl_val root,
    ngx_http_bulk_sql_format_t **format, u_char *err, size_t errlen)
{
    ngx_int_t                    rc;
    ngx_str_t                    v;
    ngx_http_bulk_sql_format_t  *f;

    *format = &ngx_http_bulk_sql_formats[0];

    rc = ngx_http_bulk_arg(r, &ngx_http_bulk_sql_format_arg, &v);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_bulk_body_string(root, "format", &v);

        if (rc == NGX_ERROR) {
            ngx_snprintf(err, errlen, "\"format\" must be a string%Z");
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            return NGX_OK;
        }
    }

    for (f = ngx_http_bulk_sql_formats; f->name.len; f++) {
        if (v.len == f->name.len
            && ngx_strncmp(v.data, f->name.data, v.len) == 0)
        {
            *format = f;
            return NGX_OK;
        }
    }

    if (v.len > 32) {
        v.len = 32;
    }

    ngx_snprintf(err, errlen - 1, "unknown format \"%V\": use tsv, csv, "
                 "ndjson, json, elastic-bulk or sql%Z", &v);

    return NGX_DECLINED;
}


/*
 * The body keys of a format: "index" of elastic-bulk (required, an
 * Elasticsearch index name), "table" of sql (dump_sql by default, one
 * identifier that PostgreSQL keeps whole).  NGX_OK, or NGX_DECLINED with
 * the reason in err, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_keys(ngx_http_request_t *r, yajl_val root,
    ngx_http_bulk_sql_ctx_t *ctx, u_char *err, size_t errlen)
{
    ngx_int_t    rc;
    ngx_str_t    v;
    const char  *why;

    switch (ctx->format->kind) {

    case ngx_http_bulk_sql_elastic:
        rc = ngx_http_bulk_body_string(root, "index", &v);

        if (rc == NGX_ERROR) {
            ngx_snprintf(err, errlen, "\"index\" must be a string%Z");
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            ngx_snprintf(err, errlen, "\"index\" is required for the "
                         "elastic-bulk format%Z");
            return NGX_DECLINED;
        }

        why = ngx_bulk_es_index_invalid(v.data, v.len);

        if (why) {
            ngx_snprintf(err, errlen, "\"index\" is not a valid "
                         "Elasticsearch index name: it %s%Z", why);
            return NGX_DECLINED;
        }

        ctx->index = v;
        ctx->action_size = 256 + v.len;

        ctx->action = ngx_pnalloc(r->pool, ctx->action_size);
        if (ctx->action == NULL) {
            return NGX_ERROR;
        }

        return NGX_OK;

    case ngx_http_bulk_sql_script:
        rc = ngx_http_bulk_body_string(root, "table", &v);

        if (rc == NGX_ERROR) {
            ngx_snprintf(err, errlen, "\"table\" must be a string%Z");
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            v = ngx_http_bulk_sql_table;
        }

        if (v.len == 0) {
            ngx_snprintf(err, errlen, "\"table\" must not be empty%Z");
            return NGX_DECLINED;
        }

        if (v.len > NGX_BULK_SQL_IDENT_MAX) {
            ngx_snprintf(err, errlen, "\"table\" must not be longer than "
                         "%d bytes (PostgreSQL would cut it)%Z",
                         NGX_BULK_SQL_IDENT_MAX);
            return NGX_DECLINED;
        }

        ctx->table = v;
        return NGX_OK;

    default:
        return NGX_OK;
    }
}


/*
 * BEGIN READ ONLY (and the statement timeout, for the transaction only),
 * the COPY around the query, and ROLLBACK: a read-only transaction has
 * nothing to commit, and rolling it back also undoes what a query may have
 * changed in the session (set_config(), LISTEN) and drops its pg_notify()
 * messages
 */

static ngx_int_t
ngx_http_bulk_dump_sql_statements(ngx_http_request_t *r,
    ngx_http_bulk_sql_ctx_t *ctx)
{
    u_char                      *p, *sql;
    size_t                       len;
    ngx_http_bulk_loc_conf_t    *blcf;
    ngx_http_bulk_sql_format_t  *f;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    f = ctx->format;

    if (blcf->dump_sql_timeout || f->kind == ngx_http_bulk_sql_script) {
        len = sizeof("BEGIN READ ONLY; SET LOCAL statement_timeout = ")
              + NGX_INT_T_LEN + sizeof(NGX_HTTP_BULK_SQL_SETTINGS);

        sql = ngx_pnalloc(r->pool, len);
        if (sql == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(sql, "BEGIN READ ONLY", sizeof("BEGIN READ ONLY") - 1);

        if (blcf->dump_sql_timeout) {
            p = ngx_sprintf(p, "; SET LOCAL statement_timeout = %M",
                            blcf->dump_sql_timeout);
        }

        if (f->kind == ngx_http_bulk_sql_script) {
            p = ngx_cpymem(p, NGX_HTTP_BULK_SQL_SETTINGS,
                           sizeof(NGX_HTTP_BULK_SQL_SETTINGS) - 1);

            /* the client's query alone, to describe it */
            ctx->copy.describe = (char *) ctx->query.data;
            ctx->copy.described = ngx_http_bulk_dump_sql_described;
        }

        *p = '\0';

        ctx->copy.prepare = (char *) sql;

    } else {
        ctx->copy.prepare = "BEGIN READ ONLY";
    }

    ctx->copy.close = "ROLLBACK";

    sql = ngx_pnalloc(r->pool, f->before.len + ctx->query.len + f->after.len
                               + 1);
    if (sql == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(sql, f->before.data, f->before.len);
    p = ngx_cpymem(p, ctx->query.data, ctx->query.len);
    p = ngx_cpymem(p, f->after.data, f->after.len);
    *p = '\0';

    ctx->copy.query = (char *) sql;

    return NGX_OK;
}


/* tsv: a row as COPY wrote it; the response starts with the first one */

static ngx_int_t
ngx_http_bulk_dump_sql_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    if (!copy->started && ngx_http_bulk_copy_start(copy) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_out_put(&copy->out, f[0].data, f[0].len);
}


/* csv: the header row comes first, before the query even runs: held */

static ngx_int_t
ngx_http_bulk_dump_sql_csv_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;

    if (ctx->header.data) {
        return ngx_http_bulk_dump_sql_row(copy, f, n);
    }

    ctx->header.data = ngx_pnalloc(copy->request->pool, f[0].len + 1);
    if (ctx->header.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->header.data, f[0].data, f[0].len);
    ctx->header.len = f[0].len;

    return NGX_DECLINED;
}


/* after the response header: the csv header row */

static ngx_int_t
ngx_http_bulk_dump_sql_csv_header(ngx_http_bulk_copy_t *copy)
{
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;

    if (ctx->header.len == 0) {
        return NGX_OK;
    }

    return ngx_http_bulk_out_put(&copy->out, ctx->header.data,
                                 ctx->header.len);
}


/*
 * ndjson: one field, the row's JSON text, as one line; the response
 * starts with the first one
 */

static ngx_int_t
ngx_http_bulk_dump_sql_json_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    ngx_str_t  line;

    if (ngx_http_bulk_dump_sql_json_line(copy, f, n, &line) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_out_put(&copy->out, line.data, line.len) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_dump_sql_json_line(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n, ngx_str_t *line)
{
    u_char  *p, *q, *end;

    if (n != 1 || f[0].len < 0) {
        ngx_cpystrn(copy->err, (u_char *) "malformed row from PostgreSQL",
                    sizeof(copy->err));
        return NGX_ERROR;
    }

    /* the field points into libpq's copy of the message: ours to change */

    p = (u_char *) f[0].data;
    end = p + f[0].len;

    /* raw CR and LF are whitespace in JSON text: one row, one line */

    for (q = p; q < end; q++) {
        if (*q == '\n' || *q == '\r') {
            *q = ' ';
        }
    }

    if (!copy->started && ngx_http_bulk_copy_start(copy) == NGX_ERROR) {
        return NGX_ERROR;
    }

    line->data = p;
    line->len = end - p;

    return NGX_OK;
}


/* elastic-bulk: the action line, then the row as ndjson gives it */

static ngx_int_t
ngx_http_bulk_dump_sql_elastic_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    int                       rc;
    size_t                    len;
    ngx_str_t                 line;
    ngx_bulk_es_id_t          id;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;

    if (ngx_http_bulk_dump_sql_json_line(copy, f, n, &line) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_bulk_es_id(line.data, line.len, &id);

    if (rc < 0) {
        ngx_cpystrn(copy->err, (u_char *) "a row from PostgreSQL is not a "
                    "JSON object", sizeof(copy->err));
        return NGX_ERROR;
    }

    for ( ;; ) {
        len = ngx_bulk_es_action(ctx->action, ctx->action_size,
                                 ctx->index.data, ctx->index.len,
                                 rc ? &id : NULL);

        if (len <= ctx->action_size) {
            break;
        }

        /* an id longer than the room: rare, the room grows for good */

        (void) ngx_pfree(copy->request->pool, ctx->action);

        ctx->action_size = ngx_max(len, 2 * ctx->action_size);

        ctx->action = ngx_pnalloc(copy->request->pool, ctx->action_size);
        if (ctx->action == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_bulk_out_put(&copy->out, ctx->action, len) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, line.data, line.len) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * sql: the description of the query (its columns), then the lookup's
 * result (their types); either may refuse the query
 */

static ngx_int_t
ngx_http_bulk_dump_sql_described(ngx_http_bulk_copy_t *copy, PGresult *res)
{
    if (copy->legs[0].state == ngx_http_bulk_copy_describe) {
        return ngx_http_bulk_dump_sql_columns(copy, res);
    }

    return ngx_http_bulk_dump_sql_types(copy, res);
}


/*
 * The columns' names, no two alike (one table cannot have both), and the
 * lookup of their types:
 *
 *   SELECT pg_catalog.format_type(u.t, u.m), y.typtype = 'p'
 *   FROM ROWS FROM (pg_catalog.unnest('{<oids>}'::pg_catalog.oid[]),
 *                   pg_catalog.unnest('{<typmods>}'::pg_catalog.int4[]))
 *        WITH ORDINALITY AS u(t, m, n)
 *   LEFT JOIN pg_catalog.pg_type y ON y.oid = u.t ORDER BY u.n
 */

#define NGX_HTTP_BULK_SQL_LOOKUP1                                            \
    "SELECT pg_catalog.format_type(u.t, u.m), y.typtype = 'p' "              \
    "FROM ROWS FROM (pg_catalog.unnest('{"
#define NGX_HTTP_BULK_SQL_LOOKUP2                                            \
    "}'::pg_catalog.oid[]), pg_catalog.unnest('{"
#define NGX_HTTP_BULK_SQL_LOOKUP3                                            \
    "}'::pg_catalog.int4[])) WITH ORDINALITY AS u(t, m, n) "                 \
    "LEFT JOIN pg_catalog.pg_type y ON y.oid = u.t ORDER BY u.n"

static ngx_int_t
ngx_http_bulk_dump_sql_columns(ngx_http_bulk_copy_t *copy, PGresult *res)
{
    int                       i, n;
    long                      dup;
    u_char                   *p, *sql;
    size_t                    len;
    const char               *name;
    ngx_pool_t               *pool;
    ngx_bulk_sql_column_t    *col;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;
    pool = copy->request->pool;

    n = PQnfields(res);

    ctx->cols = ngx_pcalloc(pool, (n ? n : 1) * sizeof(ngx_bulk_sql_column_t));
    if (ctx->cols == NULL) {
        return NGX_ERROR;
    }

    ctx->ncols = n;

    for (i = 0; i < n; i++) {
        name = PQfname(res, i);
        col = &ctx->cols[i];

        col->name_len = ngx_strlen(name);
        col->name = ngx_pnalloc(pool, col->name_len + 1);
        if (col->name == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy((u_char *) col->name, name, col->name_len + 1);
    }

    dup = ngx_bulk_sql_duplicate(ctx->cols, n);

    if (dup >= 0) {
        col = &ctx->cols[dup];

        ngx_snprintf(copy->err, sizeof(copy->err) - 1,
                     "two columns of the result are named \"%*s\": the "
                     "table of the sql format cannot have both (rename one "
                     "with AS)%Z", col->name_len, col->name);
        return NGX_DECLINED;
    }

    len = sizeof(NGX_HTTP_BULK_SQL_LOOKUP1) + sizeof(NGX_HTTP_BULK_SQL_LOOKUP2)
          + sizeof(NGX_HTTP_BULK_SQL_LOOKUP3)
          + n * (NGX_INT32_LEN + 1) * 2;

    sql = ngx_pnalloc(pool, len);
    if (sql == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(sql, NGX_HTTP_BULK_SQL_LOOKUP1,
                   sizeof(NGX_HTTP_BULK_SQL_LOOKUP1) - 1);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, i ? ",%uD" : "%uD", (uint32_t) PQftype(res, i));
    }

    p = ngx_cpymem(p, NGX_HTTP_BULK_SQL_LOOKUP2,
                   sizeof(NGX_HTTP_BULK_SQL_LOOKUP2) - 1);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, i ? ",%D" : "%D", (int32_t) PQfmod(res, i));
    }

    p = ngx_cpymem(p, NGX_HTTP_BULK_SQL_LOOKUP3,
                   sizeof(NGX_HTTP_BULK_SQL_LOOKUP3) - 1);
    *p = '\0';

    copy->lookup = (char *) sql;

    return NGX_OK;
}


/* the types by name, none a pseudo-type; then the script's head */

static ngx_int_t
ngx_http_bulk_dump_sql_types(ngx_http_bulk_copy_t *copy, PGresult *res)
{
    int                       i;
    u_char                   *type;
    size_t                    len, size;
    ngx_pool_t               *pool;
    const char               *v;
    ngx_bulk_sql_column_t    *col;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;
    pool = copy->request->pool;

    if (PQntuples(res) != (int) ctx->ncols || PQnfields(res) != 2) {
        ngx_cpystrn(copy->err, (u_char *) "the types of the columns could "
                    "not be found", sizeof(copy->err));
        return NGX_ERROR;
    }

    for (i = 0; i < (int) ctx->ncols; i++) {
        col = &ctx->cols[i];

        if (PQgetisnull(res, i, 0)) {
            ngx_snprintf(copy->err, sizeof(copy->err) - 1,
                         "the type of the column \"%*s\" is unknown%Z",
                         col->name_len, col->name);
            return NGX_DECLINED;
        }

        v = PQgetvalue(res, i, 0);

        if (*PQgetvalue(res, i, 1) == 't') {
            ngx_snprintf(copy->err, sizeof(copy->err) - 1,
                         "the column \"%*s\" is of the pseudo-type %s, "
                         "which a table cannot have%Z",
                         col->name_len, col->name, v);
            return NGX_DECLINED;
        }

        col->type_len = ngx_strlen(v);

        type = ngx_pnalloc(pool, col->type_len);
        if (type == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(type, v, col->type_len);
        col->type = type;
    }

    v = PQparameterStatus(copy->legs[0].pc->pg, "client_encoding");

    size = ngx_bulk_sql_head(NULL, 0, v, ctx->table.data, ctx->table.len,
                             ctx->cols, ctx->ncols);

    ctx->header.data = ngx_pnalloc(pool, size);
    if (ctx->header.data == NULL) {
        return NGX_ERROR;
    }

    len = ngx_bulk_sql_head(ctx->header.data, size, v, ctx->table.data,
                            ctx->table.len, ctx->cols, ctx->ncols);

    if (len > size) {
        return NGX_ERROR;
    }

    ctx->header.len = len;

    return NGX_OK;
}


/* after the response header: the script's head */

static ngx_int_t
ngx_http_bulk_dump_sql_head(ngx_http_bulk_copy_t *copy)
{
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;

    return ngx_http_bulk_out_put(&copy->out, ctx->header.data,
                                 ctx->header.len);
}


/* at the end of the rows: the end of COPY's data */

static ngx_int_t
ngx_http_bulk_dump_sql_end(ngx_http_bulk_copy_t *copy)
{
    return ngx_http_bulk_out_put(&copy->out, (u_char *) NGX_BULK_SQL_END,
                                 sizeof(NGX_BULK_SQL_END) - 1);
}


/*
 * The error of the client's query as an OperationOutcome: the position
 * counts from the start of the query, not of the COPY around it.
 */

static ngx_int_t
ngx_http_bulk_dump_sql_error(ngx_http_bulk_copy_t *copy, PGresult *res,
    PGconn *pg)
{
    u_char                   *p, *end;
    size_t                    len;
    ngx_int_t                 pos, chars;
    const char               *state, *msg, *s;
    ngx_http_bulk_sql_ctx_t  *ctx;

    ctx = copy->data;

    if (copy->failed == ngx_http_bulk_copy_lookup) {
        /* the module's own statement */
        return ngx_http_bulk_send_pg_error(copy->request, res, pg, 0);
    }

    s = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (s == NULL || state == NULL || msg == NULL
        || ngx_strncmp(state, "08", 2) == 0
        || ngx_strncmp(state, "57", 2) == 0
        || ngx_strncmp(state, "53", 2) == 0)
    {
        return ngx_http_bulk_send_pg_error(copy->request, res, pg, 1);
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

    /* the query alone when it was described, else inside the COPY */

    if (pos != NGX_ERROR && copy->failed != ngx_http_bulk_copy_parse) {
        pos -= ctx->format->before.len;
    }

    len = ngx_http_bulk_pg_msg_len(msg);

    if (pos == NGX_ERROR || pos < 1) {
        return ngx_http_bulk_send_error(copy->request,
                                        NGX_HTTP_BULK_UNPROCESSABLE,
                                        "processing", "%*s (SQLSTATE %s)",
                                        len, msg, state);
    }

    if (pos > chars + 1) {
        pos = chars + 1;
    }

    return ngx_http_bulk_send_error(copy->request,
                                    NGX_HTTP_BULK_UNPROCESSABLE,
                                    "processing",
                                    "%*s (SQLSTATE %s, position %i)",
                                    len, msg, state, pos);
}
