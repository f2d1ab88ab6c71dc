
/*
 * ngx_bulk: per-worker PostgreSQL connection pool.
 *
 * Connections are libpq connections in non-blocking mode whose sockets are
 * nginx connections: nginx's event loop drives PQconnectPoll, PQflush and
 * PQconsumeInput.  The sockets are registered level-triggered, so one
 * PQconsumeInput per event never leaves data behind in the kernel, and a
 * consumer that stops reading (backpressure) simply removes the read event.
 */


#include "ngx_http_bulk_pg.h"
#include <arpa/inet.h>


#define NGX_HTTP_BULK_PG_CONNECT_TIMEOUT  10000


static ngx_http_bulk_pg_conn_t *ngx_http_bulk_pg_connect(
    ngx_http_bulk_pg_pool_t *pool, ngx_http_bulk_pg_waiter_t *w);
static void ngx_http_bulk_pg_poll(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_connected(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_failed(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_close(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_give(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_next(ngx_http_bulk_pg_pool_t *pool);
static ngx_int_t ngx_http_bulk_pg_want(ngx_http_bulk_pg_conn_t *pc,
    ngx_uint_t rd, ngx_uint_t wr);
static void ngx_http_bulk_pg_event(ngx_event_t *ev);
static void ngx_http_bulk_pg_timeout(ngx_event_t *ev);
static void ngx_http_bulk_pg_idle(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_notice(void *arg, const PGresult *res);
static void ngx_http_bulk_pg_waiter_event(ngx_event_t *ev);
static ngx_int_t ngx_http_bulk_pg_params(ngx_conf_t *cf,
    ngx_http_bulk_pg_pool_t *pool);
static const char *ngx_http_bulk_pg_strdup(ngx_pool_t *pool, const char *s);
static ngx_int_t ngx_http_bulk_pg_check_hosts(ngx_conf_t *cf,
    const char *hosts);
static void ngx_http_bulk_pg_waiter_error(ngx_http_bulk_pg_waiter_t *w,
    const char *msg);
static void ngx_http_bulk_pg_shutdown(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_reset(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_pg_reset_done(ngx_http_bulk_pg_conn_t *pc);
static ngx_int_t ngx_http_bulk_pg_sent(ngx_http_bulk_pg_conn_t *pc);
static ngx_int_t ngx_http_bulk_pg_next_host(ngx_http_bulk_pg_conn_t *pc);
static ngx_int_t ngx_http_bulk_pg_item(const char *list, ngx_uint_t i,
    const char **item, size_t *len);
static ngx_uint_t ngx_http_bulk_pg_items(const char *list);


/* the worker is exiting: ngx_http_bulk_pg_exit() closes what is left */
static ngx_uint_t  ngx_http_bulk_pg_exited;


#if (NGX_THREADS)

/* a cancel request on its way, in the task's memory */

typedef struct {
    ngx_queue_t                   queue;    /* in the pool's cancels */
    ngx_thread_task_t            *task;
    PGcancel                     *cancel;
    int                           pid;
    int                           ok;
    char                          err[256];
} ngx_http_bulk_pg_cancel_t;


static void ngx_http_bulk_pg_cancel_query(ngx_http_bulk_pg_pool_t *pool,
    PGconn *pg);
static void ngx_http_bulk_pg_cancel_thread(void *data, ngx_log_t *log);
static void ngx_http_bulk_pg_cancel_done(ngx_event_t *ev);

#endif


ngx_http_bulk_pg_pool_t *
ngx_http_bulk_pg_pool_get(ngx_conf_t *cf, ngx_str_t *conninfo, ngx_uint_t max,
    ngx_msec_t timeout, ngx_uint_t dedicated)
{
    u_char                      *p;
    ngx_uint_t                   i;
    ngx_http_bulk_pg_pool_t     *pool, **pp;
    ngx_http_bulk_main_conf_t   *bmcf;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_bulk_module);

    pp = bmcf->pools.elts;
    for (i = 0; i < bmcf->pools.nelts; i++) {
        if (pp[i]->max == max && pp[i]->timeout == timeout
            && pp[i]->dedicated == dedicated
            && pp[i]->conninfo.len == conninfo->len
            && ngx_strncmp(pp[i]->conninfo.data, conninfo->data,
                           conninfo->len) == 0)
        {
            return pp[i];
        }
    }

    pool = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_pg_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->conninfo.data = ngx_pnalloc(cf->pool, conninfo->len + 1);
    if (pool->conninfo.data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(pool->conninfo.data, conninfo->data, conninfo->len);
    *p = '\0';
    pool->conninfo.len = conninfo->len;
    pool->max = max;
    pool->timeout = timeout;
    pool->dedicated = dedicated;
    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiters);
    ngx_queue_init(&pool->all);
    ngx_queue_init(&pool->cancels);

#if (NGX_THREADS)
    /* nginx's default pool ("thread_pool default" sizes it) */
    pool->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (pool->thread_pool == NULL) {
        return NULL;
    }
#endif

    if (ngx_http_bulk_pg_params(cf, pool) != NGX_OK) {
        return NULL;
    }

    pp = ngx_array_push(&bmcf->pools);
    if (pp == NULL) {
        return NULL;
    }

    *pp = pool;

    return pool;
}


/*
 * The conninfo as the keys and values of PQconnectStartParams(), with
 * fallback_application_name "ngx_bulk" unless an application name is set
 */

static ngx_int_t
ngx_http_bulk_pg_params(ngx_conf_t *cf, ngx_http_bulk_pg_pool_t *pool)
{
    char               *err;
    ngx_int_t           n;
    ngx_uint_t          i, has_app, has_addr;
    const char         *host;
    PQconninfoOption   *opts, *o;

    err = NULL;
    opts = PQconninfoParse((char *) pool->conninfo.data, &err);
    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid PostgreSQL conninfo \"%V\": %*s",
                           &pool->conninfo, ngx_http_bulk_pg_msg_len(err),
                           err);
        if (err) {
            PQfreemem(err);
        }
        return NGX_ERROR;
    }

    n = 0;
    has_app = 0;
    has_addr = 0;
    host = NULL;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        n++;

        if (ngx_strcmp(o->keyword, "fallback_application_name") == 0
            || ngx_strcmp(o->keyword, "application_name") == 0)
        {
            has_app = 1;
        }

        if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            has_addr = 1;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;
        }
    }

    if (host && !has_addr && ngx_http_bulk_pg_check_hosts(cf, host) != NGX_OK)
    {
        PQconninfoFree(opts);
        return NGX_ERROR;
    }

    pool->keys = ngx_pcalloc(cf->pool, (n + 2) * sizeof(char *));
    pool->values = ngx_pcalloc(cf->pool, (n + 2) * sizeof(char *));
    if (pool->keys == NULL || pool->values == NULL) {
        PQconninfoFree(opts);
        return NGX_ERROR;
    }

    i = 0;
    pool->host_key = -1;
    pool->addr_key = -1;
    pool->port_key = -1;
    pool->nhosts = 1;
    pool->connect_timeout = NGX_HTTP_BULK_PG_CONNECT_TIMEOUT;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        pool->keys[i] = ngx_http_bulk_pg_strdup(cf->pool, o->keyword);
        pool->values[i] = ngx_http_bulk_pg_strdup(cf->pool, o->val);

        if (pool->keys[i] == NULL || pool->values[i] == NULL) {
            PQconninfoFree(opts);
            return NGX_ERROR;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            pool->host_key = i;
            pool->nhosts = ngx_http_bulk_pg_items(o->val);

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            pool->addr_key = i;
            pool->nhosts = ngx_http_bulk_pg_items(o->val);

        } else if (ngx_strcmp(o->keyword, "port") == 0) {
            pool->port_key = i;

        } else if (ngx_strcmp(o->keyword, "connect_timeout") == 0) {

            /* as libpq takes it: seconds, at least 2; 0 or none: ours */

            n = ngx_atoi((u_char *) o->val, ngx_strlen(o->val));

            if (n > 0) {
                pool->connect_timeout = ngx_max(n, 2) * 1000;
            }
        }

        i++;
    }

    PQconninfoFree(opts);

    if (!has_app) {
        pool->keys[i] = "fallback_application_name";
        pool->values[i] = "ngx_bulk";
    }

    return NGX_OK;
}


static const char *
ngx_http_bulk_pg_strdup(ngx_pool_t *pool, const char *s)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(s) + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);

    return (const char *) p;
}


