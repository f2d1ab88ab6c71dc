
/*
 * ngx_bulk: POST /$import, /fhir/$import and the BulkImportStatus routes.
 *
 * The kick-off answers 202 at once; the job lives in its own pool,
 * started by a timer, and outlives the client.  Each input is a $load
 * (ngx_http_bulk_load.c) on a fake connection (fd -1) and a fake main
 * request of its own, with the configuration of the kick-off request,
 * committing every bulk_import_batch (default 8m) staged bytes.  One fake
 * request per input keeps pools bounded (a subrequest leaves 24-45 KB in
 * its parent's pool) and lets inputs run side by side without the
 * postponed-subrequest ordering of a shared parent.
 *
 * Job records live in a shared-memory zone (any worker answers a status
 * GET, a DELETE sets the cancel flag the job reads every second) and in
 * table bulkimportstatus (after a restart).
 */


#include "ngx_http_bulk_import.h"
#include "ngx_http_bulk_import_nodes.h"
#include "ngx_http_bulk_body.h"
#include "ngx_http_bulk_fetch.h"
#include "ngx_http_bulk_load.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_json.h"
#include "ngx_bulk_format.h"
#include "ngx_bulk_view.h"
#include <sys/random.h>


#define NGX_HTTP_BULK_IMPORT_ISSUES      10
#define NGX_HTTP_BULK_IMPORT_ISSUE_LEN   200
#define NGX_HTTP_BULK_IMPORT_ERR_LEN     256
#define NGX_HTTP_BULK_IMPORT_HEARTBEAT   1000
#define NGX_HTTP_BULK_IMPORT_COUNT       50     /* GET /BulkImportStatus */
#define NGX_HTTP_BULK_IMPORT_COUNT_MAX   1000

#define NGX_HTTP_BULK_IMPORT_WAITING     0
#define NGX_HTTP_BULK_IMPORT_ACTIVE      1
#define NGX_HTTP_BULK_IMPORT_FINISHED    2
#define NGX_HTTP_BULK_IMPORT_FAILED      3
#define NGX_HTTP_BULK_IMPORT_CANCELLED   4


typedef struct {
    uint64_t                      line;
    size_t                        len;
    u_char                        text[NGX_HTTP_BULK_IMPORT_ISSUE_LEN];
} ngx_http_bulk_import_issue_t;


/* in shared memory: no pool pointers */

typedef struct {
    u_char                        type[NGX_HTTP_BULK_TYPE_MAX];
    size_t                        type_len;
    u_char                       *url;      /* slab memory */
    size_t                        url_len;
    ngx_uint_t                    status;
    uint64_t                      total;
    uint64_t                      errors;
    off_t                         bytes;
    off_t                         length;   /* Content-Length or -1 */
    ngx_msec_t                    start;    /* ms since the epoch */
    ngx_msec_t                    duration;
    ngx_uint_t                    nissues;
    ngx_http_bulk_import_issue_t  issues[NGX_HTTP_BULK_IMPORT_ISSUES];
    u_char                        err[NGX_HTTP_BULK_IMPORT_ERR_LEN];
} ngx_http_bulk_import_input_rec_t;


typedef struct {
    ngx_rbtree_node_t             node;     /* key: crc32 of the id */
    ngx_queue_t                   queue;    /* oldest first */
    u_char                        id[NGX_HTTP_BULK_ID_MAX];
    size_t                        id_len;
    u_char                        encoding[16];
    size_t                        encoding_len;
    ngx_uint_t                    status;
    ngx_msec_t                    start;
    ngx_msec_t                    end;
    ngx_pid_t                     pid;      /* the worker running the job */
    uint64_t                      pid_start; /* its start, 0: unknown */
    time_t                        heartbeat;
    u_char                        err[NGX_HTTP_BULK_IMPORT_ERR_LEN];
    unsigned                      fhir:1;
    unsigned                      update:1;
    unsigned                      cancel:1;
    unsigned                      owned:1;  /* pinned: a job writes it */
    ngx_uint_t                    ninputs;
    ngx_http_bulk_import_input_rec_t  inputs[1];
} ngx_http_bulk_import_rec_t;


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   queue;
} ngx_http_bulk_import_sh_t;


typedef struct {
    ngx_http_bulk_import_sh_t    *sh;
    ngx_slab_pool_t              *shpool;
} ngx_http_bulk_import_zone_t;


/*
 * A job, dispatched from its heartbeat, the end of its inputs and the end
 * of its status writes:
 *
 *   new -> running [-> stopping] -> ending -> freed (a posted event)
 */

typedef enum {
    ngx_http_bulk_import_new = 0,   /* its first heartbeat starts it */
    ngx_http_bulk_import_running,   /* up to bulk_import_concurrency
                                       inputs at a time */
    ngx_http_bulk_import_stopping,  /* cancelled, or nginx shuts down: the
                                       inputs end early */
    ngx_http_bulk_import_ending     /* every input is over: the last
                                       status write, then it is freed */
} ngx_http_bulk_import_state_e;


/* the status written to the table, one write at a time */

typedef enum {
    ngx_http_bulk_import_save_idle = 0,
    ngx_http_bulk_import_save_writing,
    ngx_http_bulk_import_save_again   /* changed while written: again */
} ngx_http_bulk_import_save_e;


typedef struct ngx_http_bulk_import_job_s  ngx_http_bulk_import_job_t;

typedef struct {
    ngx_http_bulk_import_job_t   *job;
    ngx_uint_t                    index;
    ngx_str_t                     type;
    ngx_str_t                     url;
    ngx_pool_t                   *pool;     /* of the fake request */
    ngx_http_bulk_load_t         *load;     /* while it runs */
} ngx_http_bulk_import_input_t;


struct ngx_http_bulk_import_job_s {
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    ngx_queue_t                   queue;    /* the worker's jobs */
    ngx_str_t                     id;
    ngx_http_bulk_import_zone_t  *zone;
    ngx_http_bulk_import_rec_t   *rec;

    void                        **main_conf;
    void                        **srv_conf;
    void                        **loc_conf;
    ngx_http_bulk_loc_conf_t     *conf;

    ngx_http_bulk_import_state_e  state;
    ngx_http_bulk_import_save_e   save;

    ngx_http_bulk_load_opts_t     opts;
    unsigned                      fhir:1;

    ngx_uint_t                    ninputs;
    ngx_uint_t                    next;
    ngx_uint_t                    running;
    ngx_http_bulk_import_input_t *inputs;
    ngx_array_t                   dead;     /* ngx_pool_t *: to destroy */

    ngx_event_t                   timer;
    ngx_event_t                   reap;
    ngx_event_t                   done;     /* frees the job, posted */

    ngx_http_bulk_pg_waiter_t     waiter;   /* status writes */
    ngx_http_bulk_pg_conn_t      *pc;
};


typedef enum {
    NGX_HTTP_BULK_IMPORT_RUN = 0,
    NGX_HTTP_BULK_IMPORT_CANCEL,
    NGX_HTTP_BULK_IMPORT_SHUTDOWN
} ngx_http_bulk_import_stop_e;


/* a kick-off request, checked */

typedef struct {
    ngx_str_t                     id;
    ngx_str_t                     encoding;
    ngx_http_bulk_load_opts_t     opts;
    ngx_uint_t                    fhir;
    yajl_val                      inputs;
    ngx_uint_t                    ninputs;
    ngx_http_bulk_import_source_t *sources;
    u_char                        err[256];
} ngx_http_bulk_import_req_t;


/*
 * A row of bulkimportstatus as GET shows it: a job the zone lost while
 * active (nginx restarted) failed
 */

#define NGX_HTTP_BULK_IMPORT_ROW                                             \
    "(CASE WHEN resource->>'status' = 'active'"                              \
    " THEN resource || '{\"status\":\"failed\",\"error\":"                   \
    "\"the import was interrupted (nginx restarted)\"}'"                     \
    " ELSE resource END)::text"


/*
 * GET/DELETE of a status the zone does not have, and the list: asked of
 * the table
 */

typedef struct {
    ngx_http_request_t           *request;
    ngx_str_t                     id;       /* one status */
    ngx_uint_t                    list;     /* else the list: */
    ngx_uint_t                    count;    /* _count */
    ngx_uint_t                    html;
    ngx_array_t                   zone;     /* entries, newest first */
    ngx_uint_t                    nzone;    /* records in the zone */
    ngx_str_t                     ids;      /* their ids, an array literal */
    ngx_http_bulk_pg_waiter_t     waiter;
    ngx_http_bulk_pg_conn_t      *pc;
} ngx_http_bulk_import_lookup_t;


static ngx_int_t ngx_http_bulk_import_body(ngx_http_request_t *r,
    yajl_val root);
static ngx_int_t ngx_http_bulk_import_options(ngx_http_request_t *r,
    yajl_val root, ngx_http_bulk_import_req_t *req);
static ngx_int_t ngx_http_bulk_import_inputs(ngx_http_request_t *r,
    ngx_http_bulk_import_req_t *req);
static ngx_int_t ngx_http_bulk_import_new_id(u_char *buf, ngx_str_t *id);
static ngx_int_t ngx_http_bulk_import_record(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_req_t *req, ngx_pool_t *pool,
    ngx_http_bulk_import_rec_t **recp, u_char **json, size_t *lenp);
static ngx_int_t ngx_http_bulk_import_job(ngx_http_request_t *r,
    ngx_http_bulk_import_req_t *req, ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec);
static ngx_http_bulk_import_rec_t *ngx_http_bulk_import_lookup(
    ngx_http_bulk_import_zone_t *z, u_char *id, size_t len);
static void ngx_http_bulk_import_free_rec(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec);
static void ngx_http_bulk_import_free_urls(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec);
static ngx_int_t ngx_http_bulk_import_proc(ngx_pid_t pid, uint64_t *start);
static ngx_uint_t ngx_http_bulk_import_owner_alive(
    ngx_http_bulk_import_rec_t *rec);
static void *ngx_http_bulk_import_alloc(ngx_http_bulk_import_zone_t *z,
    size_t size);
static ngx_uint_t ngx_http_bulk_import_check_owner(
    ngx_http_bulk_import_rec_t *rec);
static u_char *ngx_http_bulk_import_render(ngx_pool_t *pool,
    ngx_http_bulk_import_rec_t *rec, ngx_uint_t full, size_t *len);
static ngx_int_t ngx_http_bulk_import_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *p, size_t len, ngx_str_t *progress);
static void ngx_http_bulk_import_timer(ngx_event_t *ev);
static void ngx_http_bulk_import_stop(ngx_http_bulk_import_job_t *job,
    ngx_http_bulk_import_stop_e stop);
static void ngx_http_bulk_import_next(ngx_http_bulk_import_job_t *job);
static ngx_int_t ngx_http_bulk_import_start_input(
    ngx_http_bulk_import_job_t *job, ngx_http_bulk_import_input_t *in);
static u_char *ngx_http_bulk_import_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_http_bulk_import_progress(ngx_http_bulk_import_input_t *in,
    ngx_uint_t status);
static void ngx_http_bulk_import_input_done(ngx_http_bulk_load_t *load,
    void *data);
static void ngx_http_bulk_import_reap(ngx_event_t *ev);
static void ngx_http_bulk_import_end(ngx_http_bulk_import_job_t *job);
static void ngx_http_bulk_import_save(ngx_http_bulk_import_job_t *job);
static void ngx_http_bulk_import_save_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static u_char *ngx_http_bulk_import_save_sql(
    ngx_http_bulk_import_job_t *job);
