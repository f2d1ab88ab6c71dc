
/*
 * ngx_bulk: FHIR Bulk Data $export, streamed from a pinned snapshot.
 *
 * The kick-off validates the parameters (ngx_bulk_export_params.c,
 * _typeFilter and _elements), records the export in the shared zone and
 * starts its job in this worker: a connection of the dedicated pool runs
 *
 *   BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
 *   SELECT pg_export_snapshot(), now(), <Group exists>, <tables>
 *
 * and keeps that transaction open for the export's life.  The kick-off is
 * answered 202 once the snapshot exists, so nothing committed after the
 * answer is in the export.  The job then counts each type's rows under
 * the snapshot, split into files of about bulk_export_file_rows by ctid,
 * and the export is complete.  One state machine,
 * ngx_http_bulk_export_process():
 *
 *   wait -> begin -> count (one type after the other) -> ready
 *
 * The job ends (the transaction and its snapshot with it) on DELETE, at
 * bulk_export_ttl, when the connection is lost, or when the worker exits;
 * a tick every second looks for a DELETE answered by another worker.
 *
 * Any worker answers the status from the zone and serves the files: each
 * file is a COPY OUT (ngx_http_bulk_copy.c) run after
 * SET TRANSACTION SNAPSHOT, its rows in the form $dump?fhir=true writes
 * (ngx_http_bulk_dump_fhir()), filtered by _elements.
 */


#include "ngx_http_bulk_export.h"
#include "ngx_http_bulk_copy.h"
#include "ngx_http_bulk_dump.h"
#include "ngx_http_bulk_pg.h"
#include "ngx_http_bulk_util.h"
#include "ngx_bulk_export_params.h"
#include "ngx_bulk_typefilter.h"
#include "ngx_bulk_elements.h"
#include "ngx_bulk_fhir_search.h"
#include "ngx_bulk_fhir_schema.h"
#include "ngx_bulk_json.h"
#include <sys/random.h>


#define NGX_HTTP_BULK_EXPORT_ID_LEN     32      /* 128 random bits, hex */
#define NGX_HTTP_BULK_EXPORT_TICK       1000
#define NGX_HTTP_BULK_EXPORT_SNAP_MAX   64
#define NGX_HTTP_BULK_EXPORT_TIME_MAX   40
#define NGX_HTTP_BULK_EXPORT_RETRY      "1"
#define NGX_HTTP_BULK_GONE              410
#define NGX_HTTP_BULK_NOT_ACCEPTABLE    406

/* a record whose owner died with it is taken back this long after expiry */
#define NGX_HTTP_BULK_EXPORT_STALE      60


typedef enum {
    ngx_http_bulk_export_starting = 0,   /* the snapshot is being taken */
    ngx_http_bulk_export_counting,
    ngx_http_bulk_export_ready,
    ngx_http_bulk_export_failed
} ngx_http_bulk_export_state_e;


typedef enum {
    ngx_http_bulk_export_job_wait = 0,   /* for a connection */
    ngx_http_bulk_export_job_begin,
    ngx_http_bulk_export_job_count,
    ngx_http_bulk_export_job_deleted,    /* deletions since _since */
    ngx_http_bulk_export_job_ready,      /* holds the snapshot */
    ngx_http_bulk_export_job_lost        /* the connection is gone */
} ngx_http_bulk_export_job_e;


/* one output file: rows of a type in a ctid range, -1: open end */

typedef struct {
    u_char                          type[NGX_HTTP_BULK_TYPE_MAX + 1];
    int64_t                         from;     /* (block << 16) | offset */
    int64_t                         to;
    uint64_t                        count;
    ngx_uint_t                      deleted;  /* Bundles of deletions */
} ngx_http_bulk_export_file_t;


/* an export in the zone; the strings follow it in one slab chunk */

typedef struct {
    ngx_queue_t                     queue;
    u_char                          id[NGX_HTTP_BULK_EXPORT_ID_LEN + 1];
    ngx_http_bulk_export_state_e    state;
    ngx_pid_t                       owner;
    time_t                          expires;
    ngx_uint_t                      level;
    ngx_uint_t                      types_done;
    ngx_uint_t                      ntypes;

    u_char                          snapshot[NGX_HTTP_BULK_EXPORT_SNAP_MAX];
    u_char                          tx_time[NGX_HTTP_BULK_EXPORT_TIME_MAX];
    u_char                          group[NGX_HTTP_BULK_ID_MAX + 1];
    u_char                          err[256];

    ngx_str_t                       request;  /* the kick-off URL */
    ngx_str_t                       base;     /* "http://host/fhir/" */
    ngx_str_t                       params;   /* query or body, raw */
    ngx_str_t                       errors;   /* ignored, "\n" after each */

    ngx_http_bulk_export_file_t    *files;    /* slab */
    ngx_uint_t                      nfiles;

    unsigned                        deleted:1;
    unsigned                        polled:1;
    unsigned                        post:1;
    unsigned                        lenient:1;
    unsigned                        token:1;
} ngx_http_bulk_export_rec_t;


typedef struct {
    ngx_queue_t                     list;
} ngx_http_bulk_export_sh_t;


typedef struct {
    ngx_http_bulk_export_sh_t      *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_bulk_export_zone_t;


/* what an export selects, from its parameters */

typedef struct {
    ngx_bulk_export_params_t        ep;
    ngx_bulk_elements_t            *elements;
    ngx_uint_t                      level;
    ngx_str_t                       group;
    ngx_uint_t                      lenient;
    ngx_uint_t                      typed;    /* _type given, valid or not */
    ngx_array_t                     errors;   /* ngx_str_t: ignored */
    ngx_uint_t                      status;   /* of a refusal */
    u_char                          err[512];
} ngx_http_bulk_export_q_t;


/* a growing SQL text */

typedef struct {
    ngx_pool_t                     *pool;
    u_char                         *data;
    size_t                          len;
    size_t                          cap;
    ngx_uint_t                      failed;
} ngx_http_bulk_export_sql_t;


typedef struct {
    ngx_queue_t                     queue;    /* the worker's jobs */
    ngx_pool_t                     *pool;
    ngx_log_t                      *log;
    ngx_http_bulk_export_zone_t    *zone;
    ngx_http_bulk_export_rec_t     *rec;
    ngx_http_bulk_export_q_t       *q;
    ngx_http_bulk_stats_t           stats;
    ngx_http_bulk_pg_waiter_t       waiter;
    ngx_http_bulk_pg_conn_t        *pc;
    ngx_http_request_t             *kick;     /* until it is answered */
    ngx_msec_t                      started;
    ngx_msec_t                      pg_timeout;
    ngx_event_t                     tick;
    ngx_http_bulk_export_job_e      state;

    ngx_str_t                      *types;    /* to look for, then found */
    u_char                         *history;  /* has a _history table */
    ngx_uint_t                      ntypes;
    ngx_uint_t                      next;
    ngx_uint_t                      file_rows;
    ngx_array_t                     files;    /* of the export */
    PGresult                       *tuples;   /* the last rows */
    PGresult                       *result;   /* the first error */
} ngx_http_bulk_export_job_t;


typedef struct {
    ngx_http_bulk_copy_t            copy;     /* first: the log variables */
    ngx_str_t                       type;
    ngx_bulk_fmt_t                 *fmt;
    ngx_bulk_elements_t            *elements;
    ngx_uint_t                      deleted;
} ngx_http_bulk_export_file_ctx_t;


static ngx_int_t ngx_http_bulk_export_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_bulk_export_rec_t *ngx_http_bulk_export_lookup(
    ngx_http_bulk_export_zone_t *z, ngx_str_t *id);
static void ngx_http_bulk_export_free_rec(ngx_http_bulk_export_zone_t *z,
    ngx_http_bulk_export_rec_t *rec);
static ngx_uint_t ngx_http_bulk_export_live(ngx_http_bulk_export_zone_t *z);

static ngx_uint_t ngx_http_bulk_export_headers(ngx_http_request_t *r,
    ngx_uint_t *lenient, const char **code, const char **msg);
static ngx_int_t ngx_http_bulk_export_kickoff(ngx_http_request_t *r,
    ngx_str_t *params, ngx_uint_t post, ngx_uint_t lenient);
static void ngx_http_bulk_export_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_export_q(ngx_pool_t *pool,
    ngx_http_bulk_export_q_t *q, ngx_str_t *params, ngx_uint_t post);
static void ngx_http_bulk_export_q_free(void *data);
static ngx_int_t ngx_http_bulk_export_ignore(ngx_pool_t *pool,
    ngx_http_bulk_export_q_t *q, const char *fmt, ...);
static ngx_int_t ngx_http_bulk_export_types(ngx_pool_t *pool,
    ngx_http_bulk_export_q_t *q, ngx_str_t **types, ngx_uint_t *n);
static ngx_int_t ngx_http_bulk_export_where(ngx_http_bulk_export_q_t *q,
    ngx_str_t *type, ngx_http_bulk_export_sql_t *s);
static void ngx_http_bulk_export_refs(const ngx_bulk_fhir_compartment_t *c,
    ngx_http_bulk_export_sql_t *s, ngx_http_bulk_export_q_t *q,
    ngx_uint_t set);
static void ngx_http_bulk_export_set(ngx_http_bulk_export_q_t *q,
    ngx_http_bulk_export_sql_t *s, ngx_uint_t set);
static void ngx_http_bulk_export_cat(ngx_http_bulk_export_sql_t *s,
    const char *fmt, ...);
static void ngx_http_bulk_export_table(ngx_http_bulk_export_sql_t *s,
    ngx_str_t *type);
static void ngx_http_bulk_export_deleted(ngx_http_bulk_export_q_t *q,
    ngx_str_t *type, ngx_http_bulk_export_sql_t *s);
static ngx_int_t ngx_http_bulk_export_base(ngx_http_request_t *r,
    ngx_uint_t level, ngx_str_t *base, ngx_str_t *request);
static ngx_int_t ngx_http_bulk_export_new_id(u_char *buf);
static ngx_uint_t ngx_http_bulk_export_id_valid(u_char *id, size_t len);

static void ngx_http_bulk_export_connected(ngx_http_bulk_pg_waiter_t *w,
    ngx_int_t rc);
static void ngx_http_bulk_export_pg_handler(ngx_http_bulk_pg_conn_t *pc);
static void ngx_http_bulk_export_process(ngx_http_bulk_export_job_t *job);
static ngx_int_t ngx_http_bulk_export_results(
    ngx_http_bulk_export_job_t *job);
static ngx_int_t ngx_http_bulk_export_begun(ngx_http_bulk_export_job_t *job);
static ngx_int_t ngx_http_bulk_export_counted(
    ngx_http_bulk_export_job_t *job);
static ngx_int_t ngx_http_bulk_export_count_next(
    ngx_http_bulk_export_job_t *job);
static void ngx_http_bulk_export_answer(ngx_http_bulk_export_job_t *job,
    ngx_int_t rc);
static void ngx_http_bulk_export_fail(ngx_http_bulk_export_job_t *job,
    const char *why);
static void ngx_http_bulk_export_tick(ngx_event_t *ev);
static void ngx_http_bulk_export_end(ngx_http_bulk_export_job_t *job);
static void ngx_http_bulk_export_kick_cleanup(void *data);

static ngx_int_t ngx_http_bulk_export_manifest(ngx_http_request_t *r,
    ngx_http_bulk_export_rec_t *rec);
static ngx_int_t ngx_http_bulk_export_file_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n);
static ngx_int_t ngx_http_bulk_export_file_error(ngx_http_bulk_copy_t *copy,
    PGresult *res, PGconn *pg);
