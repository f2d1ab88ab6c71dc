
/*
 * ngx_bulk: POST /$load, /{Type}/$load, /fhir/$load, /fhir/{Type}/$load,
 * and the same load run as an input of an $import job: a source fetched
 * (or the request body itself),
 * split into lines, checked, converted and upserted in one transaction,
 * or committed in batches.
 */


#ifndef _NGX_HTTP_BULK_LOAD_H_INCLUDED_
#define _NGX_HTTP_BULK_LOAD_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_source.h"
#include <yajl/yajl_tree.h>
#include <libpq-fe.h>


typedef struct ngx_http_bulk_load_s  ngx_http_bulk_load_t;

typedef void (*ngx_http_bulk_load_done_pt)(ngx_http_bulk_load_t *load,
    void *data);

/*
 * $import with bulk_import_lease: a statement run in each batch's
 * transaction after its upserts, before COMMIT (the input's progress row);
 * it must return exactly one row, else the batch rolls back and the load
 * fails.  NULL: out of memory.
 */
typedef u_char *(*ngx_http_bulk_load_commit_pt)(ngx_http_bulk_load_t *load,
    void *data, PGconn *pg);


/* the body options $load and $import share */

typedef struct {
    ngx_str_t                     merge;    /* JSON text of "merge" */
    unsigned                      update:1;
    unsigned                      strip_nulls:1;
} ngx_http_bulk_load_opts_t;


/* an input of an $import job */

typedef struct {
    ngx_str_t                     type;
    ngx_str_t                     url;
    ngx_http_bulk_load_opts_t     opts;
    ngx_uint_t                    fhir;
    size_t                        batch;    /* commit every batch bytes */
    ngx_http_bulk_load_done_pt    done;     /* the load is over */
    ngx_http_bulk_load_commit_pt  commit;   /* or NULL */
    void                         *data;     /* of done and commit */
    uint64_t                      skip;     /* lines committed before: read
                                               again, not loaded */
    off_t                         offset;   /* where they end in a plain
                                               source: asked with Range */
    ngx_str_t                     validator; /* the source's when they
                                               were read (ETag or
                                               Last-Modified), or empty */
} ngx_http_bulk_load_input_t;


typedef struct {
    uint64_t                      line;
    ngx_str_t                     text;
} ngx_http_bulk_load_issue_t;


/* what a load has done so far */

typedef struct {
    uint64_t                      total;    /* rows written */
    ngx_uint_t                    errors;   /* bad lines */
    ngx_http_bulk_load_issue_t   *issues;   /* the first ones */
    ngx_uint_t                    nissues;
    off_t                         received; /* source bytes */
    off_t                         length;   /* Content-Length or -1 */
    ngx_uint_t                    batches;  /* committed */
    uint64_t                      lines;    /* source lines taken so far,
                                               skipped ones included */
    off_t                         offset;   /* the source's bytes up to the
                                               end of the last line taken */
    ngx_uint_t                    gzip;     /* the source is gzip */
    ngx_str_t                     validator; /* the source's ETag or
                                               Last-Modified, or empty */
    u_char                       *err;      /* why it failed, or NULL */
} ngx_http_bulk_load_progress_t;


ngx_int_t ngx_http_bulk_load_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_bulk_load_option(ngx_pool_t *pool, const char *key,
    yajl_val v, ngx_http_bulk_load_opts_t *opts, u_char *err, size_t len);

ngx_http_bulk_load_t *ngx_http_bulk_load_create(ngx_http_request_t *r,
    ngx_http_bulk_load_input_t *in);
void ngx_http_bulk_load_run(ngx_http_bulk_load_t *load);
ngx_uint_t ngx_http_bulk_load_running(ngx_http_bulk_load_t *load);
void ngx_http_bulk_load_abort(ngx_http_bulk_load_t *load,
    const char *reason);
void ngx_http_bulk_load_progress(ngx_http_bulk_load_t *load,
    ngx_http_bulk_load_progress_t *p);
ngx_pool_t *ngx_http_bulk_load_scratch(ngx_http_bulk_load_t *load);
ngx_http_bulk_source_t *ngx_http_bulk_load_source(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULK_LOAD_H_INCLUDED_ */