static void ngx_http_bulk_import_saved(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_import_save_done(ngx_http_bulk_import_job_t *job);
static void ngx_http_bulk_import_done(ngx_event_t *ev);
static void ngx_http_bulk_import_free(ngx_http_bulk_import_job_t *job);
static ngx_int_t ngx_http_bulk_import_percent(
    ngx_http_bulk_import_rec_t *rec);
static ngx_int_t ngx_http_bulk_import_table_lookup(ngx_http_request_t *r,
    ngx_http_bulk_import_lookup_t *lk);
static u_char *ngx_http_bulk_import_row(ngx_pool_t *pool, ngx_str_t *id,
    char *row, size_t len, size_t *lenp);
static ngx_int_t ngx_http_bulk_import_send_html(ngx_http_request_t *r,
    ngx_bulk_view_job_t *jobs, ngx_uint_t n, int64_t total);
static void ngx_http_bulk_import_view_free(void *data);
static ngx_int_t ngx_http_bulk_import_count(ngx_http_request_t *r,
    ngx_uint_t *count);
static ngx_int_t ngx_http_bulk_import_list_zone(ngx_http_request_t *r,
    ngx_http_bulk_import_lookup_t *lk);
static ngx_int_t ngx_http_bulk_import_newer(const void *one,
    const void *two);
static u_char *ngx_http_bulk_import_list_sql(ngx_http_bulk_import_lookup_t *lk);
static ngx_int_t ngx_http_bulk_import_list_answer(
    ngx_http_bulk_import_lookup_t *lk, ngx_array_t *table, uint64_t total);
static ngx_int_t ngx_http_bulk_import_bundle(ngx_http_request_t *r,
    ngx_http_bulk_import_entry_t **entries, ngx_uint_t n, uint64_t total,
    ngx_uint_t count);
static void ngx_http_bulk_import_table_ready(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_import_table_result(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_import_table_cleanup(void *data);
static ngx_int_t ngx_http_bulk_import_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_msec_t ngx_http_bulk_import_now(void);


static ngx_queue_t  ngx_http_bulk_import_jobs;
static ngx_uint_t   ngx_http_bulk_import_jobs_init;
static uint64_t     ngx_http_bulk_import_worker_start;

static const char  *ngx_http_bulk_import_status_names[] = {
    "waiting", "active", "finished", "failed", "cancelled"
};


/* zone */

ngx_shm_zone_t *
ngx_http_bulk_import_add_zone(ngx_conf_t *cf, ngx_str_t *name, size_t size)
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

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_import_zone_t));
    if (z == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_bulk_import_init_zone;
    shm_zone->data = z;

    return shm_zone;
}


static ngx_int_t
ngx_http_bulk_import_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_bulk_import_zone_t  *ozone = data;

    size_t                        len;
    ngx_http_bulk_import_zone_t  *z;

    z = shm_zone->data;

    if (ozone) {
        /* a reload with the same size: the jobs stay */
        z->sh = ozone->sh;
        z->shpool = ozone->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool, sizeof(ngx_http_bulk_import_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&z->sh->queue);

    len = sizeof(" in bulk import zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in bulk import zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


void
ngx_http_bulk_import_init_process(ngx_cycle_t *cycle)
{
    ngx_queue_init(&ngx_http_bulk_import_jobs);
    ngx_http_bulk_import_jobs_init = 1;
    (void) ngx_http_bulk_import_proc(ngx_pid,
                                     &ngx_http_bulk_import_worker_start);
}


/*
 * The worker exits (SIGTERM, or a graceful exit cut short): jobs still
 * running here are marked failed, so none stays active forever.
 * Committed batches stay in the database.
 */

void
ngx_http_bulk_import_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *q;
    ngx_http_bulk_import_job_t  *job;
    ngx_http_bulk_import_rec_t  *rec;

    if (!ngx_http_bulk_import_jobs_init) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_bulk_import_jobs);
         q != ngx_queue_sentinel(&ngx_http_bulk_import_jobs);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_bulk_import_job_t, queue);
        rec = job->rec;

        ngx_shmtx_lock(&job->zone->shpool->mutex);

        if (rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE) {
            rec->status = NGX_HTTP_BULK_IMPORT_FAILED;
            rec->end = ngx_http_bulk_import_now();
            ngx_cpystrn(rec->err, (u_char *) "interrupted by nginx shutdown",
                        NGX_HTTP_BULK_IMPORT_ERR_LEN);

            for (i = 0; i < rec->ninputs; i++) {
                if (rec->inputs[i].status <= NGX_HTTP_BULK_IMPORT_ACTIVE) {
                    rec->inputs[i].status = NGX_HTTP_BULK_IMPORT_FAILED;
                    ngx_cpystrn(rec->inputs[i].err,
                                (u_char *) "interrupted by nginx shutdown",
                                NGX_HTTP_BULK_IMPORT_ERR_LEN);
                }
            }
        }

        rec->owned = 0;
        job->rec = NULL;

        ngx_shmtx_unlock(&job->zone->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "bulk import \"%V\" interrupted by nginx shutdown",
                      &job->id);
    }
}


static ngx_msec_t
ngx_http_bulk_import_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}


static ngx_http_bulk_import_rec_t *
ngx_http_bulk_import_lookup(ngx_http_bulk_import_zone_t *z, u_char *id,
    size_t len)
{
    uint32_t                     hash;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_bulk_import_rec_t  *rec;
    ngx_int_t                    rc;

    hash = ngx_crc32_short(id, len);

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        rec = (ngx_http_bulk_import_rec_t *) node;

        rc = ngx_memn2cmp(id, rec->id, len, rec->id_len);

        if (rc == 0) {
            return rec;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_bulk_import_free_rec(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec)
{
    ngx_rbtree_delete(&z->sh->rbtree, &rec->node);
    ngx_queue_remove(&rec->queue);

    ngx_http_bulk_import_free_urls(z, rec);
    ngx_slab_free_locked(z->shpool, rec);
}


static void
ngx_http_bulk_import_free_urls(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec)
{
    ngx_uint_t  i;

    for (i = 0; i < rec->ninputs; i++) {
        if (rec->inputs[i].url) {
            ngx_slab_free_locked(z->shpool, rec->inputs[i].url);
            rec->inputs[i].url = NULL;
        }
    }
}


/*
 * Slab memory, evicting the oldest records that no job owns when needed.
 * A record stays pinned while its job runs, whatever its status says.
 */

static void *
ngx_http_bulk_import_alloc(ngx_http_bulk_import_zone_t *z, size_t size)
{
    void                        *p;
    ngx_queue_t                 *q, *next;
    ngx_http_bulk_import_rec_t  *rec;

    p = ngx_slab_alloc_locked(z->shpool, size);
    if (p) {
        return p;
    }

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        rec = ngx_queue_data(q, ngx_http_bulk_import_rec_t, queue);

        if (ngx_http_bulk_import_check_owner(rec)) {
            continue;
        }

        ngx_http_bulk_import_free_rec(z, rec);

        p = ngx_slab_alloc_locked(z->shpool, size);
        if (p) {
            return p;
        }
    }

    return NULL;
}


/*
 * The state of a process: 1 alive, 0 gone (or a zombie), -1 unknown (no
 * procfs); *start gets its start time in clock ticks since boot.  Fields
 * of /proc/<pid>/stat follow the last ')' (the command name may hold
 * anything): state is the third field, starttime the 22nd.
 */

static ngx_int_t
ngx_http_bulk_import_proc(ngx_pid_t pid, uint64_t *start)
{
    u_char      *p, *last;
    ssize_t      n;
    ngx_fd_t     fd;
    ngx_uint_t   field;
    u_char       name[sizeof("/proc//stat") + NGX_INT64_LEN];
    u_char       buf[1024];

    *start = 0;

    ngx_sprintf(name, "/proc/%P/stat%Z", pid);

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        return (ngx_errno == NGX_ENOENT) ? 0 : -1;
    }

    n = read(fd, buf, sizeof(buf));
    (void) ngx_close_file(fd);

    if (n <= 0) {
        return -1;
    }

    last = buf + n;

    for (p = last; p > buf && p[-1] != ')'; p--) {
        /* void */
    }

    if (p == buf || last - p < 3) {
        return -1;
    }

    if (p[1] == 'Z' || p[1] == 'X' || p[1] == 'x') {
        return 0;
    }

    field = 2;

    for ( /* void */ ; p < last; p++) {
        if (*p == ' ') {
            if (++field > 22) {
                break;
            }

            continue;
        }

        if (field == 22) {
            if (*p < '0' || *p > '9') {
                return -1;
            }

            *start = *start * 10 + (*p - '0');
        }
    }

    return *start ? 1 : -1;
}


/*
 * 1 while the worker process that runs a record's job is alive.  A pid
 * alone can be reused: the process's start time tells (where procfs has
 * it).  A worker that is alive but slow keeps its jobs: no heartbeat rule
 * frees a record under a running job.
 */

