
/*
 * ngx_bulk: the Aidbox Bulk API as an nginx module.
 * The module itself, its configuration and the statistics every request
 * of an operation keeps for the log variables.  What each file offers is
 * declared in that file's own header.
 */


#ifndef _NGX_HTTP_BULK_MODULE_H_INCLUDED_
#define _NGX_HTTP_BULK_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_BULK_OP_NONE        0
#define NGX_HTTP_BULK_OP_DUMP        1
#define NGX_HTTP_BULK_OP_DUMP_SQL    2
#define NGX_HTTP_BULK_OP_LOAD        3
#define NGX_HTTP_BULK_OP_IMPORT      4
#define NGX_HTTP_BULK_OP_STATUS      5
#define NGX_HTTP_BULK_OP_EXPORT      6
#define NGX_HTTP_BULK_OP_EXPORT_STATUS  7
#define NGX_HTTP_BULK_OP_EXPORT_FILE    8
#define NGX_HTTP_BULK_OP_METADATA    9
#define NGX_HTTP_BULK_OP_STATUS_LIST 10

/* bulk_export system|patient|group */
#define NGX_HTTP_BULK_EXPORT_SYSTEM  0
#define NGX_HTTP_BULK_EXPORT_PATIENT 1
#define NGX_HTTP_BULK_EXPORT_GROUP   2


/* ngx_http_bulk_pg.h */
typedef struct ngx_http_bulk_pg_pool_s  ngx_http_bulk_pg_pool_t;


/*
 * The first member of every request context of the module: what the log
 * variables $bulk_rows, $bulk_bytes, $bulk_db_time and $bulk_errors show.
 */

typedef struct {
    ngx_uint_t                    rows;     /* streamed or loaded */
    ngx_uint_t                    errors;   /* bad lines */
    off_t                         bytes;    /* uncompressed body bytes */
    ngx_msec_t                    db_start; /* a connection held since */
    ngx_msec_t                    db_time;  /* connections held, total */
    unsigned                      db_held:1;
} ngx_http_bulk_stats_t;


/* a $load or $import location, checked for its fetch location */
typedef struct {
    ngx_http_core_srv_conf_t     *cscf;
    void                         *blcf;
} ngx_http_bulk_fetcher_t;


/* bulk_source_allow: where sources may come from besides public addresses */
typedef struct {
    ngx_array_t                   names;    /* ngx_str_t, lower case; a
                                               "*." prefix: subdomains */
    ngx_array_t                   cidrs;    /* ngx_cidr_t */
    ngx_uint_t                    all;      /* no check at all */
} ngx_http_bulk_source_allow_t;


typedef struct {
    ngx_array_t                   pools;    /* ngx_http_bulk_pg_pool_t * */
    ngx_shm_zone_t               *import_zone;
    ngx_shm_zone_t               *export_zone;
    ngx_array_t                   fetchers; /* ngx_http_bulk_fetcher_t */
    ngx_msec_t                    import_lease;  /* 0: jobs stay local */
    ngx_http_conf_ctx_t          *import_ctx;    /* the first bulk_import
                                                    location: inputs other
                                                    nodes started run with
                                                    its configuration */
} ngx_http_bulk_main_conf_t;


typedef struct {
    ngx_str_t                     conninfo;
    ngx_uint_t                    pool_max;
    ngx_msec_t                    pool_timeout;
    ngx_msec_t                    pg_timeout;
    ngx_http_bulk_pg_pool_t      *pool;
    ngx_str_t                     read_conninfo;  /* bulk_pg_read */
    ngx_http_bulk_pg_pool_t      *read_pool;      /* $dump, $dump-sql */

    ngx_uint_t                    op;
    ngx_http_complex_value_t     *dump_type;
    ngx_msec_t                    dump_sql_timeout;
    ngx_uint_t                    dump_parallel;
    ngx_str_t                     fetch_uri;
    ngx_http_bulk_source_allow_t *source_allow;
    size_t                        line_max;
    ngx_uint_t                    load_fhir;
    ngx_uint_t                    load_typed;
    ngx_uint_t                    load_type_var;
    ngx_int_t                     load_type_index;
    ngx_str_t                     load_type;
    off_t                         body_max; /* -1: reads no body, 0: any */
    ngx_uint_t                    import_concurrency;
    size_t                        import_batch;
    ngx_http_complex_value_t     *status_id;

    ngx_uint_t                    export_level;
    ngx_http_complex_value_t     *export_group;
    ngx_http_complex_value_t     *export_file;
    ngx_uint_t                    export_max;
    ngx_msec_t                    export_ttl;
    ngx_uint_t                    export_file_rows;
    ngx_flag_t                    export_token;
    ngx_http_bulk_pg_pool_t      *export_pool; /* the snapshots' own */

    ngx_str_t                     op_file;  /* where the operation is set */
    ngx_uint_t                    op_line;
} ngx_http_bulk_loc_conf_t;


extern ngx_module_t  ngx_http_bulk_module;


#endif /* _NGX_HTTP_BULK_MODULE_H_INCLUDED_ */