static ngx_uint_t ngx_http_bulk_export_gzip(ngx_http_request_t *r);
static ngx_int_t ngx_http_bulk_export_info(ngx_http_request_t *r,
    const char *fmt, ...);
static ngx_int_t ngx_http_bulk_export_json_str(ngx_pool_t *pool,
    ngx_str_t *in, ngx_str_t *out);


static ngx_queue_t  ngx_http_bulk_export_jobs;


/* zone */

ngx_shm_zone_t *
ngx_http_bulk_export_add_zone(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t               *shm_zone;
    ngx_http_bulk_export_zone_t  *z;

    shm_zone = ngx_shared_memory_add(cf, name, size, &ngx_http_bulk_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NULL;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_bulk_export_zone_t));
    if (z == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_bulk_export_init_zone;
    shm_zone->data = z;

    return shm_zone;
}


static ngx_int_t
ngx_http_bulk_export_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_bulk_export_zone_t  *ozone = data;

    size_t                        len;
    ngx_http_bulk_export_zone_t  *z;

    z = shm_zone->data;

    if (ozone) {
        z->sh = ozone->sh;
        z->shpool = ozone->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool, sizeof(ngx_http_bulk_export_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;
    ngx_queue_init(&z->sh->list);

    len = sizeof(" in bulk export zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in bulk export zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_http_bulk_export_zone_t *
ngx_http_bulk_export_zone(ngx_http_request_t *r)
{
    ngx_http_bulk_main_conf_t  *bmcf;

    bmcf = ngx_http_get_module_main_conf(r, ngx_http_bulk_module);

    return bmcf->export_zone->data;
}


/* with the zone locked: a live record, or NULL */

static ngx_http_bulk_export_rec_t *
ngx_http_bulk_export_lookup(ngx_http_bulk_export_zone_t *z, ngx_str_t *id)
{
    ngx_queue_t                 *q;
    ngx_http_bulk_export_rec_t  *rec;

    if (id->len != NGX_HTTP_BULK_EXPORT_ID_LEN) {
        return NULL;
    }

    for (q = ngx_queue_head(&z->sh->list);
         q != ngx_queue_sentinel(&z->sh->list);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_bulk_export_rec_t, queue);

        if (ngx_strncmp(rec->id, id->data, id->len) == 0) {
            if (rec->deleted || ngx_time() >= rec->expires) {
                return NULL;
            }

            return rec;
        }
    }

    return NULL;
}


/* with the zone locked */

static void
ngx_http_bulk_export_free_rec(ngx_http_bulk_export_zone_t *z,
    ngx_http_bulk_export_rec_t *rec)
{
    ngx_queue_remove(&rec->queue);

    if (rec->files) {
        ngx_slab_free_locked(z->shpool, rec->files);
    }

    ngx_slab_free_locked(z->shpool, rec);
}


/*
 * With the zone locked: the exports holding a snapshot; records long past
 * their expiry whose owner process is gone (a worker that crashed) are
 * taken back.
 */

static ngx_uint_t
ngx_http_bulk_export_live(ngx_http_bulk_export_zone_t *z)
{
    time_t                       now;
    ngx_uint_t                   n;
    ngx_queue_t                 *q, *next;
    ngx_http_bulk_export_rec_t  *rec;

    n = 0;
    now = ngx_time();

    for (q = ngx_queue_head(&z->sh->list);
         q != ngx_queue_sentinel(&z->sh->list);
         q = next)
    {
        next = ngx_queue_next(q);
        rec = ngx_queue_data(q, ngx_http_bulk_export_rec_t, queue);

        if (now >= rec->expires + NGX_HTTP_BULK_EXPORT_STALE
            && kill(rec->owner, 0) == -1 && ngx_errno == NGX_ESRCH)
        {
            ngx_http_bulk_export_free_rec(z, rec);
            continue;
        }

        if (!rec->deleted && now < rec->expires) {
            n++;
        }
    }

    return n;
}


void
ngx_http_bulk_export_init_process(ngx_cycle_t *cycle)
{
    ngx_queue_init(&ngx_http_bulk_export_jobs);
}


/* an exiting worker lets its snapshots go */

void
ngx_http_bulk_export_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                 *q;
    ngx_http_bulk_export_job_t  *job;

    if (ngx_http_bulk_export_jobs.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_bulk_export_jobs)) {
        q = ngx_queue_head(&ngx_http_bulk_export_jobs);
        job = ngx_queue_data(q, ngx_http_bulk_export_job_t, queue);
        job->kick = NULL;

        /*
         * ngx_http_bulk_pg_exit() closes the connection right after: a
         * release now would post a cancel to a thread pool that is gone
         */

        if (job->pc) {
            job->pc->handler = NULL;
            job->pc->data = NULL;
            job->pc = NULL;
        }

        ngx_http_bulk_export_end(job);
    }
}


/* kick-off */

ngx_int_t
ngx_http_bulk_export_handler(ngx_http_request_t *r)
{
    ngx_int_t    rc;
    ngx_str_t    params;
    ngx_uint_t   lenient, status;
    const char  *code, *msg;

    status = ngx_http_bulk_export_headers(r, &lenient, &code, &msg);

    if (r->method == NGX_HTTP_GET || status) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (status) {
        return ngx_http_bulk_send_error(r, status, code, "%s", msg);
    }

    if (r->method == NGX_HTTP_GET) {
        params = r->args;
        return ngx_http_bulk_export_kickoff(r, &params, 0, lenient);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_bulk_export_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * Accept: application/fhir+json and Prefer: respond-async, as the IG asks
 * (its conformance suite sends Accept: application/json to see it refused);
 * handling=lenient noted.  0, or the status of a refusal with its issue
 * code and message.
 */

static ngx_uint_t
ngx_http_bulk_export_headers(ngx_http_request_t *r, ngx_uint_t *lenient,
    const char **code, const char **msg)
{
    u_char           *p, *last;
    ngx_uint_t        i, accept, async;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    accept = 0;
    async = 0;
    *lenient = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        if (h[i].key.len == 6
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept", 6) == 0)
        {
            if (ngx_strlcasestrn(p, last, (u_char *) "application/fhir+json",
                                 21 - 1))
            {
                accept = 1;

            } else if (accept == 0) {
                accept = 2;
            }

        } else if (h[i].key.len == 6
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Prefer", 6)
                      == 0)
        {
            if (ngx_strlcasestrn(p, last, (u_char *) "respond-async", 13 - 1))
            {
                async = 1;
            }

            if (ngx_strlcasestrn(p, last, (u_char *) "handling=lenient",
                                 16 - 1))
            {
                *lenient = 1;
            }
        }
    }

    if (accept == 0) {
        *code = "required";
        *msg = "the Accept header is required: application/fhir+json";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (accept == 2) {
        *code = "not-supported";
        *msg = "only application/fhir+json is accepted for the kick-off "
               "answer";
        return NGX_HTTP_BULK_NOT_ACCEPTABLE;
    }

    if (!async) {
        *code = "required";
        *msg = "$export runs asynchronously only: send "
               "\"Prefer: respond-async\"";
        return NGX_HTTP_BAD_REQUEST;
    }

    return 0;
}


/* a POST: the Parameters resource, read whole into memory */

static void
ngx_http_bulk_export_body(ngx_http_request_t *r)
{
    u_char           *p;
    size_t            len;
    ngx_str_t         params;
    ngx_int_t         rc;
    ngx_uint_t        lenient;
    ngx_chain_t      *cl;
    const char       *code, *msg;
    ngx_table_elt_t  *ct;

    /* checked before the body was read: for lenient only */

    (void) ngx_http_bulk_export_headers(r, &lenient, &code, &msg);

    ct = r->headers_in.content_type;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ngx_str_set(&params, "{\"resourceType\":\"Parameters\"}");
        goto kickoff;
    }

    if (ct == NULL
        || (ngx_strlcasestrn(ct->value.data, ct->value.data + ct->value.len,
                             (u_char *) "json", 4 - 1)
            == NULL))
    {
        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "not-supported", "the body must be a "
                                     "Parameters resource in JSON "
                                     "(application/fhir+json or "
                                     "application/json)"));
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf)) {
            ngx_http_finalize_request(r,
                ngx_http_bulk_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "too-large", "the Parameters "
                                         "resource is larger than "
                                         "client_body_buffer_size"));
            return;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    params.data = p;
    params.len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';

kickoff:

    rc = ngx_http_bulk_export_kickoff(r, &params, 1, lenient);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* the job answers; this handler's own reference goes */

    ngx_http_finalize_request(r, NGX_DONE);
}