static ngx_uint_t
ngx_http_bulk_import_owner_alive(ngx_http_bulk_import_rec_t *rec)
{
    uint64_t  start;

    if (rec->pid == ngx_pid) {
        return rec->pid_start == ngx_http_bulk_import_worker_start;
    }

    if (kill(rec->pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 0;
    }

    switch (ngx_http_bulk_import_proc(rec->pid, &start)) {

    case 0:
        return 0;

    case 1:
        return rec->pid_start == 0 || start == rec->pid_start;

    default:
        return 1;
    }
}


/*
 * A record whose job is gone without ending it (its worker was killed) is
 * settled: active becomes failed and the record is no longer pinned.
 * Called with the zone locked.  Returns 1 while a live job owns the record.
 */

static ngx_uint_t
ngx_http_bulk_import_check_owner(ngx_http_bulk_import_rec_t *rec)
{
    ngx_uint_t  i;

    if (!rec->owned) {
        return 0;
    }

    if (ngx_http_bulk_import_owner_alive(rec)) {
        return 1;
    }

    rec->owned = 0;

    if (rec->status != NGX_HTTP_BULK_IMPORT_ACTIVE
        && rec->status != NGX_HTTP_BULK_IMPORT_CANCELLED)
    {
        return 0;
    }

    ngx_snprintf(rec->err, NGX_HTTP_BULK_IMPORT_ERR_LEN - 1,
                 "the nginx worker process %P running the import died%Z",
                 rec->pid);

    if (rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE) {
        rec->status = NGX_HTTP_BULK_IMPORT_FAILED;
    }

    rec->end = ngx_http_bulk_import_now();

    for (i = 0; i < rec->ninputs; i++) {
        if (rec->inputs[i].status <= NGX_HTTP_BULK_IMPORT_ACTIVE) {
            rec->inputs[i].status = NGX_HTTP_BULK_IMPORT_FAILED;
            ngx_cpystrn(rec->inputs[i].err, rec->err,
                        NGX_HTTP_BULK_IMPORT_ERR_LEN);
        }
    }

    return 0;
}


/* kick-off */

ngx_int_t
ngx_http_bulk_import_handler(ngx_http_request_t *r)
{
    return ngx_http_bulk_read_body(r, ngx_http_bulk_import_body);
}


/*
 * The kick-off body, checked: NGX_OK, NGX_DECLINED (a 400, err says why)
 * or NGX_ERROR.  Every string is bounded by the field of the zone record
 * it goes to; the body has no key twice (ngx_http_bulk_read_body()).
 */

static ngx_int_t
ngx_http_bulk_import_options(ngx_http_request_t *r, yajl_val root,
    ngx_http_bulk_import_req_t *req)
{
    size_t       i;
    yajl_val     v;
    ngx_int_t    rc;
    const char  *key;

    for (i = 0; i < root->u.object.len; i++) {
        v = root->u.object.values[i];
        key = root->u.object.keys[i];

        if (ngx_strcmp(key, "id") == 0) {
            if (!YAJL_IS_STRING(v)) {
                goto bad_id;
            }

            req->id.data = (u_char *) YAJL_GET_STRING(v);
            req->id.len = ngx_strlen(req->id.data);

            if (!ngx_bulk_fhir_id_valid((const char *) req->id.data,
                                        req->id.len))
            {
                goto bad_id;
            }

        } else if (ngx_strcmp(key, "inputs") == 0) {
            req->inputs = v;

        } else if (ngx_strcmp(key, "contentEncoding") == 0) {
            if (!YAJL_IS_STRING(v)
                || (ngx_strcmp(v->u.string, "gzip") != 0
                    && ngx_strcmp(v->u.string, "plain") != 0))
            {
                ngx_snprintf(req->err, sizeof(req->err) - 1,
                             "\"contentEncoding\" must be \"gzip\" or "
                             "\"plain\"%Z");
                return NGX_DECLINED;
            }

            req->encoding.data = (u_char *) v->u.string;
            req->encoding.len = ngx_strlen(v->u.string);

        } else {
            rc = ngx_http_bulk_load_option(r->pool, key, v, &req->opts,
                                           req->err, sizeof(req->err));

            if (rc == NGX_ABORT) {
                return NGX_DECLINED;
            }

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }
        }

        /* inputFormat, mode and anything else: accepted and ignored */
    }

    return ngx_http_bulk_import_inputs(r, req);

bad_id:

    ngx_snprintf(req->err, sizeof(req->err) - 1,
                 "\"id\" must be a FHIR id ([A-Za-z0-9.-]{1,64})%Z");

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_bulk_import_inputs(ngx_http_request_t *r,
    ngx_http_bulk_import_req_t *req)
{
    size_t                         i, j, n;
    yajl_val                       in, v;
    ngx_str_t                      s;
    const char                    *key;
    ngx_http_bulk_import_source_t *src;

    if (req->inputs == NULL || !YAJL_IS_ARRAY(req->inputs)
        || req->inputs->u.array.len == 0)
    {
        ngx_snprintf(req->err, sizeof(req->err) - 1,
                     "\"inputs\" must be a non-empty array of "
                     "{\"resourceType\", \"url\"}%Z");
        return NGX_DECLINED;
    }

    n = req->inputs->u.array.len;

    req->sources = ngx_pcalloc(r->pool,
                               n * sizeof(ngx_http_bulk_import_source_t));
    if (req->sources == NULL) {
        return NGX_ERROR;
    }

    req->ninputs = n;

    for (i = 0; i < n; i++) {
        in = req->inputs->u.array.values[i];
        src = &req->sources[i];

        if (!YAJL_IS_OBJECT(in)) {
            ngx_snprintf(req->err, sizeof(req->err) - 1,
                         "inputs[%uz] is not an object%Z", i);
            return NGX_DECLINED;
        }

        for (j = 0; j < in->u.object.len; j++) {
            v = in->u.object.values[j];
            key = in->u.object.keys[j];

            if (!YAJL_IS_STRING(v)) {
                continue;
            }

            s.data = (u_char *) YAJL_GET_STRING(v);
            s.len = ngx_strlen(s.data);

            if (ngx_strcmp(key, "resourceType") == 0) {
                src->type = s;

            } else if (ngx_strcmp(key, "url") == 0) {
                src->url = s;
            }
        }

        if (ngx_http_bulk_type_name(src->type.data, src->type.len)
            != NGX_OK)
        {
            ngx_snprintf(req->err, sizeof(req->err) - 1,
                         "inputs[%uz]: \"resourceType\" must be a resource "
                         "type name%Z", i);
            return NGX_DECLINED;
        }

        if (ngx_http_bulk_fetch_url_valid(src->url.data, src->url.len)
            != NGX_OK)
        {
            ngx_snprintf(req->err, sizeof(req->err) - 1,
                         "inputs[%uz]: \"url\" must be an http or https "
                         "URL%Z", i);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* 128 random bits as 32 hex digits: a job id nobody can guess */

static ngx_int_t
ngx_http_bulk_import_new_id(u_char *buf, ngx_str_t *id)
{
    u_char  *p, *last;
    u_char   rnd[16];

    p = rnd;
    last = rnd + sizeof(rnd);

    while (p < last) {
        ssize_t  n;

        n = getrandom(p, last - p, 0);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            return NGX_ERROR;
        }

        p += n;
    }

    p = ngx_hex_dump(buf, rnd, sizeof(rnd));

    id->data = buf;
    id->len = p - buf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_bulk_import_body(ngx_http_request_t *r, yajl_val root)
{
    u_char                        *json;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_str_t                      location;
    ngx_http_bulk_loc_conf_t      *blcf;
    ngx_http_bulk_main_conf_t     *bmcf;
    ngx_http_bulk_import_req_t     req;
    ngx_http_bulk_nodes_job_t      nj;
    ngx_http_bulk_import_zone_t   *z;
    ngx_http_bulk_import_rec_t    *rec;
    u_char                         idbuf[2 * 16];

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulk_module);
    z = bmcf->import_zone->data;

    ngx_memzero(&req, sizeof(ngx_http_bulk_import_req_t));
    req.fhir = blcf->load_fhir;

    switch (ngx_http_bulk_import_options(r, root, &req)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "%s", req.err);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (req.id.len == 0
        && ngx_http_bulk_import_new_id(idbuf, &req.id) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "getrandom() failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (bmcf->import_lease) {
        /* nodes share the job through the tables */
        nj.id = req.id;
        nj.encoding = req.encoding;
        nj.opts = req.opts;
        nj.fhir = req.fhir;
        nj.ninputs = req.ninputs;
        nj.sources = req.sources;

        return ngx_http_bulk_nodes_submit(r, &nj);
    }

    rc = ngx_http_bulk_import_record(z, &req, r->pool, &rec, &json, &len);

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_BUSY:
        return ngx_http_bulk_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                                        "the import \"%V\" is %s",
                                        &req.id, req.err);

    case NGX_DECLINED:
        return ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "transient", "the bulk import zone "
                                        "\"%V\" is full",
                                        &bmcf->import_zone->shm.name);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulk_import_job(r, &req, z, rec) != NGX_OK) {
        ngx_shmtx_lock(&z->shpool->mutex);
        rec->status = NGX_HTTP_BULK_IMPORT_FAILED;
        rec->owned = 0;
        rec->end = ngx_http_bulk_import_now();
        ngx_cpystrn(rec->err, (u_char *) "out of memory",
                    NGX_HTTP_BULK_IMPORT_ERR_LEN);
        ngx_shmtx_unlock(&z->shpool->mutex);

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk import \"%V\" accepted: %uz inputs", &req.id,
                  req.ninputs);

    location.len = sizeof("/BulkImportStatus/") + req.id.len;
    location.data = ngx_pnalloc(r->pool, location.len);

    if (json == NULL || location.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(location.data, "/BulkImportStatus/%V%Z", &req.id);

    if (ngx_http_bulk_add_header(r, "Content-Location",
                                 (const char *) location.data)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulk_import_send(r, NGX_HTTP_ACCEPTED, json, len, NULL);
}


/*
 * The zone record of a new job, pinned and active: NGX_OK; NGX_BUSY when a
 * live job owns that id (req->err says how); NGX_DECLINED when the zone is
 * full even after evicting the records no job owns.  The rendered status
 * goes to *json (NULL when out of memory).
 */

static ngx_int_t
ngx_http_bulk_import_record(ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_req_t *req, ngx_pool_t *pool,
    ngx_http_bulk_import_rec_t **recp, u_char **json, size_t *lenp)
{
    size_t                             size, len;
    ngx_uint_t                         i;
    ngx_http_bulk_import_rec_t        *rec;
    ngx_http_bulk_import_source_t     *src;
    ngx_http_bulk_import_input_rec_t  *ir;

    size = sizeof(ngx_http_bulk_import_rec_t)
           + (req->ninputs - 1) * sizeof(ngx_http_bulk_import_input_rec_t);

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = ngx_http_bulk_import_lookup(z, req->id.data, req->id.len);

    if (rec) {
        if (ngx_http_bulk_import_check_owner(rec)) {
            ngx_cpystrn(req->err, (u_char *)
                        (rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE
                         ? "active" : "still being stopped"),
                        sizeof(req->err));
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_BUSY;
        }

        ngx_http_bulk_import_free_rec(z, rec);
    }

    rec = ngx_http_bulk_import_alloc(z, size);
    if (rec == NULL) {
        goto full;
    }

    ngx_memzero(rec, size);

    for (i = 0; i < req->ninputs; i++) {
        src = &req->sources[i];
        ir = &rec->inputs[i];

        ir->length = -1;

        /* bounded by ngx_http_bulk_type_name() and by the field */
        ir->type_len = ngx_min(src->type.len, sizeof(ir->type));
        ngx_memcpy(ir->type, src->type.data, ir->type_len);

        ir->url = ngx_http_bulk_import_alloc(z, src->url.len);
        if (ir->url == NULL) {
            rec->ninputs = i;
            ngx_http_bulk_import_free_urls(z, rec);
            ngx_slab_free_locked(z->shpool, rec);
            goto full;
        }

        ngx_memcpy(ir->url, src->url.data, src->url.len);
        ir->url_len = src->url.len;
        rec->ninputs = i + 1;
    }

    rec->id_len = ngx_min(req->id.len, sizeof(rec->id));
    ngx_memcpy(rec->id, req->id.data, rec->id_len);
    rec->node.key = ngx_crc32_short(rec->id, rec->id_len);

    len = ngx_min(req->encoding.len, sizeof(rec->encoding));
    if (len) {
        ngx_memcpy(rec->encoding, req->encoding.data, len);
    }

    rec->encoding_len = len;
    rec->status = NGX_HTTP_BULK_IMPORT_ACTIVE;
    rec->fhir = req->fhir;
    rec->update = req->opts.update;
    rec->start = ngx_http_bulk_import_now();
    rec->pid = ngx_pid;
    rec->pid_start = ngx_http_bulk_import_worker_start;
    rec->heartbeat = ngx_time();
    rec->owned = 1;

    ngx_rbtree_insert(&z->sh->rbtree, &rec->node);
    ngx_queue_insert_tail(&z->sh->queue, &rec->queue);

    *json = ngx_http_bulk_import_render(pool, rec, 1, lenp);

    ngx_shmtx_unlock(&z->shpool->mutex);

    *recp = rec;

    return NGX_OK;

full:

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_DECLINED;
}


/* the job of a new record: its own pool, started by a timer */

static ngx_int_t
ngx_http_bulk_import_job(ngx_http_request_t *r,
    ngx_http_bulk_import_req_t *req, ngx_http_bulk_import_zone_t *z,
    ngx_http_bulk_import_rec_t *rec)
{
    ngx_uint_t                      i;
    ngx_pool_t                     *pool;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_bulk_import_job_t     *job;
    ngx_http_bulk_import_input_t   *ji;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_bulk_import_job_t));
    if (job == NULL) {
        goto failed;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    job->pool = pool;
    job->log = clcf->error_log;
    job->zone = z;
    job->rec = rec;
    job->main_conf = r->main_conf;
    job->srv_conf = r->srv_conf;
    job->loc_conf = r->loc_conf;
    job->conf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    job->fhir = req->fhir;
    job->opts = req->opts;
    job->ninputs = req->ninputs;

    job->id.data = ngx_pstrdup(pool, &req->id);
    job->id.len = req->id.len;

    job->opts.merge.data = req->opts.merge.len
                           ? ngx_pstrdup(pool, &req->opts.merge) : NULL;

    job->inputs = ngx_pcalloc(pool, req->ninputs
                                    * sizeof(ngx_http_bulk_import_input_t));

    if (job->id.data == NULL || job->inputs == NULL
        || (req->opts.merge.len && job->opts.merge.data == NULL)
        || ngx_array_init(&job->dead, pool, 4, sizeof(ngx_pool_t *))
           != NGX_OK)
    {
        goto failed;
    }

    for (i = 0; i < req->ninputs; i++) {
        ji = &job->inputs[i];
        ji->job = job;
        ji->index = i;

        ji->type.data = ngx_pstrdup(pool, &req->sources[i].type);
        ji->type.len = req->sources[i].type.len;

        ji->url.data = ngx_pstrdup(pool, &req->sources[i].url);
        ji->url.len = req->sources[i].url.len;

        if (ji->type.data == NULL || ji->url.data == NULL) {
            goto failed;
        }
    }

    job->timer.handler = ngx_http_bulk_import_timer;
    job->timer.data = job;
    job->timer.log = job->log;
    job->timer.cancelable = 0;

    job->reap.handler = ngx_http_bulk_import_reap;
    job->reap.data = job;
    job->reap.log = job->log;

    job->done.handler = ngx_http_bulk_import_done;
    job->done.data = job;
    job->done.log = job->log;

    ngx_queue_insert_tail(&ngx_http_bulk_import_jobs, &job->queue);

    ngx_add_timer(&job->timer, 1);

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/* "2026-11-27T22:10:08.123Z" (NGX_HTTP_BULK_IMPORT_TS_LEN bytes) */

u_char *
ngx_http_bulk_import_iso(u_char *p, ngx_msec_t ms)
{
    ngx_tm_t  tm;

    ngx_gmtime((time_t) (ms / 1000), &tm);

    return ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02d.%03MZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                       (ngx_msec_t) (ms % 1000));
}


/* the status resource as JSON; full: with resourceType and id */

static u_char *
ngx_http_bulk_import_render(ngx_pool_t *pool, ngx_http_bulk_import_rec_t *rec,
    ngx_uint_t full, size_t *lenp)
{
    u_char                            *p, *buf;
    size_t                             len;
    ngx_uint_t                         i, k;
    ngx_http_bulk_import_input_rec_t  *in;

#define ngx_http_bulk_import_time(p, ms)                                     \
    *p++ = '"';                                                              \
    p = ngx_http_bulk_import_iso(p, ms);                                     \
    *p++ = '"'

    len = 1024 + 6 * (rec->id_len + NGX_HTTP_BULK_IMPORT_ERR_LEN);

    for (i = 0; i < rec->ninputs; i++) {
        in = &rec->inputs[i];
        len += 512 + in->type_len + 6 * (in->url_len
                                         + NGX_HTTP_BULK_IMPORT_ERR_LEN)
               + in->nissues * (64 + 6 * NGX_HTTP_BULK_IMPORT_ISSUE_LEN);
    }

    buf = ngx_pnalloc(pool, len);
    if (buf == NULL) {
        return NULL;
    }

    p = ngx_cpymem(buf, "{", 1);

    if (full) {
        p = ngx_sprintf(p, "\"resourceType\":\"BulkImportStatus\","
                        "\"id\":\"%*s\",", rec->id_len, rec->id);
    }

    p = ngx_sprintf(p, "\"status\":\"%s\",\"type\":\"%s\",",
                    ngx_http_bulk_import_status_names[rec->status],
                    rec->fhir ? "fhir" : "aidbox");

    if (rec->encoding_len) {
        p = ngx_sprintf(p, "\"contentEncoding\":\"%*s\",",
                        rec->encoding_len, rec->encoding);
    }

    p = ngx_sprintf(p, "\"update\":%s,\"time\":{\"start\":",
                    rec->update ? "true" : "false");
    ngx_http_bulk_import_time(p, rec->start);

    if (rec->end) {
        p = ngx_cpymem(p, ",\"end\":", sizeof(",\"end\":") - 1);
        ngx_http_bulk_import_time(p, rec->end);
    }

    p = ngx_cpymem(p, "},", 2);

    if (rec->err[0]) {
        p = ngx_cpymem(p, "\"error\":\"", sizeof("\"error\":\"") - 1);
        p += ngx_bulk_json_escape(p, rec->err, ngx_strlen(rec->err));
        p = ngx_cpymem(p, "\",", 2);
    }

    p = ngx_cpymem(p, "\"inputs\":[", sizeof("\"inputs\":[") - 1);

    for (i = 0; i < rec->ninputs; i++) {
        in = &rec->inputs[i];

        p = ngx_sprintf(p, "%s{\"resourceType\":\"%*s\",\"url\":\"",
                        i ? "," : "", in->type_len, in->type);
        p += ngx_bulk_json_escape(p, in->url, in->url_len);
        p = ngx_sprintf(p, "\",\"status\":\"%s\"",
                        ngx_http_bulk_import_status_names[in->status]);

        if (in->status != NGX_HTTP_BULK_IMPORT_WAITING) {
            p = ngx_sprintf(p, ",\"total\":%uL,\"errors\":%uL,\"bytes\":%O",
                            in->total, in->errors, in->bytes);

            if (in->length >= 0) {
                p = ngx_sprintf(p, ",\"length\":%O", in->length);
            }

            if (in->nissues) {
                p = ngx_cpymem(p, ",\"issues\":[", sizeof(",\"issues\":[") - 1);

                for (k = 0; k < in->nissues; k++) {
                    p = ngx_sprintf(p, "%s{\"line\":%uL,\"diagnostics\":\"",
                                    k ? "," : "", in->issues[k].line);
                    p += ngx_bulk_json_escape(p, in->issues[k].text,
                                              in->issues[k].len);
                    p = ngx_cpymem(p, "\"}", 2);
                }

                *p++ = ']';
            }

            if (in->start) {
                p = ngx_cpymem(p, ",\"ts\":", sizeof(",\"ts\":") - 1);
                ngx_http_bulk_import_time(p, in->start);
            }

            if (in->status > NGX_HTTP_BULK_IMPORT_ACTIVE) {
                p = ngx_sprintf(p, ",\"duration\":%M", in->duration);
            }
        }

        if (in->err[0]) {
            p = ngx_cpymem(p, ",\"error\":\"", sizeof(",\"error\":\"") - 1);
            p += ngx_bulk_json_escape(p, in->err, ngx_strlen(in->err));
            *p++ = '"';
        }

        *p++ = '}';
    }

    p = ngx_cpymem(p, "]}", 2);

    *lenp = p - buf;

    return buf;

#undef ngx_http_bulk_import_time
}


static ngx_int_t
ngx_http_bulk_import_send(ngx_http_request_t *r, ngx_uint_t status, u_char *p,
    size_t len, ngx_str_t *progress)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p[len] = '\n';   /* the renderer's estimate leaves room */

    b->pos = p;
    b->last = p + len + 1;
    b->memory = 1;

    if (progress && progress->len) {
        if (ngx_http_bulk_add_header(r, "X-Progress",
                                     (const char *) progress->data)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_bulk_send_json(r, status, b);
}


/* the job */

static void
ngx_http_bulk_import_timer(ngx_event_t *ev)
{
    ngx_uint_t                     i;
    ngx_core_conf_t               *ccf;
    ngx_http_bulk_import_job_t    *job;
    ngx_http_bulk_import_rec_t    *rec;
    ngx_http_bulk_import_stop_e    stop;

    job = ev->data;
    rec = job->rec;

    if (job->state == ngx_http_bulk_import_ending) {
        /* the last status write is on its way */
        ngx_add_timer(&job->timer, NGX_HTTP_BULK_IMPORT_HEARTBEAT);
        return;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    rec->heartbeat = ngx_time();

    for (i = 0; i < job->ninputs; i++) {
        if (job->inputs[i].load
            && ngx_http_bulk_load_running(job->inputs[i].load))
        {
            ngx_http_bulk_import_progress(&job->inputs[i],
                                          NGX_HTTP_BULK_IMPORT_ACTIVE);
        }
    }

    stop = NGX_HTTP_BULK_IMPORT_RUN;

    if (rec->cancel && job->state != ngx_http_bulk_import_stopping) {
        stop = NGX_HTTP_BULK_IMPORT_CANCEL;
    }

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    /*
     * a graceful shutdown with worker_shutdown_timeout would close the
     * job's connections under it: stop cleanly first
     */

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (stop == NGX_HTTP_BULK_IMPORT_RUN && ngx_exiting
        && ccf->shutdown_timeout && job->state != ngx_http_bulk_import_stopping)
    {
        stop = NGX_HTTP_BULK_IMPORT_SHUTDOWN;
    }

    if (job->state == ngx_http_bulk_import_new) {
        job->state = ngx_http_bulk_import_running;

        if (stop != NGX_HTTP_BULK_IMPORT_RUN) {
            ngx_http_bulk_import_stop(job, stop);
        }

        ngx_http_bulk_import_save(job);
        ngx_http_bulk_import_next(job);

    } else if (stop != NGX_HTTP_BULK_IMPORT_RUN) {
        ngx_http_bulk_import_stop(job, stop);
    }

    ngx_add_timer(&job->timer, NGX_HTTP_BULK_IMPORT_HEARTBEAT);
}


/* the job stops early: cancelled by a DELETE, or nginx shuts down */

static void
ngx_http_bulk_import_stop(ngx_http_bulk_import_job_t *job,
    ngx_http_bulk_import_stop_e stop)
{
    ngx_uint_t                     i, status;
    const char                    *why;
    ngx_http_bulk_import_rec_t    *rec;
    ngx_http_bulk_import_input_t  *in;

    rec = job->rec;
    job->state = ngx_http_bulk_import_stopping;

    if (stop == NGX_HTTP_BULK_IMPORT_CANCEL) {
        why = "cancelled";
        status = NGX_HTTP_BULK_IMPORT_CANCELLED;

    } else {
        why = "interrupted by nginx shutdown";
        status = NGX_HTTP_BULK_IMPORT_FAILED;
    }

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0, "bulk import \"%V\": %s",
                  &job->id, why);

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    if (stop == NGX_HTTP_BULK_IMPORT_SHUTDOWN) {
        ngx_cpystrn(rec->err, (u_char *) why, NGX_HTTP_BULK_IMPORT_ERR_LEN);
    }

    for (i = job->next; i < job->ninputs; i++) {
        rec->inputs[i].status = status;
    }

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    job->next = job->ninputs;

    for (i = 0; i < job->ninputs; i++) {
        in = &job->inputs[i];

        if (in->load && ngx_http_bulk_load_running(in->load)) {
            ngx_http_bulk_load_abort(in->load, why);
        }
    }
}


static void
ngx_http_bulk_import_next(ngx_http_bulk_import_job_t *job)
{
    ngx_uint_t                     max;
    ngx_http_bulk_import_input_t  *in;

    if (job->state == ngx_http_bulk_import_ending) {
        return;
    }

    max = job->conf->import_concurrency;

    while (job->running < max && job->next < job->ninputs) {
        in = &job->inputs[job->next++];

        if (ngx_http_bulk_import_start_input(job, in) != NGX_OK) {
            ngx_shmtx_lock(&job->zone->shpool->mutex);
            job->rec->inputs[in->index].status = NGX_HTTP_BULK_IMPORT_FAILED;
            ngx_cpystrn(job->rec->inputs[in->index].err,
                        (u_char *) "cannot start the input",
                        NGX_HTTP_BULK_IMPORT_ERR_LEN);
            ngx_shmtx_unlock(&job->zone->shpool->mutex);
        }
    }

    if (job->running == 0 && job->next == job->ninputs) {
        ngx_http_bulk_import_end(job);
    }
}


static ngx_int_t
ngx_http_bulk_import_start_input(ngx_http_bulk_import_job_t *job,
    ngx_http_bulk_import_input_t *in)
{
    ngx_pool_t                        *pool;
    ngx_http_request_t                *r;
    ngx_http_bulk_load_t              *load;
    ngx_http_bulk_load_input_t         li;
    ngx_http_bulk_import_input_rec_t  *ir;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, job->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    r = ngx_http_bulk_import_fake(pool, job->log, job->main_conf,
                                  job->srv_conf, job->loc_conf);
    if (r == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_memzero(&li, sizeof(ngx_http_bulk_load_input_t));

    li.type = in->type;
    li.url = in->url;
    li.opts = job->opts;
    li.fhir = job->fhir;
    li.batch = ngx_max(job->conf->import_batch, 1);
    li.done = ngx_http_bulk_import_input_done;
    li.data = in;

    load = ngx_http_bulk_load_create(r, &li);
    if (load == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    in->pool = pool;
    in->load = load;
    job->running++;

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    ir = &job->rec->inputs[in->index];
    ir->status = NGX_HTTP_BULK_IMPORT_ACTIVE;
    ir->start = ngx_http_bulk_import_now();
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "bulk import \"%V\": input %ui (%V) from \"%V\" started",
                  &job->id, in->index, &in->type, &in->url);

    ngx_http_bulk_load_run(load);

    return NGX_OK;
}


/*
 * A fake connection (fd -1, write event active and ready, so nginx
 * neither adds it to epoll nor spools to a temp file) and a fake main
 * request with the kick-off's configuration, owning the fetch subrequest.
 * Its count is the job's and is never released through
 * ngx_http_finalize_request(): the pool is destroyed when the input is over.
 */

ngx_http_request_t *
ngx_http_bulk_import_fake(ngx_pool_t *pool, ngx_log_t *job_log,
    void **main_conf, void **srv_conf, void **loc_conf)
{
    ngx_log_t                  *log;
    ngx_time_t                 *tp;
    ngx_event_t                *rev, *wev;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_log_ctx_t         *lctx;
    ngx_http_conf_ctx_t        *conf_ctx;
    ngx_http_connection_t      *hc;
    ngx_http_core_main_conf_t  *cmcf;

    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    rev = ngx_pcalloc(pool, sizeof(ngx_event_t));
    wev = ngx_pcalloc(pool, sizeof(ngx_event_t));
    log = ngx_palloc(pool, sizeof(ngx_log_t));
    lctx = ngx_pcalloc(pool, sizeof(ngx_http_log_ctx_t));
    hc = ngx_pcalloc(pool, sizeof(ngx_http_connection_t));
    conf_ctx = ngx_pcalloc(pool, sizeof(ngx_http_conf_ctx_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));

    if (c == NULL || rev == NULL || wev == NULL || log == NULL
        || lctx == NULL || hc == NULL || conf_ctx == NULL || r == NULL)
    {
        return NULL;
    }

    *log = *job_log;
    log->data = lctx;
    log->handler = ngx_http_bulk_import_log_error;
    log->action = NULL;

    c->fd = (ngx_socket_t) -1;
    c->pool = pool;
    c->log = log;
    c->read = rev;
    c->write = wev;
    c->data = r;
    c->log_error = NGX_ERROR_INFO;
    c->tcp_nodelay = NGX_TCP_NODELAY_DISABLED;
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    ngx_str_set(&c->addr_text, "bulk-import");

    rev->data = c;
    rev->log = log;
    wev->data = c;
    wev->log = log;
    wev->write = 1;
    wev->active = 1;
    wev->ready = 1;

    conf_ctx->main_conf = main_conf;
    conf_ctx->srv_conf = srv_conf;
    conf_ctx->loc_conf = loc_conf;
    hc->conf_ctx = conf_ctx;

    r->pool = pool;
    r->signature = NGX_HTTP_MODULE;
    r->connection = c;
    r->http_connection = hc;
    r->main_conf = main_conf;
    r->srv_conf = srv_conf;
    r->loc_conf = loc_conf;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    if (ngx_list_init(&r->headers_out.headers, pool, 4,
                      sizeof(ngx_table_elt_t)) != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, pool, 1,
                         sizeof(ngx_table_elt_t)) != NGX_OK
        || ngx_list_init(&r->headers_in.headers, pool, 1,
                         sizeof(ngx_table_elt_t)) != NGX_OK)
    {
        return NULL;
    }

    r->ctx = ngx_pcalloc(pool, sizeof(void *) * ngx_http_max_module);
    if (r->ctx == NULL) {
        return NULL;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    r->variables = ngx_pcalloc(pool, cmcf->variables.nelts
                                     * sizeof(ngx_http_variable_value_t));
    if (r->variables == NULL) {
        return NULL;
    }

    r->main = r;
    r->count = 1;
    r->logged = 1;

    tp = ngx_timeofday();
    r->start_sec = tp->sec;
    r->start_msec = tp->msec;

    r->method = NGX_HTTP_GET;
    ngx_str_set(&r->method_name, "GET");
    ngx_str_set(&r->request_line, "GET /$import");
    ngx_str_set(&r->uri, "/$import");
    r->unparsed_uri = r->uri;
    r->http_version = NGX_HTTP_VERSION_11;
    ngx_str_set(&r->http_protocol, "HTTP/1.1");

    r->headers_in.content_length_n = -1;
    r->headers_in.keep_alive_n = -1;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    r->uri_changes = NGX_HTTP_MAX_URI_CHANGES + 1;
    r->subrequests = NGX_HTTP_MAX_SUBREQUESTS + 1;
    r->http_state = NGX_HTTP_PROCESS_REQUEST_STATE;

    lctx->connection = c;
    lctx->request = r;
    lctx->current_request = r;

    return r;
}


static u_char *
ngx_http_bulk_import_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char              *p;
    ngx_http_request_t  *r;
    ngx_http_log_ctx_t  *ctx;

    p = buf;

    if (log->action) {
        p = ngx_snprintf(p, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    ctx = log->data;
    r = ctx->current_request;

    p = ngx_snprintf(buf, len, ", bulk import job");

    if (r && r != r->main) {
        len -= p - buf;
        buf = p;
        p = ngx_snprintf(buf, len, ", subrequest: \"%V\"", &r->uri);
    }

    return p;
}


/* an input's counters into the zone record; called with the zone locked */

static void
ngx_http_bulk_import_progress(ngx_http_bulk_import_input_t *in,
    ngx_uint_t status)
{
    size_t                             n;
    ngx_uint_t                         i;
    ngx_http_bulk_load_progress_t      p;
    ngx_http_bulk_import_input_rec_t  *ir;

    ngx_http_bulk_load_progress(in->load, &p);

    ir = &in->job->rec->inputs[in->index];

    ir->status = status;
    ir->total = p.total;
    ir->errors = p.errors;
    ir->bytes = p.received;
    ir->length = p.length;

    for (i = ir->nissues;
         i < p.nissues && i < NGX_HTTP_BULK_IMPORT_ISSUES;
         i++)
    {
        n = ngx_bulk_utf8_cut(p.issues[i].text.data, p.issues[i].text.len,
                              NGX_HTTP_BULK_IMPORT_ISSUE_LEN);
        ir->issues[i].line = p.issues[i].line;
        ir->issues[i].len = n;
        ngx_memcpy(ir->issues[i].text, p.issues[i].text.data, n);
        ir->nissues = i + 1;
    }

    if (status > NGX_HTTP_BULK_IMPORT_ACTIVE) {
        ir->duration = ngx_http_bulk_import_now() - ir->start;
    }
}


static void
ngx_http_bulk_import_input_done(ngx_http_bulk_load_t *load, void *data)
{
    ngx_http_bulk_import_input_t *in = data;

    ngx_uint_t                         status;
    ngx_pool_t                       **pp;
    ngx_http_bulk_import_job_t        *job;
    ngx_http_bulk_load_progress_t      p;
    ngx_http_bulk_import_input_rec_t  *ir;

    job = in->job;

    ngx_http_bulk_load_progress(load, &p);

    if (p.err == NULL) {
        status = NGX_HTTP_BULK_IMPORT_FINISHED;

    } else if (job->state == ngx_http_bulk_import_stopping
               && job->rec->cancel)
    {
        status = NGX_HTTP_BULK_IMPORT_CANCELLED;

    } else {
        status = NGX_HTTP_BULK_IMPORT_FAILED;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    ngx_http_bulk_import_progress(in, status);

    if (status == NGX_HTTP_BULK_IMPORT_FAILED) {
        ir = &job->rec->inputs[in->index];
        ngx_cpystrn(ir->err, p.err, NGX_HTTP_BULK_IMPORT_ERR_LEN);
    }

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "bulk import \"%V\": input %ui %s after %ui batches",
                  &job->id, in->index,
                  ngx_http_bulk_import_status_names[status], p.batches);

    /* the pool goes from a posted event, outside the upstream's stack */

    pp = ngx_array_push(&job->dead);
    if (pp == NULL) {
        ngx_log_error(NGX_LOG_ALERT, job->log, 0,
                      "bulk import: input pool leaked");

    } else {
        *pp = in->pool;
    }

    in->pool = NULL;
    in->load = NULL;
    job->running--;

    ngx_post_event(&job->reap, &ngx_posted_events);
}


static void
ngx_http_bulk_import_reap(ngx_event_t *ev)
{
    ngx_uint_t                   i;
    ngx_pool_t                 **pp;
    ngx_http_bulk_import_job_t  *job;

    job = ev->data;

    pp = job->dead.elts;

    for (i = 0; i < job->dead.nelts; i++) {
        ngx_destroy_pool(pp[i]);
    }

    job->dead.nelts = 0;

    ngx_http_bulk_import_save(job);
    ngx_http_bulk_import_next(job);
}


static void
ngx_http_bulk_import_end(ngx_http_bulk_import_job_t *job)
{
    ngx_uint_t                   i, status;
    ngx_http_bulk_import_rec_t  *rec;

    if (job->state == ngx_http_bulk_import_ending) {
        return;
    }

    job->state = ngx_http_bulk_import_ending;
    rec = job->rec;

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    status = NGX_HTTP_BULK_IMPORT_FINISHED;

    if (rec->cancel) {
        status = NGX_HTTP_BULK_IMPORT_CANCELLED;

    } else {
        for (i = 0; i < rec->ninputs; i++) {
            if (rec->inputs[i].status != NGX_HTTP_BULK_IMPORT_FINISHED) {
                status = NGX_HTTP_BULK_IMPORT_FAILED;
            }
        }
    }

    if (rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE
        || rec->status == NGX_HTTP_BULK_IMPORT_CANCELLED)
    {
        rec->status = status;
    }

    rec->end = ngx_http_bulk_import_now();

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, job->log, 0, "bulk import \"%V\" %s",
                  &job->id, ngx_http_bulk_import_status_names[status]);

    /*
     * the heartbeat timer stays until the job is freed: not cancelable, it
     * keeps a worker that shuts down alive for the last status write
     */

    ngx_http_bulk_import_save(job);
}


/* the status resource into table bulkimportstatus, one write at a time */

static void
ngx_http_bulk_import_save(ngx_http_bulk_import_job_t *job)
{
    if (job->save != ngx_http_bulk_import_save_idle) {
        job->save = ngx_http_bulk_import_save_again;
        return;
    }

    job->save = ngx_http_bulk_import_save_writing;

    ngx_http_bulk_pg_waiter_init(&job->waiter, job->conf->pool,
                                 ngx_http_bulk_import_save_ready, job,
                                 job->log);

    ngx_http_bulk_pg_get(&job->waiter);
}


static void
ngx_http_bulk_import_save_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    u_char                      *sql;
    ngx_http_bulk_import_job_t  *job;

    job = w->data;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "bulk import \"%V\": cannot save the status: %s",
                      &job->id, w->err);
        ngx_http_bulk_import_save_done(job);
        return;
    }

    job->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_import_saved, job);

    sql = ngx_http_bulk_import_save_sql(job);

    if (sql == NULL || ngx_http_bulk_pg_send(job->pc, (char *) sql) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "bulk import \"%V\": cannot save the status",
                      &job->id);

        ngx_http_bulk_pg_release(job->pc, 0);
        job->pc = NULL;

        ngx_http_bulk_import_save_done(job);
    }
}