/*
 * libpq resolves a host name with blocking getaddrinfo(): only unix socket
 * directories and numeric addresses are accepted without "hostaddr".
 */

static ngx_int_t
ngx_http_bulk_pg_check_hosts(ngx_conf_t *cf, const char *hosts)
{
    u_char          buf[256];
    size_t          len;
    const char     *p, *comma;
    struct in6_addr  a6;

    for (p = hosts; *p; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma == NULL) {
            comma = p + ngx_strlen(p);
        }

        len = comma - p;

        if (len == 0 || p[0] == '/' || p[0] == '@') {
            goto next;
        }

        if (len >= sizeof(buf)) {
            goto bad;
        }

        ngx_memcpy(buf, p, len);
        buf[len] = '\0';

        if (inet_pton(AF_INET, (char *) buf, &a6) == 1
            || inet_pton(AF_INET6, (char *) buf, &a6) == 1)
        {
            goto next;
        }

    bad:

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "PostgreSQL host \"%*s\" is a name: libpq would "
                           "resolve it with blocking DNS in the worker; use "
                           "a numeric address, a unix socket directory or "
                           "add \"hostaddr=\"", len, p);
        return NGX_ERROR;

    next:

        if (*comma == '\0') {
            break;
        }
    }

    return NGX_OK;
}


/* who asks the pool for connections, and whom it tells (stats: none) */

void
ngx_http_bulk_pg_waiter_init(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_pool_t *pool, ngx_http_bulk_pg_ready_pt ready,
    void *data, ngx_log_t *log)
{
    w->pool = pool;
    w->ready = ready;
    w->data = data;
    w->stats = NULL;
    w->log = log;
}


