
/*
 * ngx_bulk: a source URL ($load, $import) fetched through the bulk_fetch
 * location, streamed: the consumer takes the body buffers as they come
 * and holds back what it cannot take yet, which stops the source (the
 * "fetch" kind of ngx_http_bulk_source.h), and the SSRF check of URLs.
 */


#ifndef _NGX_HTTP_BULK_FETCH_H_INCLUDED_
#define _NGX_HTTP_BULK_FETCH_H_INCLUDED_


#include "ngx_http_bulk_module.h"
#include "ngx_http_bulk_source.h"


extern const ngx_http_bulk_source_ops_t  ngx_http_bulk_fetch_ops;


ngx_int_t ngx_http_bulk_fetch_init(ngx_conf_t *cf);

ngx_int_t ngx_http_bulk_fetch_url_valid(u_char *url, size_t len);
ngx_int_t ngx_http_bulk_source_allowed(ngx_http_request_t *r, ngx_str_t *url,
    u_char *err, size_t len);
char *ngx_http_bulk_source_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_bulk_source_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_bulk_source_if_range_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_bulk_source_range_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_BULK_FETCH_H_INCLUDED_ */
