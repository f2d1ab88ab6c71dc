
/*
 * ngx_bulk: $import jobs shared by every nginx node on one database
 * (bulk_import_lease <time>).
 *
 * The kick-off writes the job (bulkimportjob) and one row per input
 * (bulkimportinput, status waiting) in one transaction and answers 202
 * with the status read back from them.  Every worker of every node runs a
 * tick every third of the lease: one round trip renews the leases of the
 * inputs it runs (and learns of a cancel, or of a lease another worker
 * took over), and claims up to bulk_import_concurrency minus what it runs
 * of the inputs that are waiting or whose lease expired:
 *
 *   UPDATE bulkimportinput ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)
 *
 * A claimed input is a $load on a fake request (as a local job's input)
 * that skips the lines its row says were committed, and writes its row in
 * each batch's own transaction, checking that it still owns the input and
 * that the job is still active: a batch and the count of what it loaded
 * commit together or not at all, so a job resumed anywhere ends with exact
 * totals.  The input's last write sets its status; the write that leaves
 * no input open ends the job and stores the status resource in
 * bulkimportstatus.  Any node answers GET and DELETE from the tables.
 *
 * Every step of an input is dispatched from its load's callbacks (commit,
 * done) and from the worker's tick; one input writes one thing at a time.
 */


#include "ngx_http_bulk_import_nodes.h"
#include "ngx_http_bulk_import.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_json.h"
#include <sys/random.h>


#define NGX_HTTP_BULK_NODES_RESULTS   8
#define NGX_HTTP_BULK_NODES_ISSUES    10
#define NGX_HTTP_BULK_NODES_ISSUE_LEN 200


typedef struct ngx_http_bulk_nodes_query_s  ngx_http_bulk_nodes_query_t;

typedef u_char *(*ngx_http_bulk_nodes_build_pt)(
    ngx_http_bulk_nodes_query_t *q, PGconn *pg);
typedef void (*ngx_http_bulk_nodes_done_pt)(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);


/* one round trip on a pool connection, its row sets kept for the caller */

struct ngx_http_bulk_nodes_query_s {
    ngx_http_bulk_pg_waiter_t      waiter;
    ngx_http_bulk_pg_conn_t       *pc;
    ngx_http_bulk_nodes_build_pt   build;   /* the SQL, once connected */
    ngx_http_bulk_nodes_done_pt    done;
    void                          *data;
    PGresult                      *res[NGX_HTTP_BULK_NODES_RESULTS];
    ngx_uint_t                     nres;
    u_char                         err[256];
};


/* an input's last write: what it says */

typedef enum {
    ngx_http_bulk_nodes_end_finished = 0,
    ngx_http_bulk_nodes_end_failed,      /* cancelled if the job is */
    ngx_http_bulk_nodes_end_released,    /* back to waiting: nginx exits */
    ngx_http_bulk_nodes_end_lost         /* not ours any more: no write */
} ngx_http_bulk_nodes_end_e;


/* an input's state: running -> ending (its last write) -> status (the
   job's resource, when this input ended the job) -> freed */

typedef enum {
    ngx_http_bulk_nodes_running = 0,
    ngx_http_bulk_nodes_ending,
    ngx_http_bulk_nodes_status_read,
    ngx_http_bulk_nodes_status_write
} ngx_http_bulk_nodes_state_e;


typedef struct {
    ngx_queue_t                    queue;   /* the worker's inputs */
    ngx_pool_t                    *pool;    /* of the fake request */
    ngx_str_t                      job;
    ngx_uint_t                     n;
    ngx_str_t                      type;
    ngx_str_t                      url;
    ngx_http_bulk_load_opts_t      opts;
    ngx_uint_t                     fhir;

    uint64_t                       lines;   /* committed before this run */
    off_t                          pos;     /* where they end, if plain */
    ngx_str_t                      validator; /* of the source they came
                                               from (ETag, Last-Modified) */
    uint64_t                       total;
    uint64_t                       errors;
    ngx_uint_t                     nissues; /* in the row */

    ngx_http_bulk_load_t          *load;
    ngx_http_bulk_nodes_state_e    state;
    ngx_http_bulk_nodes_end_e      end;
    ngx_uint_t                     tick;    /* renewed in this tick */
    ngx_http_bulk_load_progress_t  last;    /* at the load's end */
    u_char                        *json;    /* the job's status resource */
    size_t                         json_len;
    ngx_http_bulk_nodes_query_t    q;
    unsigned                       stopping:1; /* cancelled or released */
} ngx_http_bulk_nodes_input_t;


typedef struct {
    ngx_str_t                      owner;   /* host/pid/random */
    ngx_msec_t                     lease;
    ngx_http_conf_ctx_t           *ctx;     /* the bulk_import location */
    ngx_http_bulk_loc_conf_t      *conf;
    ngx_log_t                     *log;
    ngx_pool_t                    *pool;
    ngx_pool_t                    *tick_pool;
    ngx_event_t                    tick;
    ngx_event_t                    reap;
    ngx_queue_t                    inputs;
    ngx_uint_t                     running;
    ngx_uint_t                     ticks;
    ngx_uint_t                     claim;   /* asked for in this tick */
    ngx_uint_t                     renew;   /* idem */
    ngx_array_t                    dead;    /* ngx_pool_t *: to destroy */
    ngx_http_bulk_nodes_query_t    q;
    unsigned                       busy:1;
} ngx_http_bulk_nodes_worker_t;


/*
 * GET /BulkImportStatus: the ids of the running jobs (newest first), then
 * each of the first count of them rendered as GET answers it, one round
 * trip each; the table's part follows (ngx_http_bulk_import_list_tables)
 */

typedef struct {
    ngx_http_request_t            *request;
    ngx_uint_t                     count;
    ngx_uint_t                     html;
    ngx_str_t                     *ids;     /* the running jobs' */
    ngx_msec_t                    *starts;
    ngx_uint_t                     nids;
    ngx_uint_t                     next;    /* the next to render */
    ngx_str_t                      lit;     /* ids, an array literal */
    ngx_array_t                    entries; /* ngx_http_bulk_import_entry_t */
    ngx_http_bulk_pg_pool_t       *pool;
    ngx_http_bulk_nodes_query_t    q;
} ngx_http_bulk_nodes_list_t;


/* GET, DELETE and the kick-off: a request waiting for the tables */

typedef struct {
    ngx_http_request_t            *request;
    ngx_str_t                      id;
    ngx_http_bulk_nodes_job_t     *job;     /* a kick-off: &copy */
    ngx_http_bulk_nodes_job_t      copy;
    u_char                         gen[32];
    ngx_http_bulk_nodes_query_t    q;
} ngx_http_bulk_nodes_req_t;


static void ngx_http_bulk_nodes_query(ngx_http_bulk_nodes_query_t *q,
    ngx_http_bulk_pg_pool_t *pool, ngx_log_t *log,
    ngx_http_bulk_nodes_build_pt build, ngx_http_bulk_nodes_done_pt done,
    void *data);
