
/*
 * ngx_bulk: the Aidbox Bulk API as an nginx module.
 *
 * The registry: directives, configuration create and merge, the log
 * variables, the worker's init and exit hooks, and the content handler
 * that hands a request to its operation (ngx_http_bulk_dump.c,
 * ngx_http_bulk_dump_sql.c, ngx_http_bulk_load.c, ngx_http_bulk_import.c,
 * ngx_http_bulk_export.c)
 * once its method is one the operation takes.  docs/architecture.md
 * draws the layers.
 */


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_util.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_body.h"
#include "ngx_http_bulk_fetch.h"
#include "ngx_http_bulk_dump.h"
#include "ngx_http_bulk_dump_sql.h"
#include "ngx_http_bulk_load.h"
#include "ngx_http_bulk_import.h"
#include "ngx_http_bulk_export.h"
#include "ngx_http_bulk_import_nodes.h"
#include "ngx_bulk_fhir_schema.h"


/*
 * An operation: the methods it takes, what a 405 says, whether it reads
 * a request body (else the body is discarded before its handler runs)
 */

typedef struct {
    ngx_uint_t                    methods;
    const char                   *allow;
    const char                   *name;
    const char                   *use;
    ngx_uint_t                    body;
    ngx_http_handler_pt           handler;
} ngx_http_bulk_op_t;


