
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


/* a format: the COPY around the query, and how its rows go out */

typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     content_type;
    ngx_str_t                     before;   /* the SQL before the query */
    ngx_str_t                     after;    /* and after it */
    ngx_http_bulk_copy_row_pt     row;
    ngx_http_bulk_copy_header_pt  header;
    ngx_uint_t                    binary;
} ngx_http_bulk_sql_format_t;


typedef struct {
    ngx_http_bulk_copy_t          copy;     /* first: the log variables */

    ngx_str_t                     query;
    ngx_http_bulk_sql_format_t   *format;
    ngx_str_t                     header;   /* csv: held until a row comes */
} ngx_http_bulk_sql_ctx_t;


static ngx_int_t ngx_http_bulk_dump_sql_body(ngx_http_request_t *r,
    yajl_val root);
static ngx_int_t ngx_http_bulk_dump_sql_format(ngx_http_request_t *r,
    yajl_val root, ngx_http_bulk_sql_format_t **format, u_char *err,
    size_t errlen);
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
static ngx_int_t ngx_http_bulk_dump_sql_error(ngx_http_bulk_copy_t *copy,
    PGresult *res, PGconn *pg);


static ngx_str_t  ngx_http_bulk_sql_format_arg = ngx_string("_format");

static ngx_http_bulk_sql_format_t  ngx_http_bulk_sql_formats[] = {

    { ngx_string("tsv"), ngx_string("text/tab-separated-values"),
      ngx_string("COPY (\n"), ngx_string("\n) TO STDOUT"),
      ngx_http_bulk_dump_sql_row, NULL, 0 },

    { ngx_string("csv"), ngx_string("text/csv"),
      ngx_string("COPY (\n"),
      ngx_string("\n) TO STDOUT (FORMAT csv, HEADER)"),
      ngx_http_bulk_dump_sql_csv_row, ngx_http_bulk_dump_sql_csv_header, 0 },

    { ngx_string("ndjson"), ngx_string("application/ndjson"),
      ngx_string("COPY (SELECT row_to_json(q) FROM (\n"),
      ngx_string("\n) q) TO STDOUT (FORMAT binary)"),
      ngx_http_bulk_dump_sql_json_row, NULL, 1 },

    { ngx_null_string, ngx_null_string, ngx_null_string, ngx_null_string,
      NULL, NULL, 0 }
};


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

    ngx_snprintf(err, errlen - 1, "unknown format \"%V\": use tsv, csv or "
                 "ndjson%Z", &v);

    return NGX_DECLINED;
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

    if (blcf->dump_sql_timeout) {
        len = sizeof("BEGIN READ ONLY; SET LOCAL statement_timeout = ")
              + NGX_INT_T_LEN;

        sql = ngx_pnalloc(r->pool, len);
        if (sql == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(sql, "BEGIN READ ONLY; SET LOCAL statement_timeout = %M%Z",
                    blcf->dump_sql_timeout);

        ctx->copy.prepare = (char *) sql;

    } else {
        ctx->copy.prepare = "BEGIN READ ONLY";
    }

    ctx->copy.close = "ROLLBACK";

    f = ctx->format;

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


/* ndjson: one field, the row's JSON text, as one line */

static ngx_int_t
ngx_http_bulk_dump_sql_json_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
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

    if (ngx_http_bulk_out_put(&copy->out, p, end - p) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
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

    if (pos != NGX_ERROR) {
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
