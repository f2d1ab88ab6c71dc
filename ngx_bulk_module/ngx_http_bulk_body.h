
/*
 * ngx_bulk: the small JSON or YAML request bodies of $dump-sql, $load and
 * $import, read whole and handed over as a yajl tree.
 */


#ifndef _NGX_HTTP_BULK_BODY_H_INCLUDED_
#define _NGX_HTTP_BULK_BODY_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include <yajl/yajl_tree.h>


/* gets the parsed body object; returns as a content handler does */
typedef ngx_int_t (*ngx_http_bulk_body_pt)(ngx_http_request_t *r,
    yajl_val root);


ngx_int_t ngx_http_bulk_body_init(ngx_conf_t *cf);
ngx_int_t ngx_http_bulk_read_body(ngx_http_request_t *r,
    ngx_http_bulk_body_pt handler);

ngx_int_t ngx_http_bulk_body_string(yajl_val obj, const char *name,
    ngx_str_t *value);


#endif /* _NGX_HTTP_BULK_BODY_H_INCLUDED_ */
