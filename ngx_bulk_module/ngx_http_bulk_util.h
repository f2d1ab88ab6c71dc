
/*
 * ngx_bulk: helpers of the operations: OperationOutcome answers, the one
 * mapping of PostgreSQL errors to HTTP, resource type names, JSON text of
 * a body's values, sorted name lists and the worker's format converter.
 */


#ifndef _NGX_HTTP_BULK_UTIL_H_INCLUDED_
#define _NGX_HTTP_BULK_UTIL_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include <libpq-fe.h>
#include <yajl/yajl_tree.h>
#include "ngx_bulk_format.h"


/* a resource type name: [A-Z][A-Za-z0-9]{0,63} */
#define NGX_HTTP_BULK_TYPE_MAX       64

/* a FHIR id: [A-Za-z0-9.-]{1,64} */
#define NGX_HTTP_BULK_ID_MAX         64

#define NGX_HTTP_BULK_UNPROCESSABLE  422
#define NGX_HTTP_BULK_RETRY_AFTER    "5"


ngx_int_t ngx_http_bulk_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...);
ngx_int_t ngx_http_bulk_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b);
ngx_int_t ngx_http_bulk_send_whole(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, ngx_str_t *type);
ngx_int_t ngx_http_bulk_add_header(ngx_http_request_t *r, const char *key,
    const char *value);
ngx_int_t ngx_http_bulk_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);

ngx_uint_t ngx_http_bulk_pg_status(PGresult *res, ngx_uint_t client,
    const char **code);
ngx_int_t ngx_http_bulk_send_pg_error(ngx_http_request_t *r, PGresult *res,
    PGconn *pg, ngx_uint_t client);

ngx_int_t ngx_http_bulk_type_name(const u_char *name, size_t len);
ngx_int_t ngx_http_bulk_type_valid(const u_char *name, size_t len);

ngx_int_t ngx_http_bulk_json_text(ngx_pool_t *pool, yajl_val v,
    ngx_str_t *out);
ngx_int_t ngx_http_bulk_str_cmp(const void *a, const void *b);
ngx_str_t *ngx_http_bulk_bsearch(ngx_str_t *key, ngx_str_t *base,
    ngx_uint_t n);

ngx_bulk_fmt_t *ngx_http_bulk_fmt(void);
void ngx_http_bulk_fmt_free(void);


#endif /* _NGX_HTTP_BULK_UTIL_H_INCLUDED_ */
