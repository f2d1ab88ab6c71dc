
/*
 * ngx_bulk: the Aidbox Bulk API as an nginx module.
 * Shared declarations: configuration, the per-worker PostgreSQL pool,
 * request contexts and helpers used across the module's files.
 */


#ifndef _NGX_HTTP_BULK_MODULE_H_INCLUDED_
#define _NGX_HTTP_BULK_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <libpq-fe.h>
#include <zlib.h>
#include <yajl/yajl_tree.h>
#include "ngx_bulk_format.h"
#include "ngx_bulk_ndjson.h"


#define NGX_HTTP_BULK_OP_NONE        0
#define NGX_HTTP_BULK_OP_DUMP        1
#define NGX_HTTP_BULK_OP_DUMP_SQL    2
#define NGX_HTTP_BULK_OP_LOAD        3
#define NGX_HTTP_BULK_OP_IMPORT      4
#define NGX_HTTP_BULK_OP_STATUS      5

#define NGX_HTTP_BULK_TYPE_MAX       64

/* output buffers of a streaming response */
#define NGX_HTTP_BULK_BUF_SIZE       65536
#define NGX_HTTP_BULK_BUSY_MAX       4
#define NGX_HTTP_BULK_TICK           100

#define NGX_HTTP_BULK_RETRY_AFTER    "5"
#define NGX_HTTP_BULK_UNPROCESSABLE  422


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


typedef struct ngx_http_bulk_pg_pool_s    ngx_http_bulk_pg_pool_t;
typedef struct ngx_http_bulk_pg_conn_s    ngx_http_bulk_pg_conn_t;
typedef struct ngx_http_bulk_pg_waiter_s  ngx_http_bulk_pg_waiter_t;

typedef void (*ngx_http_bulk_pg_handler_pt)(ngx_http_bulk_pg_conn_t *pc);
typedef void (*ngx_http_bulk_pg_ready_pt)(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);

/* gets the parsed body object; returns as a content handler does */
typedef ngx_int_t (*ngx_http_bulk_body_pt)(ngx_http_request_t *r,
    yajl_val root);


struct ngx_http_bulk_pg_pool_s {
    ngx_str_t                     conninfo;
    const char                  **keys;
    const char                  **values;
    ngx_uint_t                    max;
    ngx_msec_t                    timeout;

    /* per worker, valid after fork */
    ngx_uint_t                    nconns;
    ngx_queue_t                   idle;
    ngx_queue_t                   waiters;
    ngx_queue_t                   all;
    ngx_queue_t                   cancels;  /* queries being cancelled */
#if (NGX_THREADS)
    ngx_thread_pool_t            *thread_pool; /* for PQcancel() */
#endif
};


struct ngx_http_bulk_pg_conn_s {
    ngx_queue_t                   queue;    /* in the pool's idle queue */
    ngx_queue_t                   all;      /* in the pool's list of all */
    ngx_http_bulk_pg_pool_t      *pool;
    PGconn                       *pg;
    ngx_connection_t             *c;
    ngx_event_t                   timer;
    ngx_log_t                     log;

    ngx_http_bulk_pg_waiter_t    *waiter;   /* who a new connection is for */
    ngx_http_bulk_stats_t        *stats;    /* of the request holding it */
    ngx_http_bulk_pg_handler_pt   handler;  /* owner's event handler */
    void                         *data;     /* owner */

    unsigned                      connecting:1;
    unsigned                      idle:1;
    unsigned                      dirty:1;     /* reset before reuse */
    unsigned                      doomed:1;    /* the server said FATAL */
    unsigned                      resetting:1; /* DISCARD ALL on its way */
    unsigned                      want_read:1;
    unsigned                      want_write:1;
};


struct ngx_http_bulk_pg_waiter_s {
    ngx_queue_t                   queue;
    ngx_event_t                   ev;       /* queue timeout and hand-over */
    ngx_http_bulk_pg_pool_t      *pool;
    ngx_http_bulk_pg_conn_t      *conn;     /* the connection, when ready */
    ngx_http_bulk_pg_conn_t      *pending;  /* a connection opened for us */
    ngx_http_bulk_pg_ready_pt     ready;
    void                         *data;
    ngx_http_bulk_stats_t        *stats;
    ngx_log_t                    *log;
    u_char                        err[256];
    unsigned                      queued:1;
};


/* a $load or $import location, checked for its fetch location */
typedef struct {
    ngx_http_core_srv_conf_t     *cscf;
    void                         *blcf;
} ngx_http_bulk_fetcher_t;


typedef struct ngx_http_bulk_fetch_s  ngx_http_bulk_fetch_t;