static void ngx_http_bulk_nodes_query_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_nodes_query_result(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_nodes_query_clear(ngx_http_bulk_nodes_query_t *q);
static void ngx_http_bulk_nodes_query_cancel(ngx_http_bulk_nodes_query_t *q);
static char *ngx_http_bulk_nodes_lit(ngx_pool_t *pool, PGconn *pg,
    ngx_str_t *s);
static ngx_msec_t ngx_http_bulk_nodes_now(void);

static void ngx_http_bulk_nodes_tick(ngx_event_t *ev);
static void ngx_http_bulk_nodes_schedule(ngx_msec_t delay);
static u_char *ngx_http_bulk_nodes_tick_sql(ngx_http_bulk_nodes_query_t *q,
    PGconn *pg);
static void ngx_http_bulk_nodes_tick_done(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static void ngx_http_bulk_nodes_renewed(PGresult *res);
static void ngx_http_bulk_nodes_claimed(PGresult *res, int row);
static u_char *ngx_http_bulk_nodes_commit(ngx_http_bulk_load_t *load,
    void *data, PGconn *pg);
static void ngx_http_bulk_nodes_input_done(ngx_http_bulk_load_t *load,
    void *data);
static void ngx_http_bulk_nodes_input_end(ngx_http_bulk_nodes_input_t *in);
static u_char *ngx_http_bulk_nodes_end_sql(ngx_http_bulk_nodes_query_t *q,
    PGconn *pg);
static void ngx_http_bulk_nodes_ended(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static u_char *ngx_http_bulk_nodes_read_sql(ngx_http_bulk_nodes_query_t *q,
    PGconn *pg);
static u_char *ngx_http_bulk_nodes_save_sql(ngx_http_bulk_nodes_query_t *q,
    PGconn *pg);
static void ngx_http_bulk_nodes_input_free(ngx_http_bulk_nodes_input_t *in);
static void ngx_http_bulk_nodes_reap(ngx_event_t *ev);

static u_char *ngx_http_bulk_nodes_submit_sql(
    ngx_http_bulk_nodes_query_t *q, PGconn *pg);
static void ngx_http_bulk_nodes_submitted(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static u_char *ngx_http_bulk_nodes_status_sql(
    ngx_http_bulk_nodes_query_t *q, PGconn *pg);
static void ngx_http_bulk_nodes_status_done(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static ngx_int_t ngx_http_bulk_nodes_req(ngx_http_request_t *r,
    ngx_str_t *id, ngx_http_bulk_nodes_job_t *job,
    ngx_http_bulk_nodes_build_pt build, ngx_http_bulk_nodes_done_pt done);
static void ngx_http_bulk_nodes_req_cleanup(void *data);
static u_char *ngx_http_bulk_nodes_list_sql(ngx_http_bulk_nodes_query_t *q,
    PGconn *pg);
static void ngx_http_bulk_nodes_listed(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static u_char *ngx_http_bulk_nodes_list_job_sql(
    ngx_http_bulk_nodes_query_t *q, PGconn *pg);
static void ngx_http_bulk_nodes_list_job(ngx_http_bulk_nodes_query_t *q,
    ngx_int_t rc);
static void ngx_http_bulk_nodes_list_next(ngx_http_bulk_nodes_list_t *ls);
static void ngx_http_bulk_nodes_list_cleanup(void *data);


static ngx_http_bulk_nodes_worker_t  *ngx_http_bulk_nodes_worker;


/*
 * The statement that ends a job once none of its inputs is open: failed
 * when one failed, cancelled when it was; the caller locked the job row
 * first, so of two inputs ending at once the second sees the first.
 */

#define NGX_HTTP_BULK_NODES_JOB_END                                          \
    "UPDATE bulkimportjob j SET end_ms = %M, status = CASE"                  \
    " WHEN j.status = 'cancelled' THEN 'cancelled'"                          \
    " WHEN EXISTS (SELECT 1 FROM bulkimportinput x WHERE x.job = j.id"       \
    " AND x.status <> 'finished') THEN 'failed' ELSE 'finished' END"         \
    " WHERE j.id = %s AND j.end_ms = 0 AND NOT EXISTS (SELECT 1"             \
    " FROM bulkimportinput x WHERE x.job = j.id"                             \
    " AND x.status IN ('waiting', 'active')) RETURNING j.status;"


/* the worker */

void
ngx_http_bulk_nodes_init_process(ngx_cycle_t *cycle)
{
    u_char                         *p;
    ngx_pool_t                     *pool;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_bulk_main_conf_t      *bmcf;
    ngx_http_bulk_nodes_worker_t   *w;
    u_char                          rnd[4];

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return;
    }

    bmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_bulk_module);

    if (bmcf == NULL || bmcf->import_lease == 0 || bmcf->import_ctx == NULL)
    {
        return;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (pool == NULL) {
        return;
    }

    w = ngx_pcalloc(pool, sizeof(ngx_http_bulk_nodes_worker_t));
    if (w == NULL
        || ngx_array_init(&w->dead, pool, 8, sizeof(ngx_pool_t *)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
        ngx_memzero(rnd, sizeof(rnd));
    }

    w->owner.data = ngx_pnalloc(pool, cycle->hostname.len + NGX_INT64_LEN
                                      + 2 * sizeof(rnd) + 2);
    if (w->owner.data == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    p = ngx_sprintf(w->owner.data, "%V/%P/", &cycle->hostname, ngx_pid);
    p = ngx_hex_dump(p, rnd, sizeof(rnd));
    w->owner.len = p - w->owner.data;

    clcf = bmcf->import_ctx->loc_conf[ngx_http_core_module.ctx_index];

    w->pool = pool;
    w->lease = bmcf->import_lease;
    w->ctx = bmcf->import_ctx;
    w->conf = bmcf->import_ctx->loc_conf[ngx_http_bulk_module.ctx_index];
    w->log = clcf->error_log;

    ngx_queue_init(&w->inputs);

    w->tick.handler = ngx_http_bulk_nodes_tick;
    w->tick.data = w;
    w->tick.log = w->log;
    w->tick.cancelable = 1;

    w->reap.handler = ngx_http_bulk_nodes_reap;
    w->reap.data = w;
    w->reap.log = w->log;

    ngx_http_bulk_nodes_worker = w;

    ngx_add_timer(&w->tick, 1);
}


/*
 * the next tick; while inputs run it is not cancelable, so a worker that
 * exits gracefully keeps renewing their leases until they end
 */

static void
ngx_http_bulk_nodes_schedule(ngx_msec_t delay)
{
    ngx_http_bulk_nodes_worker_t  *w;

    w = ngx_http_bulk_nodes_worker;

    if (w->tick.timer_set) {
        ngx_del_timer(&w->tick);
    }

    if (ngx_exiting && w->running == 0) {
        return;
    }

    w->tick.cancelable = (w->running == 0);

    ngx_add_timer(&w->tick, delay);
}


static void
ngx_http_bulk_nodes_tick(ngx_event_t *ev)
{
    ngx_core_conf_t               *ccf;
    ngx_http_bulk_nodes_worker_t  *w;
    ngx_http_bulk_nodes_input_t   *in;
    ngx_queue_t                   *q, *next;

    w = ev->data;

    if (w->busy) {
        /* the round trip is late: the timer only keeps an exiting worker */
        ngx_add_timer(&w->tick, w->lease / 3);
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (ngx_exiting && ccf->shutdown_timeout) {

        /*
         * nginx would close the inputs' connections under them: they go
         * back to waiting now, for another worker or node to resume
         */

        for (q = ngx_queue_head(&w->inputs);
             q != ngx_queue_sentinel(&w->inputs);
             q = next)
        {
            next = ngx_queue_next(q);
            in = ngx_queue_data(q, ngx_http_bulk_nodes_input_t, queue);

            if (in->state == ngx_http_bulk_nodes_running && !in->stopping
                && ngx_http_bulk_load_running(in->load))
            {
                in->stopping = 1;
                in->end = ngx_http_bulk_nodes_end_released;
                ngx_http_bulk_load_abort(in->load,
                                         "interrupted by nginx shutdown");
            }
        }
    }

    w->claim = 0;

    if (!ngx_exiting && w->running < w->conf->import_concurrency) {
        w->claim = w->conf->import_concurrency - w->running;
    }

    w->renew = w->running;

    if (w->claim == 0 && w->renew == 0) {
        ngx_http_bulk_nodes_schedule(w->lease / 3);
        return;
    }

    w->tick_pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, w->log);
    if (w->tick_pool == NULL) {
        ngx_http_bulk_nodes_schedule(w->lease / 3);
        return;
    }

    w->busy = 1;
    w->ticks++;

    /*
     * while the round trip is on its way the timer stays, not cancelable
     * while inputs run: a worker that exits waits for their last writes
     */

    w->tick.cancelable = (w->running == 0);
    ngx_add_timer(&w->tick, w->lease / 3);

    ngx_http_bulk_nodes_query(&w->q, w->conf->pool, w->log,
                              ngx_http_bulk_nodes_tick_sql,
                              ngx_http_bulk_nodes_tick_done, w);
}


/*
 * One round trip: the leases of the inputs running here renewed (with
 * their bytes so far), each answered with its job's status; then inputs
 * claimed: waiting ones, or those whose lease expired (their worker or
 * node is gone), other workers skipping the rows one already locks.
 */

static u_char *
ngx_http_bulk_nodes_tick_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    u_char                        *sql, *p;
    char                          *owner, *job;
    size_t                         len;
    ngx_uint_t                     first;
    ngx_queue_t                   *qu;
    ngx_http_bulk_nodes_worker_t  *w;
    ngx_http_bulk_nodes_input_t   *in;
    ngx_http_bulk_load_progress_t  pr;

    w = q->data;

    owner = ngx_http_bulk_nodes_lit(w->tick_pool, pg, &w->owner);
    if (owner == NULL) {
        return NULL;
    }

    len = 2048 + 2 * ngx_strlen(owner);

    for (qu = ngx_queue_head(&w->inputs);
         qu != ngx_queue_sentinel(&w->inputs);
         qu = ngx_queue_next(qu))
    {
        in = ngx_queue_data(qu, ngx_http_bulk_nodes_input_t, queue);
        len += 2 * in->job.len + 128;
    }

    sql = ngx_pnalloc(w->tick_pool, len);
    if (sql == NULL) {
        return NULL;
    }

    p = sql;
    w->renew = 0;

    if (w->running) {
        p = ngx_sprintf(p, "UPDATE bulkimportinput i SET lease = now()"
                        " + '%M ms'::interval, bytes = v.b, length = v.l"
                        " FROM (VALUES ", w->lease);
        first = 1;

        for (qu = ngx_queue_head(&w->inputs);
             qu != ngx_queue_sentinel(&w->inputs);
             qu = ngx_queue_next(qu))
        {
            in = ngx_queue_data(qu, ngx_http_bulk_nodes_input_t, queue);

            if (in->state != ngx_http_bulk_nodes_running
                || !ngx_http_bulk_load_running(in->load))
            {
                continue;
            }

            job = ngx_http_bulk_nodes_lit(w->tick_pool, pg, &in->job);
            if (job == NULL) {
                return NULL;
            }

            ngx_http_bulk_load_progress(in->load, &pr);

            p = ngx_sprintf(p, "%s(%s, %ui, %O::bigint, %O::bigint)",
                            first ? "" : ",", job, in->n, pr.received,
                            pr.length);
            first = 0;
            in->tick = w->ticks;
            w->renew++;
        }

        if (w->renew) {
            p = ngx_sprintf(p, ") v(job, n, b, l) WHERE i.job = v.job"
                            " AND i.n = v.n AND i.owner = %s"
                            " AND i.status = 'active'"
                            " RETURNING i.job, i.n, (SELECT j.status"
                            " FROM bulkimportjob j WHERE j.id = i.job);",
                            owner);

        } else {
            p = sql;
        }
    }

    if (w->claim) {
        p = ngx_sprintf(p, "UPDATE bulkimportinput i SET owner = %s,"
                        " status = 'active',"
                        " lease = now() + '%M ms'::interval,"
                        " ts_ms = CASE WHEN i.ts_ms = 0 THEN %M"
                        " ELSE i.ts_ms END"
                        " FROM (SELECT c.job, c.n FROM bulkimportinput c"
                        " WHERE (c.status = 'waiting' OR (c.status = 'active'"
                        " AND c.lease < now()))"
                        " AND c.owner IS DISTINCT FROM %s"
                        " ORDER BY c.job, c.n LIMIT %ui"
                        " FOR UPDATE SKIP LOCKED) c, bulkimportjob j"
                        " WHERE i.job = c.job AND i.n = c.n AND j.id = i.job"
                        " RETURNING i.job, i.n, i.resource_type, i.url,"
                        " i.lines, i.total, i.errors,"
                        " jsonb_array_length(i.issues), j.status, j.fhir,"
                        " j.\"update\", j.strip_nulls, j.merge,"
                        " CASE WHEN i.gzip THEN 0 ELSE i.pos END,"
                        " i.validator;",
                        owner, w->lease, ngx_http_bulk_nodes_now(), owner,
                        w->claim);
    }

    if (p == sql) {
        /* every input here is ending: nothing to renew */
        p = ngx_cpymem(p, "SELECT 1 WHERE false", 20);
    }

    *p = '\0';

    return sql;
}


static void
ngx_http_bulk_nodes_tick_done(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    int                            i;
    ngx_uint_t                     k;
    ngx_http_bulk_nodes_worker_t  *w;

    w = q->data;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "bulk import: cannot renew or claim inputs: %s",
                      q->err);

    } else {
        k = 0;

        if (w->renew && k < q->nres) {
            ngx_http_bulk_nodes_renewed(q->res[k++]);
        }

        if (w->claim && k < q->nres) {
            for (i = 0; i < PQntuples(q->res[k]); i++) {
                ngx_http_bulk_nodes_claimed(q->res[k], i);
            }
        }
    }

    ngx_http_bulk_nodes_query_clear(q);

    ngx_destroy_pool(w->tick_pool);
    w->tick_pool = NULL;
    w->busy = 0;

    ngx_http_bulk_nodes_schedule(w->lease / 3);
}


/* renewed: an input missing from the answer is no longer ours */

static void
ngx_http_bulk_nodes_renewed(PGresult *res)
{
    int                            i, found;
    ngx_uint_t                     n;
    ngx_queue_t                   *q, *next;
    ngx_http_bulk_nodes_worker_t  *w;
    ngx_http_bulk_nodes_input_t   *in;

    w = ngx_http_bulk_nodes_worker;

    for (q = ngx_queue_head(&w->inputs);
         q != ngx_queue_sentinel(&w->inputs);
         q = next)
    {
        next = ngx_queue_next(q);
        in = ngx_queue_data(q, ngx_http_bulk_nodes_input_t, queue);

        if (in->tick != w->ticks || in->stopping
            || in->state != ngx_http_bulk_nodes_running
            || !ngx_http_bulk_load_running(in->load))
        {
            continue;
        }

        found = -1;

        for (i = 0; i < PQntuples(res); i++) {
            n = ngx_atoi((u_char *) PQgetvalue(res, i, 1),
                         PQgetlength(res, i, 1));

            if (n == in->n && (size_t) PQgetlength(res, i, 0) == in->job.len
                && ngx_strncmp(PQgetvalue(res, i, 0), in->job.data,
                               in->job.len) == 0)
            {
                found = i;
                break;
            }
        }

        if (found == -1) {
            ngx_log_error(NGX_LOG_WARN, w->log, 0,
                          "bulk import \"%V\": input %ui was taken over "
                          "by another worker (its lease expired)",
                          &in->job, in->n);
            in->stopping = 1;
            in->end = ngx_http_bulk_nodes_end_lost;
            ngx_http_bulk_load_abort(in->load, "the lease was lost");
            continue;
        }

        if (ngx_strcmp(PQgetvalue(res, found, 2), "active") != 0) {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "bulk import \"%V\": cancelled", &in->job);
            in->stopping = 1;
            ngx_http_bulk_load_abort(in->load, "cancelled");
        }
    }
}


/* a claimed input: a $load that skips what earlier runs committed */

static void
ngx_http_bulk_nodes_claimed(PGresult *res, int row)
{
    ngx_pool_t                    *pool;
    ngx_http_request_t            *r;
    ngx_http_bulk_load_input_t     li;
    ngx_http_bulk_nodes_worker_t  *w;
    ngx_http_bulk_nodes_input_t   *in;

    w = ngx_http_bulk_nodes_worker;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, w->log);
    if (pool == NULL) {
        return;
    }

    in = ngx_pcalloc(pool, sizeof(ngx_http_bulk_nodes_input_t));
    if (in == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    in->pool = pool;
    in->last.length = -1;       /* until a load says */

#define ngx_http_bulk_nodes_str(s, col)                                      \
    (s)->len = PQgetlength(res, row, col);                                   \
    (s)->data = ngx_pnalloc(pool, (s)->len + 1);                             \
    if ((s)->data == NULL) {                                                 \
        ngx_destroy_pool(pool);                                              \
        return;                                                              \
    }                                                                        \
    ngx_memcpy((s)->data, PQgetvalue(res, row, col), (s)->len);              \
    (s)->data[(s)->len] = '\0'

#define ngx_http_bulk_nodes_num(col)                                         \
    (uint64_t) ngx_atoof((u_char *) PQgetvalue(res, row, col),               \
                         PQgetlength(res, row, col))

    ngx_http_bulk_nodes_str(&in->job, 0);
    ngx_http_bulk_nodes_str(&in->type, 2);
    ngx_http_bulk_nodes_str(&in->url, 3);

    in->n = (ngx_uint_t) ngx_http_bulk_nodes_num(1);
    in->lines = ngx_http_bulk_nodes_num(4);
    in->total = ngx_http_bulk_nodes_num(5);
    in->errors = ngx_http_bulk_nodes_num(6);
    in->nissues = (ngx_uint_t) ngx_http_bulk_nodes_num(7);
    in->pos = (off_t) ngx_http_bulk_nodes_num(13);
    in->fhir = (PQgetvalue(res, row, 9)[0] == 't');
    in->opts.update = (PQgetvalue(res, row, 10)[0] == 't');
    in->opts.strip_nulls = (PQgetvalue(res, row, 11)[0] == 't');

    if (!PQgetisnull(res, row, 12)) {
        ngx_http_bulk_nodes_str(&in->opts.merge, 12);
    }

    ngx_http_bulk_nodes_str(&in->validator, 14);

#undef ngx_http_bulk_nodes_str
#undef ngx_http_bulk_nodes_num

    ngx_queue_insert_tail(&w->inputs, &in->queue);
    w->running++;

    if (ngx_exiting) {
        /* claimed as nginx began to exit: back to waiting */
        in->end = ngx_http_bulk_nodes_end_released;
        ngx_http_bulk_nodes_input_end(in);
        return;
    }

    if (ngx_strcmp(PQgetvalue(res, row, 8), "active") != 0) {
        /* the lease of a cancelled job's input expired: it is settled */
        in->end = ngx_http_bulk_nodes_end_failed;
        ngx_http_bulk_nodes_input_end(in);
        return;
    }

    r = ngx_http_bulk_import_fake(pool, w->log, w->ctx->main_conf,
                                  w->ctx->srv_conf, w->ctx->loc_conf);

    ngx_memzero(&li, sizeof(ngx_http_bulk_load_input_t));

    li.type = in->type;
    li.url = in->url;
    li.opts = in->opts;
    li.fhir = in->fhir;
    li.batch = ngx_max(w->conf->import_batch, 1);
    li.done = ngx_http_bulk_nodes_input_done;
    li.commit = ngx_http_bulk_nodes_commit;
    li.data = in;
    li.skip = in->lines;
    li.offset = in->lines ? in->pos : 0;

    if (in->lines) {
        /* the lines skipped must be those of the same source */
        li.validator = in->validator;
    }

    in->load = r ? ngx_http_bulk_load_create(r, &li) : NULL;

    if (in->load == NULL) {
        ngx_cpystrn(in->q.err, (u_char *) "cannot start the input",
                    sizeof(in->q.err));
        in->end = ngx_http_bulk_nodes_end_failed;
        ngx_http_bulk_nodes_input_end(in);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, w->log, 0,
                  "bulk import \"%V\": input %ui (%V) from \"%V\" claimed, "
                  "%uL lines committed before%s", &in->job, in->n, &in->type,
                  &in->url, in->lines,
                  li.offset ? ", asking for the rest (Range)" : "");

    ngx_http_bulk_load_run(in->load);
}


/*
 * In each batch's transaction, after its upserts: the input's row, only
 * while this worker owns it and the job is active (else no row: the batch
 * rolls back).  Lines taken include the skipped ones, so the count is the
 * source's whatever run committed it.
 */

static u_char *
ngx_http_bulk_nodes_commit(ngx_http_bulk_load_t *load, void *data,
    PGconn *pg)
{
    ngx_http_bulk_nodes_input_t *in = data;

    u_char                        *sql, *p, *issues, *q;
    ngx_pool_t                    *pool;
    char                          *job, *owner, *ilit, *vlit;
    size_t                         len;
    ngx_uint_t                     i, n;
    ngx_http_bulk_nodes_worker_t  *w;
    ngx_http_bulk_load_progress_t  pr;

    w = ngx_http_bulk_nodes_worker;

    ngx_http_bulk_load_progress(load, &pr);

    /* sent at once, freed with the next batch: the input's own pool would
       grow with every batch of a long source */
    pool = ngx_http_bulk_load_scratch(load);

    job = ngx_http_bulk_nodes_lit(pool, pg, &in->job);
    owner = ngx_http_bulk_nodes_lit(pool, pg, &w->owner);
    vlit = ngx_http_bulk_nodes_lit(pool, pg, &pr.validator);

    if (job == NULL || owner == NULL || vlit == NULL) {
        return NULL;
    }

    /* the first issues of the input, over all its runs */

    ilit = NULL;
    n = 0;

    if (in->nissues < NGX_HTTP_BULK_NODES_ISSUES
        && pr.nissues > 0)
    {
        n = ngx_min(pr.nissues, NGX_HTTP_BULK_NODES_ISSUES - in->nissues);

        issues = ngx_pnalloc(pool,
                             2 + n * (64 + 6 * NGX_HTTP_BULK_NODES_ISSUE_LEN));
        if (issues == NULL) {
            return NULL;
        }

        q = issues;
        *q++ = '[';

        for (i = 0; i < n; i++) {
            q = ngx_sprintf(q, "%s{\"line\":%uL,\"diagnostics\":\"",
                            i ? "," : "", pr.issues[i].line);
            q += ngx_bulk_json_escape(q, pr.issues[i].text.data,
                                      ngx_bulk_utf8_cut(
                                          pr.issues[i].text.data,
                                          pr.issues[i].text.len,
                                          NGX_HTTP_BULK_NODES_ISSUE_LEN));
            q = ngx_cpymem(q, "\"}", 2);
        }

        *q++ = ']';

        ilit = PQescapeLiteral(pg, (char *) issues, q - issues);
        if (ilit == NULL) {
            return NULL;
        }
    }

    len = 1024 + 2 * ngx_strlen(job) + ngx_strlen(owner) + ngx_strlen(vlit)
          + (ilit ? ngx_strlen(ilit) : 0);

    sql = ngx_pnalloc(pool, len);

    if (sql) {
        p = ngx_sprintf(sql, "UPDATE bulkimportinput SET lines = %uL,"
                        " pos = %O, gzip = %s, validator = %s,"
                        " total = %uL, errors = %uL, bytes = %O,"
                        " length = %O, lease = now() + '%M ms'::interval",
                        pr.lines, pr.offset, pr.gzip ? "true" : "false",
                        vlit,
                        in->total + pr.total,
                        in->errors + (uint64_t) pr.errors, pr.received,
                        pr.length, w->lease);

        if (ilit) {
            /* the issues of earlier runs stay, then this run's first
               ones, all rewritten at each batch */
            p = ngx_sprintf(p, ", issues = (SELECT coalesce(jsonb_agg(e"
                            " ORDER BY k), '[]') FROM jsonb_array_elements("
                            "issues) WITH ORDINALITY x(e, k) WHERE k <= %ui)"
                            " || %s::jsonb", in->nissues, ilit);
        }

        p = ngx_sprintf(p, " WHERE job = %s AND n = %ui AND owner = %s"
                        " AND status = 'active' AND EXISTS (SELECT 1"
                        " FROM bulkimportjob WHERE id = %s"
                        " AND status = 'active') RETURNING 1%Z",
                        job, in->n, owner, job);
    }

    if (ilit) {
        PQfreemem(ilit);
    }

    return sql;
}


/* the load is over: its last write */

static void
ngx_http_bulk_nodes_input_done(ngx_http_bulk_load_t *load, void *data)
{
    ngx_http_bulk_nodes_input_t *in = data;

    ngx_http_bulk_load_progress(load, &in->last);

    if (in->end == ngx_http_bulk_nodes_end_finished
        && in->last.err != NULL)
    {
        in->end = ngx_http_bulk_nodes_end_failed;
    }

    if (in->last.err) {
        ngx_cpystrn(in->q.err, in->last.err, sizeof(in->q.err));
    }

    ngx_log_error(NGX_LOG_INFO, ngx_http_bulk_nodes_worker->log, 0,
                  "bulk import \"%V\": input %ui over after %ui batches: %s",
                  &in->job, in->n, in->last.batches,
                  in->last.err ? (char *) in->last.err : "finished");

    ngx_http_bulk_nodes_input_end(in);
}


static void
ngx_http_bulk_nodes_input_end(ngx_http_bulk_nodes_input_t *in)
{
    ngx_http_bulk_nodes_worker_t  *w;

    w = ngx_http_bulk_nodes_worker;

    if (in->end == ngx_http_bulk_nodes_end_lost) {
        ngx_http_bulk_nodes_input_free(in);
        return;
    }

    in->state = ngx_http_bulk_nodes_ending;

    /* the tick keeps an exiting worker until this write is done */

    w->tick.cancelable = 0;

    if (!w->tick.timer_set) {
        ngx_add_timer(&w->tick, w->lease / 3);
    }

    ngx_http_bulk_nodes_query(&in->q, w->conf->pool, w->log,
                              ngx_http_bulk_nodes_end_sql,
                              ngx_http_bulk_nodes_ended, in);
}


static u_char *
ngx_http_bulk_nodes_end_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_input_t *in = q->data;

    u_char                        *sql;
    char                          *job, *owner, *err;
    ngx_str_t                      e;
    ngx_msec_t                     now;
    const char                    *status;
    ngx_http_bulk_nodes_worker_t  *w;

    w = ngx_http_bulk_nodes_worker;
    now = ngx_http_bulk_nodes_now();

    e.data = (in->end == ngx_http_bulk_nodes_end_finished) ? (u_char *) ""
                                                           : q->err;
    e.len = ngx_strlen(e.data);

    job = ngx_http_bulk_nodes_lit(in->pool, pg, &in->job);
    owner = ngx_http_bulk_nodes_lit(in->pool, pg, &w->owner);
    err = ngx_http_bulk_nodes_lit(in->pool, pg, &e);

    if (job == NULL || owner == NULL || err == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(in->pool, sizeof(NGX_HTTP_BULK_NODES_JOB_END) + 2048
                                + 6 * ngx_strlen(job) + ngx_strlen(owner)
                                + ngx_strlen(err));
    if (sql == NULL) {
        return NULL;
    }

    if (in->end == ngx_http_bulk_nodes_end_released) {
        ngx_sprintf(sql, "UPDATE bulkimportinput SET status = 'waiting',"
                    " owner = NULL, lease = NULL"
                    " WHERE job = %s AND n = %ui AND owner = %s"
                    " AND status = 'active'%Z", job, in->n, owner);
        return sql;
    }

    /* a load that ended before it saw a cancel has loaded it all */

    if (in->end == ngx_http_bulk_nodes_end_finished) {
        status = "'finished'";
        err = "''";

    } else {
        status = "CASE WHEN j.status = 'cancelled' THEN 'cancelled'"
                 " ELSE 'failed' END";
    }

    ngx_sprintf(sql, "SELECT 1 FROM bulkimportjob WHERE id = %s FOR UPDATE;"
                "UPDATE bulkimportinput i SET status = %s,"
                " error = CASE WHEN j.status = 'cancelled' THEN '' ELSE %s END,"
                " bytes = CASE WHEN %O > 0 THEN %O ELSE i.bytes END,"
                " length = CASE WHEN %O >= 0 THEN %O ELSE i.length END,"
                " duration = %M - i.ts_ms, owner = NULL, lease = NULL"
                " FROM bulkimportjob j WHERE j.id = i.job"
                " AND i.job = %s AND i.n = %ui AND i.owner = %s"
                " AND i.status = 'active';"
                NGX_HTTP_BULK_NODES_JOB_END "%Z",
                job, status, err,
                in->last.received, in->last.received,
                in->last.length, in->last.length,
                now, job, in->n, owner, now, job);

    return sql;
}


static void
ngx_http_bulk_nodes_ended(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    ngx_http_bulk_nodes_input_t *in = q->data;

    ngx_uint_t                     ended;
    ngx_http_bulk_nodes_worker_t  *w;

    w = ngx_http_bulk_nodes_worker;

    ended = 0;

    switch (in->state) {

    case ngx_http_bulk_nodes_ending:

        if (rc != NGX_OK) {
            /* its lease expires, and another worker settles it */
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "bulk import \"%V\": cannot save input %ui: %s",
                          &in->job, in->n, q->err);

        } else if (q->nres == 2 && PQntuples(q->res[1]) == 1) {
            ended = 1;
            ngx_log_error(NGX_LOG_INFO, w->log, 0, "bulk import \"%V\" %s",
                          &in->job, PQgetvalue(q->res[1], 0, 0));
        }

        ngx_http_bulk_nodes_query_clear(q);

        if (ended) {
            /* the job's status resource, as any node shows it */
            in->state = ngx_http_bulk_nodes_status_read;
            ngx_http_bulk_nodes_query(q, w->conf->pool, w->log,
                                      ngx_http_bulk_nodes_read_sql,
                                      ngx_http_bulk_nodes_ended, in);
            return;
        }

        break;

    case ngx_http_bulk_nodes_status_read:

        if (rc == NGX_OK && q->nres == 3) {
            ngx_int_t  percent;

            if (ngx_http_bulk_import_render_table(in->pool, q->res[0],
                                                  q->res[1], q->res[2],
                                                  &in->json, &in->json_len,
                                                  &percent)
                == NGX_OK)
            {
                ngx_http_bulk_nodes_query_clear(q);
                in->state = ngx_http_bulk_nodes_status_write;
                ngx_http_bulk_nodes_query(q, w->conf->pool, w->log,
                                          ngx_http_bulk_nodes_save_sql,
                                          ngx_http_bulk_nodes_ended, in);
                return;
            }
        }

        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "bulk import \"%V\": cannot read the status: %s",
                      &in->job, q->err);
        ngx_http_bulk_nodes_query_clear(q);
        break;

    default: /* ngx_http_bulk_nodes_status_write */

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "bulk import \"%V\": cannot save the status: %s",
                          &in->job, q->err);
        }

        ngx_http_bulk_nodes_query_clear(q);
    }

    ngx_http_bulk_nodes_input_free(in);

    /* room for another input */
    if (!w->busy) {
        ngx_http_bulk_nodes_schedule(1);
    }
}