/* the upsert of the job's status row */

static u_char *
ngx_http_bulk_import_save_sql(ngx_http_bulk_import_job_t *job)
{
    u_char  *json, *sql;
    char    *lit, *idlit;
    size_t   len;

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    json = ngx_http_bulk_import_render(job->pool, job->rec, 0, &len);
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (json == NULL) {
        return NULL;
    }

    lit = PQescapeLiteral(job->pc->pg, (char *) json, len);
    idlit = PQescapeLiteral(job->pc->pg, (char *) job->id.data, job->id.len);

    sql = (lit && idlit) ? ngx_pnalloc(job->pool, 512 + ngx_strlen(lit)
                                                  + ngx_strlen(idlit))
                         : NULL;

    if (sql) {
        ngx_sprintf(sql,
                    "INSERT INTO bulkimportstatus AS t (id, txid, cts, ts,"
                    " resource_type, status, resource)"
                    " VALUES (%s, nextval('transaction_id_seq'), now(), now(),"
                    " 'BulkImportStatus', 'created', %s::jsonb)"
                    " ON CONFLICT (id) DO UPDATE SET txid = excluded.txid,"
                    " ts = excluded.ts, status = 'updated',"
                    " resource = excluded.resource%Z", idlit, lit);
    }

    if (lit) {
        PQfreemem(lit);
    }

    if (idlit) {
        PQfreemem(idlit);
    }

    return sql;
}