struct ngx_http_bulk_fetch_s {
    ngx_http_request_t           *sr;       /* the fetch subrequest */
    ngx_str_t                     url;
    ngx_chain_t                  *held;     /* buffers not used up yet */
    ngx_chain_t                 **held_last;
    void                        (*consume)(ngx_http_bulk_fetch_t *f);
    void                        (*done)(ngx_http_bulk_fetch_t *f);
    void                         *data;
    ngx_uint_t                    status;
    off_t                         length;   /* Content-Length or -1 */
    off_t                         received;
    u_char                        err[256];
    unsigned                      eof:1;      /* the last buffer came */
    unsigned                      finished:1; /* the subrequest is over */
    unsigned                      failed:1;
    unsigned                      stalled:1;  /* the proxy waits for us */
    unsigned                      consuming:1;
};


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
    ngx_array_t                   fetchers; /* ngx_http_bulk_fetcher_t */
} ngx_http_bulk_main_conf_t;


typedef struct {
    ngx_str_t                     conninfo;
    ngx_uint_t                    pool_max;
    ngx_msec_t                    pool_timeout;
    ngx_msec_t                    pg_timeout;
    ngx_http_bulk_pg_pool_t      *pool;

    ngx_uint_t                    op;
    ngx_http_complex_value_t     *dump_type;
    ngx_msec_t                    dump_sql_timeout;
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

    ngx_str_t                     op_file;  /* where the operation is set */
    ngx_uint_t                    op_line;
} ngx_http_bulk_loc_conf_t;


typedef enum {
    ngx_http_bulk_load_wait = 0,
    ngx_http_bulk_load_prepare,
    ngx_http_bulk_load_copy,
    ngx_http_bulk_load_copy_end,
    ngx_http_bulk_load_check,
    ngx_http_bulk_load_upsert,
    ngx_http_bulk_load_commit,
    ngx_http_bulk_load_done
} ngx_http_bulk_load_state_e;


typedef struct {
    ngx_str_t                    name;      /* as in the documents */
    ngx_uint_t                   lines;
    ngx_uint_t                   written;
    ngx_uint_t                   dups;      /* an id comes twice */
} ngx_http_bulk_load_type_t;


typedef struct {
    uint64_t                     line;
    ngx_str_t                    text;
} ngx_http_bulk_load_issue_t;


typedef struct ngx_http_bulk_load_ctx_s  ngx_http_bulk_load_ctx_t;

struct ngx_http_bulk_load_ctx_s {
    ngx_http_bulk_stats_t        stats;     /* first: the log variables */
    ngx_http_bulk_fetch_t        fetch;
    ngx_http_request_t          *request;
    ngx_http_bulk_loc_conf_t    *conf;
    ngx_http_bulk_pg_waiter_t    waiter;
    ngx_http_bulk_pg_conn_t     *pc;
    ngx_http_bulk_load_state_e   state;
    ngx_event_t                  watch;     /* bulk_pg_timeout */
    ngx_msec_t                   pg_active; /* last event from PostgreSQL */

    ngx_str_t                    type;      /* typed routes */
    ngx_str_t                    merge;     /* JSON text of "merge" */
    unsigned                     fhir:1;
    unsigned                     update:1;
    unsigned                     strip_nulls:1;
    unsigned                     failed:1;
    unsigned                     pg_blocked:1;
    unsigned                     nd_input:1;
    unsigned                     answered:1;
    unsigned                     copy_header:1;

    ngx_bulk_nd_t               *nd;
    ngx_bulk_fmt_t              *fmt;

    int64_t                      txid;
    ngx_array_t                  tables;    /* ngx_str_t, lower case */
    ngx_array_t                  types;     /* ngx_http_bulk_load_type_t */
    ngx_uint_t                   total;
    ngx_uint_t                   errors;
    ngx_array_t                  issues;    /* ngx_http_bulk_load_issue_t */
    ngx_uint_t                   result;    /* upsert results taken */

    u_char                       tuple[64 + 2 * NGX_HTTP_BULK_TYPE_MAX];
    size_t                       unflushed;

    size_t                       batch;     /* $import: commit every batch
                                               bytes staged; 0: at the end */
    size_t                       staged;
    ngx_uint_t                   batches;   /* committed */
    void                       (*done)(ngx_http_bulk_load_ctx_t *ctx);
    void                        *data;      /* of done */
    unsigned                     fetching:1;
    unsigned                     batching:1;

    ngx_uint_t                   status;    /* of a failure */
    const char                  *code;
    u_char                       err[512];
};


/* the streaming writer shared by $dump and $dump-sql */
typedef struct {
    ngx_http_request_t           *request;
    ngx_chain_t                  *out;
    ngx_chain_t                 **last_out;
    ngx_chain_t                  *free;
    ngx_chain_t                  *busy;
    ngx_buf_t                    *cur;
    z_stream                     *zstream;
    size_t                        unflushed;
    off_t                         bytes;    /* uncompressed body bytes */
    unsigned                      gzip:1;
} ngx_http_bulk_out_t;


extern ngx_module_t  ngx_http_bulk_module;


/* ngx_http_bulk_module.c */
ngx_int_t ngx_http_bulk_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...);
ngx_int_t ngx_http_bulk_send_pg_error(ngx_http_request_t *r, PGresult *res,
    PGconn *pg, ngx_uint_t status);
