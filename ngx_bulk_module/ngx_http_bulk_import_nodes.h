
/*
 * ngx_bulk: $import jobs shared by every nginx node on one database
 * (bulk_import_lease): the job and its inputs live in tables
 * bulkimportjob and bulkimportinput; each worker claims inputs with
 * SELECT ... FOR UPDATE SKIP LOCKED under a lease its heartbeat renews,
 * and resumes those whose lease expired from their last committed batch.
 */


#ifndef _NGX_HTTP_BULK_IMPORT_NODES_H_INCLUDED_
#define _NGX_HTTP_BULK_IMPORT_NODES_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_load.h"


typedef struct {
    ngx_str_t                     type;
    ngx_str_t                     url;
} ngx_http_bulk_import_source_t;


/* a checked kick-off request */

typedef struct {
    ngx_str_t                     id;
    ngx_str_t                     encoding;
    ngx_http_bulk_load_opts_t     opts;
    ngx_uint_t                    fhir;
    ngx_uint_t                    ninputs;
    ngx_http_bulk_import_source_t *sources;
} ngx_http_bulk_nodes_job_t;


void ngx_http_bulk_nodes_init_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_bulk_nodes_submit(ngx_http_request_t *r,
    ngx_http_bulk_nodes_job_t *job);
ngx_int_t ngx_http_bulk_nodes_status(ngx_http_request_t *r, ngx_str_t *id);
/* GET /BulkImportStatus: the running shared jobs, then the table's */
ngx_int_t ngx_http_bulk_nodes_list(ngx_http_request_t *r, ngx_uint_t count,
    ngx_uint_t html);


#endif /* _NGX_HTTP_BULK_IMPORT_NODES_H_INCLUDED_ */