ngx_int_t
ngx_http_bulk_pg_acquire(ngx_http_bulk_pg_waiter_t *w)
{
    ngx_queue_t              *q;
    ngx_http_bulk_pg_conn_t  *pc;
    ngx_http_bulk_pg_pool_t  *pool;

    pool = w->pool;

    w->conn = NULL;
    w->pending = NULL;
    w->err[0] = '\0';

    if (w->stats && !w->stats->db_held) {
        w->stats->db_start = ngx_current_msec;
        w->stats->db_held = 1;
    }
    w->ev.handler = ngx_http_bulk_pg_waiter_event;
    w->ev.data = w;
    w->ev.log = w->log;
    w->ev.cancelable = 1;

    while (!ngx_queue_empty(&pool->idle)) {
        q = ngx_queue_head(&pool->idle);
        ngx_queue_remove(q);

        pc = ngx_queue_data(q, ngx_http_bulk_pg_conn_t, queue);
        pc->idle = 0;
        pc->c->idle = 0;

        /*
         * the server may have closed it meanwhile (a restart, a terminated
         * backend, idle_session_timeout) before its read event was seen:
         * libpq finds out when it reads
         */

        (void) PQconsumeInput(pc->pg);

        if (!pc->doomed && PQstatus(pc->pg) == CONNECTION_OK
            && PQtransactionStatus(pc->pg) == PQTRANS_IDLE)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                           "bulk pg: reuse connection %p", pc);
            pc->handler = NULL;
            pc->stats = w->stats;
            w->conn = pc;
            return NGX_OK;
        }

        ngx_http_bulk_pg_close(pc);
    }

    if (pool->nconns < pool->max) {
        pc = ngx_http_bulk_pg_connect(pool, w);
        if (pc == NULL) {
            return NGX_ERROR;
        }

        w->pending = pc;
        return NGX_AGAIN;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "bulk pg: pool full (%ui), queued", pool->nconns);

    ngx_queue_insert_tail(&pool->waiters, &w->queue);
    w->queued = 1;
    ngx_add_timer(&w->ev, pool->timeout);

    return NGX_AGAIN;
}


/* asks for a connection: w->ready gets it, or an error, now or later */

void
ngx_http_bulk_pg_get(ngx_http_bulk_pg_waiter_t *w)
{
    switch (ngx_http_bulk_pg_acquire(w)) {

    case NGX_OK:
        w->ready(w, NGX_OK);
        break;

    case NGX_ERROR:
        w->ready(w, NGX_ERROR);
        break;

    default:
        break;
    }
}


/*
 * Asks for a connection like ngx_http_bulk_pg_get(), but w->ready always
 * runs later, from the posted events: the caller may ask for several in a
 * row without one's answer ending what the caller is in the middle of.
 */

void
ngx_http_bulk_pg_ask(ngx_http_bulk_pg_waiter_t *w)
{
    if (ngx_http_bulk_pg_acquire(w) != NGX_AGAIN) {
        ngx_post_event(&w->ev, &ngx_posted_events);
    }
}


/*
 * The owner's handler runs from the posted events as if the connection
 * had data: what libpq holds already is read without a socket event.
 */

void
ngx_http_bulk_pg_post(ngx_http_bulk_pg_conn_t *pc)
{
    if (pc->c && !pc->c->read->posted) {
        ngx_post_event(pc->c->read, &ngx_posted_events);
    }
}


/* the connection a ready waiter got, with the owner's event handler */

ngx_http_bulk_pg_conn_t *
ngx_http_bulk_pg_take(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_handler_pt handler, void *data)
{
    ngx_http_bulk_pg_conn_t  *pc;

    pc = w->conn;
    w->conn = NULL;

    pc->handler = handler;
    pc->data = data;

    return pc;
}


/* the clock of $bulk_db_time stops when the request lets go */

void
ngx_http_bulk_stats_release(ngx_http_bulk_stats_t *st)
{
    if (st->db_held) {
        st->db_time += ngx_current_msec - st->db_start;
        st->db_held = 0;
    }
}


void
ngx_http_bulk_pg_cancel(ngx_http_bulk_pg_waiter_t *w)
{
    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    if (w->ev.timer_set) {
        ngx_del_timer(&w->ev);
    }

    if (w->ev.posted) {
        ngx_delete_posted_event(&w->ev);
    }

    if (w->pending) {
        w->pending->waiter = NULL;
        w->pending = NULL;
    }

    if (w->conn) {
        ngx_http_bulk_pg_release(w->conn, 1);
        w->conn = NULL;
    }

    if (w->stats) {
        ngx_http_bulk_stats_release(w->stats);
    }
}


void
ngx_http_bulk_pg_release(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t reusable)
{
    ngx_queue_t                *q;
    ngx_http_bulk_pg_pool_t    *pool;
    ngx_http_bulk_pg_waiter_t  *w;

    pool = pc->pool;
    pc->handler = NULL;
    pc->data = NULL;

    if (pc->stats) {
        ngx_http_bulk_stats_release(pc->stats);
        pc->stats = NULL;
    }

    if (reusable
        && !ngx_exiting && !ngx_terminate && !ngx_quit && !pc->doomed
        && PQstatus(pc->pg) == CONNECTION_OK
        && PQtransactionStatus(pc->pg) == PQTRANS_IDLE
        && !PQisBusy(pc->pg))
    {
        if (pc->dirty) {
            ngx_http_bulk_pg_reset(pc);
            return;
        }

        if (ngx_http_bulk_pg_want(pc, 1, 0) != NGX_OK) {
            ngx_http_bulk_pg_close(pc);
            ngx_http_bulk_pg_next(pool);
            return;
        }

        if (!ngx_queue_empty(&pool->waiters)) {
            q = ngx_queue_head(&pool->waiters);
            w = ngx_queue_data(q, ngx_http_bulk_pg_waiter_t, queue);
            ngx_http_bulk_pg_give(w, pc);
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                       "bulk pg: connection %p idle", pc);

        /* an idle nginx connection: a graceful shutdown closes it */

        pc->idle = 1;
        pc->c->idle = 1;
        pc->handler = ngx_http_bulk_pg_idle;
        ngx_queue_insert_head(&pool->idle, &pc->queue);
        return;
    }

    ngx_http_bulk_pg_close(pc);
    ngx_http_bulk_pg_next(pool);
}


