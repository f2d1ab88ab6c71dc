
/*
 * ngx_bulk: helpers of the operations (see ngx_http_bulk_util.h).
 */


#include "ngx_http_bulk_util.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_fhir_schema.h"
#include <yajl/yajl_gen.h>


static yajl_gen_status ngx_http_bulk_json_gen(yajl_gen g, yajl_val v);


/* the worker's format converter, made on first use */
static ngx_bulk_fmt_t  *ngx_http_bulk_fmt_worker;


static ngx_str_t  ngx_http_bulk_outcome_start = ngx_string(
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":"
    "\"error\",\"code\":\"");

static ngx_str_t  ngx_http_bulk_outcome_middle = ngx_string(
    "\",\"diagnostics\":\"");

static ngx_str_t  ngx_http_bulk_outcome_end = ngx_string("\"}]}\n");


/*
 * An error before the response started: an OperationOutcome, logged at
 * error for 5xx and at info for the client's mistakes.  503 adds
 * Retry-After.  Returns as a content handler does.
 */

ngx_int_t
ngx_http_bulk_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char      *p, *last;
    size_t       len, code_len;
    va_list      args;
    ngx_buf_t   *b;
    ngx_uint_t   level;
    u_char       text[1024];

    va_start(args, fmt);
    last = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    code_len = ngx_strlen(code);

    len = ngx_http_bulk_outcome_start.len + code_len
          + ngx_http_bulk_outcome_middle.len + 6 * (last - text)
          + ngx_http_bulk_outcome_end.len;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, ngx_http_bulk_outcome_start.data,
                   ngx_http_bulk_outcome_start.len);
    p = ngx_cpymem(p, code, code_len);
    p = ngx_cpymem(p, ngx_http_bulk_outcome_middle.data,
                   ngx_http_bulk_outcome_middle.len);
    p += ngx_bulk_json_escape(p, text, last - text);
    p = ngx_cpymem(p, ngx_http_bulk_outcome_end.data,
                   ngx_http_bulk_outcome_end.len);
    b->last = p;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                       : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0, "bulk: %ui %s: %*s",
                  status, code, last - text, text);

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        if (ngx_http_bulk_add_header(r, "Retry-After",
                                     NGX_HTTP_BULK_RETRY_AFTER)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_bulk_send_json(r, status, b);
}


/* a whole JSON answer in one buffer; returns as a content handler does */

ngx_int_t
ngx_http_bulk_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b)
{
    static ngx_str_t  json = ngx_string("application/json");

    return ngx_http_bulk_send_whole(r, status, b, &json);
}


/*
 * A whole answer in one buffer, of a Content-Type (parameters after ';'
 * kept out of content_type_len, as the charset filter expects)
 */