static u_char *
ngx_http_bulk_nodes_read_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_input_t *in = q->data;

    u_char  *sql, *p;
    char    *job;

    job = ngx_http_bulk_nodes_lit(in->pool, pg, &in->job);
    if (job == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(in->pool, ngx_http_bulk_import_table_sql_len(job));
    if (sql == NULL) {
        return NULL;
    }

    p = ngx_http_bulk_import_table_sql(sql, job);
    *p = '\0';

    return sql;
}


/* bulkimportstatus keeps the Aidbox resource of the ended job */

static u_char *
ngx_http_bulk_nodes_save_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_input_t *in = q->data;

    u_char     *sql;
    char       *job, *res;
    ngx_str_t   s;

    /* the resource as stored: without resourceType and id */

    s.data = in->json;
    s.len = in->json_len;

    job = ngx_http_bulk_nodes_lit(in->pool, pg, &in->job);
    res = ngx_http_bulk_nodes_lit(in->pool, pg, &s);

    if (job == NULL || res == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(in->pool, 512 + ngx_strlen(job) + ngx_strlen(res));
    if (sql == NULL) {
        return NULL;
    }

    ngx_sprintf(sql, "INSERT INTO bulkimportstatus AS t (id, txid, cts, ts,"
                " resource_type, status, resource)"
                " VALUES (%s, nextval('transaction_id_seq'), now(), now(),"
                " 'BulkImportStatus', 'created',"
                " %s::jsonb - 'resourceType' - 'id')"
                " ON CONFLICT (id) DO UPDATE SET txid = excluded.txid,"
                " ts = excluded.ts, status = 'updated',"
                " resource = excluded.resource%Z", job, res);

    return sql;
}