static void
ngx_http_bulk_import_saved(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_int_t                    rc;
    ngx_http_bulk_import_job_t  *job;

    job = pc->data;

    rc = ngx_http_bulk_pg_done(pc, job->log,
                               "bulk import \"%V\": cannot save the status",
                               &job->id);

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_http_bulk_pg_release(pc, rc != NGX_ERROR);
    job->pc = NULL;

    ngx_http_bulk_import_save_done(job);
}


static void
ngx_http_bulk_import_save_done(ngx_http_bulk_import_job_t *job)
{
    if (job->save == ngx_http_bulk_import_save_again) {
        job->save = ngx_http_bulk_import_save_idle;
        ngx_http_bulk_import_save(job);
        return;
    }

    job->save = ngx_http_bulk_import_save_idle;

    /*
     * freed from a posted event: a save may end synchronously deep inside
     * the job's own handlers (a database refusing at once)
     */

    if (job->state == ngx_http_bulk_import_ending) {
        ngx_post_event(&job->done, &ngx_posted_events);
    }
}


static void
ngx_http_bulk_import_done(ngx_event_t *ev)
{
    ngx_http_bulk_import_free(ev->data);
}


/* the job is over: its record is no longer pinned */

static void
ngx_http_bulk_import_free(ngx_http_bulk_import_job_t *job)
{
    if (job->timer.timer_set) {
        ngx_del_timer(&job->timer);
    }

    if (job->reap.posted) {
        ngx_delete_posted_event(&job->reap);
    }

    if (job->done.posted) {
        ngx_delete_posted_event(&job->done);
    }

    ngx_http_bulk_pg_cancel(&job->waiter);

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->rec->owned = 0;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    job->rec = NULL;

    ngx_queue_remove(&job->queue);
    ngx_destroy_pool(job->pool);
}