ngx_bulk_fmt_t *ngx_http_bulk_fmt(void);
size_t ngx_http_bulk_msg_len(const char *msg);
ngx_int_t ngx_http_bulk_json_text(ngx_pool_t *pool, yajl_val v,
    ngx_str_t *out);
ngx_int_t ngx_http_bulk_str_cmp(const void *a, const void *b);
ngx_str_t *ngx_http_bulk_bsearch(ngx_str_t *key, ngx_str_t *base,
    ngx_uint_t n);

ngx_int_t ngx_http_bulk_add_header(ngx_http_request_t *r, const char *key,
    const char *value);

/* ngx_http_bulk_pg.c */
ngx_http_bulk_pg_pool_t *ngx_http_bulk_pg_pool_get(ngx_conf_t *cf,
    ngx_str_t *conninfo, ngx_uint_t max, ngx_msec_t timeout);
ngx_int_t ngx_http_bulk_pg_acquire(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_pg_cancel(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_stats_release(ngx_http_bulk_stats_t *st);
void ngx_http_bulk_pg_release(ngx_http_bulk_pg_conn_t *pc,
    ngx_uint_t reusable);
ngx_int_t ngx_http_bulk_pg_send(ngx_http_bulk_pg_conn_t *pc, const char *sql);
ngx_int_t ngx_http_bulk_pg_send_one(ngx_http_bulk_pg_conn_t *pc,
    const char *sql);
ngx_int_t ngx_http_bulk_pg_read(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on);
ngx_int_t ngx_http_bulk_pg_write(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on);
void ngx_http_bulk_pg_exit(ngx_cycle_t *cycle);
void ngx_http_bulk_pg_set_handler(ngx_http_bulk_pg_conn_t *pc,
    ngx_http_bulk_pg_handler_pt handler, void *data);
void ngx_http_bulk_pg_taint(ngx_http_bulk_pg_conn_t *pc);

/* ngx_http_bulk_out.c */
ngx_int_t ngx_http_bulk_out_init(ngx_http_bulk_out_t *o,
    ngx_http_request_t *r, ngx_uint_t gzip);
ngx_int_t ngx_http_bulk_out_put(ngx_http_bulk_out_t *o, const u_char *data,
    size_t len);
ngx_int_t ngx_http_bulk_out_send(ngx_http_bulk_out_t *o, ngx_uint_t flush,
    ngx_uint_t last);
ngx_uint_t ngx_http_bulk_out_busy(ngx_http_bulk_out_t *o);
ngx_int_t ngx_http_bulk_out_wait(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_out_writable(ngx_http_bulk_out_t *o,
    ngx_http_bulk_pg_conn_t *pc, ngx_uint_t *paused, const char **reason);

/* ngx_http_bulk_fetch.c */
ngx_int_t ngx_http_bulk_fetch_init(ngx_conf_t *cf);
ngx_int_t ngx_http_bulk_fetch_start(ngx_http_request_t *r,
    ngx_http_bulk_fetch_t *f, ngx_str_t *location);
void ngx_http_bulk_fetch_resume(ngx_http_bulk_fetch_t *f);
void ngx_http_bulk_fetch_stop(ngx_http_bulk_fetch_t *f);
ngx_int_t ngx_http_bulk_source_allowed(ngx_http_request_t *r, ngx_str_t *url,
    u_char *err, size_t len);
char *ngx_http_bulk_source_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_bulk_source_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_bulk_load.c */
ngx_int_t ngx_http_bulk_load_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_load_init(ngx_http_bulk_load_ctx_t *ctx);
void ngx_http_bulk_load_run(ngx_http_bulk_load_ctx_t *ctx);
void ngx_http_bulk_load_abort(ngx_http_bulk_load_ctx_t *ctx,
    const char *reason);

/* ngx_http_bulk_import.c */
typedef struct ngx_http_bulk_import_zone_s  ngx_http_bulk_import_zone_t;

ngx_int_t ngx_http_bulk_import_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
extern const size_t  ngx_http_bulk_import_zone_size;
void ngx_http_bulk_import_init_process(ngx_cycle_t *cycle);
void ngx_http_bulk_import_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_bulk_import_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_import_status_handler(ngx_http_request_t *r);

/* ngx_http_bulk_dump.c */
ngx_int_t ngx_http_bulk_dump_handler(ngx_http_request_t *r);

/* ngx_http_bulk_body.c */
ngx_int_t ngx_http_bulk_read_body(ngx_http_request_t *r,
    ngx_http_bulk_body_pt handler);
ngx_int_t ngx_http_bulk_body_init(ngx_conf_t *cf);
yajl_val ngx_http_bulk_body_member(yajl_val obj, const char *name);
ngx_int_t ngx_http_bulk_body_string(yajl_val obj, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_bulk_body_bool(yajl_val obj, const char *name,
    ngx_uint_t *value);
ngx_int_t ngx_http_bulk_body_object(yajl_val obj, const char *name,
    yajl_val *value);

/* ngx_http_bulk_dump_sql.c */
ngx_int_t ngx_http_bulk_dump_sql_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULK_MODULE_H_INCLUDED_ */
