
/*
 * ngx_bulk: the Aidbox Bulk API as an nginx module.
 * Directives, configuration, the content handler and error answers.
 */


#include "ngx_http_bulk_module.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_format.h"
#include <yajl/yajl_gen.h>


/* the worker's format converter, made on first use */
static ngx_bulk_fmt_t  *ngx_http_bulk_fmt_worker;


static ngx_int_t ngx_http_bulk_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_bulk_init_process(ngx_cycle_t *cycle);
static void ngx_http_bulk_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_bulk_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_bulk_check_fetchers(ngx_conf_t *cf);
static yajl_gen_status ngx_http_bulk_json_gen(yajl_gen g, yajl_val v);
static ngx_int_t ngx_http_bulk_stats_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void *ngx_http_bulk_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_bulk_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_bulk_import_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_import_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_shm_zone_t *ngx_http_bulk_add_zone(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);
static void *ngx_http_bulk_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_bulk_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_bulk_pg(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_pg_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_dump(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_op(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_load(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_set_op(ngx_conf_t *cf, ngx_http_bulk_loc_conf_t *blcf,
    ngx_uint_t op);


static ngx_command_t  ngx_http_bulk_commands[] = {

    { ngx_string("bulk_pg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_pg,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_pg_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_bulk_pg_pool,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_pg_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, pg_timeout),
      NULL },

    { ngx_string("bulk_dump"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_dump,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_dump_sql"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_bulk_op,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BULK_OP_DUMP_SQL,
      NULL },

    { ngx_string("bulk_dump_sql_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, dump_sql_timeout),
      NULL },

    { ngx_string("bulk_load"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_bulk_load,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_fetch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, fetch_uri),
      NULL },

    { ngx_string("bulk_source_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_bulk_source_allow,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_line_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, line_max),
      NULL },

    { ngx_string("bulk_import"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_op,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BULK_OP_IMPORT,
      NULL },

    { ngx_string("bulk_import_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_import_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_import_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_bulk_import_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_import_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, import_batch),
      NULL },

    { ngx_string("bulk_import_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, import_concurrency),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_bulk_module_ctx = {
    ngx_http_bulk_add_variables,           /* preconfiguration */
    ngx_http_bulk_postconfiguration,       /* postconfiguration */

    ngx_http_bulk_create_main_conf,        /* create main configuration */
    ngx_http_bulk_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_bulk_create_loc_conf,         /* create location configuration */
    ngx_http_bulk_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_bulk_module = {
    NGX_MODULE_V1,
    &ngx_http_bulk_module_ctx,             /* module context */
    ngx_http_bulk_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_bulk_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_bulk_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_bulk_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_bulk_check_fetchers(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_bulk_fetch_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_body_init(cf);
}


static ngx_int_t
ngx_http_bulk_init_process(ngx_cycle_t *cycle)
{
    ngx_http_bulk_import_init_process(cycle);

    return NGX_OK;
}


static void
ngx_http_bulk_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_bulk_import_exit_process(cycle);
    ngx_http_bulk_pg_exit(cycle);

    if (ngx_http_bulk_fmt_worker) {
        ngx_bulk_fmt_destroy(ngx_http_bulk_fmt_worker);
        ngx_http_bulk_fmt_worker = NULL;
    }
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


static ngx_http_variable_t  ngx_http_bulk_vars[] = {

    { ngx_string("bulk_source_url"), NULL,
      ngx_http_bulk_source_url_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_rows"), NULL, ngx_http_bulk_stats_variable,
      offsetof(ngx_http_bulk_stats_t, rows), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_errors"), NULL, ngx_http_bulk_stats_variable,
      offsetof(ngx_http_bulk_stats_t, errors), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_bytes"), NULL, ngx_http_bulk_stats_variable,
      offsetof(ngx_http_bulk_stats_t, bytes), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_db_time"), NULL, ngx_http_bulk_stats_variable,
      offsetof(ngx_http_bulk_stats_t, db_time), NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_bulk_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_bulk_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * $bulk_rows, $bulk_errors, $bulk_bytes, $bulk_db_time (seconds with
 * milliseconds, the time the request held a database connection, queueing
 * for the pool included); empty for requests of other modules
 */

static ngx_int_t
ngx_http_bulk_stats_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    ngx_msec_t                 ms;
    ngx_http_bulk_stats_t     *st;
    ngx_http_bulk_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r->main, ngx_http_bulk_module);
    st = ngx_http_get_module_ctx(r->main, ngx_http_bulk_module);

    if (st == NULL || blcf->op == NGX_HTTP_BULK_OP_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    switch (data) {

    case offsetof(ngx_http_bulk_stats_t, rows):
        p = ngx_sprintf(p, "%ui", st->rows);
        break;

    case offsetof(ngx_http_bulk_stats_t, errors):
        p = ngx_sprintf(p, "%ui", st->errors);
        break;

    case offsetof(ngx_http_bulk_stats_t, bytes):
        p = ngx_sprintf(p, "%O", st->bytes);
        break;

    default:
        ms = st->db_time;

        if (st->db_held) {
            ms += ngx_current_msec - st->db_start;
        }

        p = ngx_sprintf(p, "%T.%03M", (time_t) ms / 1000, ms % 1000);
        break;
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_bulk_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    switch (blcf->op) {

    case NGX_HTTP_BULK_OP_DUMP:
        return ngx_http_bulk_dump_handler(r);

    case NGX_HTTP_BULK_OP_DUMP_SQL:
        return ngx_http_bulk_dump_sql_handler(r);

    case NGX_HTTP_BULK_OP_LOAD:
        return ngx_http_bulk_load_handler(r);

    case NGX_HTTP_BULK_OP_IMPORT:
        return ngx_http_bulk_import_handler(r);

    case NGX_HTTP_BULK_OP_STATUS:
        return ngx_http_bulk_import_status_handler(r);

    default:
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                        "not-supported",
                                        "this operation is not implemented "
                                        "yet by ngx_bulk");
    }
}


/* the length of a libpq message without its trailing newline */

size_t
ngx_http_bulk_msg_len(const char *msg)
{
    size_t  len;

    if (msg == NULL) {
        return 0;
    }

    len = ngx_strlen(msg);

    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) {
        len--;
    }

    return len;
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


ngx_int_t
ngx_http_bulk_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char       *p, *last;
    size_t        len;
    va_list       args;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_uint_t    level;
    ngx_chain_t   out;
    u_char        text[1024];

    va_start(args, fmt);
    last = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    len = sizeof("{\"resourceType\":\"OperationOutcome\",\"issue\":"
                 "[{\"severity\":\"error\",\"code\":\"\","
                 "\"diagnostics\":\"\"}]}\n") - 1
          + ngx_strlen(code) + 6 * (last - text);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"resourceType\":\"OperationOutcome\","
                    "\"issue\":[{\"severity\":\"error\",\"code\":\"%s\","
                    "\"diagnostics\":\"", code);
    p += ngx_bulk_json_escape(p, text, last - text);
    p = ngx_cpymem(p, "\"}]}\n", sizeof("\"}]}\n") - 1);
    b->last = p;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                       : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0, "bulk: %ui %s: %*s",
                  status, code, last - text, text);

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

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

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * An error result of PostgreSQL (or a lost connection when res is NULL or
 * carries no SQLSTATE) as an OperationOutcome: connection and server
 * availability classes are 503, a statement timeout 504, anything else
 * the caller's status (422 for the client's own SQL).
 */

ngx_int_t
ngx_http_bulk_send_pg_error(ngx_http_request_t *r, PGresult *res, PGconn *pg,
    ngx_uint_t status)
{
    u_char      *p;
    size_t       len;
    const char  *state, *msg, *pos;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (msg == NULL) {
        msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    }

    len = ngx_strlen(msg);
    p = (u_char *) msg + len;

    while (p > (u_char *) msg && (p[-1] == '\n' || p[-1] == ' ')) {
        p--;
    }

    len = p - (u_char *) msg;

    if (state == NULL
        || ngx_strncmp(state, "08", 2) == 0
        || ngx_strncmp(state, "57P", 3) == 0
        || ngx_strncmp(state, "53", 2) == 0)
    {
        return ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "transient",
                                        "database unavailable: %*s",
                                        len, msg);
    }

    if (ngx_strcmp(state, "57014") == 0) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_GATEWAY_TIME_OUT,
                                        "timeout", "%*s (SQLSTATE %s)",
                                        len, msg, state);
    }

    pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

    if (pos) {
        return ngx_http_bulk_send_error(r, status,
                                        status == 422 ? "processing"
                                                      : "exception",
                                        "%*s (SQLSTATE %s, position %s)",
                                        len, msg, state, pos);
    }

    return ngx_http_bulk_send_error(r, status,
                                    status == 422 ? "processing"
                                                  : "exception",
                                    "%*s (SQLSTATE %s)", len, msg, state);
}


static void *
ngx_http_bulk_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_bulk_main_conf_t  *bmcf;

    bmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_main_conf_t));
    if (bmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&bmcf->pools, cf->pool, 4,
                       sizeof(ngx_http_bulk_pg_pool_t *))
        != NGX_OK
        || ngx_array_init(&bmcf->fetchers, cf->pool, 4,
                          sizeof(ngx_http_bulk_fetcher_t))
           != NGX_OK)
    {
        return NULL;
    }

    return bmcf;
}


static void *
ngx_http_bulk_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_bulk_loc_conf_t  *blcf;

    blcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_loc_conf_t));
    if (blcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     blcf->conninfo = { 0, NULL };
     *     blcf->pool = NULL;
     *     blcf->op = NGX_HTTP_BULK_OP_NONE;
     *     blcf->dump_type = NULL;
     */

    blcf->body_max = -1;

    blcf->pool_max = NGX_CONF_UNSET_UINT;
    blcf->pool_timeout = NGX_CONF_UNSET_MSEC;
    blcf->pg_timeout = NGX_CONF_UNSET_MSEC;
    blcf->dump_sql_timeout = NGX_CONF_UNSET_MSEC;
    blcf->line_max = NGX_CONF_UNSET_SIZE;
    blcf->import_concurrency = NGX_CONF_UNSET_UINT;
    blcf->import_batch = NGX_CONF_UNSET_SIZE;
    blcf->source_allow = NGX_CONF_UNSET_PTR;

    return blcf;
}


static char *
ngx_http_bulk_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_bulk_loc_conf_t  *prev = parent;
    ngx_http_bulk_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_str_value(conf->conninfo, prev->conninfo, "");
    ngx_conf_merge_uint_value(conf->pool_max, prev->pool_max, 8);
    ngx_conf_merge_msec_value(conf->pool_timeout, prev->pool_timeout, 10000);
    ngx_conf_merge_msec_value(conf->pg_timeout, prev->pg_timeout, 60000);
    ngx_conf_merge_msec_value(conf->dump_sql_timeout, prev->dump_sql_timeout,
                              0);
    ngx_conf_merge_str_value(conf->fetch_uri, prev->fetch_uri, "/_bulk_fetch");
    ngx_conf_merge_ptr_value(conf->source_allow, prev->source_allow, NULL);
    ngx_conf_merge_size_value(conf->line_max, prev->line_max,
                              64 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->import_concurrency,
                              prev->import_concurrency, 2);
    ngx_conf_merge_size_value(conf->import_batch, prev->import_batch,
                              8 * 1024 * 1024);

    if (conf->import_concurrency == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_import_concurrency\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->op == NGX_HTTP_BULK_OP_NONE) {
        return NGX_CONF_OK;
    }

    /*
     * A location that reads bodies enforces client_max_body_size itself,
     * to answer 413 with an OperationOutcome (ngx_http_bulk_body.c): the
     * core module's limit, merged before this module's, moves here.
     */

    if (conf->op == NGX_HTTP_BULK_OP_DUMP_SQL
        || conf->op == NGX_HTTP_BULK_OP_LOAD
        || conf->op == NGX_HTTP_BULK_OP_IMPORT)
    {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        conf->body_max = clcf->client_max_body_size;
        clcf->client_max_body_size = 0;
    }

    if (conf->conninfo.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "bulk operation needs \"bulk_pg\" in scope in %V:%ui",
                      &conf->op_file, conf->op_line);
        return NGX_CONF_ERROR;
    }

    conf->pool = ngx_http_bulk_pg_pool_get(cf, &conf->conninfo,
                                           conf->pool_max,
                                           conf->pool_timeout);
    if (conf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_bulk_pg(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char              *err;
    ngx_str_t         *value;
    PQconninfoOption  *opts;

    if (blcf->conninfo.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes a non-empty conninfo";
    }

    /* value strings of the configuration are NUL-terminated */

    err = NULL;
    opts = PQconninfoParse((char *) value[1].data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid PostgreSQL conninfo \"%V\": %*s",
                           &value[1], ngx_http_bulk_msg_len(err), err);
        if (err) {
            PQfreemem(err);
        }

        return NGX_CONF_ERROR;
    }

    PQconninfoFree(opts);

    blcf->conninfo = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_bulk_pg_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, s;

    if (blcf->pool_max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n < 1 || n > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid pool size \"%V\" (1..1024)", &value[1]);
        return NGX_CONF_ERROR;
    }

    blcf->pool_max = n;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "timeout=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 8;
        s.len = value[2].len - 8;

        blcf->pool_timeout = ngx_parse_time(&s, 0);
        if (blcf->pool_timeout == (ngx_msec_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_bulk_set_op(ngx_conf_t *cf, ngx_http_bulk_loc_conf_t *blcf,
    ngx_uint_t op)
{
    ngx_http_bulk_fetcher_t    *f;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_bulk_main_conf_t  *bmcf;

    if (blcf->op != NGX_HTTP_BULK_OP_NONE) {
        return "is duplicate: a location serves one bulk operation";
    }

    blcf->op = op;
    blcf->op_file = cf->conf_file->file.name;
    blcf->op_line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_bulk_handler;

    if (op == NGX_HTTP_BULK_OP_LOAD || op == NGX_HTTP_BULK_OP_IMPORT) {
        bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulk_module);

        f = ngx_array_push(&bmcf->fetchers);
        if (f == NULL) {
            return NGX_CONF_ERROR;
        }

        f->cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
        f->blcf = blcf;
    }

    return NGX_CONF_OK;
}


/*
 * Every $load and $import location needs its bulk_fetch location in the
 * same server: an exact or prefix location (or a regex one) with a
 * content handler, such as proxy_pass.
 */

static ngx_int_t
ngx_http_bulk_check_fetchers(ngx_conf_t *cf)
{
    size_t                          len, n;
    u_char                         *uri;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_http_core_loc_conf_t       *clcf, *found, **rclcf;
    ngx_http_bulk_fetcher_t        *f;
    ngx_http_bulk_loc_conf_t       *blcf;
    ngx_http_bulk_main_conf_t      *bmcf;
    ngx_http_location_tree_node_t  *node;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulk_module);
    f = bmcf->fetchers.elts;

    for (i = 0; i < bmcf->fetchers.nelts; i++) {
        blcf = f[i].blcf;
        clcf = f[i].cscf->ctx->loc_conf[ngx_http_core_module.ctx_index];

        /* as ngx_http_core_find_static_location() does */

        found = NULL;
        node = clcf->static_locations;
        uri = blcf->fetch_uri.data;
        len = blcf->fetch_uri.len;

        while (node) {
            n = (len <= (size_t) node->len) ? len : node->len;
            rc = ngx_filename_cmp(uri, node->name, n);

            if (rc != 0) {
                node = (rc < 0) ? node->left : node->right;
                continue;
            }

            if (len > (size_t) node->len) {
                if (node->inclusive) {
                    found = node->inclusive;
                    node = node->tree;
                    uri += n;
                    len -= n;
                    continue;
                }

                node = node->right;
                continue;
            }

            if (len == (size_t) node->len) {
                found = node->exact ? node->exact : node->inclusive;
            }

            break;
        }

#if (NGX_PCRE)
        if ((found == NULL || !found->exact_match) && clcf->regex_locations) {
            for (rclcf = clcf->regex_locations; *rclcf; rclcf++) {
                if (ngx_regex_exec((*rclcf)->regex->regex, &blcf->fetch_uri,
                                   NULL, 0)
                    >= 0)
                {
                    found = *rclcf;
                    break;
                }
            }
        }
#else
        rclcf = NULL;
#endif

        if (found == NULL || found->handler == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "the bulk_fetch location \"%V\" of the bulk "
                          "operation in %V:%ui is missing in its server or "
                          "has no content handler (proxy_pass "
                          "$bulk_source_url)",
                          &blcf->fetch_uri, &blcf->op_file, blcf->op_line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static char *
ngx_http_bulk_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    rv = ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_DUMP);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    blcf->dump_type = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (blcf->dump_type == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = blcf->dump_type;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_bulk_op(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if ((cmd->offset == NGX_HTTP_BULK_OP_LOAD
         || cmd->offset == NGX_HTTP_BULK_OP_IMPORT)
        && ngx_strcmp(value[1].data, "aidbox") != 0
        && ngx_strcmp(value[1].data, "fhir") != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid format \"%V\", it must be "
                           "\"aidbox\" or \"fhir\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cmd->offset == NGX_HTTP_BULK_OP_IMPORT
        && ngx_strcmp(value[1].data, "fhir") == 0)
    {
        blcf->load_fhir = 1;
    }

    return ngx_http_bulk_set_op(cf, blcf, cmd->offset);
}


static char *
ngx_http_bulk_import_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    rv = ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_STATUS);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    blcf->status_id = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (blcf->status_id == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = blcf->status_id;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_shm_zone_t *
ngx_http_bulk_add_zone(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t               *shm_zone;
    ngx_http_bulk_import_zone_t  *z;

    shm_zone = ngx_shared_memory_add(cf, name, size, &ngx_http_bulk_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NULL;
    }

    z = ngx_pcalloc(cf->pool, ngx_http_bulk_import_zone_size);
    if (z == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_bulk_import_init_zone;
    shm_zone->data = z;

    return shm_zone;
}


static char *
ngx_http_bulk_import_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_main_conf_t  *bmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (bmcf->import_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" (at least %uz)",
                           &value[2], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    bmcf->import_zone = ngx_http_bulk_add_zone(cf, &value[1], size);
    if (bmcf->import_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* without bulk_import_zone: a 1 MB zone "bulk_import" */

static char *
ngx_http_bulk_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_bulk_main_conf_t  *bmcf = conf;

    ngx_str_t  name = ngx_string("bulk_import");

    if (bmcf->import_zone == NULL) {
        bmcf->import_zone = ngx_http_bulk_add_zone(cf, &name, 1024 * 1024);
        if (bmcf->import_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_bulk_load(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    u_char     *p, *end;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "fhir") == 0) {
        blcf->load_fhir = 1;

    } else if (ngx_strcmp(value[1].data, "aidbox") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid format \"%V\", it must be "
                           "\"aidbox\" or \"fhir\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {

        /* a variable ("$bulk_type" of a regex location) or a type name */

        if (value[2].data[0] == '$') {
            value[2].data++;
            value[2].len--;

            blcf->load_type_index = ngx_http_get_variable_index(cf,
                                                                &value[2]);
            if (blcf->load_type_index == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            blcf->load_type_var = 1;

        } else {
            for (p = value[2].data, end = p + value[2].len; p < end; p++) {
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
                      || (*p >= '0' && *p <= '9')))
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid resource type \"%V\"",
                                       &value[2]);
                    return NGX_CONF_ERROR;
                }
            }

            blcf->load_type = value[2];
        }

        blcf->load_typed = 1;
    }

    return ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_LOAD);
}