static void
ngx_http_bulk_nodes_input_free(ngx_http_bulk_nodes_input_t *in)
{
    ngx_pool_t                   **pp;
    ngx_http_bulk_nodes_worker_t  *w;

    w = ngx_http_bulk_nodes_worker;

    ngx_queue_remove(&in->queue);
    w->running--;

    /* the pool goes from a posted event, outside the load's stack */

    pp = ngx_array_push(&w->dead);
    if (pp == NULL) {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "bulk import: input pool leaked");
        return;
    }

    *pp = in->pool;

    ngx_post_event(&w->reap, &ngx_posted_events);
}


static void
ngx_http_bulk_nodes_reap(ngx_event_t *ev)
{
    ngx_uint_t                     i;
    ngx_pool_t                   **pp;
    ngx_http_bulk_nodes_worker_t  *w;

    w = ev->data;
    pp = w->dead.elts;

    for (i = 0; i < w->dead.nelts; i++) {
        ngx_destroy_pool(pp[i]);
    }

    w->dead.nelts = 0;
}


/* the kick-off: the job and its inputs, then the status read back */

ngx_int_t
ngx_http_bulk_nodes_submit(ngx_http_request_t *r,
    ngx_http_bulk_nodes_job_t *job)
{
    return ngx_http_bulk_nodes_req(r, &job->id, job,
                                   ngx_http_bulk_nodes_submit_sql,
                                   ngx_http_bulk_nodes_submitted);
}


