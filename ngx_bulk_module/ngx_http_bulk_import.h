
/*
 * ngx_bulk: POST /$import, /fhir/$import and GET, DELETE
 * /BulkImportStatus/{id}: background jobs of $load inputs, their records
 * in a shared-memory zone and in table bulkimportstatus; GET
 * /BulkImportStatus lists them (a searchset Bundle, or the HTML view).
 */


#ifndef _NGX_HTTP_BULK_IMPORT_H_INCLUDED_
#define _NGX_HTTP_BULK_IMPORT_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include <libpq-fe.h>


ngx_shm_zone_t *ngx_http_bulk_import_add_zone(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);
void ngx_http_bulk_import_init_process(ngx_cycle_t *cycle);
void ngx_http_bulk_import_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_bulk_import_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_import_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_import_list_handler(ngx_http_request_t *r);

/* GET or DELETE of a job only table bulkimportstatus has: NGX_DONE */
ngx_int_t ngx_http_bulk_import_table(ngx_http_request_t *r, ngx_str_t *id);

/* a fake main request with a location's configuration (fd -1) */
ngx_http_request_t *ngx_http_bulk_import_fake(ngx_pool_t *pool,
    ngx_log_t *log, void **main_conf, void **srv_conf, void **loc_conf);

/*
 * The status resource of a job from the results of the statements
 * ngx_http_bulk_import_table_sql() appends (the job, its inputs, their
 * issues): NGX_OK, NGX_DECLINED when there is no such job, NGX_ERROR.
 * The same renderer as the zone's; *percent: X-Progress or -1.
 */
u_char *ngx_http_bulk_import_table_sql(u_char *p, const char *idlit);
size_t ngx_http_bulk_import_table_sql_len(const char *idlit);
ngx_int_t ngx_http_bulk_import_render_table(ngx_pool_t *pool,
    PGresult *job, PGresult *inputs, PGresult *issues, u_char **json,
    size_t *len, ngx_int_t *percent);
ngx_int_t ngx_http_bulk_import_answer(ngx_http_request_t *r,
    ngx_uint_t status, u_char *json, size_t len, ngx_int_t percent);
/* a job of the list: its id and start (the sort keys) and its JSON */
typedef struct {
    ngx_str_t                     id;
    ngx_str_t                     start;    /* as in the JSON, "": none */
    ngx_str_t                     json;     /* as GET answers it */
} ngx_http_bulk_import_entry_t;

#define NGX_HTTP_BULK_IMPORT_TS_LEN  24     /* an instant, ms, UTC */

/* "2026-11-27T22:10:08.123Z": NGX_HTTP_BULK_IMPORT_TS_LEN bytes */
u_char *ngx_http_bulk_import_iso(u_char *p, ngx_msec_t ms);

/* an id as an element of an array literal, the n-th (from 0) */
u_char *ngx_http_bulk_import_id_elem(u_char *p, const u_char *id,
    size_t len, ngx_uint_t n);

/* the list, after its part that the tables of shared jobs gave */
ngx_int_t ngx_http_bulk_import_list_tables(ngx_http_request_t *r,
    ngx_array_t *first, ngx_uint_t nfirst, ngx_str_t *ids, ngx_uint_t count,
    ngx_uint_t html);

/* _format or Accept asks for the HTML view */
ngx_uint_t ngx_http_bulk_import_wants_html(ngx_http_request_t *r);
/* the HTML view of one job, of its status resource */
ngx_int_t ngx_http_bulk_import_view(ngx_http_request_t *r, u_char *json,
    size_t len);


#endif /* _NGX_HTTP_BULK_IMPORT_H_INCLUDED_ */
