
/*
 * ngx_bulk: FHIR Bulk Data $export streamed from a pinned snapshot:
 * the kick-off (system, Patient, Group/{id}), $export-status/{id} (GET,
 * DELETE), $export-file/{id}/{name} and GET /fhir/metadata.  Exports live
 * in a shared-memory zone; the worker that kicked one off holds its
 * snapshot's connection.
 */


#ifndef _NGX_HTTP_BULK_EXPORT_H_INCLUDED_
#define _NGX_HTTP_BULK_EXPORT_H_INCLUDED_


#include "ngx_http_bulk_module.h"


ngx_shm_zone_t *ngx_http_bulk_export_add_zone(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);
void ngx_http_bulk_export_init_process(ngx_cycle_t *cycle);
void ngx_http_bulk_export_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_bulk_export_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_export_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_export_file_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_metadata_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULK_EXPORT_H_INCLUDED_ */