static u_char *
ngx_http_bulk_nodes_submit_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_req_t *rq = q->data;

    u_char                     *sql, *p;
    char                       *id, *gen, *merge, *enc, *t, *u;
    size_t                      len;
    ngx_str_t                   g;
    ngx_uint_t                  i;
    ngx_pool_t                 *pool;
    ngx_http_bulk_nodes_job_t  *job;

    job = rq->job;
    pool = rq->request->pool;

    g.data = rq->gen;
    g.len = sizeof(rq->gen);

    id = ngx_http_bulk_nodes_lit(pool, pg, &job->id);
    gen = ngx_http_bulk_nodes_lit(pool, pg, &g);
    enc = ngx_http_bulk_nodes_lit(pool, pg, &job->encoding);
    merge = job->opts.merge.len
            ? ngx_http_bulk_nodes_lit(pool, pg, &job->opts.merge) : "NULL";

    if (id == NULL || gen == NULL || enc == NULL || merge == NULL) {
        return NULL;
    }

    len = 4096 + 12 * ngx_strlen(id) + 4 * ngx_strlen(gen)
          + ngx_strlen(merge) + ngx_strlen(enc)
          + ngx_http_bulk_import_table_sql_len(id);

    for (i = 0; i < job->ninputs; i++) {
        len += 64 + 2 * job->sources[i].type.len
               + 2 * job->sources[i].url.len + 8;
    }

    sql = ngx_pnalloc(pool, len);
    if (sql == NULL) {
        return NULL;
    }

    /*
     * a job of that id that is still active, or cancelled with an input
     * still stopping somewhere, keeps its row: gen tells who won
     */

    p = ngx_sprintf(sql,
            "INSERT INTO bulkimportjob AS j (id, gen, status, fhir,"
            " \"update\", strip_nulls, merge, encoding, start_ms)"
            " VALUES (%s, %s, 'active', %s, %s, %s, %s, %s, %M)"
            " ON CONFLICT (id) DO UPDATE SET gen = excluded.gen,"
            " status = 'active', fhir = excluded.fhir,"
            " \"update\" = excluded.\"update\","
            " strip_nulls = excluded.strip_nulls, merge = excluded.merge,"
            " encoding = excluded.encoding, start_ms = excluded.start_ms,"
            " end_ms = 0, error = ''"
            " WHERE j.status <> 'active' AND NOT EXISTS (SELECT 1"
            " FROM bulkimportinput x WHERE x.job = j.id"
            " AND (x.status = 'waiting' OR (x.status = 'active'"
            " AND x.lease >= now())));"
            "DELETE FROM bulkimportinput WHERE job = %s AND EXISTS (SELECT 1"
            " FROM bulkimportjob WHERE id = %s AND gen = %s);"
            "INSERT INTO bulkimportinput (job, n, resource_type, url)"
            " SELECT %s, v.n, v.t, v.u FROM (VALUES ",
            id, gen, job->fhir ? "true" : "false",
            job->opts.update ? "true" : "false",
            job->opts.strip_nulls ? "true" : "false",
            merge, enc, ngx_http_bulk_nodes_now(), id, id, gen, id);

    for (i = 0; i < job->ninputs; i++) {
        t = ngx_http_bulk_nodes_lit(pool, pg, &job->sources[i].type);
        u = ngx_http_bulk_nodes_lit(pool, pg, &job->sources[i].url);

        if (t == NULL || u == NULL) {
            return NULL;
        }

        p = ngx_sprintf(p, "%s(%ui, %s, %s)", i ? "," : "", i, t, u);
    }

    p = ngx_sprintf(p, ") v(n, t, u) WHERE EXISTS (SELECT 1"
                    " FROM bulkimportjob WHERE id = %s AND gen = %s);"
                    "SELECT gen = %s, status FROM bulkimportjob"
                    " WHERE id = %s;", id, gen, gen, id);

    p = ngx_http_bulk_import_table_sql(p, id);
    *p = '\0';

    return sql;
}