ngx_int_t
ngx_http_bulk_send_whole(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, ngx_str_t *type)
{
    u_char       *semi;
    ngx_int_t     rc;
    ngx_chain_t   out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type = *type;
    semi = ngx_strlchr(type->data, type->data + type->len, ';');
    r->headers_out.content_type_len = semi ? (size_t) (semi - type->data)
                                           : type->len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_bulk_add_header(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


/*
 * A query string argument, percent-decoded into pool memory: NGX_OK,
 * NGX_DECLINED when there is none, NGX_ERROR
 */

ngx_int_t
ngx_http_bulk_arg(ngx_http_request_t *r, ngx_str_t *name, ngx_str_t *value)
{
    u_char  *dst, *src;

    if (ngx_http_arg(r, name->data, name->len, value) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, value->len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    src = value->data;
    value->data = dst;
    ngx_unescape_uri(&dst, &src, value->len, NGX_UNESCAPE_URI);
    value->len = dst - value->data;

    return NGX_OK;
}


/*
 * The one mapping of a PostgreSQL error to an HTTP status and the code of
 * its OperationOutcome (res is NULL when there is no error result: the
 * connection failed or was lost):
 *
 *   no SQLSTATE (the connection is gone), class 08 (connection
 *   exception), 57P (admin or crash shutdown, cannot connect now,
 *   idle session timeout), class 53 (insufficient resources: too many
 *   connections, out of memory, disk full)              503 transient
 *   57014 (query_canceled: the statement timeout)       504 timeout
 *   anything else: client set, the SQL or the data is the client's
 *                                                       422 processing
 *   anything else in the module's own queries           500 exception
 */

ngx_uint_t
ngx_http_bulk_pg_status(PGresult *res, ngx_uint_t client, const char **code)
{
    const char  *state;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state == NULL
        || ngx_strncmp(state, "08", 2) == 0
        || ngx_strncmp(state, "57P", 3) == 0
        || ngx_strncmp(state, "53", 2) == 0)
    {
        *code = "transient";
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_strcmp(state, "57014") == 0) {
        *code = "timeout";
        return NGX_HTTP_GATEWAY_TIME_OUT;
    }

    if (client) {
        *code = "processing";
        return NGX_HTTP_BULK_UNPROCESSABLE;
    }

    *code = "exception";
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * An error result of PostgreSQL (or a lost connection when res is NULL or
 * carries no SQLSTATE) as an OperationOutcome, its status mapped by
 * ngx_http_bulk_pg_status(); the diagnostics carry the SQLSTATE and the
 * position PostgreSQL gave.
 */

ngx_int_t
ngx_http_bulk_send_pg_error(ngx_http_request_t *r, PGresult *res, PGconn *pg,
    ngx_uint_t client)
{
    size_t       len;
    ngx_uint_t   status;
    const char  *state, *msg, *pos, *code;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (msg == NULL) {
        msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    }

    len = ngx_http_bulk_pg_msg_len(msg);

    status = ngx_http_bulk_pg_status(res, client, &code);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        return ngx_http_bulk_send_error(r, status, code,
                                        "database unavailable: %*s",
                                        len, msg);
    }

    pos = (status == NGX_HTTP_GATEWAY_TIME_OUT)
          ? NULL : PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

    if (pos) {
        return ngx_http_bulk_send_error(r, status, code,
                                        "%*s (SQLSTATE %s, position %s)",
                                        len, msg, state, pos);
    }

    return ngx_http_bulk_send_error(r, status, code, "%*s (SQLSTATE %s)",
                                    len, msg, state);
}


/* a resource type name, [A-Z][A-Za-z0-9]{0,63}: NGX_OK or NGX_DECLINED */

ngx_int_t
ngx_http_bulk_type_name(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_BULK_TYPE_MAX
        || name[0] < 'A' || name[0] > 'Z')
    {
        return NGX_DECLINED;
    }

    for (i = 1; i < len; i++) {
        if (!((name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= '0' && name[i] <= '9')))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A name that may be a type the module serves: a type name, and an R4
 * type only in its own case ("PATIENT" is not Patient).  Whether its table
 * exists is the database's to say.  NGX_OK or NGX_DECLINED.
 */

ngx_int_t
ngx_http_bulk_type_valid(const u_char *name, size_t len)
{
    const char  *canonical;

    if (ngx_http_bulk_type_name(name, len) != NGX_OK) {
        return NGX_DECLINED;
    }

    canonical = ngx_bulk_fhir_type_canonical((const char *) name, len);

    if (canonical && ngx_strncmp(canonical, name, len) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a yajl tree value as compact JSON text in pool memory */

ngx_int_t
ngx_http_bulk_json_text(ngx_pool_t *pool, yajl_val v, ngx_str_t *out)
{
    size_t                len;
    yajl_gen              g;
    const unsigned char  *buf;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_json_gen(g, v) != yajl_gen_status_ok
        || yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        yajl_gen_free(g);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, len);
    out->len = len;

    yajl_gen_free(g);

    return NGX_OK;
}


static yajl_gen_status
ngx_http_bulk_json_gen(yajl_gen g, yajl_val v)
{
    size_t           i;
    yajl_gen_status  st;

    switch (v->type) {

    case yajl_t_string:
        return yajl_gen_string(g, (const unsigned char *) v->u.string,
                               ngx_strlen(v->u.string));

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, ngx_strlen(v->u.number.r));

    case yajl_t_true:
        return yajl_gen_bool(g, 1);

    case yajl_t_false:
        return yajl_gen_bool(g, 0);

    case yajl_t_null:
        return yajl_gen_null(g);

    case yajl_t_object:
        st = yajl_gen_map_open(g);

        for (i = 0; st == yajl_gen_status_ok && i < v->u.object.len; i++) {
            st = yajl_gen_string(g,
                                 (const unsigned char *) v->u.object.keys[i],
                                 ngx_strlen(v->u.object.keys[i]));
            if (st == yajl_gen_status_ok) {
                st = ngx_http_bulk_json_gen(g, v->u.object.values[i]);
            }
        }

        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;

    case yajl_t_array:
        st = yajl_gen_array_open(g);

        for (i = 0; st == yajl_gen_status_ok && i < v->u.array.len; i++) {
            st = ngx_http_bulk_json_gen(g, v->u.array.values[i]);
        }

        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;

    default:
        return yajl_gen_invalid_string;
    }
}


/* names by length, then bytes: the order of ngx_http_bulk_bsearch() */

ngx_int_t
ngx_http_bulk_str_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }

    return ngx_memcmp(x->data, y->data, x->len);
}


ngx_str_t *
ngx_http_bulk_bsearch(ngx_str_t *key, ngx_str_t *base, ngx_uint_t n)
{
    int         rc;
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_http_bulk_str_cmp(key, &base[mid]);

        if (rc == 0) {
            return &base[mid];
        }

        if (rc < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/*
 * One converter per worker: it is used for one document at a time and
 * reuses its buffers, so rows cost no allocations.
 */

ngx_bulk_fmt_t *
ngx_http_bulk_fmt(void)
{
    if (ngx_http_bulk_fmt_worker == NULL) {
        ngx_http_bulk_fmt_worker = ngx_bulk_fmt_create();
    }

    return ngx_http_bulk_fmt_worker;
}


void
ngx_http_bulk_fmt_free(void)
{
    if (ngx_http_bulk_fmt_worker) {
        ngx_bulk_fmt_destroy(ngx_http_bulk_fmt_worker);
        ngx_http_bulk_fmt_worker = NULL;
    }
}