/* capacity freed: open a connection for the first queued request */

static void
ngx_http_bulk_pg_next(ngx_http_bulk_pg_pool_t *pool)
{
    ngx_queue_t                *q;
    ngx_http_bulk_pg_conn_t    *pc;
    ngx_http_bulk_pg_waiter_t  *w;

    if (ngx_queue_empty(&pool->waiters) || pool->nconns >= pool->max) {
        return;
    }

    q = ngx_queue_head(&pool->waiters);
    w = ngx_queue_data(q, ngx_http_bulk_pg_waiter_t, queue);

    ngx_queue_remove(q);
    w->queued = 0;

    pc = ngx_http_bulk_pg_connect(pool, w);
    if (pc == NULL) {
        if (w->ev.timer_set) {
            ngx_del_timer(&w->ev);
        }
        ngx_post_event(&w->ev, &ngx_posted_events);
        return;
    }

    w->pending = pc;
}


static void
ngx_http_bulk_pg_give(ngx_http_bulk_pg_waiter_t *w,
    ngx_http_bulk_pg_conn_t *pc)
{
    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    if (w->ev.timer_set) {
        ngx_del_timer(&w->ev);
    }

    w->pending = NULL;
    w->conn = pc;
    pc->idle = 0;
    pc->c->idle = 0;
    pc->handler = NULL;
    pc->stats = w->stats;

    ngx_post_event(&w->ev, &ngx_posted_events);
}


static void
ngx_http_bulk_pg_waiter_event(ngx_event_t *ev)
{
    ngx_http_bulk_pg_waiter_t  *w;

    w = ev->data;

    /* an answer posted before the queue timeout: the timer goes */

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (w->conn) {
        w->ready(w, NGX_OK);
        return;
    }

    if (ev->timedout) {
        ev->timedout = 0;

        if (w->queued) {
            ngx_queue_remove(&w->queue);
            w->queued = 0;
        }

        ngx_snprintf(w->err, sizeof(w->err) - 1,
                     "all %ui database connections are busy%Z",
                     w->pool->max);
        w->ready(w, NGX_BUSY);
        return;
    }

    w->ready(w, NGX_ERROR);
}


static ngx_http_bulk_pg_conn_t *
ngx_http_bulk_pg_connect(ngx_http_bulk_pg_pool_t *pool,
    ngx_http_bulk_pg_waiter_t *w)
{
    ngx_socket_t              fd;
    ngx_connection_t         *c;
    ngx_http_bulk_pg_conn_t  *pc;

    pc = ngx_calloc(sizeof(ngx_http_bulk_pg_conn_t), ngx_cycle->log);
    if (pc == NULL) {
        return NULL;
    }

    pc->pool = pool;
    pc->log = *ngx_cycle->log;

    pc->pg = PQconnectStartParams(pool->keys, pool->values, 0);
    if (pc->pg == NULL) {
        ngx_cpystrn(w->err, (u_char *) "out of memory", sizeof(w->err));
        ngx_free(pc);
        return NULL;
    }

    fd = PQsocket(pc->pg);

    if (PQstatus(pc->pg) == CONNECTION_BAD || fd == -1) {
        ngx_http_bulk_pg_waiter_error(w, PQerrorMessage(pc->pg));
        PQfinish(pc->pg);
        ngx_free(pc);
        return NULL;
    }

    c = ngx_get_connection(fd, ngx_cycle->log);
    if (c == NULL) {
        ngx_cpystrn(w->err, (u_char *) "no free worker connections",
                    sizeof(w->err));
        PQfinish(pc->pg);
        ngx_free(pc);
        return NULL;
    }

    c->data = pc;
    c->log = &pc->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_bulk_pg_event;
    c->write->handler = ngx_http_bulk_pg_event;

    pc->c = c;
    pc->connecting = 1;
    pc->waiter = w;

    pc->timer.handler = ngx_http_bulk_pg_timeout;
    pc->timer.data = pc;
    pc->timer.log = c->log;
    pc->timer.cancelable = 1;

    pool->nconns++;
    ngx_queue_insert_tail(&pool->all, &pc->all);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "bulk pg: connecting %p, %ui open", pc, pool->nconns);

    ngx_add_timer(&pc->timer, pool->connect_timeout);

    if (ngx_http_bulk_pg_want(pc, 0, 1) != NGX_OK) {
        ngx_http_bulk_pg_close(pc);
        return NULL;
    }

    return pc;
}


static void
ngx_http_bulk_pg_poll(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_socket_t                 fd;
    PostgresPollingStatusType    st;

    /* the socket may change under PQconnectPoll: unregister it first */

    if (ngx_http_bulk_pg_want(pc, 0, 0) != NGX_OK) {
        ngx_http_bulk_pg_failed(pc);
        return;
    }

    st = PQconnectPoll(pc->pg);
    fd = PQsocket(pc->pg);

    if (fd == -1) {
        ngx_http_bulk_pg_failed(pc);
        return;
    }

    if (fd != pc->c->fd && st != PGRES_POLLING_OK) {
        /* libpq went on to the next host: a connect timeout of its own */
        ngx_add_timer(&pc->timer, pc->pool->connect_timeout);
    }

    pc->c->fd = fd;

    switch (st) {

    case PGRES_POLLING_READING:
        if (ngx_http_bulk_pg_want(pc, 1, 0) != NGX_OK) {
            ngx_http_bulk_pg_failed(pc);
        }
        return;

    case PGRES_POLLING_WRITING:
        if (ngx_http_bulk_pg_want(pc, 0, 1) != NGX_OK) {
            ngx_http_bulk_pg_failed(pc);
        }
        return;

    case PGRES_POLLING_OK:
        ngx_http_bulk_pg_connected(pc);
        return;

    default:
        ngx_http_bulk_pg_failed(pc);
        return;
    }
}