static void
ngx_http_bulk_nodes_submitted(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    ngx_http_bulk_nodes_req_t *rq = q->data;

    u_char              *json, *location;
    size_t               len;
    ngx_int_t            percent;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = rq->request;
    c = r->connection;

    if (rc != NGX_OK || q->nres != 4 || PQntuples(q->res[0]) != 1) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "transient", "cannot record the "
                                      "import: %s", q->err);
        goto done;
    }

    if (PQgetvalue(q->res[0], 0, 0)[0] != 't') {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                                      "the import \"%V\" is %s", &rq->id,
                                      ngx_strcmp(PQgetvalue(q->res[0], 0, 1),
                                                 "active") == 0
                                      ? "active" : "still being stopped");
        goto done;
    }

    if (ngx_http_bulk_import_render_table(r->pool, q->res[1], q->res[2],
                                          q->res[3], &json, &len, &percent)
        != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "bulk import \"%V\" accepted: %ui inputs, shared",
                  &rq->id, rq->job->ninputs);

    location = ngx_pnalloc(r->pool, sizeof("/BulkImportStatus/")
                                    + rq->id.len);
    if (location == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_sprintf(location, "/BulkImportStatus/%V%Z", &rq->id);

    if (ngx_http_bulk_add_header(r, "Content-Location", (char *) location)
        != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    rc = ngx_http_bulk_import_answer(r, NGX_HTTP_ACCEPTED, json, len, -1);

    /* this worker claims its share at once */

    if (ngx_http_bulk_nodes_worker && !ngx_http_bulk_nodes_worker->busy) {
        ngx_http_bulk_nodes_schedule(1);
    }

done:

    ngx_http_bulk_nodes_query_clear(q);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* GET and DELETE /BulkImportStatus/<id> from the tables */

ngx_int_t
ngx_http_bulk_nodes_status(ngx_http_request_t *r, ngx_str_t *id)
{
    return ngx_http_bulk_nodes_req(r, id, NULL,
                                   ngx_http_bulk_nodes_status_sql,
                                   ngx_http_bulk_nodes_status_done);
}


static u_char *
ngx_http_bulk_nodes_status_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_req_t *rq = q->data;

    u_char  *sql, *p;
    char    *id;

    id = ngx_http_bulk_nodes_lit(rq->request->pool, pg, &rq->id);
    if (id == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(rq->request->pool,
                      sizeof(NGX_HTTP_BULK_NODES_JOB_END) + 1024
                      + 8 * ngx_strlen(id)
                      + ngx_http_bulk_import_table_sql_len(id));
    if (sql == NULL) {
        return NULL;
    }

    p = sql;

    if (rq->request->method == NGX_HTTP_DELETE) {

        /*
         * the job is cancelled; waiting inputs at once, running ones when
         * their worker sees it at its next tick (their open batch rolls
         * back); with none running the job ends here
         */

        p = ngx_sprintf(p, "SELECT 1 FROM bulkimportjob WHERE id = %s"
                        " FOR UPDATE;"
                        "UPDATE bulkimportjob SET status = 'cancelled'"
                        " WHERE id = %s AND status = 'active' RETURNING 1;"
                        "UPDATE bulkimportinput SET status = 'cancelled',"
                        " owner = NULL, lease = NULL WHERE job = %s"
                        " AND (status = 'waiting' OR (status = 'active'"
                        " AND lease < now())) AND EXISTS (SELECT 1"
                        " FROM bulkimportjob WHERE id = %s"
                        " AND status = 'cancelled');"
                        NGX_HTTP_BULK_NODES_JOB_END,
                        id, id, id, id, ngx_http_bulk_nodes_now(), id);
    }

    p = ngx_http_bulk_import_table_sql(p, id);
    *p = '\0';

    return sql;
}


static void
ngx_http_bulk_nodes_status_done(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    ngx_http_bulk_nodes_req_t *rq = q->data;

    u_char              *json;
    size_t               len;
    ngx_int_t            percent;
    ngx_uint_t           del, k;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = rq->request;
    c = r->connection;
    del = (r->method == NGX_HTTP_DELETE);
    k = del ? 3 : 0;

    if (rc != NGX_OK || q->nres != k + 3) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "transient", "database unavailable: %s",
                                      q->err);
        goto done;
    }

    switch (ngx_http_bulk_import_render_table(r->pool, q->res[k],
                                              q->res[k + 1], q->res[k + 2],
                                              &json, &len, &percent))
    {
    case NGX_OK:
        break;

    case NGX_DECLINED:
        /* a job from before bulk_import_lease: its resource, if any */
        rc = ngx_http_bulk_import_table(r, &rq->id);
        goto done;

    default:
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (del) {
        if (PQntuples(q->res[1]) != 1) {
            rc = ngx_http_bulk_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                                          "the import \"%V\" is not active",
                                          &rq->id);
            goto done;
        }

        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
                      "bulk import \"%V\": cancel requested", &rq->id);

        rc = ngx_http_bulk_import_answer(r, NGX_HTTP_ACCEPTED, json, len, -1);
        goto done;
    }

    if (ngx_http_bulk_import_wants_html(r)) {
        rc = ngx_http_bulk_import_view(r, json, len);
        goto done;
    }

    rc = ngx_http_bulk_import_answer(r, NGX_HTTP_OK, json, len, percent);