/* GET and DELETE /BulkImportStatus/<id> */

ngx_int_t
ngx_http_bulk_import_status_handler(ngx_http_request_t *r)
{
    u_char                         *json;
    size_t                          len;
    ngx_int_t                       percent;
    ngx_str_t                       id, progress;
    ngx_uint_t                      active, html;
    ngx_bulk_view_job_t             view;
    ngx_http_bulk_loc_conf_t       *blcf;
    ngx_http_bulk_main_conf_t      *bmcf;
    ngx_http_bulk_import_rec_t     *rec;
    ngx_http_bulk_import_zone_t    *z;
    ngx_http_bulk_import_lookup_t  *lk;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulk_module);

    if (ngx_http_complex_value(r, blcf->status_id, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulk_add_header(r, "Vary", "Accept") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_bulk_fhir_id_valid((const char *) id.data, id.len)) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                        "unknown import \"%V\"", &id);
    }

    html = (r->method != NGX_HTTP_DELETE)
           && ngx_http_bulk_import_wants_html(r);

    if (bmcf->import_lease) {
        return ngx_http_bulk_nodes_status(r, &id);
    }

    z = bmcf->import_zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = ngx_http_bulk_import_lookup(z, id.data, id.len);

    if (rec == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        lk = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_import_lookup_t));
        if (lk == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        lk->id = id;
        lk->html = html;

        return ngx_http_bulk_import_table_lookup(r, lk);
    }

    active = ngx_http_bulk_import_check_owner(rec)
             && rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE;

    if (r->method == NGX_HTTP_DELETE) {
        if (!active) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return ngx_http_bulk_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                                            "the import \"%V\" is not "
                                            "active", &id);
        }

        rec->cancel = 1;
        rec->status = NGX_HTTP_BULK_IMPORT_CANCELLED;
    }

    ngx_str_null(&progress);

    if (active && r->method != NGX_HTTP_DELETE) {
        percent = ngx_http_bulk_import_percent(rec);

        if (percent >= 0) {
            progress.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 2);
            if (progress.data) {
                ngx_sprintf(progress.data, "%i%%%Z", percent);
                progress.len = 1;
            }
        }
    }

    json = ngx_http_bulk_import_render(r->pool, rec, 1, &len);

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (html) {
        view.json = json;
        view.len = len;

        return ngx_http_bulk_import_send_html(r, &view, 1, -1);
    }

    return ngx_http_bulk_import_send(r, r->method == NGX_HTTP_DELETE
                                        ? NGX_HTTP_ACCEPTED : NGX_HTTP_OK,
                                     json, len, &progress);
}


/*
 * HTML when asked for: "_format" in the query decides when given ("html",
 * "text/html"; anything else is JSON), else an Accept header that prefers
 * HTML (ngx_bulk_view_accept_html())
 */

ngx_uint_t
ngx_http_bulk_import_wants_html(ngx_http_request_t *r)
{
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    static ngx_str_t  format = ngx_string("_format");

    if (ngx_http_bulk_arg(r, &format, &v) == NGX_OK) {
        return (v.len == 4
                && ngx_strncasecmp(v.data, (u_char *) "html", 4) == 0)
               || ngx_bulk_view_accept_html(v.data, v.len);
    }

#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
    h = r->headers_in.accept;
#else
    h = NULL;
#endif

    if (h == NULL) {
        return 0;
    }

    return ngx_bulk_view_accept_html(h->value.data, h->value.len);
}


/*
 * The HTML view of jobs (total: how many the list has; -1: one job's
 * page).  Links go to the list's path: the request's path, without its
 * last segment on a job's page.
 */

static ngx_int_t
ngx_http_bulk_import_send_html(ngx_http_request_t *r,
    ngx_bulk_view_job_t *jobs, ngx_uint_t n, int64_t total)
{
    int                    active;
    ngx_buf_t             *b;
    ngx_pool_cleanup_t    *cln;
    ngx_bulk_view_buf_t   *vb;
    ngx_bulk_view_page_t   page;

    static ngx_str_t       html = ngx_string("text/html; charset=utf-8");

    ngx_memzero(&page, sizeof(ngx_bulk_view_page_t));

    page.base = r->uri.data;
    page.base_len = r->uri.len;
    page.now = (int64_t) ngx_http_bulk_import_now();
    page.total = total;

    if (total < 0) {
        while (page.base_len && page.base[page.base_len - 1] != '/') {
            page.base_len--;
        }

        if (page.base_len > 1) {
            page.base_len--;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_bulk_view_buf_t));
    b = ngx_calloc_buf(r->pool);

    if (cln == NULL || b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vb = cln->data;
    ngx_memzero(vb, sizeof(ngx_bulk_view_buf_t));
    cln->handler = ngx_http_bulk_import_view_free;

    if (ngx_bulk_view_html(vb, &page, jobs, n, &active) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the page holds no script; should an escape ever fail, none runs */

    if (ngx_http_bulk_add_header(r, "Content-Security-Policy",
                                 "default-src 'none'; "
                                 "style-src 'unsafe-inline'; "
                                 "base-uri 'none'; form-action 'none'")
           != NGX_OK
        || ngx_http_bulk_add_header(r, "X-Content-Type-Options", "nosniff")
           != NGX_OK
        || ngx_http_bulk_add_header(r, "Cache-Control", "no-store")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = vb->data;
    b->last = vb->data + vb->len;
    b->memory = 1;

    return ngx_http_bulk_send_whole(r, NGX_HTTP_OK, b, &html);
}


/* one job's page, of its JSON */

ngx_int_t
ngx_http_bulk_import_view(ngx_http_request_t *r, u_char *json, size_t len)
{
    ngx_bulk_view_job_t  view;

    view.json = json;
    view.len = len;

    return ngx_http_bulk_import_send_html(r, &view, 1, -1);
}


static void
ngx_http_bulk_import_view_free(void *data)
{
    ngx_bulk_view_buf_free(data);
}


/*
 * The bytes of all sources fetched, in percent (0-100), or -1 while a
 * source's size is unknown.  Sizes come from the sources' Content-Length:
 * a length that makes no sense (the sum overflows, or more was received
 * than announced) makes the progress unknown.  Zone locked.
 */

static ngx_int_t
ngx_http_bulk_import_percent(ngx_http_bulk_import_rec_t *rec)
{
    off_t                              done, total, got;
    ngx_uint_t                         i;
    ngx_http_bulk_import_input_rec_t  *in;

    done = 0;
    total = 0;

    for (i = 0; i < rec->ninputs; i++) {
        in = &rec->inputs[i];

        if (in->length < 0 || in->bytes < 0 || in->bytes > in->length
            || in->length > NGX_MAX_OFF_T_VALUE - total)
        {
            return -1;
        }

        got = (in->status > NGX_HTTP_BULK_IMPORT_ACTIVE) ? in->length
                                                         : in->bytes;
        total += in->length;
        done += got;
    }

    if (total == 0) {
        return 0;
    }

    /* done <= total: neither product nor quotient overflows */

    if (total > NGX_MAX_OFF_T_VALUE / 100) {
        return (ngx_int_t) (done / (total / 100 + 1));
    }

    return (ngx_int_t) (done * 100 / total);
}


/* GET /BulkImportStatus: the jobs, newest first */

ngx_int_t
ngx_http_bulk_import_list_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_bulk_main_conf_t      *bmcf;
    ngx_http_bulk_import_lookup_t  *lk;

    if (ngx_http_bulk_add_header(r, "Vary", "Accept") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_import_lookup_t));
    if (lk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->list = 1;

    rc = ngx_http_bulk_import_count(r, &lk->count);

    if (rc == NGX_DECLINED) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                        "invalid _count: a number of jobs, "
                                        "0 or more");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->html = ngx_http_bulk_import_wants_html(r);

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulk_module);

    if (bmcf->import_lease) {
        /* every job is in the tables: the running ones first */
        return ngx_http_bulk_nodes_list(r, lk->count, lk->html);
    }

    if (ngx_http_bulk_import_list_zone(r, lk) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulk_import_table_lookup(r, lk);
}


/*
 * The list with bulk_import_lease: first (entries, newest first) are the
 * newest of the nfirst jobs that are still running, ids an array literal
 * of the ids of all those; the table's part leaves them out
 */

ngx_int_t
ngx_http_bulk_import_list_tables(ngx_http_request_t *r, ngx_array_t *first,
    ngx_uint_t nfirst, ngx_str_t *ids, ngx_uint_t count, ngx_uint_t html)
{
    ngx_http_bulk_import_lookup_t  *lk;

    lk = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_import_lookup_t));
    if (lk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->list = 1;
    lk->count = count;
    lk->html = html;
    lk->zone = *first;
    lk->nzone = nfirst;
    lk->ids = *ids;

    return ngx_http_bulk_import_table_lookup(r, lk);
}


/*
 * _count: NGX_HTTP_BULK_IMPORT_COUNT without it, 0 or more (above
 * NGX_HTTP_BULK_IMPORT_COUNT_MAX: that many, as FHIR lets a server
 * return fewer than asked); anything else: NGX_DECLINED (a 400)
 */

static ngx_int_t
ngx_http_bulk_import_count(ngx_http_request_t *r, ngx_uint_t *count)
{
    u_char     *p;
    ngx_str_t   v;
    ngx_int_t   rc;

    static ngx_str_t  name = ngx_string("_count");

    *count = NGX_HTTP_BULK_IMPORT_COUNT;

    rc = ngx_http_bulk_arg(r, &name, &v);

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (v.len == 0) {
        return NGX_DECLINED;
    }

    *count = 0;

    for (p = v.data; p < v.data + v.len; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        if (*count <= NGX_HTTP_BULK_IMPORT_COUNT_MAX) {
            *count = *count * 10 + (*p - '0');
        }
    }

    if (*count > NGX_HTTP_BULK_IMPORT_COUNT_MAX) {
        *count = NGX_HTTP_BULK_IMPORT_COUNT_MAX;
    }

    return NGX_OK;
}


/*
 * The zone's part of the list: the newest lk->count records rendered as
 * GET answers them (a record whose job died is settled first, as GET
 * does), and the ids of all of them, which the table's part leaves out
 */