static void
ngx_http_bulk_pg_connected(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_http_bulk_pg_waiter_t  *w;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    pc->connecting = 0;

    if (PQsetnonblocking(pc->pg, 1) != 0) {
        ngx_http_bulk_pg_failed(pc);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                   "bulk pg: connected %p", pc);

    (void) PQsetNoticeReceiver(pc->pg, ngx_http_bulk_pg_notice, pc);

    w = pc->waiter;
    pc->waiter = NULL;

    if (w) {
        if (ngx_http_bulk_pg_want(pc, 1, 0) != NGX_OK) {
            ngx_http_bulk_pg_failed(pc);
            return;
        }

        ngx_http_bulk_pg_give(w, pc);
        return;
    }

    /* the request went away meanwhile: the connection serves others */

    ngx_http_bulk_pg_release(pc, 1);
}


static void
ngx_http_bulk_pg_failed(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_http_bulk_pg_pool_t    *pool;
    ngx_http_bulk_pg_waiter_t  *w;

    w = pc->waiter;
    pool = pc->pool;

    if (w) {
        ngx_http_bulk_pg_waiter_error(w, PQerrorMessage(pc->pg));

        if (w->err[0] == '\0') {
            ngx_cpystrn(w->err, (u_char *) "connection failed",
                        sizeof(w->err));
        }

        ngx_log_error(NGX_LOG_ERR, pc->c->log, 0,
                      "bulk pg: cannot connect to PostgreSQL: %s", w->err);

        w->pending = NULL;
        pc->waiter = NULL;
    }

    ngx_http_bulk_pg_close(pc);

    if (w) {
        /* the queue timeout is over for this waiter */

        if (w->ev.timer_set) {
            ngx_del_timer(&w->ev);
        }

        ngx_post_event(&w->ev, &ngx_posted_events);
    }

    /* the capacity is free again: the next queued request tries */

    ngx_http_bulk_pg_next(pool);
}


static void
ngx_http_bulk_pg_close(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_connection_t         *c;
    ngx_http_bulk_pg_pool_t  *pool;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulk pg: close connection %p", pc);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->idle) {
        ngx_queue_remove(&pc->queue);
        pc->idle = 0;
    }

    ngx_queue_remove(&pc->all);

    c = pc->c;

    if (c) {
        (void) ngx_http_bulk_pg_want(pc, 0, 0);

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        c->read->closed = 1;
        c->write->closed = 1;
        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
        pc->c = NULL;
    }

    pool = pc->pool;

#if (NGX_THREADS)

    /*
     * a query still running (a request went away in the middle of it) is
     * cancelled: closing the socket stops a backend only when it next
     * writes to it
     */

    if (!pc->connecting && !ngx_http_bulk_pg_exited
        && PQstatus(pc->pg) == CONNECTION_OK
        && PQtransactionStatus(pc->pg) == PQTRANS_ACTIVE)
    {
        ngx_http_bulk_pg_cancel_query(pool, pc->pg);
    }

#endif

    /* libpq closes the socket; in non-blocking mode PQfinish never waits */

    PQfinish(pc->pg);

    pool->nconns--;

    ngx_free(pc);
}


#if (NGX_THREADS)

/*
 * A query still running when its connection is closed (its request went
 * away) is cancelled with the backend's own cancel key: PQcancel() opens a
 * connection of its own and waits for it, so it runs in nginx's thread
 * pool.  No other connection of the pool is used, nothing waits in the
 * pool's queue, and a pid reused meanwhile is never signalled.
 */

static void
ngx_http_bulk_pg_cancel_query(ngx_http_bulk_pg_pool_t *pool, PGconn *pg)
{
    ngx_thread_task_t          *task;
    ngx_http_bulk_pg_cancel_t  *cc;

    if (pool->thread_pool == NULL) {
        return;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_bulk_pg_cancel_t), ngx_cycle->log);
    if (task == NULL) {
        return;
    }

    cc = (ngx_http_bulk_pg_cancel_t *) (task + 1);

    cc->cancel = PQgetCancel(pg);
    if (cc->cancel == NULL) {
        ngx_free(task);
        return;
    }

    cc->task = task;
    cc->pid = PQbackendPID(pg);

    task->ctx = cc;
    task->handler = ngx_http_bulk_pg_cancel_thread;
    task->event.handler = ngx_http_bulk_pg_cancel_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "bulk pg: cancel the query of backend %d", cc->pid);

    if (ngx_thread_task_post(pool->thread_pool, task) != NGX_OK) {
        PQfreeCancel(cc->cancel);
        ngx_free(task);
        return;
    }

    ngx_queue_insert_tail(&pool->cancels, &cc->queue);
}


/* in a thread of the pool */

static void
ngx_http_bulk_pg_cancel_thread(void *data, ngx_log_t *log)
{
    ngx_http_bulk_pg_cancel_t  *cc = data;

    cc->ok = PQcancel(cc->cancel, cc->err, sizeof(cc->err));
}