done:

    ngx_http_bulk_nodes_query_clear(q);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_bulk_nodes_req(ngx_http_request_t *r, ngx_str_t *id,
    ngx_http_bulk_nodes_job_t *job, ngx_http_bulk_nodes_build_pt build,
    ngx_http_bulk_nodes_done_pt done)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_bulk_loc_conf_t   *blcf;
    ngx_http_bulk_nodes_req_t  *rq;
    u_char                      rnd[16];

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    rq = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_nodes_req_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (rq == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rq->request = r;

    /*
     * the statements are built once connected, maybe later: what the
     * caller's stack holds (the request, a generated id) is copied
     */

    rq->id.len = id->len;
    rq->id.data = ngx_pstrdup(r->pool, id);
    if (rq->id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (job) {
        rq->copy = *job;
        rq->copy.id = rq->id;
        rq->job = &rq->copy;

        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_hex_dump(rq->gen, rnd, sizeof(rnd));
    }

    cln->handler = ngx_http_bulk_nodes_req_cleanup;
    cln->data = rq;

    r->main->count++;

    ngx_http_bulk_nodes_query(&rq->q, blcf->pool, r->connection->log, build,
                              done, rq);

    return NGX_DONE;
}


static void
ngx_http_bulk_nodes_req_cleanup(void *data)
{
    ngx_http_bulk_nodes_req_t  *rq = data;

    ngx_http_bulk_nodes_query_cancel(&rq->q);
}


ngx_int_t
ngx_http_bulk_nodes_list(ngx_http_request_t *r, ngx_uint_t count,
    ngx_uint_t html)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_bulk_loc_conf_t    *blcf;
    ngx_http_bulk_nodes_list_t  *ls;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    ls = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_nodes_list_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ls == NULL || cln == NULL
        || ngx_array_init(&ls->entries, r->pool, count ? count : 1,
                          sizeof(ngx_http_bulk_import_entry_t))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ls->request = r;
    ls->count = count;
    ls->html = html;
    ls->pool = blcf->pool;

    cln->handler = ngx_http_bulk_nodes_list_cleanup;
    cln->data = ls;

    r->main->count++;

    ngx_http_bulk_nodes_query(&ls->q, ls->pool, r->connection->log,
                              ngx_http_bulk_nodes_list_sql,
                              ngx_http_bulk_nodes_listed, ls);

    return NGX_DONE;
}


static void
ngx_http_bulk_nodes_list_cleanup(void *data)
{
    ngx_http_bulk_nodes_list_t  *ls = data;

    ngx_http_bulk_nodes_query_cancel(&ls->q);
}


static u_char *
ngx_http_bulk_nodes_list_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    static char  sql[] =
        "SELECT id, start_ms FROM bulkimportjob WHERE end_ms = 0"
        " ORDER BY start_ms DESC, id COLLATE \"C\" DESC";

    return (u_char *) sql;
}


/* the running jobs' ids: each of the first count is rendered in turn */

static void
ngx_http_bulk_nodes_listed(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    ngx_http_bulk_nodes_list_t *ls = q->data;

    int                  i, n;
    u_char              *p, *v;
    size_t               size, len;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ls->request;
    c = r->connection;

    if (rc != NGX_OK || q->nres != 1) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "transient", "database unavailable: %s",
                                      q->err);
        goto failed;
    }

    n = PQntuples(q->res[0]);
    size = sizeof("{}");

    for (i = 0; i < n; i++) {
        size += 2 * PQgetlength(q->res[0], i, 0) + sizeof("\"\",");
    }

    ls->ids = ngx_palloc(r->pool, (n ? n : 1) * sizeof(ngx_str_t));
    ls->starts = ngx_palloc(r->pool, (n ? n : 1) * sizeof(ngx_msec_t));
    ls->lit.data = ngx_pnalloc(r->pool, size);

    if (ls->ids == NULL || ls->starts == NULL || ls->lit.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto failed;
    }

    /* every id, each quoted and escaped as an array element */

    p = ngx_cpymem(ls->lit.data, "{", 1);

    for (i = 0; i < n; i++) {
        v = (u_char *) PQgetvalue(q->res[0], i, 0);
        len = PQgetlength(q->res[0], i, 0);

        ls->ids[i].data = ngx_pnalloc(r->pool, len ? len : 1);
        if (ls->ids[i].data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto failed;
        }

        ngx_memcpy(ls->ids[i].data, v, len);
        ls->ids[i].len = len;
        ls->starts[i] = (ngx_msec_t) ngx_atoof(
                            (u_char *) PQgetvalue(q->res[0], i, 1),
                            PQgetlength(q->res[0], i, 1));

        p = ngx_http_bulk_import_id_elem(p, v, len, i);
    }

    *p++ = '}';
    ls->lit.len = p - ls->lit.data;
    ls->nids = n;

    ngx_http_bulk_nodes_query_clear(q);

    ngx_http_bulk_nodes_list_next(ls);
    return;