static ngx_int_t
ngx_http_bulk_import_list_zone(ngx_http_request_t *r,
    ngx_http_bulk_import_lookup_t *lk)
{
    u_char                        *p, *json;
    size_t                         len, size;
    ngx_uint_t                     i, n;
    ngx_queue_t                   *q;
    ngx_http_bulk_import_rec_t   **recs, *rec;
    ngx_http_bulk_import_zone_t   *z;
    ngx_http_bulk_main_conf_t     *bmcf;
    ngx_http_bulk_import_entry_t  *e;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulk_module);
    z = bmcf->import_zone->data;

    if (ngx_array_init(&lk->zone, r->pool, lk->count ? lk->count : 1,
                       sizeof(ngx_http_bulk_import_entry_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    n = 0;
    size = sizeof("{}");

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_bulk_import_rec_t, queue);
        size += 2 * rec->id_len + sizeof("\"\",");
        n++;
    }

    recs = ngx_palloc(r->pool,
                      (n ? n : 1) * sizeof(ngx_http_bulk_import_rec_t *));
    lk->ids.data = ngx_pnalloc(r->pool, size);

    if (recs == NULL || lk->ids.data == NULL) {
        goto failed;
    }

    /* every id, each quoted and escaped as an array element */

    p = ngx_cpymem(lk->ids.data, "{", 1);
    i = 0;

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_bulk_import_rec_t, queue);

        (void) ngx_http_bulk_import_check_owner(rec);

        p = ngx_http_bulk_import_id_elem(p, rec->id, rec->id_len, i);

        recs[i++] = rec;
    }

    *p++ = '}';
    lk->ids.len = p - lk->ids.data;
    lk->nzone = n;

    ngx_sort(recs, n, sizeof(ngx_http_bulk_import_rec_t *),
             ngx_http_bulk_import_newer);

    for (i = 0; i < n && i < lk->count; i++) {
        rec = recs[i];

        json = ngx_http_bulk_import_render(r->pool, rec, 1, &len);
        e = ngx_array_push(&lk->zone);

        if (json == NULL || e == NULL) {
            goto failed;
        }

        e->json.data = json;
        e->json.len = len;

        e->id.data = ngx_pnalloc(r->pool, rec->id_len);
        e->start.data = ngx_pnalloc(r->pool, NGX_HTTP_BULK_IMPORT_TS_LEN);

        if (e->id.data == NULL || e->start.data == NULL) {
            goto failed;
        }

        e->id.len = rec->id_len;
        ngx_memcpy(e->id.data, rec->id, rec->id_len);

        e->start.len = ngx_http_bulk_import_iso(e->start.data, rec->start)
                       - e->start.data;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;

failed:

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_ERROR;
}


/*
 * An id as an element of a PostgreSQL array literal ("{...}"): quoted,
 * '"' and '\\' escaped, after a ',' unless it is the first; at most
 * 2 * len + 3 bytes
 */

u_char *
ngx_http_bulk_import_id_elem(u_char *p, const u_char *id, size_t len,
    ngx_uint_t n)
{
    size_t  k;

    if (n) {
        *p++ = ',';
    }

    *p++ = '"';

    for (k = 0; k < len; k++) {
        if (id[k] == '"' || id[k] == '\\') {
            *p++ = '\\';
        }

        *p++ = id[k];
    }

    *p++ = '"';

    return p;
}


/* newest first: the later start, then the greater id */

static ngx_int_t
ngx_http_bulk_import_newer(const void *one, const void *two)
{
    ngx_http_bulk_import_rec_t  *a, *b;

    a = *(ngx_http_bulk_import_rec_t **) one;
    b = *(ngx_http_bulk_import_rec_t **) two;

    if (a->start != b->start) {
        return (a->start > b->start) ? -1 : 1;
    }

    return -ngx_memn2cmp(a->id, b->id, a->id_len, b->id_len);
}


/*
 * The table's part: how many rows the zone does not have, and the newest
 * lk->count of them, in the zone's order (their start as the JSON has
 * it, the same text for the same instant, compared byte by byte, then
 * the id).  A row without a start sorts last.
 */

static u_char *
ngx_http_bulk_import_list_sql(ngx_http_bulk_import_lookup_t *lk)
{
    u_char  *sql;
    char    *ids;

    ids = PQescapeLiteral(lk->pc->pg, (char *) lk->ids.data, lk->ids.len);
    if (ids == NULL) {
        return NULL;
    }

    sql = ngx_pnalloc(lk->request->pool, 1024 + 2 * ngx_strlen(ids));

    if (sql) {
        ngx_sprintf(sql,
            "SELECT (SELECT count(*) FROM bulkimportstatus"
            " WHERE NOT (id = ANY (%s::text[]))), r.id, r.start, r.doc"
            " FROM (SELECT 1) AS one LEFT JOIN LATERAL"
            " (SELECT id, coalesce(resource#>>'{time,start}', '') AS start, "
            NGX_HTTP_BULK_IMPORT_ROW " AS doc"
            " FROM bulkimportstatus WHERE NOT (id = ANY (%s::text[]))"
            " ORDER BY coalesce(resource#>>'{time,start}', '')"
            " COLLATE \"C\" DESC, id COLLATE \"C\" DESC"
            " LIMIT %ui) AS r ON true%Z", ids, ids, lk->count);
    }

    PQfreemem(ids);

    return sql;
}


/* the zone's entries and the table's merged, newest first */

static ngx_int_t
ngx_http_bulk_import_list_answer(ngx_http_bulk_import_lookup_t *lk,
    ngx_array_t *table, uint64_t total)
{
    ngx_int_t                       rc;
    ngx_uint_t                      i, k, n;
    ngx_http_request_t             *r;
    ngx_bulk_view_job_t            *jobs;
    ngx_http_bulk_import_entry_t   *ze, *te, *e, **all;

    r = lk->request;
    ze = lk->zone.elts;
    te = table->elts;

    all = ngx_palloc(r->pool, (lk->count ? lk->count : 1)
                              * sizeof(ngx_http_bulk_import_entry_t *));
    if (all == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    i = 0;
    k = 0;

    for (n = 0; n < lk->count; n++) {
        if (i < lk->zone.nelts && k < table->nelts) {
            rc = ngx_memn2cmp(ze[i].start.data, te[k].start.data,
                              ze[i].start.len, te[k].start.len);
            if (rc == 0) {
                rc = ngx_memn2cmp(ze[i].id.data, te[k].id.data,
                                  ze[i].id.len, te[k].id.len);
            }

            e = (rc >= 0) ? &ze[i++] : &te[k++];

        } else if (i < lk->zone.nelts) {
            e = &ze[i++];

        } else if (k < table->nelts) {
            e = &te[k++];

        } else {
            break;
        }

        all[n] = e;
    }

    total += lk->nzone;

    if (!lk->html) {
        return ngx_http_bulk_import_bundle(r, all, n, total, lk->count);
    }

    jobs = ngx_palloc(r->pool, (n ? n : 1) * sizeof(ngx_bulk_view_job_t));
    if (jobs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        jobs[i].json = all[i]->json.data;
        jobs[i].len = all[i]->json.len;
    }

    return ngx_http_bulk_import_send_html(r, jobs, n, (int64_t) total);
}


/*
 * A FHIR searchset Bundle: each entry's fullUrl is the request's own
 * scheme, Host and path with the job's id added
 */

static ngx_int_t
ngx_http_bulk_import_bundle(ngx_http_request_t *r,
    ngx_http_bulk_import_entry_t **entries, ngx_uint_t n, uint64_t total,
    ngx_uint_t count)
{
    u_char                    *p, *buf, *self;
    size_t                     len, self_len;
    ngx_str_t                  host;
    ngx_uint_t                 i;
    ngx_http_core_srv_conf_t  *cscf;

    host = r->headers_in.server;

    if (host.len == 0) {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = cscf->server_name;
    }

    if (host.len == 0) {
        ngx_str_set(&host, "localhost");
    }

    self_len = sizeof("https://") + 6 * (host.len + r->uri.len);
    self = ngx_pnalloc(r->pool, self_len);
    if (self == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(self, "http%s://",
#if (NGX_HTTP_SSL)
                    r->connection->ssl ? "s" : ""
#else
                    ""
#endif
                    );
    p += ngx_bulk_json_escape(p, host.data, host.len);
    p += ngx_bulk_json_escape(p, r->uri.data, r->uri.len);
    self_len = p - self;

    len = 256 + self_len;

    for (i = 0; i < n; i++) {
        len += 128 + self_len + 6 * entries[i]->id.len
               + entries[i]->json.len;
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(buf, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\","
                    "\"total\":%uL,\"link\":[{\"relation\":\"self\","
                    "\"url\":\"%*s?_count=%ui\"}],\"entry\":[",
                    total, self_len, self, count);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%s{\"fullUrl\":\"%*s/", i ? "," : "",
                        self_len, self);
        p += ngx_bulk_json_escape(p, entries[i]->id.data, entries[i]->id.len);
        p = ngx_cpymem(p, "\",\"resource\":", sizeof("\",\"resource\":") - 1);
        p = ngx_cpymem(p, entries[i]->json.data, entries[i]->json.len);
        p = ngx_cpymem(p, ",\"search\":{\"mode\":\"match\"}}",
                       sizeof(",\"search\":{\"mode\":\"match\"}}") - 1);
    }

    p = ngx_cpymem(p, "]}", 2);

    return ngx_http_bulk_import_send(r, NGX_HTTP_OK, buf, p - buf, NULL);
}


/*
 * Asked of the table: a status not in the zone (an older job, or one from
 * before a restart), or the list's rows the zone does not have
 */

/* GET or DELETE of a job only table bulkimportstatus has: NGX_DONE */

ngx_int_t
ngx_http_bulk_import_table(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_bulk_import_lookup_t  *lk;

    lk = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_import_lookup_t));
    if (lk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->id = *id;
    lk->html = (r->method != NGX_HTTP_DELETE)
               && ngx_http_bulk_import_wants_html(r);

    return ngx_http_bulk_import_table_lookup(r, lk);
}


static ngx_int_t
ngx_http_bulk_import_table_lookup(ngx_http_request_t *r,
    ngx_http_bulk_import_lookup_t *lk)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_bulk_loc_conf_t       *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->request = r;

    cln->handler = ngx_http_bulk_import_table_cleanup;
    cln->data = lk;

    ngx_http_bulk_pg_waiter_init(&lk->waiter, blcf->pool,
                                 ngx_http_bulk_import_table_ready, lk,
                                 r->connection->log);

    r->main->count++;

    ngx_http_bulk_pg_get(&lk->waiter);

    return NGX_DONE;
}


static void
ngx_http_bulk_import_table_ready(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    u_char                         *sql;
    char                           *idlit;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_bulk_import_lookup_t  *lk;

    lk = w->data;
    r = lk->request;
    c = r->connection;     /* r is gone after ngx_http_finalize_request() */

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "transient", "database unavailable: %s",
                                     w->err));
        ngx_http_run_posted_requests(c);
        return;
    }

    lk->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_import_table_result, lk);

    if (lk->list) {
        sql = ngx_http_bulk_import_list_sql(lk);

    } else {
        idlit = PQescapeLiteral(lk->pc->pg, (char *) lk->id.data,
                                lk->id.len);
        sql = idlit ? ngx_pnalloc(r->pool, 512 + ngx_strlen(idlit)) : NULL;

        if (sql) {
            ngx_sprintf(sql, "SELECT " NGX_HTTP_BULK_IMPORT_ROW
                        " FROM bulkimportstatus WHERE id = %s%Z", idlit);
        }

        if (idlit) {
            PQfreemem(idlit);
        }
    }

    if (sql == NULL || ngx_http_bulk_pg_send(lk->pc, (char *) sql) != NGX_OK)
    {
        ngx_http_bulk_pg_release(lk->pc, 0);
        lk->pc = NULL;
        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "transient", "database unavailable"));
        ngx_http_run_posted_requests(c);
    }
}


/*
 * A row's resource as GET answers it: resourceType and id first, then
 * the stored members (the table keeps neither); a resource that is not
 * an object (not written by this module) shows as those two alone
 */