static void
ngx_http_bulk_pg_cancel_done(ngx_event_t *ev)
{
    ngx_thread_task_t          *task;
    ngx_http_bulk_pg_cancel_t  *cc;

    task = ev->data;
    cc = task->ctx;

    if (!cc->ok) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "bulk pg: cannot cancel the query of backend %d: %*s",
                      cc->pid, ngx_http_bulk_pg_msg_len(cc->err), cc->err);
    }

    ngx_queue_remove(&cc->queue);
    PQfreeCancel(cc->cancel);
    ngx_free(task);
}

#endif


static ngx_int_t
ngx_http_bulk_pg_want(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t rd,
    ngx_uint_t wr)
{
    ngx_connection_t  *c;

    c = pc->c;

    if (PQsocket(pc->pg) != c->fd) {

        /*
         * libpq closed the socket after an error: the kernel dropped it
         * from epoll, and the descriptor may already belong to another
         * connection, so it is not touched
         */

        c->read->active = 0;
        c->write->active = 0;
        pc->want_read = 0;
        pc->want_write = 0;

        return (rd || wr) ? NGX_ERROR : NGX_OK;
    }

    if (rd && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!rd && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (wr && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!wr && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    pc->want_read = rd;
    pc->want_write = wr;

    return NGX_OK;
}


static void
ngx_http_bulk_pg_timeout(ngx_event_t *ev)
{
    ngx_http_bulk_pg_conn_t  *pc;

    pc = ev->data;

    if (!pc->connecting) {
        return;
    }

    switch (ngx_http_bulk_pg_next_host(pc)) {

    case NGX_OK:
        return;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "bulk pg: connect timed out");
        ngx_http_bulk_pg_failed(pc);
        return;

    default: /* NGX_ERROR */
        ngx_http_bulk_pg_failed(pc);
        return;
    }
}


/*
 * A host of a multi-host conninfo did not answer within the connect
 * timeout: libpq gives up on a host by itself only when connecting to it
 * fails (PQconnectPoll() leaves connect_timeout to the application), so a
 * host that accepts and then says nothing, or drops packets, would hold
 * the attempt.  The attempt starts again with the hosts after it.
 * NGX_OK: under way; NGX_DECLINED: it was the last; NGX_ERROR: failed.
 */

static ngx_int_t
ngx_http_bulk_pg_next_host(ngx_http_bulk_pg_conn_t *pc)
{
    char                     *p, *buf;
    size_t                    len, n;
    ngx_int_t                 rc;
    ngx_uint_t                i, k, cur, key[3];
    const char               *host, *port, *item, *pitem, **values;
    ngx_socket_t              fd;
    ngx_http_bulk_pg_pool_t  *pool;

    pool = pc->pool;

    if (pc->first + 1 >= pool->nhosts) {
        return NGX_DECLINED;
    }

    /* which host libpq is at: the first of those left that matches */

    host = PQhost(pc->pg);
    port = PQport(pc->pg);

    for (cur = pc->first; cur < pool->nhosts; cur++) {
        if (ngx_http_bulk_pg_item(pool->values[pool->host_key >= 0
                                               ? pool->host_key
                                               : pool->addr_key],
                                  cur, &item, &n)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (host == NULL || ngx_strlen(host) != n
            || ngx_strncmp(host, item, n) != 0)
        {
            continue;
        }

        if (pool->port_key < 0 || port == NULL
            || ngx_http_bulk_pg_item(pool->values[pool->port_key], cur,
                                     &pitem, &n)
               != NGX_OK
            || (ngx_strlen(port) == n && ngx_strncmp(port, pitem, n) == 0))
        {
            break;
        }
    }

    if (cur + 1 >= pool->nhosts) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, pc->c->log, 0,
                  "bulk pg: PostgreSQL host \"%s\" port %s did not answer "
                  "within the connect timeout, trying the next host",
                  host ? host : "", port ? port : "");

    /* the same parameters, the host lists from the next one on */

    key[0] = pool->host_key;
    key[1] = pool->addr_key;
    key[2] = pool->port_key;

    len = 0;

    for (k = 0; k < 3; k++) {
        if ((ngx_int_t) key[k] >= 0) {
            len += ngx_strlen(pool->values[key[k]]) + 1;
        }
    }

    i = 0;
    while (pool->keys[i]) {
        i++;
    }

    values = ngx_alloc((i + 1) * sizeof(char *) + len, pc->c->log);
    if (values == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(values, pool->values, (i + 1) * sizeof(char *));
    buf = (char *) (values + i + 1);

    for (k = 0; k < 3; k++) {
        if ((ngx_int_t) key[k] < 0) {
            continue;
        }

        /* a list of one (a port for all hosts) stays as it is */

        if (ngx_http_bulk_pg_items(pool->values[key[k]]) == 1) {
            continue;
        }

        if (ngx_http_bulk_pg_item(pool->values[key[k]], cur + 1, &item, &n)
            != NGX_OK)
        {
            ngx_free(values);
            return NGX_DECLINED;
        }

        p = (char *) ngx_cpymem(buf, item, ngx_strlen(item));
        *p++ = '\0';
        values[key[k]] = buf;
        buf = p;
    }

    /* the old socket leaves epoll before libpq closes it */

    (void) ngx_http_bulk_pg_want(pc, 0, 0);

    PQfinish(pc->pg);

    pc->pg = PQconnectStartParams(pool->keys, values, 0);
    ngx_free(values);

    pc->first = cur + 1;

    fd = PQsocket(pc->pg);

    if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD || fd == -1) {
        return NGX_ERROR;
    }

    pc->c->fd = fd;

    ngx_add_timer(&pc->timer, pool->connect_timeout);

    rc = ngx_http_bulk_pg_want(pc, 0, 1);

    return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
}


/* the number of items of a comma-separated list */

static ngx_uint_t
ngx_http_bulk_pg_items(const char *list)
{
    ngx_uint_t  n;

    for (n = 1; *list; list++) {
        if (*list == ',') {
            n++;
        }
    }

    return n;
}


/* item i of a comma-separated list: its start and length, to the end */

static ngx_int_t
ngx_http_bulk_pg_item(const char *list, ngx_uint_t i, const char **item,
    size_t *len)
{
    const char  *p, *comma;

    p = list;

    while (i--) {
        comma = strchr(p, ',');
        if (comma == NULL) {
            return NGX_DECLINED;
        }

        p = comma + 1;
    }

    *item = p;
    comma = strchr(p, ',');
    *len = comma ? (size_t) (comma - p) : ngx_strlen(p);

    return NGX_OK;
}


static void
ngx_http_bulk_pg_event(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_bulk_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (c->close) {
        /* nginx shuts down: idle connections, or all at its timeout */
        c->close = 0;
        ngx_http_bulk_pg_shutdown(pc);
        return;
    }

    if (pc->connecting) {
        ngx_http_bulk_pg_poll(pc);
        return;
    }

    if (ev->write) {
        if (PQflush(pc->pg) != 1) {
            /* flushed, or failed: the owner sees a failure in the result */
            if (ngx_http_bulk_pg_want(pc, pc->want_read, 0) != NGX_OK) {
                /* void */
            }
        }

    } else {
        (void) PQconsumeInput(pc->pg);
    }

    if (pc->handler) {
        pc->handler(pc);
    }
}


/*
 * Notices and warnings go to the error log (at info: a query may raise
 * many); a FATAL one means the server is about to close the connection
 * (a terminated backend, a shutdown): it is never handed out again, even
 * before its socket says so.
 */

static void
ngx_http_bulk_pg_notice(void *arg, const PGresult *res)
{
    ngx_http_bulk_pg_conn_t  *pc = arg;

    const char  *severity, *msg;

    severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    msg = PQresultErrorMessage(res);

    if (severity
        && (ngx_strcmp(severity, "FATAL") == 0
            || ngx_strcmp(severity, "PANIC") == 0))
    {
        pc->doomed = 1;
    }

    ngx_log_error(NGX_LOG_INFO, &pc->log, 0, "bulk pg: %*s",
                  ngx_http_bulk_pg_msg_len(msg), msg);
}


static void
ngx_http_bulk_pg_idle(ngx_http_bulk_pg_conn_t *pc)
{
    PGnotify  *n;

    while ((n = PQnotifies(pc->pg)) != NULL) {
        PQfreemem(n);
    }

    if (PQstatus(pc->pg) != CONNECTION_OK || PQisBusy(pc->pg) || pc->doomed)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                       "bulk pg: idle connection %p closed by server", pc);
        ngx_http_bulk_pg_release(pc, 0);
        return;
    }

    if (pc->want_write) {
        (void) ngx_http_bulk_pg_want(pc, 1, 0);
    }
}