static ngx_int_t ngx_http_bulk_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_bulk_stats_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_bulk_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_bulk_init_process(ngx_cycle_t *cycle);
static void ngx_http_bulk_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_bulk_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_bulk_init_main_conf(ngx_conf_t *cf, void *conf);
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
static char *ngx_http_bulk_import_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_export(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_export_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_bulk_set_op(ngx_conf_t *cf,
    ngx_http_bulk_loc_conf_t *blcf, ngx_uint_t op);
static char *ngx_http_bulk_format(ngx_conf_t *cf,
    ngx_http_bulk_loc_conf_t *blcf, ngx_str_t *value);
static char *ngx_http_bulk_type(ngx_conf_t *cf, ngx_str_t *type);


/* bulk_import_zone, bulk_export_zone: what adds the zone */

typedef struct {
    ngx_shm_zone_t  *(*add)(ngx_conf_t *cf, ngx_str_t *name, size_t size);
} ngx_http_bulk_zone_post_t;


static ngx_http_bulk_zone_post_t  ngx_http_bulk_import_zone_post =
    { ngx_http_bulk_import_add_zone };

static ngx_http_bulk_zone_post_t  ngx_http_bulk_export_zone_post =
    { ngx_http_bulk_export_add_zone };


static ngx_command_t  ngx_http_bulk_commands[] = {

    { ngx_string("bulk_pg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_pg,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, conninfo),
      NULL },

    { ngx_string("bulk_pg_read"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_pg,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, read_conninfo),
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
      offsetof(ngx_http_bulk_loc_conf_t, dump_type),
      NULL },

    { ngx_string("bulk_dump_parallel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, dump_parallel),
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
      NGX_HTTP_BULK_OP_LOAD,
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
      ngx_http_bulk_load,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BULK_OP_IMPORT,
      NULL },

    { ngx_string("bulk_import_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_bulk_import_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, status_id),
      NULL },

    { ngx_string("bulk_import_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_bulk_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulk_main_conf_t, import_zone),
      &ngx_http_bulk_import_zone_post },

    { ngx_string("bulk_import_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, import_batch),
      NULL },

    { ngx_string("bulk_import_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulk_main_conf_t, import_lease),
      NULL },

    { ngx_string("bulk_import_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, import_concurrency),
      NULL },

    { ngx_string("bulk_export"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_bulk_export,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_export_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_bulk_import_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, status_id),
      (void *) NGX_HTTP_BULK_OP_EXPORT_STATUS },

    { ngx_string("bulk_export_file"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_bulk_export_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("bulk_fhir_metadata"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_bulk_op,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BULK_OP_METADATA,
      NULL },

    { ngx_string("bulk_export_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_bulk_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_bulk_main_conf_t, export_zone),
      &ngx_http_bulk_export_zone_post },

    { ngx_string("bulk_export_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, export_max),
      NULL },

    { ngx_string("bulk_export_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, export_ttl),
      NULL },

    { ngx_string("bulk_export_file_rows"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, export_file_rows),
      NULL },

    { ngx_string("bulk_export_access_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_bulk_loc_conf_t, export_token),
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


/* by NGX_HTTP_BULK_OP_* */

static ngx_http_bulk_op_t  ngx_http_bulk_ops[] = {

    { 0, NULL, NULL, NULL, 0, NULL },

    { NGX_HTTP_GET|NGX_HTTP_HEAD, "GET, HEAD", "$dump", "GET or HEAD", 0,
      ngx_http_bulk_dump_handler },

    { NGX_HTTP_POST, "POST", "$dump-sql", "POST", 1,
      ngx_http_bulk_dump_sql_handler },

    { NGX_HTTP_POST, "POST", "$load", "POST", 1,
      ngx_http_bulk_load_handler },

    { NGX_HTTP_POST, "POST", "$import", "POST", 1,
      ngx_http_bulk_import_handler },

    { NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE, "GET, DELETE",
      "BulkImportStatus", "GET or DELETE", 0,
      ngx_http_bulk_import_status_handler },

    { NGX_HTTP_GET|NGX_HTTP_POST, "GET, POST", "$export", "GET or POST", 1,
      ngx_http_bulk_export_handler },

    { NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE, "GET, DELETE",
      "$export-status", "GET or DELETE", 0,
      ngx_http_bulk_export_status_handler },

    { NGX_HTTP_GET|NGX_HTTP_HEAD, "GET, HEAD", "$export-file", "GET or HEAD",
      0, ngx_http_bulk_export_file_handler },

    { NGX_HTTP_GET|NGX_HTTP_HEAD, "GET, HEAD", "metadata", "GET or HEAD", 0,
      ngx_http_bulk_metadata_handler },

    { NGX_HTTP_GET|NGX_HTTP_HEAD, "GET, HEAD", "the BulkImportStatus list",
      "GET", 0, ngx_http_bulk_import_list_handler }
};


static ngx_http_variable_t  ngx_http_bulk_vars[] = {

    { ngx_string("bulk_source_url"), NULL,
      ngx_http_bulk_source_url_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_source_range"), NULL,
      ngx_http_bulk_source_range_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bulk_source_if_range"), NULL,
      ngx_http_bulk_source_if_range_variable, 0,
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
ngx_http_bulk_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_bulk_fetch_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_body_init(cf);
}


static ngx_int_t
ngx_http_bulk_init_process(ngx_cycle_t *cycle)
{
    ngx_http_bulk_import_init_process(cycle);
    ngx_http_bulk_export_init_process(cycle);
    ngx_http_bulk_nodes_init_process(cycle);

    return NGX_OK;
}


static void
ngx_http_bulk_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_bulk_import_exit_process(cycle);
    ngx_http_bulk_export_exit_process(cycle);
    ngx_http_bulk_pg_exit(cycle);
    ngx_http_bulk_fmt_free();
}


/* the content handler of every operation's location */

static ngx_int_t
ngx_http_bulk_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_bulk_op_t        *op;
    ngx_http_bulk_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    op = &ngx_http_bulk_ops[blcf->op];

    if (op->handler == NULL) {
        return NGX_DECLINED;
    }

    if (!(r->method & op->methods) || !op->body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!(r->method & op->methods)) {
        if (ngx_http_bulk_add_header(r, "Allow", op->allow) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "not-supported",
                                        "method %V is not allowed on %s, "
                                        "use %s", &r->method_name,
                                        op->name, op->use);
    }

    return op->handler(r);
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

    bmcf->import_lease = NGX_CONF_UNSET_MSEC;

    return bmcf;
}


static char *
ngx_http_bulk_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_bulk_main_conf_t  *bmcf = conf;

    ngx_str_t  name = ngx_string("bulk_import");
    ngx_str_t  ename = ngx_string("bulk_export");

    ngx_conf_init_msec_value(bmcf->import_lease, 0);

    if (bmcf->import_lease && bmcf->import_lease < 300) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_import_lease\" must be at least 300ms");
        return NGX_CONF_ERROR;
    }

    if (bmcf->import_zone == NULL) {
        bmcf->import_zone = ngx_http_bulk_import_add_zone(cf, &name,
                                                          1024 * 1024);
        if (bmcf->import_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (bmcf->export_zone == NULL) {
        bmcf->export_zone = ngx_http_bulk_export_add_zone(cf, &ename,
                                                          1024 * 1024);
        if (bmcf->export_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
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
    blcf->dump_parallel = NGX_CONF_UNSET_UINT;
    blcf->line_max = NGX_CONF_UNSET_SIZE;
    blcf->import_concurrency = NGX_CONF_UNSET_UINT;
    blcf->import_batch = NGX_CONF_UNSET_SIZE;
    blcf->source_allow = NGX_CONF_UNSET_PTR;
    blcf->export_max = NGX_CONF_UNSET_UINT;
    blcf->export_ttl = NGX_CONF_UNSET_MSEC;
    blcf->export_file_rows = NGX_CONF_UNSET_UINT;
    blcf->export_token = NGX_CONF_UNSET;

    return blcf;
}


static char *
ngx_http_bulk_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_bulk_loc_conf_t  *prev = parent;
    ngx_http_bulk_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_str_value(conf->conninfo, prev->conninfo, "");
    ngx_conf_merge_str_value(conf->read_conninfo, prev->read_conninfo, "");
    ngx_conf_merge_uint_value(conf->dump_parallel, prev->dump_parallel, 1);
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

    if (conf->dump_parallel == 0 || conf->dump_parallel > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_dump_parallel\" must be 1..64");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->export_max, prev->export_max, 32);
    ngx_conf_merge_msec_value(conf->export_ttl, prev->export_ttl, 3600000);
    ngx_conf_merge_uint_value(conf->export_file_rows, prev->export_file_rows,
                              100000);
    ngx_conf_merge_value(conf->export_token, prev->export_token, 0);

    if (conf->export_max == 0 || conf->export_max > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_export_max\" must be 1..1024");
        return NGX_CONF_ERROR;
    }

    if (conf->export_file_rows == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_export_file_rows\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->export_ttl < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_export_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (conf->import_concurrency == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bulk_import_concurrency\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->op == NGX_HTTP_BULK_OP_NONE
        || conf->op == NGX_HTTP_BULK_OP_METADATA)
    {
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

    /*
     * $dump and $dump-sql read from bulk_pg_read's database when there is
     * one (a standby, or a list of hosts), everything else goes to bulk_pg
     */

    if ((conf->op == NGX_HTTP_BULK_OP_DUMP
         || conf->op == NGX_HTTP_BULK_OP_DUMP_SQL)
        && conf->read_conninfo.len)
    {
        conf->read_pool = ngx_http_bulk_pg_pool_get(cf, &conf->read_conninfo,
                                                    conf->pool_max,
                                                    conf->pool_timeout, 0);
        if (conf->read_pool == NULL) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->conninfo.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "bulk operation needs \"bulk_pg\" in scope in %V:%ui",
                      &conf->op_file, conf->op_line);
        return NGX_CONF_ERROR;
    }

    conf->pool = ngx_http_bulk_pg_pool_get(cf, &conf->conninfo,
                                           conf->pool_max,
                                           conf->pool_timeout, 0);
    if (conf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->read_pool = conf->pool;

    if (conf->op == NGX_HTTP_BULK_OP_EXPORT) {

        /*
         * each export holds a connection for its life: they come from a
         * pool of their own, never from the one requests rotate through
         */

        conf->export_pool = ngx_http_bulk_pg_pool_get(cf, &conf->conninfo,
                                                      conf->export_max,
                                                      conf->pool_timeout, 1);
        if (conf->export_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* bulk_pg, bulk_pg_read */

static char *
ngx_http_bulk_pg(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char              *err;
    ngx_str_t         *value, *field;
    PQconninfoOption  *opts;

    field = (ngx_str_t *) ((char *) conf + cmd->offset);

    if (field->data) {
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
                           &value[1], ngx_http_bulk_pg_msg_len(err), err);
        if (err) {
            PQfreemem(err);
        }

        return NGX_CONF_ERROR;
    }

    PQconninfoFree(opts);

    *field = value[1];

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
ngx_http_bulk_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_zone_post_t  *post = cmd->post;

    ssize_t           size;
    ngx_str_t        *value;
    ngx_shm_zone_t  **zone;

    zone = (ngx_shm_zone_t **) ((char *) conf + cmd->offset);

    if (*zone) {
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

    *zone = post->add(cf, &value[1], size);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
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


/* bulk_dump <type>: the type may hold variables */

static char *
ngx_http_bulk_dump(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char  *rv;

    rv = ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_DUMP);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_set_complex_value_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (blcf->dump_type->lengths == NULL) {
        return ngx_http_bulk_type(cf, &blcf->dump_type->value);
    }

    return NGX_CONF_OK;
}


/* bulk_dump_sql */

static char *
ngx_http_bulk_op(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_bulk_set_op(cf, conf, cmd->offset);
}


/*
 * bulk_load aidbox|fhir [<type>] (a type name or a variable), and
 * bulk_import aidbox|fhir
 */

static char *
ngx_http_bulk_load(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char                       *rv;
    ngx_str_t                  *value;
    ngx_http_bulk_main_conf_t  *bmcf;

    value = cf->args->elts;

    rv = ngx_http_bulk_format(cf, blcf, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cf->args->nelts == 3) {

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
            rv = ngx_http_bulk_type(cf, &value[2]);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            blcf->load_type = value[2];
        }

        blcf->load_typed = 1;
    }

    if (cmd->offset == NGX_HTTP_BULK_OP_IMPORT) {
        bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulk_module);

        if (bmcf->import_ctx == NULL) {
            bmcf->import_ctx = cf->ctx;
        }
    }

    return ngx_http_bulk_set_op(cf, blcf, cmd->offset);
}


/*
 * bulk_import_status <id>: one status (the id may hold variables);
 * without an id: the list of jobs
 */

static char *
ngx_http_bulk_import_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *rv;

    if (cmd->post == NULL && cf->args->nelts == 1) {
        return ngx_http_bulk_set_op(cf, conf, NGX_HTTP_BULK_OP_STATUS_LIST);
    }

    rv = ngx_http_bulk_set_op(cf, conf, cmd->post
                                        ? (ngx_uint_t) cmd->post
                                        : NGX_HTTP_BULK_OP_STATUS);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_set_complex_value_slot(cf, cmd, conf);
}


/* bulk_export system | patient | group <id> (the id may hold variables) */

static char *
ngx_http_bulk_export(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "system") == 0 && cf->args->nelts == 2) {
        blcf->export_level = NGX_HTTP_BULK_EXPORT_SYSTEM;

    } else if (ngx_strcmp(value[1].data, "patient") == 0
               && cf->args->nelts == 2)
    {
        blcf->export_level = NGX_HTTP_BULK_EXPORT_PATIENT;

    } else if (ngx_strcmp(value[1].data, "group") == 0
               && cf->args->nelts == 3)
    {
        blcf->export_level = NGX_HTTP_BULK_EXPORT_GROUP;

        blcf->export_group = ngx_palloc(cf->pool,
                                        sizeof(ngx_http_complex_value_t));
        if (blcf->export_group == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[2];
        ccv.complex_value = blcf->export_group;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else {
        return "takes \"system\", \"patient\" or \"group <id>\"";
    }

    rv = ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_EXPORT);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return NGX_CONF_OK;
}


/* bulk_export_file <id> <name> */

static char *
ngx_http_bulk_export_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_bulk_loc_conf_t  *blcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_complex_value_t         **cv[2];
    ngx_http_compile_complex_value_t   ccv;

    rv = ngx_http_bulk_set_op(cf, blcf, NGX_HTTP_BULK_OP_EXPORT_FILE);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;
    cv[0] = &blcf->status_id;
    cv[1] = &blcf->export_file;

    for (i = 0; i < 2; i++) {
        *cv[i] = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cv[i] == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[i + 1];
        ccv.complex_value = *cv[i];

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}



static char *
ngx_http_bulk_format(ngx_conf_t *cf, ngx_http_bulk_loc_conf_t *blcf,
    ngx_str_t *value)
{
    if (ngx_strcmp(value->data, "fhir") == 0) {
        blcf->load_fhir = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value->data, "aidbox") == 0) {
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid format \"%V\", it must be "
                       "\"aidbox\" or \"fhir\"", value);

    return NGX_CONF_ERROR;
}


/*
 * A type named in the configuration passes the check every request's
 * type passes (ngx_http_bulk_type_valid()): one that never could is
 * refused here rather than answered 404 every time.
 */

static char *
ngx_http_bulk_type(ngx_conf_t *cf, ngx_str_t *type)
{
    const char  *canonical;

    if (ngx_http_bulk_type_valid(type->data, type->len) == NGX_OK) {
        return NGX_CONF_OK;
    }

    canonical = ngx_bulk_fhir_type_canonical((char *) type->data, type->len);

    if (canonical) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid resource type \"%V\", the FHIR type is "
                           "\"%s\"", type, canonical);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid resource type \"%V\", a type name is "
                           "[A-Z][A-Za-z0-9]{0,63}", type);
    }

    return NGX_CONF_ERROR;
}