failed:

    ngx_http_bulk_nodes_query_clear(q);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the next running job to render, or the table's part */

static void
ngx_http_bulk_nodes_list_next(ngx_http_bulk_nodes_list_t *ls)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ls->request;
    c = r->connection;

    if (ls->next < ls->nids && ls->next < ls->count) {
        ngx_http_bulk_nodes_query(&ls->q, ls->pool, c->log,
                                  ngx_http_bulk_nodes_list_job_sql,
                                  ngx_http_bulk_nodes_list_job, ls);
        return;
    }

    rc = ngx_http_bulk_import_list_tables(r, &ls->entries, ls->nids,
                                          &ls->lit, ls->count, ls->html);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static u_char *
ngx_http_bulk_nodes_list_job_sql(ngx_http_bulk_nodes_query_t *q, PGconn *pg)
{
    ngx_http_bulk_nodes_list_t *ls = q->data;

    u_char  *sql, *p;
    char    *id;

    id = ngx_http_bulk_nodes_lit(ls->request->pool, pg, &ls->ids[ls->next]);
    if (id == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(ls->request->pool,
                      ngx_http_bulk_import_table_sql_len(id) + 1);
    if (sql == NULL) {
        return NULL;
    }

    p = ngx_http_bulk_import_table_sql(sql, id);
    *p = '\0';

    return sql;
}


static void
ngx_http_bulk_nodes_list_job(ngx_http_bulk_nodes_query_t *q, ngx_int_t rc)
{
    ngx_http_bulk_nodes_list_t *ls = q->data;

    u_char                        *json;
    size_t                         len;
    ngx_int_t                      percent;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_bulk_import_entry_t  *e;

    r = ls->request;
    c = r->connection;

    if (rc != NGX_OK || q->nres != 3) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "transient", "database unavailable: %s",
                                      q->err);
        goto failed;
    }

    switch (ngx_http_bulk_import_render_table(r->pool, q->res[0], q->res[1],
                                              q->res[2], &json, &len,
                                              &percent))
    {
    case NGX_OK:
        e = ngx_array_push(&ls->entries);
        if (e == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto failed;
        }

        e->id = ls->ids[ls->next];
        e->json.data = json;
        e->json.len = len;
        e->start.data = ngx_pnalloc(r->pool, NGX_HTTP_BULK_IMPORT_TS_LEN);
        if (e->start.data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto failed;
        }

        e->start.len = ngx_http_bulk_import_iso(e->start.data,
                                                ls->starts[ls->next])
                       - e->start.data;
        break;

    case NGX_DECLINED:
        /* removed since: not listed */
        break;

    default:
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto failed;
    }

    ngx_http_bulk_nodes_query_clear(q);

    ls->next++;
    ngx_http_bulk_nodes_list_next(ls);
    return;

failed:

    ngx_http_bulk_nodes_query_clear(q);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* a round trip */

static void
ngx_http_bulk_nodes_query(ngx_http_bulk_nodes_query_t *q,
    ngx_http_bulk_pg_pool_t *pool, ngx_log_t *log,
    ngx_http_bulk_nodes_build_pt build, ngx_http_bulk_nodes_done_pt done,
    void *data)
{
    q->build = build;
    q->done = done;
    q->data = data;
    q->nres = 0;
    q->pc = NULL;

    ngx_http_bulk_pg_waiter_init(&q->waiter, pool,
                                 ngx_http_bulk_nodes_query_ready, q, log);

    ngx_http_bulk_pg_get(&q->waiter);
}


static void
ngx_http_bulk_nodes_query_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    u_char                       *sql;
    ngx_http_bulk_nodes_query_t  *q;

    q = w->data;

    if (rc != NGX_OK) {
        ngx_cpystrn(q->err, w->err, sizeof(q->err));
        q->done(q, NGX_ERROR);
        return;
    }

    q->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_nodes_query_result, q);

    sql = q->build(q, q->pc->pg);

    if (sql == NULL || ngx_http_bulk_pg_send(q->pc, (char *) sql) != NGX_OK)
    {
        ngx_http_bulk_pg_release(q->pc, 0);
        q->pc = NULL;
        ngx_cpystrn(q->err, (u_char *) "cannot send the statements",
                    sizeof(q->err));
        q->done(q, NGX_ERROR);
    }
}


static void
ngx_http_bulk_nodes_query_result(ngx_http_bulk_pg_conn_t *pc)
{
    PGconn                       *pg;
    PGresult                     *res;
    ngx_uint_t                    failed;
    const char                   *msg;
    ngx_http_bulk_nodes_query_t  *q;

    q = pc->data;
    pg = pc->pg;
    failed = 0;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) == CONNECTION_OK) {
                return;
            }

            break;
        }

        res = PQgetResult(pg);
        if (res == NULL) {
            break;
        }

        switch (PQresultStatus(res)) {

        case PGRES_TUPLES_OK:
            if (q->nres < NGX_HTTP_BULK_NODES_RESULTS) {
                q->res[q->nres++] = res;
                continue;
            }

            break;

        case PGRES_COMMAND_OK:
            break;

        default:
            if (!failed) {
                msg = PQresultErrorMessage(res);
                ngx_snprintf(q->err, sizeof(q->err) - 1, "%*s%Z",
                             ngx_http_bulk_pg_msg_len(msg), msg);
                failed = 1;
            }
        }

        PQclear(res);
    }

    if (PQstatus(pg) != CONNECTION_OK && !failed) {
        msg = PQerrorMessage(pg);
        ngx_snprintf(q->err, sizeof(q->err) - 1, "%*s%Z",
                     ngx_http_bulk_pg_msg_len(msg), msg);
        failed = 1;
    }

    ngx_http_bulk_pg_release(pc, !failed);
    q->pc = NULL;

    q->done(q, failed ? NGX_ERROR : NGX_OK);
}


static void
ngx_http_bulk_nodes_query_clear(ngx_http_bulk_nodes_query_t *q)
{
    ngx_uint_t  i;

    for (i = 0; i < q->nres; i++) {
        PQclear(q->res[i]);
    }

    q->nres = 0;
}


static void
ngx_http_bulk_nodes_query_cancel(ngx_http_bulk_nodes_query_t *q)
{
    ngx_http_bulk_pg_cancel(&q->waiter);

    if (q->pc) {
        ngx_http_bulk_pg_release(q->pc, 0);
        q->pc = NULL;
    }

    ngx_http_bulk_nodes_query_clear(q);
}


/* an SQL literal in the pool; NULL when out of memory */

static char *
ngx_http_bulk_nodes_lit(ngx_pool_t *pool, PGconn *pg, ngx_str_t *s)
{
    char    *lit, *p;
    size_t   len;

    if (s->len == 0) {
        /* no libpq call: an empty ngx_str_t may have no data at all */
        p = ngx_pnalloc(pool, sizeof("''"));
        if (p) {
            ngx_memcpy(p, "''", sizeof("''"));
        }

        return p;
    }

    lit = PQescapeLiteral(pg, (char *) s->data, s->len);
    if (lit == NULL) {
        return NULL;
    }

    len = ngx_strlen(lit);

    p = ngx_pnalloc(pool, len + 1);
    if (p) {
        ngx_memcpy(p, lit, len + 1);
    }

    PQfreemem(lit);

    return p;
}


static ngx_msec_t
ngx_http_bulk_nodes_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}