/*
 * The owner runs SQL it does not control ($dump-sql): whatever that SQL
 * leaves in the session (settings, advisory locks, LISTEN, prepared
 * statements, temporary tables) is discarded before the connection
 * serves anyone else.
 */

void
ngx_http_bulk_pg_taint(ngx_http_bulk_pg_conn_t *pc)
{
    pc->dirty = 1;
}


/* back to the state of a fresh connection, then into the pool */

static void
ngx_http_bulk_pg_reset(ngx_http_bulk_pg_conn_t *pc)
{
    pc->resetting = 1;
    pc->handler = ngx_http_bulk_pg_reset_done;
    pc->data = NULL;

    if (ngx_http_bulk_pg_send(pc, "DISCARD ALL") != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, pc->c->log, 0,
                      "bulk pg: cannot reset a connection: %*s",
                      ngx_http_bulk_pg_msg_len(PQerrorMessage(pc->pg)),
                      PQerrorMessage(pc->pg));
        pc->resetting = 0;
        ngx_http_bulk_pg_release(pc, 0);
    }
}


static void
ngx_http_bulk_pg_reset_done(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_int_t  rc;

    rc = ngx_http_bulk_pg_done(pc, pc->c->log,
                               "bulk pg: cannot reset a connection");

    if (rc == NGX_AGAIN) {
        return;
    }

    pc->resetting = 0;
    pc->dirty = (rc != NGX_OK);

    ngx_http_bulk_pg_release(pc, rc == NGX_OK);
}


/*
 * nginx shuts down (worker_shutdown_timeout): an idle connection closes; a
 * busy one is cut (shutdown(2): libpq sees the server gone) and its owner
 * fails on it and releases it, so nothing is freed under its feet.
 */

static void
ngx_http_bulk_pg_shutdown(ngx_http_bulk_pg_conn_t *pc)
{
    if (pc->idle || pc->resetting) {
        ngx_http_bulk_pg_release(pc, 0);
        return;
    }

    if (pc->connecting) {
        if (pc->waiter) {
            ngx_http_bulk_pg_failed(pc);

        } else {
            ngx_http_bulk_pg_release(pc, 0);
        }

        return;
    }

    if (PQsocket(pc->pg) == pc->c->fd) {
        (void) shutdown(pc->c->fd, SHUT_RDWR);
    }

    (void) PQconsumeInput(pc->pg);

    if (pc->handler) {
        pc->handler(pc);
    }
}


