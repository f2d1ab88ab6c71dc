
/*
 * ngx_bulk: GET /{Type}/$dump, and the FHIR form of one row ($export).
 */


#ifndef _NGX_HTTP_BULK_DUMP_H_INCLUDED_
#define _NGX_HTTP_BULK_DUMP_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_copy.h"
#include "ngx_bulk_format.h"


ngx_int_t ngx_http_bulk_dump_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_bulk_dump_fhir(ngx_http_bulk_copy_t *copy,
    ngx_bulk_fmt_t *fmt, ngx_str_t *type, ngx_bulk_pgcopy_field_t *f,
    size_t n, ngx_bulk_fmt_job_t *job);


#endif /* _NGX_HTTP_BULK_DUMP_H_INCLUDED_ */
