
/*
 * ngx_bulk: POST /$import, /fhir/$import and GET, DELETE
 * /BulkImportStatus/{id}: background jobs of $load inputs, their records
 * in a shared-memory zone and in table bulkimportstatus; GET
 * /BulkImportStatus lists them (a searchset Bundle, or the HTML view).
 */


#ifndef _NGX_HTTP_BULK_IMPORT_H_INCLUDED_
#define _NGX_HTTP_BULK_IMPORT_H_INCLUDED_


#include "ngx_http_bulk_module.h"


ngx_shm_zone_t *ngx_http_bulk_import_add_zone(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);
void ngx_http_bulk_import_init_process(ngx_cycle_t *cycle);
void ngx_http_bulk_import_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_bulk_import_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_import_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_import_list_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_BULK_IMPORT_H_INCLUDED_ */