ngx_int_t
ngx_http_bulk_pg_send(ngx_http_bulk_pg_conn_t *pc, const char *sql)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                   "bulk pg: query \"%s\"", sql);

    if (!PQsendQuery(pc->pg, sql)) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_pg_sent(pc);
}


/*
 * One statement with the extended query protocol: PostgreSQL refuses a
 * string of several statements there, whatever it holds.
 */

ngx_int_t
ngx_http_bulk_pg_send_one(ngx_http_bulk_pg_conn_t *pc, const char *sql)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                   "bulk pg: statement \"%s\"", sql);

    if (!PQsendQueryParams(pc->pg, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_pg_sent(pc);
}


/*
 * One statement parsed as the unnamed prepared statement, not run (the
 * extended query protocol: one statement only), and its description.
 */

ngx_int_t
ngx_http_bulk_pg_parse(ngx_http_bulk_pg_conn_t *pc, const char *sql)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->c->log, 0,
                   "bulk pg: parse \"%s\"", sql);

    if (!PQsendPrepare(pc->pg, "", sql, 0, NULL)) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_pg_sent(pc);
}


ngx_int_t
ngx_http_bulk_pg_describe(ngx_http_bulk_pg_conn_t *pc)
{
    if (!PQsendDescribePrepared(pc->pg, "")) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_pg_sent(pc);
}


/* what was sent goes out as the socket takes it; the answer is awaited */

static ngx_int_t
ngx_http_bulk_pg_sent(ngx_http_bulk_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pg);
    if (rc == -1) {
        return NGX_ERROR;
    }

    return ngx_http_bulk_pg_want(pc, 1, rc == 1);
}


/*
 * The results of statements that return no rows, read to their end:
 * NGX_AGAIN while more are to come, NGX_OK when all of them succeeded,
 * NGX_DECLINED when one failed (logged at error after what fmt says),
 * NGX_ERROR when the connection is lost.
 */

ngx_int_t
ngx_http_bulk_pg_done(ngx_http_bulk_pg_conn_t *pc, ngx_log_t *log,
    const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    PGresult   *res;
    ngx_int_t   rc;
    u_char      what[256];

    rc = NGX_OK;

    for ( ;; ) {
        if (PQisBusy(pc->pg)) {
            return (PQstatus(pc->pg) == CONNECTION_OK) ? NGX_AGAIN
                                                        : NGX_ERROR;
        }

        res = PQgetResult(pc->pg);
        if (res == NULL) {
            return rc;
        }

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            va_start(args, fmt);
            p = ngx_vslprintf(what, what + sizeof(what), fmt, args);
            va_end(args);

            ngx_log_error(NGX_LOG_ERR, log, 0, "%*s: %*s", p - what, what,
                          ngx_http_bulk_pg_msg_len(PQresultErrorMessage(res)),
                          PQresultErrorMessage(res));
            rc = NGX_DECLINED;
        }

        PQclear(res);
    }
}


ngx_int_t
ngx_http_bulk_pg_read(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on)
{
    return ngx_http_bulk_pg_want(pc, on, pc->want_write);
}


/* the worker exits: close whatever is left so no socket is reported open */

void
ngx_http_bulk_pg_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_http_bulk_pg_conn_t    *pc;
    ngx_http_bulk_pg_pool_t   **pp;
    ngx_http_bulk_main_conf_t  *bmcf;
#if (NGX_THREADS)
    ngx_http_bulk_pg_cancel_t  *cc;
#endif

    bmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_bulk_module);
    if (bmcf == NULL) {
        return;
    }

    /*
     * nginx's thread pools are gone by now (their exit hook runs first):
     * the connections closed here cancel nothing, their backends stop
     * when they next write
     */

    ngx_http_bulk_pg_exited = 1;

    pp = bmcf->pools.elts;

    for (i = 0; i < bmcf->pools.nelts; i++) {
#if (NGX_THREADS)

        /* the thread pool has stopped: requests not reported are freed */

        while (!ngx_queue_empty(&pp[i]->cancels)) {
            q = ngx_queue_head(&pp[i]->cancels);
            cc = ngx_queue_data(q, ngx_http_bulk_pg_cancel_t, queue);
            ngx_queue_remove(q);
            PQfreeCancel(cc->cancel);
            ngx_free(cc->task);
        }

#endif

        while (!ngx_queue_empty(&pp[i]->all)) {
            q = ngx_queue_head(&pp[i]->all);
            pc = ngx_queue_data(q, ngx_http_bulk_pg_conn_t, all);
            pc->waiter = NULL;
            ngx_http_bulk_pg_close(pc);
        }
    }
}


ngx_int_t
ngx_http_bulk_pg_write(ngx_http_bulk_pg_conn_t *pc, ngx_uint_t on)
{
    return ngx_http_bulk_pg_want(pc, pc->want_read, on);
}


/* the length of a libpq message without its trailing newline and spaces */

size_t
ngx_http_bulk_pg_msg_len(const char *msg)
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


/* why a waiter gets no connection: a libpq message, trimmed */

static void
ngx_http_bulk_pg_waiter_error(ngx_http_bulk_pg_waiter_t *w, const char *msg)
{
    size_t  len;

    len = ngx_min(ngx_http_bulk_pg_msg_len(msg), sizeof(w->err) - 1);

    if (len) {
        ngx_memcpy(w->err, msg, len);
    }

    w->err[len] = '\0';
}