static u_char *
ngx_http_bulk_import_row(ngx_pool_t *pool, ngx_str_t *id, char *row,
    size_t len, size_t *lenp)
{
    u_char  *p, *json;

    if (len < 2 || row[0] != '{' || row[len - 1] != '}') {
        row = "{}";
        len = 2;
    }

    json = ngx_pnalloc(pool, len + 64 + 6 * id->len);
    if (json == NULL) {
        return NULL;
    }

    p = ngx_cpymem(json, "{\"resourceType\":\"BulkImportStatus\",\"id\":\"",
                   sizeof("{\"resourceType\":\"BulkImportStatus\",\"id\":\"")
                   - 1);
    p += ngx_bulk_json_escape(p, id->data, id->len);
    *p++ = '"';

    if (len > 2) {
        *p++ = ',';
    }

    p = ngx_cpymem(p, row + 1, len - 1);

    *lenp = p - json;

    return json;
}


static void
ngx_http_bulk_import_table_result(ngx_http_bulk_pg_conn_t *pc)
{
    u_char                         *json;
    size_t                          len;
    uint64_t                        total;
    PGresult                       *res;
    ngx_int_t                       rc;
    ngx_str_t                       id;
    ngx_uint_t                      i;
    ngx_array_t                     table;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_bulk_view_job_t             view;
    ngx_http_bulk_import_entry_t   *e;
    ngx_http_bulk_import_lookup_t  *lk;

    lk = pc->data;
    r = lk->request;
    c = r->connection;
    json = NULL;
    len = 0;
    total = 0;
    rc = NGX_HTTP_SERVICE_UNAVAILABLE;

    if (ngx_array_init(&table, r->pool, lk->count ? lk->count : 1,
                       sizeof(ngx_http_bulk_import_entry_t))
        != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for ( ;; ) {
        if (PQisBusy(pc->pg)) {
            if (PQstatus(pc->pg) == CONNECTION_OK) {
                return;
            }

            break;
        }

        res = PQgetResult(pc->pg);
        if (res == NULL) {
            break;
        }

        if (PQresultStatus(res) != PGRES_TUPLES_OK
            || rc == NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            /* void */

        } else if (lk->list) {
            rc = NGX_HTTP_OK;

            for (i = 0; i < (ngx_uint_t) PQntuples(res); i++) {
                total = ngx_atoof((u_char *) PQgetvalue(res, i, 0),
                                  PQgetlength(res, i, 0));

                if (PQgetisnull(res, i, 1)) {
                    continue;
                }

                e = ngx_array_push(&table);
                if (e == NULL) {
                    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
                    break;
                }

                e->id.len = PQgetlength(res, i, 1);
                e->id.data = e->id.len
                             ? ngx_pnalloc(r->pool, e->id.len) : NULL;
                e->start.len = PQgetlength(res, i, 2);
                e->start.data = ngx_pnalloc(r->pool, e->start.len + 1);

                if ((e->id.len && e->id.data == NULL)
                    || e->start.data == NULL)
                {
                    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
                    break;
                }

                if (e->id.len) {
                    ngx_memcpy(e->id.data, PQgetvalue(res, i, 1), e->id.len);
                }

                ngx_memcpy(e->start.data, PQgetvalue(res, i, 2),
                           e->start.len);

                e->json.data = ngx_http_bulk_import_row(r->pool, &e->id,
                                   PQgetvalue(res, i, 3),
                                   PQgetlength(res, i, 3), &e->json.len);
                if (e->json.data == NULL) {
                    rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
                    break;
                }
            }

        } else if (PQntuples(res) == 0) {
            rc = NGX_HTTP_NOT_FOUND;

        } else {
            json = ngx_http_bulk_import_row(r->pool, &lk->id,
                                            PQgetvalue(res, 0, 0),
                                            PQgetlength(res, 0, 0), &len);
            rc = json ? NGX_HTTP_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        PQclear(res);
    }

    ngx_http_bulk_pg_release(pc, rc != NGX_HTTP_SERVICE_UNAVAILABLE);
    lk->pc = NULL;

    id = lk->id;

    if (rc == NGX_HTTP_NOT_FOUND) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                      "unknown import \"%V\"", &id);

    } else if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) {
        /* void */

    } else if (rc != NGX_HTTP_OK) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "transient", "database unavailable");

    } else if (lk->list) {
        rc = ngx_http_bulk_import_list_answer(lk, &table, total);

    } else if (r->method == NGX_HTTP_DELETE) {
        rc = ngx_http_bulk_send_error(r, NGX_HTTP_CONFLICT, "conflict",
                                      "the import \"%V\" is not active", &id);

    } else if (lk->html) {
        view.json = json;
        view.len = len;
        rc = ngx_http_bulk_import_send_html(r, &view, 1, -1);

    } else {
        rc = ngx_http_bulk_import_send(r, NGX_HTTP_OK, json, len, NULL);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_bulk_import_table_cleanup(void *data)
{
    ngx_http_bulk_import_lookup_t  *lk = data;

    ngx_http_bulk_pg_cancel(&lk->waiter);

    if (lk->pc) {
        ngx_http_bulk_pg_release(lk->pc, 0);
        lk->pc = NULL;
    }
}


/*
 * Jobs shared through the tables (bulk_import_lease): the statements that
 * read one, appended to the caller's (the id an escaped literal), and its
 * status rendered from their results as the zone's records are.
 */

#define NGX_HTTP_BULK_IMPORT_TABLE_SQL                                       \
    "SELECT status, fhir, \"update\", encoding, start_ms, end_ms, error,"    \
    " id FROM bulkimportjob WHERE id = %s;"                                  \
    "SELECT resource_type, url, status, total, errors, bytes, length,"       \
    " ts_ms, duration, error FROM bulkimportinput WHERE job = %s"            \
    " ORDER BY n;"                                                           \
    "SELECT i.n, x.v->>'line', x.v->>'diagnostics'"                          \
    " FROM bulkimportinput i,"                                               \
    " jsonb_array_elements(i.issues) WITH ORDINALITY x(v, k)"                \
    " WHERE i.job = %s ORDER BY i.n, x.k;"


size_t
ngx_http_bulk_import_table_sql_len(const char *idlit)
{
    return sizeof(NGX_HTTP_BULK_IMPORT_TABLE_SQL) + 3 * ngx_strlen(idlit);
}


u_char *
ngx_http_bulk_import_table_sql(u_char *p, const char *idlit)
{
    return ngx_sprintf(p, NGX_HTTP_BULK_IMPORT_TABLE_SQL, idlit, idlit,
                       idlit);
}


static ngx_uint_t
ngx_http_bulk_import_status_code(const char *name)
{
    ngx_uint_t  i;

    for (i = 0; i < sizeof(ngx_http_bulk_import_status_names)
                    / sizeof(ngx_http_bulk_import_status_names[0]); i++)
    {
        if (ngx_strcmp(name, ngx_http_bulk_import_status_names[i]) == 0) {
            return i;
        }
    }

    return NGX_HTTP_BULK_IMPORT_FAILED;
}


ngx_int_t
ngx_http_bulk_import_render_table(ngx_pool_t *pool, PGresult *job,
    PGresult *inputs, PGresult *issues, u_char **json, size_t *lenp,
    ngx_int_t *percent)
{
    int                                i, n, k;
    size_t                             size, len;
    ngx_http_bulk_import_rec_t        *rec;
    ngx_http_bulk_import_issue_t      *is;
    ngx_http_bulk_import_input_rec_t  *ir;

    if (PQntuples(job) != 1) {
        return NGX_DECLINED;
    }

    n = PQntuples(inputs);

    size = sizeof(ngx_http_bulk_import_rec_t)
           + ngx_max(n, 1) * sizeof(ngx_http_bulk_import_input_rec_t);

    rec = ngx_pcalloc(pool, size);
    if (rec == NULL) {
        return NGX_ERROR;
    }

    rec->status = ngx_http_bulk_import_status_code(PQgetvalue(job, 0, 0));
    rec->fhir = (PQgetvalue(job, 0, 1)[0] == 't');
    rec->update = (PQgetvalue(job, 0, 2)[0] == 't');
    rec->encoding_len = ngx_min((size_t) PQgetlength(job, 0, 3),
                                sizeof(rec->encoding));
    ngx_memcpy(rec->encoding, PQgetvalue(job, 0, 3), rec->encoding_len);
    rec->start = (ngx_msec_t) ngx_atoof((u_char *) PQgetvalue(job, 0, 4),
                                        PQgetlength(job, 0, 4));
    rec->end = (ngx_msec_t) ngx_atoof((u_char *) PQgetvalue(job, 0, 5),
                                      PQgetlength(job, 0, 5));
    ngx_cpystrn(rec->err, (u_char *) PQgetvalue(job, 0, 6),
                NGX_HTTP_BULK_IMPORT_ERR_LEN);
    rec->id_len = ngx_min((size_t) PQgetlength(job, 0, 7), sizeof(rec->id));
    ngx_memcpy(rec->id, PQgetvalue(job, 0, 7), rec->id_len);

    rec->ninputs = n;

    for (i = 0; i < n; i++) {
        ir = &rec->inputs[i];

        ir->type_len = ngx_min((size_t) PQgetlength(inputs, i, 0),
                               sizeof(ir->type));
        ngx_memcpy(ir->type, PQgetvalue(inputs, i, 0), ir->type_len);

        ir->url_len = PQgetlength(inputs, i, 1);
        ir->url = ngx_pnalloc(pool, ir->url_len + 1);
        if (ir->url == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ir->url, PQgetvalue(inputs, i, 1), ir->url_len);

        ir->status = ngx_http_bulk_import_status_code(
                                                PQgetvalue(inputs, i, 2));

#define ngx_http_bulk_import_col(col)                                        \
        ngx_atoof((u_char *) PQgetvalue(inputs, i, col),                     \
                  PQgetlength(inputs, i, col))

        ir->total = (uint64_t) ngx_http_bulk_import_col(3);
        ir->errors = (uint64_t) ngx_http_bulk_import_col(4);
        ir->bytes = ngx_http_bulk_import_col(5);
        ir->length = (PQgetvalue(inputs, i, 6)[0] == '-')
                     ? -1 : ngx_http_bulk_import_col(6);
        ir->start = (ngx_msec_t) ngx_http_bulk_import_col(7);
        ir->duration = (ngx_msec_t) ngx_http_bulk_import_col(8);

#undef ngx_http_bulk_import_col

        ngx_cpystrn(ir->err, (u_char *) PQgetvalue(inputs, i, 9),
                    NGX_HTTP_BULK_IMPORT_ERR_LEN);
    }

    for (i = 0; i < PQntuples(issues); i++) {
        k = ngx_atoi((u_char *) PQgetvalue(issues, i, 0),
                     PQgetlength(issues, i, 0));

        if (k < 0 || k >= n) {
            continue;
        }

        ir = &rec->inputs[k];

        if (ir->nissues >= NGX_HTTP_BULK_IMPORT_ISSUES) {
            continue;
        }

        is = &ir->issues[ir->nissues++];

        is->line = (uint64_t) ngx_atoof((u_char *) PQgetvalue(issues, i, 1),
                                        PQgetlength(issues, i, 1));
        len = ngx_bulk_utf8_cut((u_char *) PQgetvalue(issues, i, 2),
                                PQgetlength(issues, i, 2),
                                NGX_HTTP_BULK_IMPORT_ISSUE_LEN);
        ngx_memcpy(is->text, PQgetvalue(issues, i, 2), len);
        is->len = len;
    }

    *percent = (rec->status == NGX_HTTP_BULK_IMPORT_ACTIVE)
               ? ngx_http_bulk_import_percent(rec) : -1;

    *json = ngx_http_bulk_import_render(pool, rec, 1, lenp);

    return (*json == NULL) ? NGX_ERROR : NGX_OK;
}


/* a status answer, with X-Progress when percent is not -1 */

ngx_int_t
ngx_http_bulk_import_answer(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len, ngx_int_t percent)
{
    ngx_str_t  progress;

    ngx_str_null(&progress);

    if (percent >= 0) {
        progress.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 2);
        if (progress.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(progress.data, "%i%%%Z", percent);
        progress.len = 1;
    }

    return ngx_http_bulk_import_send(r, status, json, len, &progress);
}