static ngx_int_t
ngx_http_bulk_export_kickoff(ngx_http_request_t *r, ngx_str_t *params,
    ngx_uint_t post, ngx_uint_t lenient)
{
    u_char                       *p;
    size_t                        size;
    ngx_str_t                     group, base, request, errors, *e;
    ngx_uint_t                    i, live;
    ngx_pool_t                   *pool;
    ngx_pool_cleanup_t           *cln;
    ngx_http_bulk_export_q_t     *q;
    ngx_http_bulk_export_rec_t   *rec;
    ngx_http_bulk_export_job_t   *job;
    ngx_http_bulk_loc_conf_t     *blcf;
    ngx_http_bulk_export_zone_t  *z;
    u_char                        id[NGX_HTTP_BULK_EXPORT_ID_LEN + 1];

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    z = ngx_http_bulk_export_zone(r);

    ngx_str_null(&group);

    if (blcf->export_level == NGX_HTTP_BULK_EXPORT_GROUP) {
        if (ngx_http_complex_value(r, blcf->export_group, &group) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (group.len == 0 || group.len > NGX_HTTP_BULK_ID_MAX) {
            return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "not-found", "unknown Group "
                                            "\"%V\"", &group);
        }

        if (!ngx_http_bulk_export_id_valid(group.data, group.len)) {
            return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "not-found", "unknown Group "
                                            "\"%V\"", &group);
        }
    }

    /* the parameters, checked as every file request will read them */

    q = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_export_q_t));
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->level = blcf->export_level;
    q->group = group;
    q->lenient = lenient;

    if (ngx_http_bulk_export_q(r->pool, q, params, post) != NGX_OK) {
        if (q->status == 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, q->status,
                                        q->status == NGX_HTTP_BAD_REQUEST
                                        ? "invalid" : "not-supported",
                                        "%s", q->err);
    }

    if (ngx_http_bulk_export_base(r, blcf->export_level, &base, &request)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_bulk_export_new_id(id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    errors.len = 0;
    e = q->errors.elts;

    for (i = 0; i < q->errors.nelts; i++) {
        errors.len += e[i].len + 1;
    }

    /* the record */

    size = sizeof(ngx_http_bulk_export_rec_t) + request.len + base.len
           + params->len + errors.len;

    ngx_shmtx_lock(&z->shpool->mutex);

    live = ngx_http_bulk_export_live(z);

    if (live >= blcf->export_max) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        if (ngx_http_bulk_add_header(r, "Retry-After", "60") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                        "throttled", "%ui exports are "
                                        "running (bulk_export_max): try "
                                        "again later, or DELETE one", live);
    }

    rec = ngx_slab_alloc_locked(z->shpool, size);

    if (rec == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        if (ngx_http_bulk_add_header(r, "Retry-After", "60") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_bulk_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                        "throttled", "the bulk export zone "
                                        "is full: try again later");
    }

    ngx_memzero(rec, sizeof(ngx_http_bulk_export_rec_t));

    ngx_memcpy(rec->id, id, NGX_HTTP_BULK_EXPORT_ID_LEN + 1);
    rec->state = ngx_http_bulk_export_starting;
    rec->owner = ngx_pid;
    rec->expires = ngx_time() + (time_t) (blcf->export_ttl / 1000);
    rec->level = blcf->export_level;
    rec->post = post;
    rec->lenient = lenient;
    rec->token = blcf->export_token ? 1 : 0;
    if (group.len) {
        ngx_memcpy(rec->group, group.data, group.len);
    }

    p = (u_char *) (rec + 1);

    rec->request.data = p;
    rec->request.len = request.len;
    p = ngx_cpymem(p, request.data, request.len);

    rec->base.data = p;
    rec->base.len = base.len;
    p = ngx_cpymem(p, base.data, base.len);

    rec->params.data = p;
    rec->params.len = params->len;
    if (params->len) {
        p = ngx_cpymem(p, params->data, params->len);
    }

    rec->errors.data = p;
    rec->errors.len = errors.len;

    for (i = 0; i < q->errors.nelts; i++) {
        p = ngx_cpymem(p, e[i].data, e[i].len);
        *p++ = '\n';
    }

    ngx_queue_insert_tail(&z->sh->list, &rec->queue);

    ngx_shmtx_unlock(&z->shpool->mutex);

    /* the job, in this worker */

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        goto failed;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_bulk_export_job_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        goto failed;
    }

    job->pool = pool;
    job->log = ngx_cycle->log;
    job->zone = z;
    job->rec = rec;
    job->file_rows = blcf->export_file_rows;
    job->started = ngx_current_msec;
    job->pg_timeout = blcf->pg_timeout;
    job->tick.handler = ngx_http_bulk_export_tick;
    job->tick.data = job;
    job->tick.log = ngx_cycle->log;
    job->tick.cancelable = 1;

    ngx_queue_insert_tail(&ngx_http_bulk_export_jobs, &job->queue);

    if (ngx_array_init(&job->files, pool, 16,
                       sizeof(ngx_http_bulk_export_file_t))
        != NGX_OK)
    {
        ngx_http_bulk_export_end(job);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* its own copy of the parameters: the request's goes with it */

    job->q = ngx_pcalloc(pool, sizeof(ngx_http_bulk_export_q_t));
    if (job->q == NULL) {
        ngx_http_bulk_export_end(job);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    job->q->level = q->level;
    job->q->lenient = lenient;
    job->q->group.data = rec->group;
    job->q->group.len = group.len;

    if (ngx_http_bulk_export_q(pool, job->q, &rec->params, post) != NGX_OK
        || ngx_http_bulk_export_types(pool, job->q, &job->types,
                                      &job->ntypes)
           != NGX_OK)
    {
        ngx_http_bulk_export_end(job);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_bulk_export_end(job);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_bulk_export_kick_cleanup;
    cln->data = job;

    job->kick = r;
    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    ngx_add_timer(&job->tick, NGX_HTTP_BULK_EXPORT_TICK);

    ngx_http_bulk_pg_waiter_init(&job->waiter, blcf->export_pool,
                                 ngx_http_bulk_export_connected, job,
                                 ngx_cycle->log);
    job->waiter.stats = &job->stats;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bulk export %s: kick-off \"%V\"", rec->id, &request);

    ngx_http_bulk_pg_get(&job->waiter);

    return NGX_DONE;

failed:

    ngx_shmtx_lock(&z->shpool->mutex);
    ngx_http_bulk_export_free_rec(z, rec);
    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * The parameters: NGX_OK with q filled in; NGX_ERROR with q->status and
 * q->err for a refusal (q->status 0: no memory).  Under "Prefer:
 * handling=lenient" what is not supported is ignored and listed in
 * q->errors instead.
 */

static ngx_int_t
ngx_http_bulk_export_q(ngx_pool_t *pool, ngx_http_bulk_export_q_t *q,
    ngx_str_t *params, ngx_uint_t post)
{
    int                     rc;
    size_t                  i;
    ngx_uint_t              lenient;
    ngx_pool_cleanup_t     *cln;
    ngx_bulk_ep_str_t      *s;
    ngx_bulk_typefilter_t   tf;
    char                    err[256];

    if (ngx_array_init(&q->errors, pool, 4, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ngx_bulk_export_params_init(&q->ep);

    cln->handler = ngx_http_bulk_export_q_free;
    cln->data = q;

    if (post) {
        rc = ngx_bulk_export_params_body(&q->ep, params->data, params->len,
                                         (int64_t) ngx_time());
    } else {
        rc = ngx_bulk_export_params_query(&q->ep, params->data, params->len,
                                          (int64_t) ngx_time());
    }

    q->status = NGX_HTTP_BAD_REQUEST;

    if (rc != 0) {
        ngx_cpystrn(q->err, (u_char *) q->ep.err, sizeof(q->err));
        return NGX_ERROR;
    }

    if (q->ep.patients.n && q->level == NGX_HTTP_BULK_EXPORT_SYSTEM) {
        ngx_cpystrn(q->err, (u_char *) "\"patient\" is not allowed in a "
                    "system-level export: use Patient/$export",
                    sizeof(q->err));
        return NGX_ERROR;
    }

    s = q->ep.patients.items;

    for (i = 0; i < q->ep.patients.n; i++) {
        if (!ngx_http_bulk_export_id_valid((u_char *) s[i].data,
                                           s[i].len))
        {
            goto bad_patient;
        }
    }

    s = q->ep.unsupported.items;
    q->typed = (q->ep.types.n != 0);

    for (i = 0; i < q->ep.unsupported.n; i++) {
        if (ngx_http_bulk_export_ignore(pool, q, "%s", s[i].data) != NGX_OK) {
            return NGX_ERROR;
        }

        /* a _type of no R4 type, ignored: still no other type is asked */

        if (ngx_strncmp(s[i].data, "unsupported: _type ", 19) == 0) {
            q->typed = 1;
        }
    }

    /*
     * includeAssociatedData only adds resources a server has: without
     * Provenance or other associated data to add, it is accepted and
     * noted in the manifest's error[], lenient or not
     */

    if (q->ep.include_associated.n) {
        lenient = q->lenient;
        q->lenient = 1;

        rc = ngx_http_bulk_export_ignore(pool, q, "includeAssociatedData is "
                                         "not supported: no associated data "
                                         "is added");
        q->lenient = lenient;

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (q->ep.organize_output_by.data
        && ngx_http_bulk_export_ignore(pool, q, "organizeOutputBy is not "
                                       "supported")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    s = q->ep.type_filters.items;

    for (i = 0; i < q->ep.type_filters.n; i++) {
        ngx_memzero(&tf, sizeof(ngx_bulk_typefilter_t));

        rc = ngx_bulk_typefilter_sql(&tf, (u_char *) s[i].data, s[i].len);
        ngx_bulk_typefilter_free(&tf);

        if (rc != 0
            && ngx_http_bulk_export_ignore(pool, q, "_typeFilter \"%s\": %s",
                                           s[i].data, tf.err)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (q->ep.elements.n) {
        q->elements = ngx_bulk_elements_create();
        if (q->elements == NULL) {
            q->status = 0;
            return NGX_ERROR;
        }

        s = q->ep.elements.items;

        for (i = 0; i < q->ep.elements.n; i++) {
            if (ngx_bulk_elements_add(q->elements, s[i].data, s[i].len, err)
                != 0
                && ngx_http_bulk_export_ignore(pool, q, "_elements \"%s\": "
                                               "%s", s[i].data, err)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    q->status = 0;

    return NGX_OK;

bad_patient:

    ngx_snprintf(q->err, sizeof(q->err) - 1, "invalid patient id \"%*s\"%Z",
                 ngx_min(s[i].len, 64), s[i].data);

    return NGX_ERROR;
}


static void
ngx_http_bulk_export_q_free(void *data)
{
    ngx_http_bulk_export_q_t  *q = data;

    ngx_bulk_export_params_free(&q->ep);

    if (q->elements) {
        ngx_bulk_elements_destroy(q->elements);
        q->elements = NULL;
    }
}


/* what is not supported: a refusal, or under lenient an ignored item */

static ngx_int_t
ngx_http_bulk_export_ignore(ngx_pool_t *pool, ngx_http_bulk_export_q_t *q,
    const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    ngx_str_t  *e;
    u_char      text[512];

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text) - 1, fmt, args);
    va_end(args);

    if (!q->lenient) {
        *p = '\0';
        ngx_cpystrn(q->err, text, sizeof(q->err));
        ngx_cpystrn(q->err + ngx_min((size_t) (p - text),
                                     sizeof(q->err) - 80),
                    (u_char *) " (Prefer: handling=lenient ignores it)",
                    80);
        return NGX_ERROR;
    }

    e = ngx_array_push(&q->errors);
    if (e == NULL) {
        q->status = 0;
        return NGX_ERROR;
    }

    e->len = p - text;
    e->data = ngx_pnalloc(pool, e->len);
    if (e->data == NULL) {
        q->status = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(e->data, text, e->len);

    return NGX_OK;
}


/*
 * The types an export looks at: _type, or every R4 resource type; at the
 * Patient and Group levels only those of the Patient compartment.
 */

static ngx_int_t
ngx_http_bulk_export_types(ngx_pool_t *pool, ngx_http_bulk_export_q_t *q,
    ngx_str_t **types, ngx_uint_t *n)
{
    size_t                                i, total;
    ngx_str_t                            *t;
    const char                           *name;
    const ngx_bulk_ep_str_t              *s;
    const ngx_bulk_fhir_type_t           *ft;
    const ngx_bulk_fhir_compartment_t    *c;

    total = q->typed ? q->ep.types.n : NGX_BULK_FHIR_NRESOURCES;

    t = ngx_palloc(pool, (total + 1) * sizeof(ngx_str_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    *types = t;
    *n = 0;

    s = q->ep.types.items;

    for (i = 0; i < total; i++) {
        if (q->typed) {
            name = s[i].data;
            t[*n].len = s[i].len;

        } else {
            ft = &ngx_bulk_fhir_types[ngx_bulk_fhir_resources[i]];
            name = ngx_bulk_fhir_str(ft->name);
            t[*n].len = ft->len;
        }

        t[*n].data = (u_char *) name;

        if (q->level != NGX_HTTP_BULK_EXPORT_SYSTEM
            && ngx_bulk_fhir_compartment(name, t[*n].len, &c) != 1)
        {
            continue;
        }

        (*n)++;
    }

    return NGX_OK;
}


/* the condition on a type's rows, "TRUE" when there is none */

static ngx_int_t
ngx_http_bulk_export_where(ngx_http_bulk_export_q_t *q, ngx_str_t *type,
    ngx_http_bulk_export_sql_t *s)
{
    size_t                               i;
    ngx_uint_t                           any, sets, set;
    ngx_bulk_ep_str_t                   *e;
    ngx_bulk_typefilter_t                tf;
    const ngx_bulk_fhir_compartment_t   *c;

    ngx_http_bulk_export_cat(s, "TRUE");

    if (q->ep.since[0]) {
        ngx_http_bulk_export_cat(s, " AND ts > '%s'::timestamptz",
                                 q->ep.since);
    }

    if (q->ep.until[0]) {
        ngx_http_bulk_export_cat(s, " AND ts <= '%s'::timestamptz",
                                 q->ep.until);
    }

    /* _typeFilter: the queries of this type are ORed */

    e = q->ep.type_filters.items;
    any = 0;

    for (i = 0; i < q->ep.type_filters.n; i++) {
        ngx_memzero(&tf, sizeof(ngx_bulk_typefilter_t));

        if (ngx_bulk_typefilter_sql(&tf, (u_char *) e[i].data, e[i].len) == 0
            && tf.type_len == type->len
            && ngx_strncmp(tf.type, type->data, type->len) == 0)
        {
            ngx_http_bulk_export_cat(s, any ? " OR (%s)" : " AND ((%s)",
                                     tf.sql);
            any = 1;
        }

        ngx_bulk_typefilter_free(&tf);
    }

    if (any) {
        ngx_http_bulk_export_cat(s, ")");
    }

    if (q->level == NGX_HTTP_BULK_EXPORT_SYSTEM) {
        return s->failed ? NGX_ERROR : NGX_OK;
    }

    /*
     * The Patient compartment: a reference to a patient in one of the
     * type's compartment parameters; for each set of patients given (the
     * patient parameter, the Group's members), to one in that set.
     */

    if (ngx_bulk_fhir_compartment((char *) type->data, type->len, &c) != 1) {
        ngx_http_bulk_export_cat(s, " AND FALSE");
        return s->failed ? NGX_ERROR : NGX_OK;
    }

    sets = 0;

    for (set = 1; set <= 2; set++) {
        if ((set == 1 && q->ep.patients.n == 0)
            || (set == 2 && q->group.len == 0))
        {
            continue;
        }

        sets++;

        if (c->self) {
            ngx_http_bulk_export_cat(s, " AND id = ANY(");
            ngx_http_bulk_export_set(q, s, set);
            ngx_http_bulk_export_cat(s, ")");
            continue;
        }

        ngx_http_bulk_export_refs(c, s, q, set);
    }

    if (sets == 0 && !c->self) {
        ngx_http_bulk_export_refs(c, s, q, 0);
    }

    return s->failed ? NGX_ERROR : NGX_OK;
}


/*
 * " AND (<a reference to a Patient in one of the compartment paths>)";
 * set 0: any patient, else one of that set
 */

static void
ngx_http_bulk_export_refs(const ngx_bulk_fhir_compartment_t *c,
    ngx_http_bulk_export_sql_t *s, ngx_http_bulk_export_q_t *q,
    ngx_uint_t set)
{
    size_t                         j, k, m;
    const ngx_bulk_fhir_path_t    *path;
    const ngx_bulk_fhir_param_t   *param;

    ngx_http_bulk_export_cat(s, " AND (FALSE");

    for (j = 0; j < c->nparams; j++) {
        param = c->params[j];

        for (k = 0; k < param->npaths; k++) {
            path = &param->paths[k];

            /* the keys are identifiers of the generated table */

            ngx_http_bulk_export_cat(s, set ? " OR jsonb_path_query_array("
                                              "resource, '$"
                                            : " OR jsonb_path_exists("
                                              "resource, '$");

            for (m = 0; m < path->nkeys; m++) {
                ngx_http_bulk_export_cat(s, ".\"%s\"", path->keys[m]);
            }

            ngx_http_bulk_export_cat(s, " ? (@.\"resourceType\" == "
                                     "\"Patient\")");

            if (set == 0) {
                ngx_http_bulk_export_cat(s, "')");
                continue;
            }

            ngx_http_bulk_export_cat(s, ".\"id\"') ?| ");
            ngx_http_bulk_export_set(q, s, set);
        }
    }

    ngx_http_bulk_export_cat(s, ")");
}


/* a set of patient ids as a text[]: 1 the patient parameter, 2 the Group */

static void
ngx_http_bulk_export_set(ngx_http_bulk_export_q_t *q,
    ngx_http_bulk_export_sql_t *s, ngx_uint_t set)
{
    size_t              i;
    ngx_bulk_ep_str_t  *e;

    if (set == 1) {
        ngx_http_bulk_export_cat(s, "ARRAY[");

        e = q->ep.patients.items;

        for (i = 0; i < q->ep.patients.n; i++) {
            /* ids were checked: [A-Za-z0-9.-] */
            ngx_http_bulk_export_cat(s, "%s'%s'", i ? "," : "", e[i].data);
        }

        ngx_http_bulk_export_cat(s, "]::text[]");
        return;
    }

    /* the group id was checked: [A-Za-z0-9.-] */

    ngx_http_bulk_export_cat(s, "ARRAY(SELECT m #>> '{}' FROM \"group\" g, "
                             "jsonb_path_query(g.resource, "
                             "'$.\"member\".\"entity\" ? "
                             "(@.\"resourceType\" == \"Patient\").\"id\"') m "
                             "WHERE g.id = '%V')", &q->group);
}


static void
ngx_http_bulk_export_cat(ngx_http_bulk_export_sql_t *s, const char *fmt, ...)
{
    u_char   *p, *last;
    size_t    cap;
    va_list   args;

    if (s->failed) {
        return;
    }

    for ( ;; ) {
        if (s->cap - s->len > 1) {
            va_start(args, fmt);
            last = ngx_vslprintf(s->data + s->len, s->data + s->cap - 1, fmt,
                                 args);
            va_end(args);

            if (last < s->data + s->cap - 1) {
                s->len = last - s->data;
                s->data[s->len] = '\0';
                return;
            }
        }

        /* it might not have fit: twice the room, and again */

        cap = s->cap ? 2 * s->cap : 1024;

        p = ngx_pnalloc(s->pool, cap);
        if (p == NULL) {
            s->failed = 1;
            return;
        }

        if (s->len) {
            ngx_memcpy(p, s->data, s->len);
        }

        s->data = p;
        s->cap = cap;
    }
}


/* "<table>": the type name was checked to be [A-Za-z0-9] */

static void
ngx_http_bulk_export_table(ngx_http_bulk_export_sql_t *s, ngx_str_t *type)
{
    u_char  name[NGX_HTTP_BULK_TYPE_MAX + 1];

    ngx_strlow(name, type->data, ngx_min(type->len, NGX_HTTP_BULK_TYPE_MAX));
    name[ngx_min(type->len, NGX_HTTP_BULK_TYPE_MAX)] = '\0';

    ngx_http_bulk_export_cat(s, "\"%s\"", name);
}


/*
 * The ids of a type's resources deleted in the range of _since and
 * _until, as Aidbox records a deletion: a row of status "deleted" in the
 * type's _history table, the resource gone from its table.
 */

static void
ngx_http_bulk_export_deleted(ngx_http_bulk_export_q_t *q, ngx_str_t *type,
    ngx_http_bulk_export_sql_t *s)
{
    u_char  name[NGX_HTTP_BULK_TYPE_MAX + 1];

    ngx_strlow(name, type->data, ngx_min(type->len, NGX_HTTP_BULK_TYPE_MAX));
    name[ngx_min(type->len, NGX_HTTP_BULK_TYPE_MAX)] = '\0';

    ngx_http_bulk_export_cat(s, "SELECT DISTINCT id FROM \"%s_history\" h "
                             "WHERE status = 'deleted' AND NOT EXISTS "
                             "(SELECT 1 FROM \"%s\" m WHERE m.id = h.id) "
                             "AND ", name, name);

    if (ngx_http_bulk_export_where(q, type, s) != NGX_OK) {
        s->failed = 1;
    }
}


/*
 * The absolute URL of the kick-off, and the base the status and file URLs
 * hang from: the kick-off's path without "$export", "Patient/$export" or
 * "Group/<id>/$export".
 */

static ngx_int_t
ngx_http_bulk_export_base(ngx_http_request_t *r, ngx_uint_t level,
    ngx_str_t *base, ngx_str_t *request)
{
    u_char      *p, *end;
    ngx_str_t    host, scheme;
    ngx_uint_t   slashes;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https://");
    } else
#endif
    {
        ngx_str_set(&scheme, "http://");
    }

    if (r->headers_in.host) {
        host = r->headers_in.host->value;

    } else {
        host = r->headers_in.server;
    }

    end = r->uri.data + r->uri.len;
    slashes = (level == NGX_HTTP_BULK_EXPORT_SYSTEM) ? 1
              : (level == NGX_HTTP_BULK_EXPORT_PATIENT) ? 2 : 3;

    for (p = end; p > r->uri.data; p--) {
        if (p[-1] == '/' && --slashes == 0) {
            break;
        }
    }

    base->len = scheme.len + host.len + (p - r->uri.data);
    base->data = ngx_pnalloc(r->pool, base->len);
    if (base->data == NULL) {
        return NGX_ERROR;
    }

    end = ngx_cpymem(base->data, scheme.data, scheme.len);
    end = ngx_cpymem(end, host.data, host.len);
    ngx_memcpy(end, r->uri.data, p - r->uri.data);

    request->len = scheme.len + host.len + r->unparsed_uri.len;
    request->data = ngx_pnalloc(r->pool, request->len);
    if (request->data == NULL) {
        return NGX_ERROR;
    }

    end = ngx_cpymem(request->data, scheme.data, scheme.len);
    end = ngx_cpymem(end, host.data, host.len);
    ngx_memcpy(end, r->unparsed_uri.data, r->unparsed_uri.len);

    return NGX_OK;
}


/* 128 random bits as 32 hex digits: an export id nobody can guess */

static ngx_int_t
ngx_http_bulk_export_new_id(u_char *buf)
{
    u_char   *p, *last;
    ssize_t   n;
    u_char    rnd[16];

    p = rnd;
    last = rnd + sizeof(rnd);

    while (p < last) {
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
    *p = '\0';

    return NGX_OK;
}


/* a FHIR id: [A-Za-z0-9.-]{1,64} */

static ngx_uint_t
ngx_http_bulk_export_id_valid(u_char *id, size_t len)
{
    u_char  c;
    size_t  i;

    if (len == 0 || len > NGX_HTTP_BULK_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = id[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* the job */

static void
ngx_http_bulk_export_connected(ngx_http_bulk_pg_waiter_t *w, ngx_int_t rc)
{
    ngx_uint_t                   i;
    ngx_str_t                   *t;
    ngx_connection_t            *c;
    ngx_http_bulk_export_job_t  *job;
    ngx_http_bulk_export_sql_t   s;

    job = w->data;

    if (rc != NGX_OK) {
        c = job->kick ? job->kick->connection : NULL;

        ngx_http_bulk_export_fail(job, (char *) w->err);

        if (c) {
            ngx_http_run_posted_requests(c);
        }

        return;
    }

    job->pc = ngx_http_bulk_pg_take(w, ngx_http_bulk_export_pg_handler, job);

    ngx_memzero(&s, sizeof(ngx_http_bulk_export_sql_t));
    s.pool = job->pool;

    ngx_http_bulk_export_cat(&s, "BEGIN ISOLATION LEVEL REPEATABLE READ "
                             "READ ONLY; SELECT pg_export_snapshot(), "
                             "to_char(now() AT TIME ZONE 'UTC', "
                             "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ");

    if (job->q->group.len) {
        ngx_http_bulk_export_cat(&s, "(SELECT count(*) FROM \"group\" "
                                 "WHERE id = '%V'), ", &job->q->group);

    } else {
        ngx_http_bulk_export_cat(&s, "1, ");
    }

    /* the types whose tables exist: names checked, [A-Za-z0-9] */

    ngx_http_bulk_export_cat(&s, "array_to_string(ARRAY(SELECT t FROM "
                             "unnest('{");

    t = job->types;

    for (i = 0; i < job->ntypes; i++) {
        ngx_http_bulk_export_cat(&s, "%s%V", i ? "," : "", &t[i]);
    }

    ngx_http_bulk_export_cat(&s, "}'::text[]) WITH ORDINALITY AS u(t, o) "
                             "WHERE to_regclass(quote_ident(lower(t))) "
                             "IS NOT NULL ORDER BY o), ','), "
                             "array_to_string(ARRAY(SELECT to_regclass("
                             "quote_ident(lower(t) || '_history')) IS NOT "
                             "NULL FROM unnest('{");

    for (i = 0; i < job->ntypes; i++) {
        ngx_http_bulk_export_cat(&s, "%s%V", i ? "," : "", &t[i]);
    }

    ngx_http_bulk_export_cat(&s, "}'::text[]) WITH ORDINALITY AS u(t, o) "
                             "WHERE to_regclass(quote_ident(lower(t))) "
                             "IS NOT NULL ORDER BY o), '')");

    if (s.failed) {
        ngx_http_bulk_export_fail(job, "no memory");
        return;
    }

    job->state = ngx_http_bulk_export_job_begin;

    if (ngx_http_bulk_pg_send(job->pc, (char *) s.data) != NGX_OK) {
        ngx_http_bulk_export_fail(job, PQerrorMessage(job->pc->pg));
    }
}


static void
ngx_http_bulk_export_pg_handler(ngx_http_bulk_pg_conn_t *pc)
{
    ngx_http_bulk_export_job_t  *job;

    job = pc->data;

    ngx_http_bulk_export_process(job);
}


/* the one place that moves the job on */

static void
ngx_http_bulk_export_process(ngx_http_bulk_export_job_t *job)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->kick;
    c = r ? r->connection : NULL;

    switch (job->state) {

    case ngx_http_bulk_export_job_wait:
    case ngx_http_bulk_export_job_lost:
        return;

    case ngx_http_bulk_export_job_ready:

        /* nothing is expected: a closed connection, a terminated backend */

        if (PQstatus(job->pc->pg) != CONNECTION_OK || job->pc->doomed) {
            ngx_http_bulk_export_fail(job, "the snapshot's connection was "
                                           "lost");
        }

        return;

    default:
        break;
    }

    rc = ngx_http_bulk_export_results(job);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR || job->result) {
        ngx_http_bulk_export_fail(job, job->result
                                       ? PQresultErrorMessage(job->result)
                                       : PQerrorMessage(job->pc->pg));
        goto done;
    }

    if (job->state == ngx_http_bulk_export_job_begin) {
        rc = ngx_http_bulk_export_begun(job);

    } else {
        rc = ngx_http_bulk_export_counted(job);
    }

    if (rc == NGX_ERROR) {
        ngx_http_bulk_export_fail(job, "no memory");
        goto done;
    }

    if (rc == NGX_DECLINED) {
        /* the kick-off was refused: the job ended */
        goto done;
    }

    rc = ngx_http_bulk_export_count_next(job);

    if (rc == NGX_ERROR) {
        ngx_http_bulk_export_fail(job, PQerrorMessage(job->pc->pg));
    }

done:

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


/*
 * The results of the statements sent: NGX_OK when all are in (the last
 * rows in job->tuples, the first error in job->result), NGX_AGAIN to
 * wait, NGX_ERROR when the connection is lost.
 */

static ngx_int_t
ngx_http_bulk_export_results(ngx_http_bulk_export_job_t *job)
{
    PGconn    *pg;
    PGresult  *res;

    pg = job->pc->pg;

    for ( ;; ) {
        if (PQisBusy(pg)) {
            if (PQstatus(pg) != CONNECTION_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        res = PQgetResult(pg);

        if (res == NULL) {
            break;
        }

        switch (PQresultStatus(res)) {

        case PGRES_TUPLES_OK:
            if (job->tuples) {
                PQclear(job->tuples);
            }

            job->tuples = res;
            continue;

        case PGRES_COMMAND_OK:
            PQclear(res);
            continue;

        default:
            if (job->result == NULL) {
                job->result = res;

            } else {
                PQclear(res);
            }
        }
    }

    if (PQstatus(pg) != CONNECTION_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The snapshot exists: its name and time go to the record, the kick-off
 * is answered 202 (404 for an unknown Group: NGX_DECLINED, the job ended)
 */

static ngx_int_t
ngx_http_bulk_export_begun(ngx_http_bulk_export_job_t *job)
{
    char                         *types, *p, *comma;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_uint_t                    n;
    ngx_http_request_t           *r;
    ngx_http_bulk_export_rec_t   *rec;
    ngx_http_bulk_export_zone_t  *z;
    u_char                       *loc;

    rec = job->rec;
    z = job->zone;

    if (job->tuples == NULL || PQntuples(job->tuples) != 1
        || PQnfields(job->tuples) != 5)
    {
        ngx_http_bulk_export_fail(job, "unexpected answer to the snapshot");
        return NGX_DECLINED;
    }

    r = job->kick;

    if (r && r->connection->error) {

        /* the client is gone: nobody would know the export's id */

        job->kick = NULL;
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_bulk_export_end(job);
        return NGX_DECLINED;
    }

    if (ngx_strcmp(PQgetvalue(job->tuples, 0, 2), "0") == 0) {
        r = job->kick;
        job->kick = NULL;

        if (r) {
            ngx_http_finalize_request(r,
                ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                         "unknown Group \"%V\"",
                                         &job->q->group));
        }

        ngx_http_bulk_export_end(job);
        return NGX_DECLINED;
    }

    /* the types whose tables exist, in their order */

    types = PQgetvalue(job->tuples, 0, 3);
    n = 0;

    for (p = types; *p; p = comma + 1) {
        comma = strchr(p, ',');
        len = comma ? (size_t) (comma - p) : ngx_strlen(p);

        job->types[n].data = ngx_pnalloc(job->pool, len);
        if (job->types[n].data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(job->types[n].data, p, len);
        job->types[n].len = len;
        n++;

        if (comma == NULL || n == job->ntypes) {
            break;
        }
    }

    job->ntypes = n;
    job->next = 0;

    /* "t" or "f" for each type found: its _history table exists */

    job->history = ngx_pnalloc(job->pool, n + 1);
    if (job->history == NULL) {
        return NGX_ERROR;
    }

    len = ngx_min(n, (size_t) PQgetlength(job->tuples, 0, 4));
    ngx_memzero(job->history, n + 1);
    ngx_memcpy(job->history, PQgetvalue(job->tuples, 0, 4), len);

    ngx_shmtx_lock(&z->shpool->mutex);

    ngx_cpystrn(rec->snapshot, (u_char *) PQgetvalue(job->tuples, 0, 0),
                sizeof(rec->snapshot));
    ngx_cpystrn(rec->tx_time, (u_char *) PQgetvalue(job->tuples, 0, 1),
                sizeof(rec->tx_time));
    rec->state = ngx_http_bulk_export_counting;
    rec->ntypes = n;

    ngx_shmtx_unlock(&z->shpool->mutex);

    PQclear(job->tuples);
    job->tuples = NULL;

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "bulk export %s: snapshot %s at %s, %ui types", rec->id,
                  rec->snapshot, rec->tx_time, n);

    /* 202, with the status URL */

    r = job->kick;

    if (r == NULL) {
        return NGX_OK;
    }

    len = rec->base.len + sizeof("$export-status/") - 1
          + NGX_HTTP_BULK_EXPORT_ID_LEN;

    loc = ngx_pnalloc(r->pool, len + 1);
    if (loc == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(loc, "%V$export-status/%s%Z", &rec->base, rec->id);

    rc = ngx_http_bulk_add_header(r, "Content-Location", (char *) loc);

    if (rc == NGX_OK) {
        rc = ngx_http_bulk_export_info(r, "export %s started: poll %s",
                                       rec->id, loc);
    }

    ngx_http_bulk_export_answer(job, rc);

    return NGX_OK;
}


/* the rows of a type counted: its files */

static ngx_int_t
ngx_http_bulk_export_counted(ngx_http_bulk_export_job_t *job)
{
    int                           i, n;
    ngx_str_t                    *type;
    ngx_http_bulk_export_file_t  *f;

    type = &job->types[job->next - 1];

    n = job->tuples ? PQntuples(job->tuples) : 0;

    if (job->state == ngx_http_bulk_export_job_deleted) {
        if (n == 1 && ngx_strcmp(PQgetvalue(job->tuples, 0, 0), "0") != 0) {
            f = ngx_array_push(&job->files);
            if (f == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(f, sizeof(ngx_http_bulk_export_file_t));

            ngx_memcpy(f->type, type->data, type->len);
            f->type[type->len] = '\0';
            f->count = ngx_atoof((u_char *) PQgetvalue(job->tuples, 0, 0),
                                 PQgetlength(job->tuples, 0, 0));
            f->from = -1;
            f->to = -1;
            f->deleted = 1;
        }

        n = 0;
    }

    for (i = 0; i < n; i++) {
        f = ngx_array_push(&job->files);
        if (f == NULL) {
            return NGX_ERROR;
        }

        /* the whole struct goes to the zone: no byte left undefined */

        ngx_memzero(f, sizeof(ngx_http_bulk_export_file_t));

        ngx_memcpy(f->type, type->data, type->len);
        f->type[type->len] = '\0';
        f->count = ngx_atoof((u_char *) PQgetvalue(job->tuples, i, 1),
                             PQgetlength(job->tuples, i, 1));
        f->from = (i == 0) ? -1
                  : ngx_atoof((u_char *) PQgetvalue(job->tuples, i, 2),
                              PQgetlength(job->tuples, i, 2));
        f->to = -1;
        f->deleted = 0;

        if (i > 0) {
            f[-1].to = f->from;
        }
    }

    if (job->tuples) {
        PQclear(job->tuples);
        job->tuples = NULL;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->rec->types_done = job->next;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    return NGX_OK;
}


/*
 * The count of the next type, or, when all are counted, the files go to
 * the record and the export is complete.
 */

static ngx_int_t
ngx_http_bulk_export_count_next(ngx_http_bulk_export_job_t *job)
{
    size_t                        size;
    ngx_str_t                    *type;
    ngx_http_bulk_export_sql_t    s;
    ngx_http_bulk_export_rec_t   *rec;
    ngx_http_bulk_export_zone_t  *z;
    ngx_http_bulk_export_file_t  *files;

    rec = job->rec;
    z = job->zone;

    if (job->state == ngx_http_bulk_export_job_count && job->q->ep.since[0]
        && job->history[job->next - 1] == 't')
    {
        /*
         * the resources of the type deleted since _since (and not created
         * again): their last row in the _history table says "deleted"
         */

        type = &job->types[job->next - 1];

        ngx_memzero(&s, sizeof(ngx_http_bulk_export_sql_t));
        s.pool = job->pool;

        ngx_http_bulk_export_cat(&s, "SELECT count(*) FROM (");
        ngx_http_bulk_export_deleted(job->q, type, &s);
        ngx_http_bulk_export_cat(&s, ") d");

        if (s.failed) {
            return NGX_ERROR;
        }

        job->state = ngx_http_bulk_export_job_deleted;

        return ngx_http_bulk_pg_send(job->pc, (char *) s.data);
    }

    if (job->next == job->ntypes) {
        size = job->files.nelts * sizeof(ngx_http_bulk_export_file_t);

        ngx_shmtx_lock(&z->shpool->mutex);

        files = NULL;

        if (size) {
            files = ngx_slab_alloc_locked(z->shpool, size);

            if (files == NULL) {
                ngx_shmtx_unlock(&z->shpool->mutex);
                ngx_http_bulk_export_fail(job, "the bulk export zone is "
                                               "full");
                return NGX_OK;
            }

            ngx_memcpy(files, job->files.elts, size);
        }

        rec->files = files;
        rec->nfiles = job->files.nelts;
        rec->state = ngx_http_bulk_export_ready;

        ngx_shmtx_unlock(&z->shpool->mutex);

        job->state = ngx_http_bulk_export_job_ready;

        ngx_log_error(NGX_LOG_INFO, job->log, 0,
                      "bulk export %s: complete, %ui files", rec->id,
                      job->files.nelts);

        return NGX_OK;
    }

    type = &job->types[job->next++];

    ngx_memzero(&s, sizeof(ngx_http_bulk_export_sql_t));
    s.pool = job->pool;

    /*
     * Files of about bulk_export_file_rows rows: the rows in ctid order
     * numbered, each file's first ctid as (block << 16) | offset
     */

    ngx_http_bulk_export_cat(&s, "SELECT f, count(*), min(k) FROM (SELECT "
                             "(row_number() OVER (ORDER BY ctid) - 1) / %ui "
                             "AS f, ((ctid::text::point)[0]::int8 << 16) | "
                             "(ctid::text::point)[1]::int8 AS k FROM ",
                             job->file_rows);
    ngx_http_bulk_export_table(&s, type);
    ngx_http_bulk_export_cat(&s, " WHERE ");

    if (ngx_http_bulk_export_where(job->q, type, &s) != NGX_OK || s.failed) {
        return NGX_ERROR;
    }

    ngx_http_bulk_export_cat(&s, ") s GROUP BY f ORDER BY f");

    if (s.failed) {
        return NGX_ERROR;
    }

    job->state = ngx_http_bulk_export_job_count;

    return ngx_http_bulk_pg_send(job->pc, (char *) s.data);
}


/* the kick-off's answer is out */

static void
ngx_http_bulk_export_answer(ngx_http_bulk_export_job_t *job, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = job->kick;
    job->kick = NULL;

    if (r) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * The job cannot go on: a kick-off still waiting is answered with the
 * error and the export ends; else the export fails (its status says why)
 * and its record stays until its time is up.
 */

static void
ngx_http_bulk_export_fail(ngx_http_bulk_export_job_t *job, const char *why)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    ngx_log_error(NGX_LOG_ERR, job->log, 0, "bulk export %s failed: %*s",
                  job->rec->id, ngx_http_bulk_pg_msg_len(why), why);

    r = job->kick;

    if (r) {
        job->kick = NULL;

        if (job->result || job->pc) {
            rc = ngx_http_bulk_send_pg_error(r, job->result,
                                             job->pc ? job->pc->pg : NULL,
                                             0);
        } else {
            rc = ngx_http_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "transient", "database "
                                          "unavailable: %s", why);
        }

        ngx_http_finalize_request(r, rc);
        ngx_http_bulk_export_end(job);
        return;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    ngx_cpystrn(job->rec->err, (u_char *) why,
                ngx_min(sizeof(job->rec->err),
                        ngx_http_bulk_pg_msg_len(why) + 1));
    job->rec->state = ngx_http_bulk_export_failed;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (job->pc) {
        ngx_http_bulk_pg_release(job->pc, 0);
        job->pc = NULL;
    }

    job->state = ngx_http_bulk_export_job_lost;
}


/*
 * Every second: a kick-off not answered within bulk_pg_timeout, a DELETE
 * answered by another worker, the end of the TTL.
 */

static void
ngx_http_bulk_export_tick(ngx_event_t *ev)
{
    ngx_uint_t                   over;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_bulk_export_job_t  *job;

    job = ev->data;

    r = job->kick;

    if (r && ngx_current_msec - job->started >= job->pg_timeout) {

        /* no connection or no snapshot within bulk_pg_timeout */

        c = r->connection;
        job->kick = NULL;

        ngx_http_finalize_request(r,
            ngx_http_bulk_send_error(r, NGX_HTTP_GATEWAY_TIME_OUT, "timeout",
                                     "PostgreSQL did not answer within "
                                     "bulk_pg_timeout"));
        ngx_http_bulk_export_end(job);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    over = job->rec->deleted || ngx_time() >= job->rec->expires;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (over && job->kick == NULL) {
        ngx_log_error(NGX_LOG_INFO, job->log, 0,
                      "bulk export %s: %s", job->rec->id,
                      job->rec->deleted ? "deleted" : "expired");
        ngx_http_bulk_export_end(job);
        return;
    }

    ngx_add_timer(&job->tick, NGX_HTTP_BULK_EXPORT_TICK);
}


/* the export is over: its snapshot, its record, its memory */

static void
ngx_http_bulk_export_end(ngx_http_bulk_export_job_t *job)
{
    ngx_http_request_t  *r;

    r = job->kick;

    if (r) {
        job->kick = NULL;
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
    }

    ngx_http_bulk_pg_cancel(&job->waiter);

    if (job->pc) {
        ngx_http_bulk_pg_release(job->pc, 0);
        job->pc = NULL;
    }

    if (job->tuples) {
        PQclear(job->tuples);
    }

    if (job->result) {
        PQclear(job->result);
    }

    if (job->tick.timer_set) {
        ngx_del_timer(&job->tick);
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    ngx_http_bulk_export_free_rec(job->zone, job->rec);
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    ngx_queue_remove(&job->queue);

    ngx_destroy_pool(job->pool);
}


/* the kick-off request is freed (a worker shutting down) */

static void
ngx_http_bulk_export_kick_cleanup(void *data)
{
    ngx_http_bulk_export_job_t  *job = data;

    ngx_queue_t  *q;

    /* the job may be over already */

    for (q = ngx_queue_head(&ngx_http_bulk_export_jobs);
         q != ngx_queue_sentinel(&ngx_http_bulk_export_jobs);
         q = ngx_queue_next(q))
    {
        if (q == &job->queue) {
            job->kick = NULL;
            return;
        }
    }
}


/* GET and DELETE $export-status/{id} */

ngx_int_t
ngx_http_bulk_export_status_handler(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_str_t                     id;
    ngx_uint_t                    mine, state, polled, done, total;
    ngx_queue_t                  *q;
    ngx_http_bulk_loc_conf_t     *blcf;
    ngx_http_bulk_export_rec_t   *rec, *copy;
    ngx_http_bulk_export_job_t   *job;
    ngx_http_bulk_export_zone_t  *z;
    u_char                        err[256];

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    z = ngx_http_bulk_export_zone(r);

    if (ngx_http_complex_value(r, blcf->status_id, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = ngx_http_bulk_export_lookup(z, &id);

    if (rec == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                        "no export \"%V\" (deleted, expired "
                                        "or never started)", &id);
    }

    if (r->method == NGX_HTTP_DELETE) {
        rec->deleted = 1;
        mine = (rec->owner == ngx_pid);

        ngx_shmtx_unlock(&z->shpool->mutex);

        if (mine) {
            for (q = ngx_queue_head(&ngx_http_bulk_export_jobs);
                 q != ngx_queue_sentinel(&ngx_http_bulk_export_jobs);
                 q = ngx_queue_next(q))
            {
                job = ngx_queue_data(q, ngx_http_bulk_export_job_t, queue);

                if (job->rec == rec && job->kick == NULL) {
                    ngx_http_bulk_export_end(job);
                    break;
                }
            }
        }

        return ngx_http_bulk_export_info(r, "export %V deleted", &id);
    }

    state = rec->state;
    polled = rec->polled;
    rec->polled = 1;
    done = rec->types_done;
    total = rec->ntypes;

    if (state == ngx_http_bulk_export_failed) {
        ngx_cpystrn(err, rec->err, sizeof(err));
        ngx_shmtx_unlock(&z->shpool->mutex);

        return ngx_http_bulk_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "exception", "the export failed: %s",
                                        err);
    }

    if (state != ngx_http_bulk_export_ready || !polled) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        /*
         * in progress; the first poll of an export always is, so that a
         * client sees the asynchronous pattern even when counting is
         * quicker than it
         */

        p = ngx_pnalloc(r->pool, 64);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(p, "counting: %ui of %ui types%Z", done, total);

        if (ngx_http_bulk_add_header(r, "X-Progress", (char *) p) != NGX_OK
            || ngx_http_bulk_add_header(r, "Retry-After",
                                        NGX_HTTP_BULK_EXPORT_RETRY)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.status = NGX_HTTP_ACCEPTED;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        return ngx_http_send_header(r);
    }

    /* a copy of the record and its files out of the lock */

    copy = ngx_palloc(r->pool, sizeof(ngx_http_bulk_export_rec_t)
                               + rec->request.len + rec->base.len
                               + rec->errors.len
                               + rec->nfiles
                                 * sizeof(ngx_http_bulk_export_file_t));
    if (copy == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *copy = *rec;
    p = (u_char *) (copy + 1);

    copy->files = (ngx_http_bulk_export_file_t *) p;

    if (rec->nfiles) {
        p = ngx_cpymem(p, rec->files,
                       rec->nfiles * sizeof(ngx_http_bulk_export_file_t));
    }

    copy->request.data = p;
    p = ngx_cpymem(p, rec->request.data, rec->request.len);
    copy->base.data = p;
    p = ngx_cpymem(p, rec->base.data, rec->base.len);
    copy->errors.data = p;
    ngx_memcpy(p, rec->errors.data, rec->errors.len);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return ngx_http_bulk_export_manifest(r, copy);
}


/* the manifest of a complete export */

static ngx_int_t
ngx_http_bulk_export_manifest(ngx_http_request_t *r,
    ngx_http_bulk_export_rec_t *rec)
{
    u_char                       *p, *nl, *last, *expires;
    size_t                        len;
    ngx_buf_t                    *b;
    ngx_str_t                     request, base, text, msg;
    ngx_uint_t                    i, n, any, lines;
    ngx_http_bulk_export_file_t  *f;

    /* the host came from the request: escaped as any JSON string */

    if (ngx_http_bulk_export_json_str(r->pool, &rec->request, &request)
        != NGX_OK
        || ngx_http_bulk_export_json_str(r->pool, &rec->base, &base) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lines = 0;

    for (i = 0; i < rec->errors.len; i++) {
        if (rec->errors.data[i] == '\n') {
            lines++;
        }
    }

    len = sizeof("{\"transactionTime\":\"\",\"request\":\"\","
                 "\"requiresAccessToken\":false,\"output\":[],"
                 "\"deleted\":[],\"error\":[]}") + NGX_HTTP_BULK_EXPORT_TIME_MAX
          + request.len
          + rec->nfiles * (sizeof("{\"type\":\"\",\"url\":\"$export-file//"
                                  "-.ndjson\",\"count\":},")
                           + 2 * NGX_HTTP_BULK_TYPE_MAX + base.len
                           + NGX_HTTP_BULK_EXPORT_ID_LEN + 2 * NGX_INT64_LEN)
          + 6 * rec->errors.len + 160 * lines
          + sizeof("{\"type\":\"OperationOutcome\",\"url\":\""
                   "$export-file//errors.ndjson\",\"resourceType\":"
                   "\"OperationOutcome\",\"issue\":[]}") + base.len
          + NGX_HTTP_BULK_EXPORT_ID_LEN + 64;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"transactionTime\":\"%s\",\"request\":\"%V\","
                    "\"requiresAccessToken\":%s,\"output\":[",
                    rec->tx_time, &request, rec->token ? "true" : "false");

    f = rec->files;
    n = 0;
    any = 0;

    for (i = 0; i < rec->nfiles; i++) {
        if (i && ngx_strcmp(f[i].type, f[i - 1].type) != 0) {
            n = 0;
        }

        if (f[i].deleted) {
            continue;
        }

        p = ngx_sprintf(p, "%s{\"type\":\"%s\",\"url\":\"%V$export-file/%s/"
                        "%s-%ui.ndjson\",\"count\":%uL}", any++ ? "," : "",
                        f[i].type, &base, rec->id, f[i].type, n++,
                        f[i].count);
    }

    p = ngx_sprintf(p, "],\"deleted\":[");
    any = 0;

    for (i = 0; i < rec->nfiles; i++) {
        if (!f[i].deleted) {
            continue;
        }

        p = ngx_sprintf(p, "%s{\"type\":\"Bundle\",\"url\":\"%V$export-file/"
                        "%s/%s-deleted.ndjson\",\"count\":%uL}",
                        any++ ? "," : "", &base, rec->id, f[i].type,
                        f[i].count);
    }

    p = ngx_sprintf(p, "],\"error\":[");

    /*
     * What a lenient kick-off ignored: a file of OperationOutcomes, as the
     * IG has it; each entry also carries its OperationOutcome inline,
     * which is what some clients (BDT) read.
     */

    if (rec->errors.len) {
        p = ngx_sprintf(p, "{\"type\":\"OperationOutcome\",\"url\":\""
                        "%V$export-file/%s/errors.ndjson\","
                        "\"resourceType\":\"OperationOutcome\",\"issue\":[",
                        &base, rec->id);

        last = rec->errors.data + rec->errors.len;

        for (text.data = rec->errors.data; text.data < last;
             text.data = nl + 1)
        {
            nl = ngx_strlchr(text.data, last, '\n');
            if (nl == NULL) {
                break;
            }

            text.len = nl - text.data;

            if (ngx_http_bulk_export_json_str(r->pool, &text, &msg)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p = ngx_sprintf(p, "%s{\"severity\":\"warning\",\"code\":"
                            "\"not-supported\",\"diagnostics\":\"%V\"}",
                            text.data == rec->errors.data ? "" : ",", &msg);
        }

        p = ngx_sprintf(p, "]}");
    }

    p = ngx_sprintf(p, "]}");
    b->last = p;

    expires = ngx_pnalloc(r->pool, sizeof("Mon, 28 Sep 1970 06:00:00 GMT"));
    if (expires == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_time(expires, rec->expires);
    *p = '\0';

    if (ngx_http_bulk_add_header(r, "Expires", (char *) expires) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_bulk_send_json(r, NGX_HTTP_OK, b);
}


/* 202 with an informational OperationOutcome */

static ngx_int_t
ngx_http_bulk_export_info(ngx_http_request_t *r, const char *fmt, ...)
{
    u_char     *last;
    va_list     args;
    ngx_buf_t  *b;
    u_char      text[1024];

    va_start(args, fmt);
    last = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    b = ngx_create_temp_buf(r->pool, 6 * (last - text) + 160);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"resourceType\":\"OperationOutcome\","
                          "\"issue\":[{\"severity\":\"information\","
                          "\"code\":\"informational\",\"diagnostics\":\"");
    b->last += ngx_bulk_json_escape(b->last, text, last - text);
    b->last = ngx_sprintf(b->last, "\"}]}\n");

    return ngx_http_bulk_send_json(r, NGX_HTTP_ACCEPTED, b);
}


/* a string as JSON string content */

static ngx_int_t
ngx_http_bulk_export_json_str(ngx_pool_t *pool, ngx_str_t *in,
    ngx_str_t *out)
{
    out->data = ngx_pnalloc(pool, 6 * in->len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_bulk_json_escape(out->data, in->data, in->len);

    return NGX_OK;
}


/* GET $export-file/{id}/{Type}-{n}.ndjson, and errors.ndjson */

ngx_int_t
ngx_http_bulk_export_file_handler(ngx_http_request_t *r)
{
    u_char                           *p, *last, *nl;
    ngx_str_t                         id, name, type, params, group, text;
    ngx_str_t                         msg;
    ngx_int_t                         k;
    ngx_buf_t                        *b;
    ngx_uint_t                        i, n, level, post, lenient, deleted;
    ngx_http_bulk_copy_t             *copy;
    ngx_http_bulk_export_q_t         *q;
    ngx_http_bulk_export_sql_t        s;
    ngx_http_bulk_loc_conf_t         *blcf;
    ngx_http_bulk_export_rec_t       *rec;
    ngx_http_bulk_export_file_t       file;
    ngx_http_bulk_export_zone_t      *z;
    ngx_http_bulk_export_file_ctx_t  *ctx;
    u_char                            snapshot[NGX_HTTP_BULK_EXPORT_SNAP_MAX];

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_bulk_module);
    z = ngx_http_bulk_export_zone(r);

    if (ngx_http_complex_value(r, blcf->status_id, &id) != NGX_OK
        || ngx_http_complex_value(r, blcf->export_file, &name) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* {Type}-{n}.ndjson */

    k = -1;
    deleted = 0;
    type.data = name.data;
    type.len = 0;

    last = name.data + name.len;
    p = ngx_strlchr(name.data, last, '-');

    if (p && last - p > (ssize_t) sizeof(".ndjson")
        && ngx_strncmp(last - 7, ".ndjson", 7) == 0)
    {
        type.len = p - name.data;

        if (last - 7 - (p + 1) == 7 && ngx_strncmp(p + 1, "deleted", 7) == 0) {
            deleted = 1;
            k = 0;

        } else {
            k = ngx_atoi(p + 1, last - 7 - (p + 1));
        }
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = ngx_http_bulk_export_lookup(z, &id);

    if (rec == NULL || rec->state != ngx_http_bulk_export_ready) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        goto not_found;
    }

    if (name.len == sizeof("errors.ndjson") - 1
        && ngx_strncmp(name.data, "errors.ndjson", name.len) == 0)
    {
        /* the OperationOutcomes of what a lenient kick-off ignored */

        text.data = ngx_pnalloc(r->pool, rec->errors.len);
        if (text.data == NULL) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        text.len = rec->errors.len;
        ngx_memcpy(text.data, rec->errors.data, text.len);

        ngx_shmtx_unlock(&z->shpool->mutex);

        if (text.len == 0) {
            goto not_found;
        }

        last = text.data + text.len;

        /* each line: its text JSON-escaped, in an OperationOutcome */

        n = 0;

        for (p = text.data; p < last; p++) {
            if (*p == '\n') {
                n++;
            }
        }

        b = ngx_create_temp_buf(r->pool, 6 * text.len + 160 * (n + 1));
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = text.data;

        while (p < last) {
            nl = ngx_strlchr(p, last, '\n');
            if (nl == NULL) {
                break;
            }

            msg.data = p;
            msg.len = nl - p;

            b->last = ngx_sprintf(b->last, "{\"resourceType\":"
                                  "\"OperationOutcome\",\"issue\":[{"
                                  "\"severity\":\"warning\",\"code\":"
                                  "\"not-supported\",\"diagnostics\":\"");
            b->last += ngx_bulk_json_escape(b->last, msg.data, msg.len);
            b->last = ngx_sprintf(b->last, "\"}]}\n");

            p = nl + 1;
        }

        ngx_str_set(&r->headers_out.content_type, "application/fhir+ndjson");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.status = NGX_HTTP_OK;
        r->headers_out.content_length_n = b->last - b->pos;
        b->last_buf = 1;

        k = ngx_http_send_header(r);
        if (k == NGX_ERROR || k > NGX_OK || r->header_only) {
            return k;
        }

        return ngx_http_output_filter(r, &(ngx_chain_t) { b, NULL });
    }

    /* the k-th file of the type */

    n = 0;
    file.type[0] = '\0';

    for (i = 0; k >= 0 && i < rec->nfiles; i++) {
        if (ngx_strlen(rec->files[i].type) == type.len
            && ngx_strncmp(rec->files[i].type, type.data, type.len) == 0
            && rec->files[i].deleted == deleted)
        {
            if (n++ == (ngx_uint_t) k) {
                file = rec->files[i];
                break;
            }
        }
    }

    if (file.type[0] == '\0') {
        ngx_shmtx_unlock(&z->shpool->mutex);
        goto not_found;
    }

    ngx_memcpy(snapshot, rec->snapshot, sizeof(snapshot));
    level = rec->level;
    post = rec->post;
    lenient = rec->lenient;

    params.len = rec->params.len;
    params.data = ngx_pnalloc(r->pool, params.len + ngx_strlen(rec->group)
                                       + 1);
    if (params.data == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(params.data, rec->params.data, params.len);

    group.data = params.data + params.len;
    group.len = ngx_strlen(rec->group);
    ngx_memcpy(group.data, rec->group, group.len);

    ngx_shmtx_unlock(&z->shpool->mutex);

    /* what the kick-off asked for, as it was checked then */

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_export_file_ctx_t));
    q = ngx_pcalloc(r->pool, sizeof(ngx_http_bulk_export_q_t));
    if (ctx == NULL || q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->level = level;
    q->group = group;
    q->lenient = lenient;

    if (ngx_http_bulk_export_q(r->pool, q, &params, post) != NGX_OK) {
        return ngx_http_bulk_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "exception", "the export's "
                                        "parameters no longer pass: %s",
                                        q->err);
    }

    ctx->type.len = type.len;
    ctx->type.data = ngx_pnalloc(r->pool, type.len);
    if (ctx->type.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->type.data, type.data, type.len);

    if (q->elements
        && ngx_bulk_elements_applies(q->elements, (char *) type.data,
                                     type.len))
    {
        ctx->elements = q->elements;
    }

    ctx->fmt = ngx_http_bulk_fmt();
    if (ctx->fmt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the statements: the snapshot first */

    ngx_memzero(&s, sizeof(ngx_http_bulk_export_sql_t));
    s.pool = r->pool;

    copy = &ctx->copy;

    if (ngx_http_bulk_copy_init(copy, r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the snapshot name is PostgreSQL's own: [0-9A-F-] */

    ngx_http_bulk_export_cat(&s, "BEGIN ISOLATION LEVEL REPEATABLE READ "
                             "READ ONLY; SET TRANSACTION SNAPSHOT '%s'; "
                             "SET LOCAL standard_conforming_strings = on",
                             snapshot);
    copy->prepare = (char *) s.data;

    ngx_memzero(&s, sizeof(ngx_http_bulk_export_sql_t));
    s.pool = r->pool;

    if (r->method == NGX_HTTP_HEAD) {
        ngx_http_bulk_export_cat(&s, "SELECT 1");

    } else if (deleted) {

        /* one transaction Bundle of a DELETE for each resource */

        ngx_http_bulk_export_cat(&s, "COPY (SELECT json_build_object("
                                 "'resourceType', 'Bundle', 'type', "
                                 "'transaction', 'entry', json_build_array("
                                 "json_build_object('request', "
                                 "json_build_object('method', 'DELETE', "
                                 "'url', '%V/' || id))))::text FROM (",
                                 &ctx->type);
        ngx_http_bulk_export_deleted(q, &ctx->type, &s);
        ngx_http_bulk_export_cat(&s, ") d) TO STDOUT (FORMAT binary)");
        ctx->deleted = 1;

    } else {
        ngx_http_bulk_export_cat(&s, "COPY (SELECT id, txid, cts, ts, "
                                 "resource FROM ");
        ngx_http_bulk_export_table(&s, &ctx->type);
        ngx_http_bulk_export_cat(&s, " WHERE ");

        if (ngx_http_bulk_export_where(q, &ctx->type, &s) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (file.from >= 0) {
            ngx_http_bulk_export_cat(&s, " AND ctid >= '(%L,%L)'::tid",
                                     file.from >> 16, file.from & 0xffff);
        }

        if (file.to >= 0) {
            ngx_http_bulk_export_cat(&s, " AND ctid < '(%L,%L)'::tid",
                                     file.to >> 16, file.to & 0xffff);
        }

        ngx_http_bulk_export_cat(&s, ") TO STDOUT (FORMAT binary)");
    }

    if (s.failed || copy->prepare == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy->query = (char *) s.data;
    copy->close = "ROLLBACK";

    copy->name.data = ngx_pnalloc(r->pool, name.len + id.len
                                           + sizeof("export / file"));
    if (copy->name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy->name.len = ngx_sprintf(copy->name.data, "export %V file %V", &id,
                                 &name)
                     - copy->name.data;

    ngx_str_set(&copy->content_type, "application/fhir+ndjson");
    copy->gzip = ngx_http_bulk_export_gzip(r);
    copy->binary = 1;
    copy->row = ngx_http_bulk_export_file_row;
    copy->error = ngx_http_bulk_export_file_error;
    copy->data = ctx;

    return ngx_http_bulk_copy_run(copy);

not_found:

    return ngx_http_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
                                    "no file \"%V\" in export \"%V\" "
                                    "(deleted, expired, not complete yet or "
                                    "never started)", &name, &id);
}


/* a row as $dump?fhir=true writes it, then _elements */

static ngx_int_t
ngx_http_bulk_export_file_row(ngx_http_bulk_copy_t *copy,
    ngx_bulk_pgcopy_field_t *f, size_t n)
{
    ngx_bulk_fmt_job_t                job;
    ngx_bulk_elements_job_t           ej;
    ngx_http_bulk_export_file_ctx_t  *ctx;

    ctx = copy->data;

    if (ctx->deleted) {

        /* a Bundle of a deletion: json text */

        if (n != 1 || f[0].len < 2) {
            ngx_cpystrn(copy->err, (u_char *) "malformed row from PostgreSQL",
                        sizeof(copy->err));
            return NGX_ERROR;
        }

        if (ngx_http_bulk_out_put(&copy->out, f[0].data, f[0].len) != NGX_OK
            || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_bulk_dump_fhir(copy, ctx->fmt, &ctx->type, f, n, &job)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->elements) {
        ngx_memzero(&ej, sizeof(ngx_bulk_elements_job_t));
        ej.type = (char *) ctx->type.data;
        ej.type_len = ctx->type.len;

        if (ngx_bulk_elements_filter(ctx->elements, &ej, job.out,
                                     job.out_len)
            != 0)
        {
            ngx_snprintf(copy->err, sizeof(copy->err) - 1,
                         "_elements of row \"%*s\": %s%Z",
                         (size_t) ngx_min(f[0].len, 64), f[0].data, ej.err);
            return NGX_ERROR;
        }

        job.out = ej.out;
        job.out_len = ej.out_len;
    }

    if (ngx_http_bulk_out_put(&copy->out, job.out, job.out_len) != NGX_OK
        || ngx_http_bulk_out_put(&copy->out, (u_char *) "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a snapshot that is gone is a 410; anything else as mapped */

static ngx_int_t
ngx_http_bulk_export_file_error(ngx_http_bulk_copy_t *copy, PGresult *res,
    PGconn *pg)
{
    const char  *state;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && ngx_strcmp(state, "22023") == 0) {
        return ngx_http_bulk_send_error(copy->request, NGX_HTTP_BULK_GONE,
                                        "not-found", "the export's snapshot "
                                        "is gone (deleted, expired, or its "
                                        "worker exited)");
    }

    return ngx_http_bulk_send_pg_error(copy->request, res, pg, 0);
}


/* Accept-Encoding names gzip (without q=0) */

static ngx_uint_t
ngx_http_bulk_export_gzip(ngx_http_request_t *r)
{
    u_char           *p, *last;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Accept-Encoding") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept-Encoding",
                               h[i].key.len)
               != 0)
        {
            continue;
        }

        last = h[i].value.data + h[i].value.len;
        p = ngx_strlcasestrn(h[i].value.data, last, (u_char *) "gzip", 4 - 1);

        if (p == NULL) {
            continue;
        }

        p += 4;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p + 4 <= last && ngx_strncmp(p, ";q=0", 4) == 0
            && (p + 4 == last || p[4] == ',' || p[4] == ' '
                || (p[4] == '.' && (p + 5 == last || p[5] == '0'))))
        {
            continue;
        }

        return 1;
    }
}


/* GET /fhir/metadata: a CapabilityStatement declaring the operations */

static ngx_str_t  ngx_http_bulk_metadata_start = ngx_string(
    "{\"resourceType\":\"CapabilityStatement\","
    "\"status\":\"active\",\"date\":\"2026-01-01\",\"kind\":\"instance\","
    "\"instantiates\":[\"http://hl7.org/fhir/uv/bulkdata/"
    "CapabilityStatement/bulk-data\"],"
    "\"software\":{\"name\":\"ngx_bulk\"},"
    "\"implementation\":{\"description\":\"ngx_bulk: FHIR Bulk Data "
    "$export from PostgreSQL\"},"
    "\"fhirVersion\":\"4.0.1\",\"format\":[\"json\"],"
    "\"rest\":[{\"mode\":\"server\","
    "\"operation\":[{\"name\":\"export\",\"definition\":"
    "\"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export\"}],"
    "\"resource\":["
    "{\"type\":\"Patient\",\"operation\":[{\"name\":\"patient-export\","
    "\"definition\":\"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
    "patient-export\"}]},"
    "{\"type\":\"Group\",\"operation\":[{\"name\":\"group-export\","
    "\"definition\":\"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
    "group-export\"}]}");

static ngx_str_t  ngx_http_bulk_metadata_end = ngx_string("]}]}");


ngx_int_t
ngx_http_bulk_metadata_handler(ngx_http_request_t *r)
{
    size_t                       len;
    ngx_buf_t                   *b;
    ngx_uint_t                   i;
    const char                  *name;
    const ngx_bulk_fhir_type_t  *ft;

    len = ngx_http_bulk_metadata_start.len + ngx_http_bulk_metadata_end.len
          + NGX_BULK_FHIR_NRESOURCES
            * (sizeof(",{\"type\":\"\"}") + NGX_HTTP_BULK_TYPE_MAX);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, ngx_http_bulk_metadata_start.data,
                         ngx_http_bulk_metadata_start.len);

    for (i = 0; i < NGX_BULK_FHIR_NRESOURCES; i++) {
        ft = &ngx_bulk_fhir_types[ngx_bulk_fhir_resources[i]];
        name = ngx_bulk_fhir_str(ft->name);

        if ((ft->len == 7 && ngx_strncmp(name, "Patient", 7) == 0)
            || (ft->len == 5 && ngx_strncmp(name, "Group", 5) == 0))
        {
            continue;
        }

        b->last = ngx_sprintf(b->last, ",{\"type\":\"%*s\"}",
                              (size_t) ft->len, name);
    }

    b->last = ngx_cpymem(b->last, ngx_http_bulk_metadata_end.data,
                         ngx_http_bulk_metadata_end.len);

    return ngx_http_bulk_send_json(r, NGX_HTTP_OK, b);
}
