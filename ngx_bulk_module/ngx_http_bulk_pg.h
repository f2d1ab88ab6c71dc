
/*
 * ngx_bulk: the per-worker PostgreSQL connection pool.
 *
 * A request asks for a connection with a waiter (ngx_http_bulk_pg_acquire);
 * its ready handler gets it, at once or later, or an error.  The owner
 * sets its event handler on the connection, sends queries, and gives the
 * connection back with ngx_http_bulk_pg_release(): reusable when it is
 * idle and clean, else closed (a query still running is cancelled).
 */


#ifndef _NGX_HTTP_BULK_PG_H_INCLUDED_
#define _NGX_HTTP_BULK_PG_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include <libpq-fe.h>


typedef struct ngx_http_bulk_pg_conn_s    ngx_http_bulk_pg_conn_t;
typedef struct ngx_http_bulk_pg_waiter_s  ngx_http_bulk_pg_waiter_t;

typedef void (*ngx_http_bulk_pg_handler_pt)(ngx_http_bulk_pg_conn_t *pc);
typedef void (*ngx_http_bulk_pg_ready_pt)(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);


struct ngx_http_bulk_pg_pool_s {
    ngx_str_t                     conninfo;
    const char                  **keys;
    const char                  **values;
    ngx_uint_t                    max;
    ngx_msec_t                    timeout;
    ngx_msec_t                    connect_timeout; /* per host */
    ngx_uint_t                    nhosts;   /* in host= or hostaddr= */
    ngx_int_t                     host_key; /* keys[] of host=, or -1 */
    ngx_int_t                     addr_key; /* hostaddr= */
    ngx_int_t                     port_key; /* port= */
    ngx_uint_t                    dedicated; /* never shared with the
                                                pools of other operations */

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
    ngx_uint_t                    first;    /* the hosts tried: from this */
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


ngx_http_bulk_pg_pool_t *ngx_http_bulk_pg_pool_get(ngx_conf_t *cf,
    ngx_str_t *conninfo, ngx_uint_t max, ngx_msec_t timeout,
    ngx_uint_t dedicated);
void ngx_http_bulk_pg_exit(ngx_cycle_t *cycle);

void ngx_http_bulk_pg_waiter_init(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_pool_t *pool, ngx_http_bulk_pg_ready_pt ready,
    void *data, ngx_log_t *log);
ngx_int_t ngx_http_bulk_pg_acquire(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_pg_get(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_pg_ask(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_pg_post(ngx_http_bulk_pg_conn_t *pc);
ngx_http_bulk_pg_conn_t *ngx_http_bulk_pg_take(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_handler_pt handler, void *data);
void ngx_http_bulk_pg_cancel(ngx_http_bulk_pg_waiter_t *w);
void ngx_http_bulk_pg_release(ngx_http_bulk_pg_conn_t *pc,
    ngx_uint_t reusable);
void ngx_http_bulk_stats_release(ngx_http_bulk_stats_t *st);

void ngx_http_bulk_pg_taint(ngx_http_bulk_pg_conn_t *pc);
ngx_int_t ngx_http_bulk_pg_send(ngx_http_bulk_pg_conn_t *pc, const char *sql);
ngx_int_t ngx_http_bulk_pg_send_one(ngx_http_bulk_pg_conn_t *pc,
    const char *sql);
ngx_int_t ngx_http_bulk_pg_parse(ngx_http_bulk_pg_conn_t *pc,
    const char *sql);
ngx_int_t ngx_http_bulk_pg_describe(ngx_http_bulk_pg_conn_t *pc);
ngx_int_t ngx_http_bulk_pg_done(ngx_http_bulk_pg_conn_t *pc, ngx_log_t *log,
    const char *fmt, ...);
ngx_int_t ngx_http_bulk_pg_read(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on);
ngx_int_t ngx_http_bulk_pg_write(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on);

size_t ngx_http_bulk_pg_msg_len(const char *msg);


#endif /* _NGX_HTTP_BULK_PG_H_INCLUDED_ */
